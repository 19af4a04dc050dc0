/** The I/O vocabulary: addresses, actions and events. */
export { ADDR_BYTES, parseIPv4Cidr, SocketAddr } from "./addr.ts";
export type { IoError, NetAction, NetEvent } from "./events.ts";
