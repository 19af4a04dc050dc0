/** The I/O vocabulary: addresses, actions and events, UDP datagrams as IP packets. */
export { ADDR_BYTES, parseIPv4Cidr, SocketAddr } from "./addr.ts";
export type { IoError, NetAction, NetEvent } from "./events.ts";
export { decodeUdpPacket, encodeUdpPacket, type UdpDatagram } from "./udp.ts";
