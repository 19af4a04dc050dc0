/**
 * The TUN ping responder's packet logic, pure and sans-IO: validate what the kernel sent into
 * the device and, for an ICMP echo request to one of the subnet's addresses, turn the packet into
 * its reply in place (so the worker writes the receive buffer back without a copy). In TAP mode
 * it also answers ARP requests for those addresses and unwraps/rewraps Ethernet.
 */
import { parseIPv4Cidr } from "bun-sansio/io";

/** Why a packet got no answer. The first four are malformed input (see `MALFORMED`). */
export type Drop =
  | "truncated"
  | "bad-version"
  | "bad-length"
  | "bad-checksum"
  | "fragment"
  | "not-for-us"
  | "ignored";

/** What `PingResponder.answer` did with a packet. */
export type Verdict = "echo-reply" | "arp-reply" | Drop;

/** Drops that mean the packet itself is broken (as opposed to well-formed but not ours). */
export const MALFORMED: readonly Drop[] = [
  "truncated",
  "bad-version",
  "bad-length",
  "bad-checksum",
];

const ETH_HEADER = 14;
const ETH_IPV4 = 0x0800;
const ETH_ARP = 0x0806;
const IPV4_HEADER = 20;
const ICMP_HEADER = 8;
const PROTO_ICMP = 1;
const ICMP_ECHO_REPLY = 0;
const ICMP_ECHO_REQUEST = 8;
const REPLY_TTL = 64;

// Word views of the last buffer summed (packets of one receive pool share their buffer).
let viewed: ArrayBufferLike | undefined;
let words16: Uint16Array<ArrayBufferLike> = new Uint16Array(0);
let words32: Uint32Array<ArrayBufferLike> = new Uint32Array(0);

/**
 * The one's complement sum (RFC 1071) of bytes [start, end) added to `sum`, folded to 16 bits.
 * An odd last byte counts as the high byte of a word.
 */
export function onesSum(bytes: Uint8Array, start: number, end: number, sum = 0): number {
  let s: number;
  const from = bytes.byteOffset + start;
  if ((from & 1) === 0 && end - start >= 16) {
    s = swapBytes(fold(nativeOrderSum(bytes, from, bytes.byteOffset + end))) + sum;
  } else {
    s = sum;
    let i = start;
    for (; i + 1 < end; i += 2) s += ((bytes[i] as number) << 8) | (bytes[i + 1] as number);
    if (i < end) s += (bytes[i] as number) << 8;
  }
  return fold(s);
}

/**
 * The sum of buffer bytes [from, to) (`from` even) as little-endian words, unfolded. The one's
 * complement sum does not depend on byte order (RFC 1071 section 2), so this, folded and byte
 * swapped, is the network-order sum; reading whole 32-bit words makes it several times faster.
 */
function nativeOrderSum(bytes: Uint8Array, from: number, to: number): number {
  const buffer = bytes.buffer;
  if (buffer !== viewed) {
    viewed = buffer;
    words16 = new Uint16Array(buffer, 0, buffer.byteLength >>> 1);
    words32 = new Uint32Array(buffer, 0, buffer.byteLength >>> 2);
  }
  let s = 0;
  let i = from;
  if ((i & 2) !== 0) {
    s += words16[i >>> 1] as number;
    i += 2;
  }
  const whole = to >>> 2;
  for (let w = i >>> 2; w < whole; w++) s += words32[w] as number;
  i = Math.max(i, whole << 2);
  if (i + 1 < to) {
    s += words16[i >>> 1] as number;
    i += 2;
  }
  if (i < to) s += bytes[i - bytes.byteOffset] as number; // the first byte of a word: its low byte here
  return s;
}

/** Folds a non-negative sum (below 2^53) to 16 bits with end-around carries. */
function fold(sum: number): number {
  let s = sum;
  while (s > 0xffff) s = (s % 65536) + Math.floor(s / 65536);
  return s;
}

function swapBytes(word: number): number {
  return ((word & 0xff) << 8) | (word >>> 8);
}

/** The Internet checksum of bytes [start, end): the complement of `onesSum` (what goes on the wire). */
export function internetChecksum(bytes: Uint8Array, start: number, end: number): number {
  return ~onesSum(bytes, start, end) & 0xffff;
}

/**
 * The checksum after one 16-bit word of the summed data changed from `from` to `to`, without
 * summing again (RFC 1624, equation 3). A result of 0 is ambiguous (data summing to zero needs
 * 0xffff instead): sum again then.
 */
export function adjustChecksum(checksum: number, from: number, to: number): number {
  let s = (~checksum & 0xffff) + (~from & 0xffff) + to;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

/** An IPv4 subnet and the kernel's own address in it, as unsigned 32-bit numbers. */
export interface Subnet {
  readonly self: number;
  readonly network: number;
  readonly broadcast: number;
  readonly prefix: number;
}

/** Parses "10.77.0.1/24" (the kernel side's address and prefix). Throws a RangeError if invalid. */
export function parseSubnet(cidr: string): Subnet {
  const parsed = parseIPv4Cidr(cidr);
  if (parsed === undefined || parsed.prefix < 8 || parsed.prefix > 30) {
    throw new RangeError(
      `invalid address ${JSON.stringify(cidr)}: use an IPv4 address with a prefix of 8 to 30, like 10.77.0.1/24`,
    );
  }
  const { address: self, prefix } = parsed;
  const size = 2 ** (32 - prefix);
  const network = self - (self % size);
  const broadcast = network + size - 1;
  if (self === network || self === broadcast) {
    throw new RangeError(`${cidr} is the network's own or broadcast address, not a host address`);
  }
  return { self, network, broadcast, prefix };
}

/** True when `address` is a host of the subnet other than the kernel's own address. */
export function answersFor(subnet: Subnet, address: number): boolean {
  return address > subnet.network && address < subnet.broadcast && address !== subnet.self;
}

function u16(b: Uint8Array, at: number): number {
  return ((b[at] as number) << 8) | (b[at + 1] as number);
}

function setU16(b: Uint8Array, at: number, v: number): void {
  b[at] = v >>> 8;
  b[at + 1] = v & 0xff;
}

function u32(b: Uint8Array, at: number): number {
  return u16(b, at) * 65536 + u16(b, at + 2);
}

function swap(b: Uint8Array, a: number, c: number, length: number): void {
  for (let i = 0; i < length; i++) {
    const t = b[a + i] as number;
    b[a + i] = b[c + i] as number;
    b[c + i] = t;
  }
}

/**
 * Answers pings (and, in TAP mode, ARP) for every host address of a subnet but the kernel's own.
 * Stateless: one instance serves any number of packets and workers.
 */
export class PingResponder {
  readonly subnet: Subnet;
  readonly mode: "tun" | "tap";

  /** `cidr` is the kernel side's address ("10.77.0.1/24"); `mode` what the device carries. */
  constructor(cidr: string, mode: "tun" | "tap" = "tun") {
    this.subnet = parseSubnet(cidr);
    this.mode = mode;
  }

  /**
   * Looks at one packet (TUN: an IP packet; TAP: an Ethernet frame). For "echo-reply" and
   * "arp-reply" the bytes have been rewritten into the reply, to be written back whole; for any
   * other verdict they are unchanged and get no answer. Never throws, whatever the bytes.
   */
  answer(packet: Uint8Array): Verdict {
    if (this.mode === "tun") return this.#ipv4(packet);
    if (packet.length < ETH_HEADER) return "truncated";
    const type = u16(packet, 12);
    if (type === ETH_ARP) return this.#arp(packet);
    if (type !== ETH_IPV4) return "ignored";
    const verdict = this.#ipv4(packet.subarray(ETH_HEADER));
    if (verdict === "echo-reply") swap(packet, 0, 6, 6); // back to the sender, from its target
    return verdict;
  }

  #ipv4(p: Uint8Array): Verdict {
    if (p.length < 1) return "truncated";
    const version = (p[0] as number) >>> 4;
    if (version === 6) return "ignored"; // the kernel's own IPv6 chatter on the link
    if (version !== 4) return "bad-version";
    if (p.length < IPV4_HEADER) return "truncated";
    const header = ((p[0] as number) & 0x0f) * 4;
    const total = u16(p, 2);
    if (header < IPV4_HEADER || total < header) return "bad-length";
    if (p.length < header) return "truncated";
    if (total > p.length) return "bad-length";
    if (onesSum(p, 0, header) !== 0xffff) return "bad-checksum";
    if ((u16(p, 6) & 0x3fff) !== 0) return "fragment"; // MF set or an offset: no reassembly here
    if (p[9] !== PROTO_ICMP) return "ignored";
    if (!answersFor(this.subnet, u32(p, 16))) return "not-for-us";
    if (total - header < ICMP_HEADER) return "truncated";
    if (onesSum(p, header, total) !== 0xffff) return "bad-checksum";
    if (p[header] !== ICMP_ECHO_REQUEST || p[header + 1] !== 0) return "ignored";
    // the reply: addresses swapped, a fresh TTL, type 0; identifier, sequence and data unchanged
    swap(p, 12, 16, 4);
    p[8] = REPLY_TTL;
    setU16(p, 10, 0);
    setU16(p, 10, internetChecksum(p, 0, header));
    p[header] = ICMP_ECHO_REPLY;
    const icmp = adjustChecksum(u16(p, header + 2), ICMP_ECHO_REQUEST << 8, ICMP_ECHO_REPLY << 8);
    setU16(p, header + 2, 0);
    setU16(p, header + 2, icmp !== 0 ? icmp : internetChecksum(p, header, total));
    return "echo-reply";
  }

  #arp(f: Uint8Array): Verdict {
    const a = ETH_HEADER;
    if (f.length < a + 28) return "truncated";
    // Ethernet / IPv4 addresses, and a request
    if (u16(f, a) !== 1 || u16(f, a + 2) !== ETH_IPV4 || f[a + 4] !== 6 || f[a + 5] !== 4) {
      return "ignored";
    }
    if (u16(f, a + 6) !== 1) return "ignored";
    const target = u32(f, a + 24);
    if (!answersFor(this.subnet, target)) return "not-for-us";
    // reply: the sender becomes the target, and the asked-for address answers with its MAC
    f.copyWithin(a + 18, a + 8, a + 18); // target hardware and protocol address := sender's
    f.copyWithin(0, 6, 12); // Ethernet destination := the requester
    const mac = macFor(target);
    f.set(mac, 6);
    f.set(mac, a + 8);
    f[a + 14] = target >>> 24;
    f[a + 15] = (target >>> 16) & 0xff;
    f[a + 16] = (target >>> 8) & 0xff;
    f[a + 17] = target & 0xff;
    setU16(f, a + 6, 2);
    return "arp-reply";
  }
}

/** The MAC address the TAP responder uses for `address`: 02:00 and the address's four bytes. */
export function macFor(address: number): Uint8Array {
  return Uint8Array.of(
    0x02,
    0x00,
    address >>> 24,
    (address >>> 16) & 0xff,
    (address >>> 8) & 0xff,
    address & 0xff,
  );
}
