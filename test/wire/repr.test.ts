/**
 * The parsed forms against the reference encoders: a random valid `Repr` emitted gives the
 * reference's bytes, checksums verify, and parsing gives the same `Repr` back; reference packets
 * parse to their fields; parse refuses what the form does not describe; a whole frame is built
 * and read back through `payloadAs`; fields refuse values they cannot hold.
 */
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import {
  ArpOperation,
  ArpPacket,
  ArpRepr,
  EthernetFrame,
  EthernetRepr,
  EtherType,
  Icmpv4Packet,
  Icmpv4Repr,
  IpProtocol,
  Ipv4Packet,
  Ipv4Repr,
  Malformed,
} from "../../src/wire/index.ts";
import { arbIpv4Fields, refArp, refEthernet, refIcmp, refIpv4, refSum, runs } from "./reference.ts";

const u8 = fc.integer({ min: 0, max: 0xff });
const u16 = fc.integer({ min: 0, max: 0xffff });
const u32 = fc.integer({ min: 0, max: 0xffffffff });
const mac = fc.uint8Array({ minLength: 6, maxLength: 6 });

/** The 4 bytes of an IPv4 address. */
function ipBytes(address: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, address);
  return b;
}

describe("Ipv4Repr", () => {
  const arbRepr = fc
    .record({ source: u32, destination: u32, protocol: u8, ttl: u8, payloadLength: fc.nat(1480) })
    .map((f) => new Ipv4Repr(f));

  test("emit gives the reference encoder's bytes and a verifying checksum; parse gives the Repr back", () => {
    fc.assert(
      fc.property(arbRepr, fc.nat(4), (repr, padding) => {
        const payload = new Uint8Array(repr.payloadLength).map((_, i) => i * 7);
        const p = new Uint8Array(repr.bufferLength + repr.payloadLength + padding);
        p.set(payload, repr.bufferLength);
        repr.emit(new Ipv4Packet(p));
        const want = refIpv4({
          ...repr,
          ident: 0,
          flags: 0,
          fragmentWords: 0,
          tos: 0,
          options: new Uint8Array(0),
          payload,
        });
        expect(p.subarray(0, want.length)).toEqual(want);
        const view = Ipv4Packet.checked(p);
        expect(view.verifyChecksum()).toBe(true);
        expect(refSum(p.subarray(0, 20))).toBe(0xffff);
        expect(Ipv4Repr.parse(view)).toEqual(repr);
      }),
      runs(300),
    );
  });

  test("a reference packet (options, DF, any TOS) parses to its fields, its payload in view", () => {
    fc.assert(
      fc.property(arbIpv4Fields, (f) => {
        const p = refIpv4(f);
        const view = Ipv4Packet.checked(p);
        expect(Ipv4Repr.parse(view)).toEqual(
          new Ipv4Repr({ ...f, payloadLength: f.payload.length }),
        );
        expect(view.headerLength).toBe(20 + f.options.length);
        expect(view.dontFragment).toBe(f.flags === 2);
        expect(view.dscp * 4 + view.ecn).toBe(f.tos);
        expect(view.ident).toBe(f.ident);
        expect(view.payload).toEqual(f.payload);
      }),
      runs(300),
    );
  });

  test("parse refuses a header that does not verify, and fragments (no reassembly)", () => {
    fc.assert(
      fc.property(arbIpv4Fields, fc.nat(19), fc.integer({ min: 1, max: 255 }), (f, at, flip) => {
        const p = refIpv4(f);
        p[at] = (p[at] as number) ^ flip;
        const parsed = Ipv4Repr.parse(new Ipv4Packet(p));
        expect(parsed).toBeInstanceOf(Malformed);
        // a flip that breaks a length or the version is refused by check() first
        const fault = new Ipv4Packet(p).check()?.fault ?? "bad-checksum";
        expect((parsed as Malformed).fault).toBe(fault);
      }),
      runs(300),
    );
    const fragments: [number, number][] = [
      [1, 0], // more fragments
      [0, 3], // an offset
      [3, 1],
    ];
    for (const [flags, fragmentWords] of fragments) {
      const f = { source: 1, destination: 2, protocol: 17, ttl: 9, ident: 5, tos: 0 };
      const p = refIpv4({
        ...f,
        flags,
        fragmentWords,
        options: new Uint8Array(0),
        payload: new Uint8Array(8),
      });
      const parsed = Ipv4Repr.parse(new Ipv4Packet(p));
      expect(parsed).toBeInstanceOf(Malformed);
      expect((parsed as Malformed).fault).toBe("unsupported");
      expect(new Ipv4Packet(p).isFragment).toBe(true);
    }
  });
});

describe("Icmpv4Repr", () => {
  const arbEcho = fc
    .record({
      kind: fc.constantFrom("echo-request" as const, "echo-reply" as const),
      ident: u16,
      seq: u16,
      data: fc.uint8Array({ maxLength: 1472 }),
    })
    .map((f) => new Icmpv4Repr(f));

  test("emit gives the reference encoder's bytes; parse gives the Repr back", () => {
    fc.assert(
      fc.property(arbEcho, fc.nat(3), (repr, offset) => {
        const array = new Uint8Array(offset + repr.bufferLength);
        const view = new Icmpv4Packet(array, offset);
        repr.emit(view);
        const type = repr.kind === "echo-request" ? 8 : 0;
        expect(view.bytes).toEqual(refIcmp(type, 0, repr.ident * 65536 + repr.seq, repr.data));
        expect(view.verifyChecksum()).toBe(true);
        expect(Icmpv4Repr.parse(view)).toEqual(repr);
      }),
      runs(300),
    );
  });

  test("parse refuses other types, echo codes other than 0, and a checksum that does not verify", () => {
    fc.assert(
      fc.property(u8, u8, u32, fc.uint8Array({ maxLength: 64 }), (type, code, rest, data) => {
        const p = refIcmp(type, code, rest, data);
        const parsed = Icmpv4Repr.parse(new Icmpv4Packet(p));
        const echo = (type === 0 || type === 8) && code === 0;
        expect(parsed instanceof Malformed ? parsed.fault : "echo").toBe(
          echo ? "echo" : "unsupported",
        );
        p[2] = (p[2] as number) ^ 0x10;
        expect((Icmpv4Repr.parse(new Icmpv4Packet(p)) as Malformed).fault).toBe("bad-checksum");
      }),
      runs(300),
    );
  });

  test("emit into a view of another size is a RangeError (the checksum covers the view)", () => {
    const repr = new Icmpv4Repr({
      kind: "echo-request",
      ident: 1,
      seq: 2,
      data: new Uint8Array(4),
    });
    expect(() => repr.emit(new Icmpv4Packet(new Uint8Array(11)))).toThrow(RangeError);
    expect(() => repr.emit(new Icmpv4Packet(new Uint8Array(13)))).toThrow(RangeError);
  });
});

describe("ArpRepr", () => {
  const arbRepr = fc
    .record({ operation: u16, senderMac: mac, senderIp: u32, targetMac: mac, targetIp: u32 })
    .map((f) => new ArpRepr(f));

  test("emit gives the reference encoder's bytes; parse gives the Repr back", () => {
    fc.assert(
      fc.property(arbRepr, (repr) => {
        const p = new Uint8Array(repr.bufferLength);
        repr.emit(new ArpPacket(p));
        const addresses = [
          repr.senderMac,
          ipBytes(repr.senderIp),
          repr.targetMac,
          ipBytes(repr.targetIp),
        ] as const;
        expect(p).toEqual(refArp(1, 0x0800, repr.operation, [...addresses]));
        expect(ArpRepr.parse(ArpPacket.checked(p))).toEqual(repr);
      }),
      runs(300),
    );
  });

  test("parse refuses ARP for other hardware, protocols or address lengths", () => {
    const six = new Uint8Array(6);
    const four = new Uint8Array(4);
    for (const p of [
      refArp(6, 0x0800, 1, [six, four, six, four]),
      refArp(1, 0x86dd, 1, [six, four, six, four]),
      refArp(1, 0x0800, 1, [new Uint8Array(8), four, new Uint8Array(8), four]),
      refArp(1, 0x0800, 1, [six, new Uint8Array(16), six, new Uint8Array(16)]),
    ]) {
      expect((ArpRepr.parse(new ArpPacket(p)) as Malformed).fault).toBe("unsupported");
    }
  });
});

describe("EthernetRepr", () => {
  test("emit gives the reference encoder's header; parse gives the Repr back, with copies", () => {
    fc.assert(
      fc.property(mac, mac, u16, fc.uint8Array({ maxLength: 64 }), (d, s, type, payload) => {
        const repr = new EthernetRepr({ destination: d, source: s, etherType: type });
        const f = new Uint8Array(repr.bufferLength + payload.length);
        f.set(payload, repr.bufferLength);
        repr.emit(new EthernetFrame(f));
        expect(f).toEqual(refEthernet(d, s, type, payload));
        const parsed = EthernetRepr.parse(EthernetFrame.checked(f));
        expect(parsed).toEqual(repr);
        f.fill(0);
        expect(parsed).toEqual(repr); // parsed addresses are not views of the frame
      }),
      runs(200),
    );
  });
});

test("a whole frame (Ethernet, IPv4, ICMP echo) is built and read back through payloadAs", () => {
  fc.assert(
    fc.property(
      mac,
      mac,
      u32,
      u32,
      u16,
      u16,
      fc.uint8Array({ maxLength: 1400 }),
      (d, s, src, dst, ident, seq, data) => {
        const echo = new Icmpv4Repr({ kind: "echo-request", ident, seq, data });
        const ip = new Ipv4Repr({
          source: src,
          destination: dst,
          protocol: IpProtocol.Icmp,
          ttl: 64,
          payloadLength: echo.bufferLength,
        });
        const eth = new EthernetRepr({ destination: d, source: s, etherType: EtherType.Ipv4 });
        const f = new Uint8Array(eth.bufferLength + ip.bufferLength + echo.bufferLength);
        const frame = new EthernetFrame(f);
        eth.emit(frame);
        const packet = frame.payloadAs(Ipv4Packet);
        ip.emit(packet);
        echo.emit(packet.payloadAs(Icmpv4Packet));

        const read = EthernetFrame.checked(f);
        expect(EthernetRepr.parse(read)).toEqual(eth);
        const readIp = read.payloadAs(Ipv4Packet);
        expect(Ipv4Repr.parse(readIp)).toEqual(ip);
        expect(Icmpv4Repr.parse(readIp.payloadAs(Icmpv4Packet))).toEqual(echo);
        expect(refSum(f.subarray(34))).toBe(0xffff);
      },
    ),
    runs(200),
  );
});

test("ARP request and reply operations are 1 and 2", () => {
  expect(ArpOperation).toEqual({ Request: 1, Reply: 2 });
});

test("setters and parsed forms refuse values their fields cannot hold", () => {
  const ip = new Ipv4Packet(new Uint8Array(20));
  const bad: [string, () => unknown][] = [
    ["ttl 256", () => (ip.ttl = 256)],
    ["ttl -1", () => (ip.ttl = -1)],
    ["ttl 1.5", () => (ip.ttl = 1.5)],
    ["header length 22", () => (ip.headerLength = 22)],
    ["header length 64", () => (ip.headerLength = 64)],
    ["fragment offset 12", () => (ip.fragmentOffset = 12)],
    ["address 2^32", () => (ip.source = 2 ** 32)],
    ["checksum NaN", () => (ip.checksum = Number.NaN)],
    ["a 5-byte MAC", () => (new EthernetFrame(new Uint8Array(14)).source = new Uint8Array(5))],
    [
      "an EtherType of 0x10000",
      () =>
        new EthernetRepr({
          destination: new Uint8Array(6),
          source: new Uint8Array(6),
          etherType: 0x10000,
        }),
    ],
    [
      "an IPv4 payload of 65516",
      () => new Ipv4Repr({ source: 0, destination: 0, protocol: 1, ttl: 1, payloadLength: 65516 }),
    ],
    [
      "an echo sequence of 65536",
      () => new Icmpv4Repr({ kind: "echo-reply", ident: 0, seq: 65536, data: new Uint8Array(0) }),
    ],
    [
      "emit into 19 bytes",
      () =>
        new Ipv4Repr({ source: 0, destination: 0, protocol: 1, ttl: 1, payloadLength: 0 }).emit(
          new Ipv4Packet(new Uint8Array(19)),
        ),
    ],
  ];
  const accepted = bad.filter(([, set]) => {
    try {
      set();
      return true;
    } catch (e) {
      return !(e instanceof RangeError);
    }
  });
  expect(accepted.map(([what]) => what)).toEqual([]);
  expect(ip.bytes).toEqual(new Uint8Array(20)); // nothing was written by a refused set
});
