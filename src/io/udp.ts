/**
 * UDP datagrams as IP packets between `SocketAddr`s: the wire layer's `buildUdpPacket` and
 * `readUdpPacket` (which work with raw address bytes), with the addresses as `SocketAddr`.
 */
import { buildUdpPacket, type NotUdp, readUdpPacket } from "../wire/index.ts";
import { SocketAddr } from "./addr.ts";

/**
 * The IP packet that carries a UDP datagram from `from` to `to`: see `buildUdpPacket` (`size`,
 * the real size of a datagram of which `payload` holds the first bytes; `ttl`). Throws a
 * RangeError for mixed families or a datagram too large for one IP packet.
 */
export function encodeUdpPacket(
  from: SocketAddr,
  to: SocketAddr,
  ...datagram: [payload: Uint8Array, size?: number, ttl?: number]
): Uint8Array {
  if (to.family !== from.family)
    throw new RangeError(`cannot carry ${from} to ${to} in one packet`);
  return buildUdpPacket(from, to, ...datagram);
}

/** A UDP datagram read from an IP packet: addresses copied, `payload` a view of the packet. */
export interface UdpDatagram {
  readonly from: SocketAddr;
  readonly to: SocketAddr;
  readonly payload: Uint8Array;
}

/** The UDP datagram in an IPv4 or IPv6 packet, or why there is none: see `readUdpPacket`. */
export function decodeUdpPacket(packet: Uint8Array): UdpDatagram | NotUdp {
  const d = readUdpPacket(packet);
  if (typeof d === "string") return d;
  return {
    from: SocketAddr.fromIp(d.source.ip, d.source.port),
    to: SocketAddr.fromIp(d.destination.ip, d.destination.port),
    payload: d.payload,
  };
}
