/** UDP datagrams as IP packets: built and read back, checked against damage, never thrown on. */
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { decodeUdpPacket, encodeUdpPacket, SocketAddr } from "../../src/index.ts";

const port = fc.integer({ min: 0, max: 65535 });
const v4 = fc.tuple(fc.uint8Array({ minLength: 4, maxLength: 4 }), port);
const v6 = fc.tuple(fc.uint8Array({ minLength: 16, maxLength: 16 }), port);
/** Two addresses of one family and a payload. */
const datagram = fc.record({
  ends: fc.oneof(fc.tuple(v4, v4), fc.tuple(v6, v6)),
  payload: fc.uint8Array({ maxLength: 1600 }),
});

type Datagram = typeof datagram extends fc.Arbitrary<infer T> ? T : never;

function build({ ends, payload }: Datagram) {
  const [[fromIp, fromPort], [toIp, toPort]] = ends;
  const from = SocketAddr.fromIp(fromIp, fromPort);
  const to = SocketAddr.fromIp(toIp, toPort);
  return { from, to, payload, packet: encodeUdpPacket(from, to, payload) };
}

describe("UDP datagrams as IP packets", () => {
  test("what is built reads back as the same addresses and payload", () => {
    fc.assert(
      fc.property(datagram, (d) => {
        const { from, to, payload, packet } = build(d);
        const back = decodeUdpPacket(packet);
        expect(
          typeof back === "string" ? back : [`${back.from}`, `${back.to}`, back.payload],
        ).toEqual([`${from}`, `${to}`, payload]);
      }),
    );
  });

  test("one flipped bit in the payload, the ports or the addresses (anywhere in an IPv4 header) is refused, never read as another datagram", () => {
    fc.assert(
      fc.property(datagram, fc.nat(), (d, pick) => {
        const { packet } = build(d);
        const v4 = d.ends[0][0].length === 4;
        // IPv6 has no header checksum: the pseudo-header covers its addresses, not the rest
        const first = v4 ? 0 : 8;
        const bit = first * 8 + (pick % ((packet.length - first) * 8));
        packet[bit >>> 3] = (packet[bit >>> 3] as number) ^ (1 << (bit & 7));
        expect(typeof decodeUdpPacket(packet)).toBe("string");
      }),
    );
  });

  test("a datagram captured short declares its real size and does not read as whole", () => {
    const from = SocketAddr.parse("10.0.0.1", 5);
    const to = SocketAddr.parse("10.0.0.2", 6);
    const packet = encodeUdpPacket(from, to, new Uint8Array(100), 3000);
    expect(packet.length).toBe(128);
    expect(new DataView(packet.buffer).getUint16(2)).toBe(3028);
    expect(decodeUdpPacket(packet)).toBe("bad length");
    expect(() => encodeUdpPacket(from, SocketAddr.parse("::1", 6), new Uint8Array(1))).toThrow(
      RangeError,
    );
    expect(() => encodeUdpPacket(from, to, new Uint8Array(65508))).toThrow(RangeError);
  });

  test("any bytes: a reason or a datagram, never an exception", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 200 }),
        fc.constantFrom(0x45, 0x46, 0x60, 0x00),
        (bytes, first) => {
          if (bytes.length > 0) bytes[0] = first;
          const r = decodeUdpPacket(bytes);
          expect(typeof r === "string" || r.payload.length <= bytes.length).toBe(true);
        },
      ),
    );
  });
});
