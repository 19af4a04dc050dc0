/**
 * The reference model the wire views are tested against, written plainly from the RFCs with
 * DataView and loops (none of src/wire is used here): the one's complement sum, encoders of
 * valid packets, and what a careful reader would refuse in a buffer and why. Also the
 * generators of valid, mutated, truncated and random buffers, and a guard that records any read
 * outside a view.
 */
import fc from "fast-check";

/** fast-check's parameters for every property here: a fixed seed, so that a failure replays. */
export function runs(numRuns: number): fc.Parameters<unknown> {
  return { seed: 0x5a17_0c0d, numRuns };
}

/** A fault as the model names it (`undefined`: a valid buffer). */
export type RefFault = "truncated" | "bad-version" | "bad-length" | undefined;

/** One's complement sum the textbook way: 16-bit words, end-around carry at each step. */
export function refSum(b: Uint8Array): number {
  let s = 0;
  for (let i = 0; i < b.length; i += 2) {
    s += ((b[i] as number) << 8) | (i + 1 < b.length ? (b[i + 1] as number) : 0);
    if (s > 0xffff) s -= 0xffff;
  }
  return s;
}

/** The checksum to store in a zeroed field so that `b` sums to 0xffff. */
function refChecksum(b: Uint8Array): number {
  return 0xffff - refSum(b);
}

function dv(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

/** The fields of an IPv4 header the encoder takes (options: whole 32-bit words of bytes). */
export interface RefIpv4 {
  source: number;
  destination: number;
  protocol: number;
  ttl: number;
  ident: number;
  flags: number; // the top 3 bits of byte 6, as 0 to 7
  fragmentWords: number; // the offset in 8-byte units
  tos: number;
  options: Uint8Array;
  payload: Uint8Array;
}

/** An IPv4 packet with a correct header checksum (RFC 791). */
export function refIpv4(f: RefIpv4): Uint8Array<ArrayBuffer> {
  const header = 20 + f.options.length;
  const p = new Uint8Array(header + f.payload.length);
  const v = dv(p);
  p[0] = 0x40 | (header / 4);
  p[1] = f.tos;
  v.setUint16(2, p.length);
  v.setUint16(4, f.ident);
  v.setUint16(6, (f.flags << 13) | f.fragmentWords);
  p[8] = f.ttl;
  p[9] = f.protocol;
  v.setUint32(12, f.source);
  v.setUint32(16, f.destination);
  p.set(f.options, 20);
  v.setUint16(10, refChecksum(p.subarray(0, header)));
  p.set(f.payload, header);
  return p;
}

/** An ICMP message with a correct checksum (RFC 792). */
export function refIcmp(
  type: number,
  code: number,
  rest: number,
  data: Uint8Array,
): Uint8Array<ArrayBuffer> {
  const p = new Uint8Array(8 + data.length);
  p[0] = type;
  p[1] = code;
  dv(p).setUint32(4, rest);
  p.set(data, 8);
  dv(p).setUint16(2, refChecksum(p));
  return p;
}

/** An ARP packet (RFC 826) with these addresses, whose lengths go in its fixed part. */
export function refArp(
  hardware: number,
  protocol: number,
  operation: number,
  addresses: [Uint8Array, Uint8Array, Uint8Array, Uint8Array],
): Uint8Array<ArrayBuffer> {
  const [sha, spa] = addresses;
  const p = new Uint8Array(8 + 2 * (sha.length + spa.length));
  const v = dv(p);
  v.setUint16(0, hardware);
  v.setUint16(2, protocol);
  p[4] = sha.length;
  p[5] = spa.length;
  v.setUint16(6, operation);
  let at = 8;
  for (const a of addresses) {
    p.set(a, at);
    at += a.length;
  }
  return p;
}

/** An Ethernet II frame. */
export function refEthernet(
  destination: Uint8Array,
  source: Uint8Array,
  type: number,
  payload: Uint8Array,
): Uint8Array<ArrayBuffer> {
  const f = new Uint8Array(14 + payload.length);
  f.set(destination, 0);
  f.set(source, 6);
  dv(f).setUint16(12, type);
  f.set(payload, 14);
  return f;
}

/** An IPv6 packet (RFC 8200) carrying `payload`. */
export function refIpv6(
  trafficClass: number,
  flowLabel: number,
  nextHeader: number,
  hopLimit: number,
  addresses: [Uint8Array, Uint8Array],
  payload: Uint8Array,
): Uint8Array<ArrayBuffer> {
  const p = new Uint8Array(40 + payload.length);
  const v = dv(p);
  v.setUint32(0, (6 * 2 ** 28 + trafficClass * 2 ** 20 + flowLabel) >>> 0);
  v.setUint16(4, payload.length);
  p[6] = nextHeader;
  p[7] = hopLimit;
  p.set(addresses[0], 8);
  p.set(addresses[1], 24);
  p.set(payload, 40);
  return p;
}

/**
 * A UDP datagram (RFC 768) from `source` to `destination` (4-byte or 16-byte addresses) in an
 * IPv4 packet (identification 0, DF, TTL 64) or an IPv6 packet (hop limit 64), every checksum
 * correct: the UDP one over the pseudo-header of RFC 768 or RFC 8200 section 8.1, a computed 0
 * sent as 0xffff.
 */
export function refUdpPacket(
  source: Uint8Array,
  sourcePort: number,
  destination: Uint8Array,
  destinationPort: number,
  payload: Uint8Array,
): Uint8Array<ArrayBuffer> {
  const udp = new Uint8Array(8 + payload.length);
  const u = dv(udp);
  u.setUint16(0, sourcePort);
  u.setUint16(2, destinationPort);
  u.setUint16(4, udp.length);
  udp.set(payload, 8);
  const v4 = source.length === 4;
  const pseudo = new Uint8Array((v4 ? 12 : 40) + udp.length);
  const p = dv(pseudo);
  pseudo.set(source, 0);
  pseudo.set(destination, source.length);
  if (v4) {
    pseudo[9] = 17;
    p.setUint16(10, udp.length);
  } else {
    p.setUint32(32, udp.length);
    pseudo[39] = 17;
  }
  pseudo.set(udp, v4 ? 12 : 40);
  u.setUint16(6, refChecksum(pseudo) || 0xffff);
  if (!v4) return refIpv6(0, 0, 17, 64, [source, destination], udp);
  return refIpv4({
    source: dv(source).getUint32(0),
    destination: dv(destination).getUint32(0),
    protocol: 17,
    ttl: 64,
    ident: 0,
    flags: 2,
    fragmentWords: 0,
    tos: 0,
    options: new Uint8Array(0),
    payload: udp,
  });
}

/** What is wrong with `p` as an IPv4 packet, checked in RFC 791's terms. */
export function refIpv4Fault(p: Uint8Array): RefFault {
  if (p.length === 0) return "truncated";
  if ((p[0] as number) >> 4 !== 4) return "bad-version";
  if (p.length < 20) return "truncated";
  const ihl = ((p[0] as number) & 15) * 4;
  const total = dv(p).getUint16(2);
  if (ihl < 20 || total < ihl) return "bad-length";
  if (p.length < ihl) return "truncated";
  if (total > p.length) return "bad-length";
  return undefined;
}

/** What is wrong with `p` as an IPv6 packet. */
export function refIpv6Fault(p: Uint8Array): RefFault {
  if (p.length === 0) return "truncated";
  if ((p[0] as number) >> 4 !== 6) return "bad-version";
  if (p.length < 40) return "truncated";
  return 40 + dv(p).getUint16(4) > p.length ? "bad-length" : undefined;
}

/** What is wrong with `p` as an ARP packet. */
export function refArpFault(p: Uint8Array): RefFault {
  if (p.length < 8) return "truncated";
  return p.length < 8 + 2 * ((p[4] as number) + (p[5] as number)) ? "truncated" : undefined;
}

/** What is wrong with `p` as a buffer that needs `header` bytes (Ethernet, ICMP). */
export function refFixedFault(header: number): (p: Uint8Array) => RefFault {
  return (p) => (p.length < header ? "truncated" : undefined);
}

const u8 = fc.integer({ min: 0, max: 0xff });
const u16 = fc.integer({ min: 0, max: 0xffff });
const u32 = fc.integer({ min: 0, max: 0xffffffff });
const mac = fc.uint8Array({ minLength: 6, maxLength: 6 });

/** Valid IPv4 header fields of a whole datagram (no fragment), with a payload. */
export const arbIpv4Fields = fc.record({
  source: u32,
  destination: u32,
  protocol: u8,
  ttl: u8,
  ident: u16,
  flags: fc.constantFrom(0, 2), // DF or nothing (no MF)
  fragmentWords: fc.constant(0),
  tos: u8,
  options: fc.integer({ min: 0, max: 10 }).map((n) => new Uint8Array(n * 4).fill(1)), // NOPs
  payload: fc.uint8Array({ maxLength: 1500 }),
});

/** Valid ARP packets of any hardware and protocol lengths (Ethernet/IPv4 half the time). */
export const arbArp = fc.oneof(
  fc
    .record({ op: u16, sha: mac, spa: fc.uint8Array({ minLength: 4, maxLength: 4 }) })
    .chain(({ op, sha, spa }) =>
      fc
        .tuple(mac, fc.uint8Array({ minLength: 4, maxLength: 4 }))
        .map(([tha, tpa]) => refArp(1, 0x0800, op, [sha, spa, tha, tpa])),
    ),
  fc
    .record({ h: u16, p: u16, op: u16, hl: fc.nat(20), pl: fc.nat(20) })
    .chain(({ h, p, op, hl, pl }) =>
      fc
        .tuple(
          fc.uint8Array({ minLength: hl, maxLength: hl }),
          fc.uint8Array({ minLength: pl, maxLength: pl }),
          fc.uint8Array({ minLength: hl, maxLength: hl }),
          fc.uint8Array({ minLength: pl, maxLength: pl }),
        )
        .map((a) => refArp(h, p, op, a)),
    ),
);

/** Valid IPv6 packets. */
export const arbIpv6 = fc
  .tuple(
    u8,
    fc.integer({ min: 0, max: 0xfffff }),
    u8,
    u8,
    fc.uint8Array({ minLength: 16, maxLength: 16 }),
    fc.uint8Array({ minLength: 16, maxLength: 16 }),
    fc.uint8Array({ maxLength: 600 }),
  )
  .map(([tc, flow, next, hop, src, dst, payload]) =>
    refIpv6(tc, flow, next, hop, [src, dst], payload),
  );

/** Valid ICMP messages of any type. */
export const arbIcmp = fc
  .tuple(u8, u8, u32, fc.uint8Array({ maxLength: 1500 }))
  .map(([type, code, rest, data]) => refIcmp(type, code, rest, data));

/** Valid Ethernet frames. */
export const arbEthernet = fc
  .tuple(mac, mac, u16, fc.uint8Array({ maxLength: 200 }))
  .map(([d, s, t, payload]) => refEthernet(d, s, t, payload));

/**
 * Buffers built from valid packets: as they are, with a few bytes overwritten (often the ones
 * holding versions and lengths), cut short or padded, and random bytes of any length.
 */
export function variants(valid: fc.Arbitrary<Uint8Array>): fc.Arbitrary<Uint8Array> {
  const edits = fc.array(fc.tuple(fc.oneof(fc.nat(8), fc.nat()), u8), { maxLength: 4 });
  const broken = fc.tuple(valid, edits, fc.nat(), fc.nat(3)).map(([p, changes, cut, how]) => {
    const b = p.slice();
    for (const [at, value] of changes) if (b.length > 0) b[at % b.length] = value;
    if (how === 0) return b.subarray(0, cut % (b.length + 1));
    if (how === 1) return Uint8Array.of(...b, ...new Uint8Array(cut % 32));
    return b;
  });
  return fc.oneof(valid, broken, fc.uint8Array({ maxLength: 120 }));
}

/**
 * `bytes` copied into the middle of a larger array of guard bytes, behind a proxy that
 * records every indexed read outside them: `outside` lists the indices read there.
 */
export function guarded(
  bytes: Uint8Array,
  guard: number,
): { array: Uint8Array; start: number; outside: number[] } {
  const big = new Uint8Array(guard + bytes.length + guard).map((_, i) => (i * 151 + 7) & 0xff);
  big.set(bytes, guard);
  const outside: number[] = [];
  const array = new Proxy(big, {
    get(target, key) {
      if (typeof key === "string" && /^\d+$/.test(key)) {
        const i = Number(key);
        if (i < guard || i >= guard + bytes.length) outside.push(i);
        return target[i];
      }
      const value: unknown = Reflect.get(target, key, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  return { array, start: guard, outside };
}
