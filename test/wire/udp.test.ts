/**
 * UDP in the wire layer: the `UdpPacket` view's checks, and whole UDP-in-IP packets built
 * (against the reference encoder), read back, checked against damage, never thrown on. The
 * `SocketAddr` adapter of src/io on top.
 */
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import {
  buildUdpPacket,
  decodeUdpPacket,
  encodeUdpPacket,
  Ipv4Packet,
  readUdpPacket,
  SocketAddr,
  UdpPacket,
} from "../../src/index.ts";
import { refUdpPacket, runs } from "./reference.ts";

const port = fc.integer({ min: 0, max: 65535 });
const v4 = fc.record({ ip: fc.uint8Array({ minLength: 4, maxLength: 4 }), port });
const v6 = fc.record({ ip: fc.uint8Array({ minLength: 16, maxLength: 16 }), port });
/** Two ends of one family and a payload. */
const datagram = fc.record({
  ends: fc.oneof(fc.tuple(v4, v4), fc.tuple(v6, v6)),
  payload: fc.uint8Array({ maxLength: 1600 }),
});

type Datagram = typeof datagram extends fc.Arbitrary<infer T> ? T : never;

function build({ ends: [source, destination], payload }: Datagram): Uint8Array {
  return buildUdpPacket(source, destination, payload);
}

function flip(bytes: Uint8Array, bit: number): void {
  bytes[bit >>> 3] = (bytes[bit >>> 3] as number) ^ (1 << (bit & 7));
}

const A = { ip: Uint8Array.of(10, 0, 0, 1), port: 5 };
const B = { ip: Uint8Array.of(10, 0, 0, 2), port: 6 };

describe("UDP datagrams as IP packets", () => {
  test("what is built is the reference encoder's packet, and reads back as the same ends and payload", () => {
    fc.assert(
      fc.property(datagram, (d) => {
        const [source, destination] = d.ends;
        const packet = build(d);
        expect(packet).toEqual(
          refUdpPacket(source.ip, source.port, destination.ip, destination.port, d.payload),
        );
        const back = readUdpPacket(packet);
        expect(
          typeof back === "string" ? back : [back.source, back.destination, back.payload],
        ).toEqual([source, destination, d.payload]);
      }),
      runs(300),
    );
  });

  test("one flipped bit in the payload, the ports or the addresses (anywhere in an IPv4 header) is refused, never read as another datagram", () => {
    fc.assert(
      fc.property(datagram, fc.nat(), (d, pick) => {
        const packet = build(d);
        // IPv6 has no header checksum: the pseudo-header covers its addresses, not the rest
        const first = d.ends[0].ip.length === 4 ? 0 : 8;
        flip(packet, first * 8 + (pick % ((packet.length - first) * 8)));
        expect(typeof readUdpPacket(packet)).toBe("string");
      }),
      runs(300),
    );
  });

  test("a checksum that computes to 0 is sent as 0xffff; a 0 field means none on IPv4 and is refused on IPv6", () => {
    for (const [source, destination] of [
      [A, B],
      [
        { ip: new Uint8Array(16).fill(0xfd, 0, 1), port: 7 },
        { ip: new Uint8Array(16).fill(0xfd, 0, 1).fill(2, 15), port: 8 },
      ],
    ] as const) {
      const header = source.ip.length === 4 ? 20 : 40;
      // a payload word equal to the checksum of the same datagram with a zero word there
      const c = new UdpPacket(buildUdpPacket(source, destination, new Uint8Array(2)), header);
      const payload = Uint8Array.of(c.checksum >>> 8, c.checksum & 0xff);
      const packet = buildUdpPacket(source, destination, payload);
      const udp = new UdpPacket(packet, header);
      expect(udp.checksum).toBe(0xffff);
      expect(readUdpPacket(packet)).toEqual({ source, destination, payload });
      const other = buildUdpPacket(source, destination, Uint8Array.of(1, 2, 3));
      new UdpPacket(other, header).checksum = 0;
      expect(readUdpPacket(other)).toEqual(
        header === 20
          ? { source, destination, payload: Uint8Array.of(1, 2, 3) }
          : "bad UDP checksum",
      );
    }
  });

  test("a datagram captured short declares its real size, has no UDP checksum and does not read as whole", () => {
    const packet = buildUdpPacket(A, B, new Uint8Array(100), 3000);
    expect(packet.length).toBe(128);
    const ip = new Ipv4Packet(packet);
    expect([ip.totalLength, ip.verifyChecksum(), ip.dontFragment]).toEqual([3028, true, true]);
    const udp = new UdpPacket(packet, 20);
    expect([udp.datagramLength, udp.checksum]).toEqual([3008, 0]);
    expect(readUdpPacket(packet)).toBe("bad length");
    expect(() => buildUdpPacket(A, { ip: new Uint8Array(16), port: 6 }, new Uint8Array(1))).toThrow(
      RangeError,
    );
    expect(() => buildUdpPacket(A, B, new Uint8Array(65508))).toThrow(RangeError);
    expect(() => buildUdpPacket(A, B, new Uint8Array(10), 9)).toThrow(RangeError);
  });

  test("each refusal has its reason", () => {
    const good = () => buildUdpPacket(A, B, Uint8Array.of(1, 2, 3));
    const fix = (p: Uint8Array) => new Ipv4Packet(p).fillChecksum();
    expect(readUdpPacket(new Uint8Array(0))).toBe("not IP");
    expect(readUdpPacket(Uint8Array.of(0x50, 0, 0))).toBe("not IP");
    expect(readUdpPacket(good().subarray(0, 19))).toBe("bad length");
    const header = good();
    header[11] = (header[11] as number) ^ 1;
    expect(readUdpPacket(header)).toBe("bad header checksum");
    const fragment = good();
    new Ipv4Packet(fragment).moreFragments = true;
    fix(fragment);
    expect(readUdpPacket(fragment)).toBe("fragment");
    const other = good();
    new Ipv4Packet(other).protocol = 6;
    fix(other);
    expect(readUdpPacket(other)).toBe("not UDP");
    const long = good();
    new UdpPacket(long, 20).datagramLength = 12;
    expect(readUdpPacket(long)).toBe("bad length");
    const payload = good();
    payload[30] = 9;
    expect(readUdpPacket(payload)).toBe("bad UDP checksum");
    // bytes past the IP packet's declared length are ignored
    const padded = new Uint8Array(good().length + 6);
    padded.set(good());
    expect(readUdpPacket(padded)).toEqual({
      source: A,
      destination: B,
      payload: Uint8Array.of(1, 2, 3),
    });
  });

  test("any bytes: a reason or a datagram, never an exception", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 200 }),
        fc.constantFrom(0x45, 0x46, 0x60, 0x00),
        (bytes, first) => {
          if (bytes.length > 0) bytes[0] = first;
          const r = readUdpPacket(bytes);
          expect(typeof r === "string" || r.payload.length <= bytes.length).toBe(true);
        },
      ),
      runs(1000),
    );
  });
});

describe("UdpPacket", () => {
  test("check: the header whole, the length field from 8 to the view's length", () => {
    const faults = (bytes: Uint8Array) => new UdpPacket(bytes).check()?.fault;
    expect(faults(new Uint8Array(7))).toBe("truncated");
    expect(faults(Uint8Array.of(0, 1, 0, 2, 0, 7, 0, 0))).toBe("bad-length");
    expect(faults(Uint8Array.of(0, 1, 0, 2, 0, 9, 0, 0))).toBe("bad-length");
    expect(faults(Uint8Array.of(0, 1, 0, 2, 0, 8, 0, 0, 1))).toBeUndefined();
    expect(UdpPacket.checked(Uint8Array.of(0, 1, 0, 2, 0, 9, 0, 0, 5)).payload).toEqual(
      Uint8Array.of(5),
    );
    expect(() => UdpPacket.checked(new Uint8Array(3))).toThrow("UDP: 3 bytes is shorter");
  });
});

describe("the SocketAddr adapter (src/io)", () => {
  test("encodes as the wire layer does and decodes to SocketAddrs", () => {
    const from = SocketAddr.parse("10.0.0.1", 5);
    const to = SocketAddr.parse("10.0.0.2", 6);
    const packet = encodeUdpPacket(from, to, Uint8Array.of(1, 2), 2, 9);
    expect(packet).toEqual(buildUdpPacket(A, B, Uint8Array.of(1, 2), 2, 9));
    const d = decodeUdpPacket(packet);
    expect(typeof d === "string" ? d : [`${d.from}`, `${d.to}`, d.payload]).toEqual([
      "10.0.0.1:5",
      "10.0.0.2:6",
      Uint8Array.of(1, 2),
    ]);
    expect(decodeUdpPacket(packet.subarray(0, 10))).toBe("bad length");
    expect(() => encodeUdpPacket(from, SocketAddr.parse("::1", 6), new Uint8Array(1))).toThrow(
      "cannot carry 10.0.0.1:5 to [::1]:6",
    );
  });
});
