/**
 * UDP (RFC 768): the view of a datagram, its checksum over the IPv4 or IPv6 pseudo-header, and
 * a whole UDP-in-IP packet built and read back (what a capture file or a simulated TUN device
 * carries). Addresses are raw bytes (4 or 16).
 */
import type { Checksummer } from "./checksum.ts";
import { type IpPacket, IpProtocol, ipVersion } from "./ip.ts";
import { IPV4_HEADER_LENGTH, Ipv4Packet } from "./ipv4.ts";
import { IPV6_HEADER_LENGTH, Ipv6Packet } from "./ipv6.ts";
import { getU32, Malformed, PacketView, shortOf, uint } from "./view.ts";

/** Bytes of a UDP header: ports, length, checksum. */
export const UDP_HEADER_LENGTH = 8;

/** Largest IP packet (IPv4 total length, or IPv6 header plus payload length). */
const MAX_IP_PACKET = 65535;

/**
 * A view of one UDP datagram: an IP packet's payload, see `Ipv4Packet.payloadAs`. `check()`
 * needs the 8-byte header and a length field from 8 to the view's length; every accessor is
 * safe after it, until `datagramLength` is set. Bytes after the declared length are ignored.
 */
export class UdpPacket extends PacketView {
  /** A view of bytes [start, start + length) of `array`, unchecked: see `PacketView`. */
  constructor(array: Uint8Array, start = 0, length = array.length - start) {
    super(array, start, length); // explicit: an implicit one forwards arguments slowly
  }

  /**
   * See `PacketView.check`. In order: "truncated" under 8 bytes, "bad-length" for a length field
   * under 8 or above the bytes the view holds.
   */
  check(): Malformed<"truncated" | "bad-length"> | undefined {
    const short = shortOf("UDP", this.length, UDP_HEADER_LENGTH, "the header");
    if (short !== undefined) return short;
    const declared = this.datagramLength;
    if (declared < UDP_HEADER_LENGTH) {
      return new Malformed("UDP", "bad-length", `length ${declared} is below 8`);
    }
    if (declared <= this.length) return undefined;
    return new Malformed(
      "UDP",
      "bad-length",
      `the header declares ${declared} bytes, there are ${this.length}`,
    );
  }

  /** The source port, 0 to 0xffff. */
  get sourcePort(): number {
    return this.u16(0);
  }
  set sourcePort(port: number) {
    this.setU16(0, uint("a port", port, 0xffff));
  }

  /** The destination port, 0 to 0xffff. */
  get destinationPort(): number {
    return this.u16(2);
  }
  set destinationPort(port: number) {
    this.setU16(2, uint("a port", port, 0xffff));
  }

  /** The length field: the datagram's bytes, header included. */
  get datagramLength(): number {
    return this.u16(4);
  }
  set datagramLength(length: number) {
    this.setU16(4, uint("a UDP length", length, 0xffff));
  }

  /** The checksum field, 0 to 0xffff (0: none was computed, allowed on IPv4 only). */
  get checksum(): number {
    return this.u16(6);
  }
  set checksum(checksum: number) {
    this.setU16(6, uint("a checksum", checksum, 0xffff));
  }

  /** The payload: a live view of the bytes from the header to the declared length. */
  get payload(): Uint8Array {
    return this.window(UDP_HEADER_LENGTH, this.datagramLength - UDP_HEADER_LENGTH);
  }

  /**
   * True when the checksum verifies over `ip`'s pseudo-header and the datagram's declared
   * length, whatever the field holds (so a field of 0, "none", does not verify: whether to
   * accept it is the caller's, by IP version). A `Checksummer` makes it faster; same result.
   */
  verifyChecksum(ip: IpPacket, summer?: Checksummer): boolean {
    return this.#sum(ip, summer) === 0xffff;
  }

  /**
   * Computes the checksum over `ip`'s pseudo-header and the datagram's declared length and
   * writes it; a computed 0 is written as 0xffff, since 0 means "none" (RFC 768).
   */
  fillChecksum(ip: IpPacket, summer?: Checksummer): void {
    this.setU16(6, 0);
    this.setU16(6, ~this.#sum(ip, summer) & 0xffff || 0xffff);
  }

  #sum(ip: IpPacket, summer: Checksummer | undefined): number {
    const length = this.datagramLength;
    return this.sum(0, length, summer, ip.pseudoHeaderSum(IpProtocol.Udp, length));
  }
}

/** One end of a UDP flow: an IP address (4 or 16 bytes) and a port. */
export interface UdpEndpoint {
  readonly ip: Uint8Array;
  readonly port: number;
}

/** A UDP datagram read from an IP packet: live views of the packet's addresses and payload. */
export interface UdpInIp {
  readonly source: UdpEndpoint;
  readonly destination: UdpEndpoint;
  readonly payload: Uint8Array;
}

/** Why `readUdpPacket` did not find a UDP datagram. */
export type NotUdp =
  | "not IP"
  | "bad length"
  | "bad header checksum"
  | "fragment"
  | "not UDP"
  | "bad UDP checksum";

/** Bytes of the IP header that `buildUdpPacket` writes: IPv4 without options, IPv6 without extensions. */
export function udpIpHeaderLength(version: 4 | 6): number {
  return version === 4 ? IPV4_HEADER_LENGTH : IPV6_HEADER_LENGTH;
}

/**
 * The IP packet that carries a UDP datagram from `source` to `destination` (both IPv4 or both
 * IPv6 addresses), with TTL / hop limit `ttl`, DF set on IPv4, and valid IP and UDP checksums.
 *
 * `size` is the datagram's real size when `payload` holds only its first bytes (a datagram
 * delivered truncated): the headers then declare the real size, the packet holds what there is,
 * and the UDP checksum, which cannot be computed, is 0. Throws a RangeError for addresses of
 * mixed or unknown lengths, or a datagram too large for one IP packet.
 */
export function buildUdpPacket(
  source: UdpEndpoint,
  destination: UdpEndpoint,
  payload: Uint8Array,
  size = payload.length,
  ttl = 64,
): Uint8Array {
  const n = source.ip.length;
  if ((n !== 4 && n !== 16) || destination.ip.length !== n) {
    throw new RangeError(
      `cannot carry a datagram from a ${n}-byte address to a ${destination.ip.length}-byte one`,
    );
  }
  const version = n === 4 ? 4 : 6;
  const header = udpIpHeaderLength(version);
  const udpLength = UDP_HEADER_LENGTH + size;
  if ((version === 4 ? header : 0) + udpLength > MAX_IP_PACKET || size < payload.length)
    throw new RangeError(`a UDP datagram of ${size} bytes does not fit an IPv${version} packet`);
  const packet = new Uint8Array(header + UDP_HEADER_LENGTH + payload.length);
  let ip: IpPacket;
  if (version === 4) {
    const v4 = new Ipv4Packet(packet);
    v4.version = 4;
    v4.headerLength = header;
    v4.totalLength = header + udpLength;
    v4.dontFragment = true;
    v4.ttl = ttl;
    v4.protocol = IpProtocol.Udp;
    v4.source = getU32(source.ip, 0);
    v4.destination = getU32(destination.ip, 0);
    v4.fillChecksum();
    ip = v4;
  } else {
    const v6 = new Ipv6Packet(packet);
    v6.version = 6;
    v6.payloadLength = udpLength;
    v6.nextHeader = IpProtocol.Udp;
    v6.hopLimit = ttl;
    v6.source = source.ip;
    v6.destination = destination.ip;
    ip = v6;
  }
  const udp = new UdpPacket(packet, header);
  udp.sourcePort = source.port;
  udp.destinationPort = destination.port;
  udp.datagramLength = udpLength;
  packet.set(payload, header + UDP_HEADER_LENGTH);
  if (size === payload.length) udp.fillChecksum(ip);
  return packet;
}

/**
 * The UDP datagram in an IPv4 or IPv6 packet, or why there is none: not IP, lengths that
 * disagree with the bytes, a bad IPv4 header checksum, an IPv4 fragment, another protocol (IPv6
 * extension headers included), or a UDP checksum that does not verify (0 means "none" on IPv4
 * and is refused on IPv6). Bytes after the IP packet's declared length are ignored.
 */
export function readUdpPacket(packet: Uint8Array): UdpInIp | NotUdp {
  const version = ipVersion(packet);
  let ip: Ipv4Packet | Ipv6Packet;
  if (version === 4) {
    const v4 = new Ipv4Packet(packet);
    if (v4.check() !== undefined) return "bad length";
    if (!v4.verifyChecksum()) return "bad header checksum";
    if (v4.isFragment) return "fragment";
    if (v4.protocol !== IpProtocol.Udp) return "not UDP";
    ip = v4;
  } else if (version === 6) {
    const v6 = new Ipv6Packet(packet);
    if (v6.check() !== undefined) return "bad length";
    if (v6.nextHeader !== IpProtocol.Udp) return "not UDP";
    ip = v6;
  } else return "not IP";
  const udp = ip.payloadAs(UdpPacket);
  if (udp.check() !== undefined) return "bad length";
  if ((udp.checksum !== 0 || version === 6) && !udp.verifyChecksum(ip)) return "bad UDP checksum";
  return {
    source: { ip: ip.sourceBytes, port: udp.sourcePort },
    destination: { ip: ip.destinationBytes, port: udp.destinationPort },
    payload: udp.payload,
  };
}
