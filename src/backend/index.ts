/**
 * Backends: the io_uring one (primary) and the epoll fallback, with the same events; middleware
 * that wraps any backend (the pcap writer).
 */
import type { Backend, BackendOptions } from "./backend.ts";
import { EpollBackend } from "./epoll.ts";
import { UringBackend } from "./uring.ts";
import { type UringOptions, UringUnavailableError } from "./uring-setup.ts";

export {
  type Backend,
  type BackendOptions,
  type BackendStats,
  type EventSink,
  MAX_UDP_PAYLOAD,
  MAX_UDP6_PAYLOAD,
  ResourceLimitError,
  recvBufferSizeFor,
  wakeBackend,
} from "./backend.ts";
export { EpollBackend } from "./epoll.ts";
export { type BackendFactory, BackendMiddleware } from "./middleware.ts";
export {
  PAYLOAD_POISON,
  PayloadGuard,
  PayloadKeptError,
  withPayloadGuard,
} from "./payload-guard.ts";
export { PcapBackend, type PcapOptions, PcapWriter, withPcap } from "./pcap.ts";
export type { TcpOptions, TcpStats } from "./tcp.ts";
export { TunDevice, type TunDeviceOptions, TunError, type TunMode } from "./tun-device.ts";
export { UringBackend } from "./uring.ts";
export {
  probeUring,
  type UringOptions,
  type UringProbe,
  UringUnavailableError,
} from "./uring-setup.ts";

/** Which backend to create: io_uring, epoll, or io_uring with a fallback to epoll. */
export type BackendKind = "auto" | "uring" | "epoll";

let fallbackSaid = false;

/**
 * Creates a backend. "auto" tries io_uring and, if it cannot be used here (`UringUnavailableError`),
 * returns an epoll backend, saying why once per thread through `log` (default console.warn; the
 * runtime's workers report it to the controller, which says it once). Running out of a resource
 * (`ResourceLimitError`: file descriptors) is thrown as it is: epoll would run out too.
 */
export function createBackend(
  kind: BackendKind,
  options: UringOptions,
  log: (line: string) => void = console.warn,
): Backend {
  if (kind === "epoll") return new EpollBackend(options);
  if (kind === "uring") return new UringBackend(options);
  try {
    return new UringBackend(options);
  } catch (e) {
    if (!(e instanceof UringUnavailableError)) throw e;
    if (!fallbackSaid) log(`bun-sansio: ${e.reason}: using the epoll backend`);
    fallbackSaid = true;
    return new EpollBackend(options as BackendOptions);
  }
}
