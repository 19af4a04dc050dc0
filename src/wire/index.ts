/**
 * The wire layer: checked, zero-copy views of packets in a `Uint8Array` (`EthernetFrame`,
 * `ArpPacket`, `Ipv4Packet`, `Ipv6Packet`, `Icmpv4Packet`, `UdpPacket`), each with a `check()`
 * that makes its accessors safe, and parsed forms (`…Repr`) to `parse` from a view and `emit`
 * into one; the Internet checksum; UDP datagrams built into and read from whole IP packets.
 * Pure: no Bun API, no clock, no module-level state (a `Checksummer` keeps only its own cache);
 * imports nothing else from `src/`.
 */
export { ARP_IPV4_LENGTH, ArpOperation, ArpPacket, ArpRepr } from "./arp.ts";
export { adjustChecksum, Checksummer, internetChecksum, onesSum } from "./checksum.ts";
export {
  ETHERNET_HEADER_LENGTH,
  EthernetFrame,
  EthernetRepr,
  EtherType,
  MAC_LENGTH,
} from "./ethernet.ts";
export { ICMPV4_HEADER_LENGTH, Icmpv4Packet, Icmpv4Repr, Icmpv4Type } from "./icmpv4.ts";
export { type IpFault, IpPacket, IpProtocol, ipVersion } from "./ip.ts";
export { IPV4_HEADER_LENGTH, Ipv4Packet, Ipv4Repr } from "./ipv4.ts";
export { IPV6_HEADER_LENGTH, Ipv6Packet } from "./ipv6.ts";
export {
  buildUdpPacket,
  type NotUdp,
  readUdpPacket,
  UDP_HEADER_LENGTH,
  type UdpEndpoint,
  type UdpInIp,
  UdpPacket,
  udpIpHeaderLength,
} from "./udp.ts";
export {
  type Fault,
  type Format,
  Malformed,
  PacketView,
  type ViewClass,
  WireError,
} from "./view.ts";
