/**
 * Every packet view against the reference model, on valid packets, the same with bytes
 * overwritten, cut short or padded, and random bytes: `check()` gives the model's verdict and
 * never throws, it and (once it passes) every accessor read nothing outside the view, unchecked
 * accessors never throw, and `checked` throws the check's `WireError`.
 */
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import {
  ArpPacket,
  EthernetFrame,
  type Format,
  Icmpv4Packet,
  Ipv4Packet,
  Ipv6Packet,
  type PacketView,
  WireError,
} from "../../src/wire/index.ts";
import {
  arbArp,
  arbEthernet,
  arbIcmp,
  arbIpv4Fields,
  arbIpv6,
  guarded,
  type RefFault,
  refArpFault,
  refFixedFault,
  refIpv4,
  refIpv4Fault,
  refIpv6Fault,
  runs,
  variants,
} from "./reference.ts";

/** A view class as the tests use it: constructed over a window, and its static `checked`. */
interface ViewKind {
  new (array: Uint8Array, start?: number, length?: number): PacketView;
  checked(array: Uint8Array, start?: number, length?: number): PacketView;
}

const FORMATS: {
  name: Format;
  kind: ViewKind;
  valid: fc.Arbitrary<Uint8Array>;
  fault: (p: Uint8Array) => RefFault;
}[] = [
  { name: "Ethernet", kind: EthernetFrame, valid: arbEthernet, fault: refFixedFault(14) },
  { name: "ARP", kind: ArpPacket, valid: arbArp, fault: refArpFault },
  { name: "IPv4", kind: Ipv4Packet, valid: arbIpv4Fields.map(refIpv4), fault: refIpv4Fault },
  { name: "IPv6", kind: Ipv6Packet, valid: arbIpv6, fault: refIpv6Fault },
  { name: "ICMPv4", kind: Icmpv4Packet, valid: arbIcmp, fault: refFixedFault(8) },
];

/** Reads every accessor of `view`; with `methods`, also verifies its checksum if it has one. */
function readAll(view: PacketView, methods: boolean): void {
  for (
    let proto = Object.getPrototypeOf(view);
    proto !== null;
    proto = Object.getPrototypeOf(proto)
  ) {
    for (const [name, d] of Object.entries(Object.getOwnPropertyDescriptors(proto))) {
      if (d.get !== undefined) Reflect.get(view, name);
    }
  }
  const verify: unknown = Reflect.get(view, "verifyChecksum");
  if (methods && typeof verify === "function") verify.call(view);
}

for (const format of FORMATS) {
  describe(format.name, () => {
    test("check() gives the reference model's verdict on valid, broken and random buffers", () => {
      fc.assert(
        fc.property(variants(format.valid), (p) => {
          const malformed = new format.kind(p).check();
          const want = format.fault(p);
          expect(malformed?.fault).toBe(want);
          if (malformed !== undefined) {
            expect(malformed.format).toBe(format.name);
            expect(malformed.message.startsWith(`${format.name}: `)).toBe(true);
          }
        }),
        runs(1500),
      );
    });

    test("check() and, once it passes, every accessor read nothing outside the view", () => {
      fc.assert(
        fc.property(variants(format.valid), (p) => {
          const { array, start, outside } = guarded(p, 16);
          const view = new format.kind(array, start, p.length);
          const passed = view.check() === undefined;
          if (passed) readAll(view, true);
          expect(outside).toEqual([]);
        }),
        runs(500),
      );
    });

    test("accessors of an unchecked view never throw, whatever the bytes", () => {
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 64 }), (p) => {
          expect(() => readAll(new format.kind(p), false)).not.toThrow();
        }),
        runs(300),
      );
    });

    test("checked() returns the view, or throws the check's WireError", () => {
      fc.assert(
        fc.property(variants(format.valid), (p) => {
          const malformed = new format.kind(p).check();
          if (malformed === undefined) {
            expect(format.kind.checked(p).length).toBe(p.length);
            return;
          }
          let thrown: unknown;
          try {
            format.kind.checked(p);
          } catch (e) {
            thrown = e;
          }
          expect(thrown).toBeInstanceOf(WireError);
          expect((thrown as WireError).malformed).toEqual(malformed);
          expect((thrown as WireError).message).toBe(malformed.message);
        }),
        runs(300),
      );
    });
  });
}

test("a view's range must lie inside its array (a RangeError otherwise)", () => {
  const a = new Uint8Array(30);
  expect(new Ipv4Packet(a, 10).length).toBe(20);
  expect(new Ipv4Packet(a, 10, 5).bytes).toEqual(a.subarray(10, 15));
  for (const [start, length] of [
    [-1, 4],
    [0, 31],
    [25, 6],
    [31, 0],
    [0, -1],
    [1.5, 2],
  ] as const) {
    expect(() => new Ipv4Packet(a, start, length)).toThrow(RangeError);
    expect(() => Ipv4Packet.checked(a, start, length)).toThrow(RangeError);
  }
});
