/**
 * UDP datagrams as IP packets: building the IPv4 or IPv6 and UDP headers around a payload (what
 * a capture file or a simulated TUN device needs), and reading them back. Plain functions over
 * bytes, no state. (A fuller wire layer of packet views is planned; these two functions are the
 * part the pcap writer and the simulator share.)
 */
import { SocketAddr } from "./addr.ts";

/** Bytes of a UDP header. */
export const UDP_HEADER = 8;
/** Largest IP packet (IPv4 total length, or IPv6 header plus payload length). */
const MAX_IP_PACKET = 65535;
const PROTO_UDP = 17;

/** Bytes of the IP header that `encodeUdpPacket` writes: IPv4 without options, IPv6 without extensions. */
export function ipHeaderBytes(family: 4 | 6): number {
  return family === 4 ? 20 : 40;
}

/**
 * The IP packet that carries a UDP datagram from `from` to `to` (both IPv4 or both IPv6), with
 * TTL / hop limit `ttl`, DF set on IPv4, and valid IP and UDP checksums.
 *
 * `size` is the datagram's real size when `payload` holds only its first bytes (a datagram
 * delivered truncated): the headers then declare the real size, the packet holds what there is,
 * and the UDP checksum, which cannot be computed, is 0. Throws a RangeError for mixed families
 * or a datagram too large for one IP packet.
 */
export function encodeUdpPacket(
  from: SocketAddr,
  to: SocketAddr,
  payload: Uint8Array,
  size = payload.length,
  ttl = 64,
): Uint8Array {
  const family = from.family;
  if (to.family !== family) throw new RangeError(`cannot carry ${from} to ${to} in one packet`);
  const header = ipHeaderBytes(family);
  const udpLength = UDP_HEADER + size;
  if ((family === 4 ? header : 0) + udpLength > MAX_IP_PACKET || size < payload.length)
    throw new RangeError(`a UDP datagram of ${size} bytes does not fit an IPv${family} packet`);
  const packet = new Uint8Array(header + UDP_HEADER + payload.length);
  const view = new DataView(packet.buffer);
  if (family === 4) {
    packet[0] = 0x45;
    view.setUint16(2, header + udpLength);
    view.setUint16(6, 0x4000); // don't fragment
    packet[8] = ttl;
    packet[9] = PROTO_UDP;
    packet.set(from.ip, 12);
    packet.set(to.ip, 16);
    view.setUint16(10, checksum(sum16(packet, 0, header, 0)));
  } else {
    packet[0] = 0x60;
    view.setUint16(4, udpLength);
    packet[6] = PROTO_UDP;
    packet[7] = ttl;
    packet.set(from.ip, 8);
    packet.set(to.ip, 24);
  }
  view.setUint16(header, from.port);
  view.setUint16(header + 2, to.port);
  view.setUint16(header + 4, udpLength);
  packet.set(payload, header + UDP_HEADER);
  // a computed 0 goes on the wire as 0xffff: 0 means "no checksum"
  if (size === payload.length)
    view.setUint16(header + 6, udpChecksum(packet, header, udpLength) || 0xffff);
  return packet;
}

/** A UDP datagram read from an IP packet: addresses copied, `payload` a view of the packet. */
export interface UdpDatagram {
  readonly from: SocketAddr;
  readonly to: SocketAddr;
  readonly payload: Uint8Array;
}

/** Why `decodeUdpPacket` did not find a UDP datagram. */
export type NotUdp =
  | "not IP"
  | "bad length"
  | "bad header checksum"
  | "fragment"
  | "not UDP"
  | "bad UDP checksum";

/**
 * The UDP datagram in an IPv4 or IPv6 packet, or why there is none: not IP, lengths that
 * disagree with the bytes, a bad IPv4 header checksum, an IPv4 fragment, another protocol (IPv6
 * extension headers included), or a UDP checksum that does not verify (0 means "none" on IPv4
 * and is refused on IPv6). Bytes after the IP packet's declared length are ignored.
 */
export function decodeUdpPacket(packet: Uint8Array): UdpDatagram | NotUdp {
  if (packet.length < 1) return "not IP";
  const version = (packet[0] as number) >>> 4;
  if (version !== 4 && version !== 6) return "not IP";
  const view = new DataView(packet.buffer, packet.byteOffset, packet.byteLength);
  let header = 40;
  let total = 0;
  if (version === 4) {
    header = ((packet[0] as number) & 15) * 4;
    if (packet.length < 20 || header < 20) return "bad length";
    total = view.getUint16(2);
    if (total > packet.length || total < header) return "bad length";
    if (checksum(sum16(packet, 0, header, 0)) !== 0) return "bad header checksum";
    if ((view.getUint16(6) & 0x3fff) !== 0) return "fragment";
    if (packet[9] !== PROTO_UDP) return "not UDP";
  } else {
    if (packet.length < 40) return "bad length";
    total = 40 + view.getUint16(4);
    if (total > packet.length) return "bad length";
    if (packet[6] !== PROTO_UDP) return "not UDP";
  }
  const udpLength = total - header >= UDP_HEADER ? view.getUint16(header + 4) : 0;
  if (udpLength < UDP_HEADER || udpLength > total - header) return "bad length";
  const sent = view.getUint16(header + 6);
  if ((sent !== 0 || version === 6) && udpChecksum(packet, header, udpLength) !== 0)
    return "bad UDP checksum";
  const ip = (at: number) => packet.subarray(at, at + (version === 4 ? 4 : 16));
  return {
    from: SocketAddr.fromIp(ip(version === 4 ? 12 : 8), view.getUint16(header)),
    to: SocketAddr.fromIp(ip(version === 4 ? 16 : 24), view.getUint16(header + 2)),
    payload: packet.subarray(header + UDP_HEADER, header + udpLength),
  };
}

/**
 * The ones' complement checksum of the UDP segment at `header`, over the pseudo-header
 * (addresses, protocol, length) and the segment with its checksum field as it is: the value to
 * write into a zeroed field, or 0 when a filled-in field verifies.
 */
function udpChecksum(packet: Uint8Array, header: number, udpLength: number): number {
  const [start, end] = (packet[0] as number) >>> 4 === 4 ? [12, 20] : [8, 40];
  const pseudo = sum16(packet, start, end, PROTO_UDP + udpLength);
  return checksum(sum16(packet, header, header + udpLength, pseudo));
}

/** Adds the big-endian 16-bit words of bytes [start, end) to `sum` (an odd last byte is padded). */
function sum16(bytes: Uint8Array, start: number, end: number, sum: number): number {
  let s = sum;
  let i = start;
  for (; i + 1 < end; i += 2) s += ((bytes[i] as number) << 8) | (bytes[i + 1] as number);
  if (i < end) s += (bytes[i] as number) << 8;
  return s;
}

/** The ones' complement of a sum folded to 16 bits: the Internet checksum. */
function checksum(sum: number): number {
  let s = sum;
  while (s > 0xffff) s = (s % 65536) + Math.floor(s / 65536);
  return ~s & 0xffff;
}
