/** The I/O vocabulary: addresses, actions and events. */
export { ADDR_BYTES, SocketAddr } from "./addr.ts";
export type { IoError, NetAction, NetEvent } from "./events.ts";
