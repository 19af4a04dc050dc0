/** Backends: the io_uring one (primary) and the epoll fallback, with the same events. */
import type { Backend, BackendOptions } from "./backend.ts";
import { EpollBackend } from "./epoll.ts";
import { UringBackend, type UringOptions, UringUnavailableError } from "./uring.ts";

export {
  type Backend,
  type BackendOptions,
  type BackendStats,
  type EventSink,
  MAX_UDP_PAYLOAD,
  MAX_UDP6_PAYLOAD,
  openFileDescriptors,
  recvBufferSizeFor,
  wakeBackend,
} from "./backend.ts";
export { EpollBackend } from "./epoll.ts";
export { TunDevice, type TunDeviceOptions, TunError, type TunMode } from "./tun-device.ts";
export {
  probeUring,
  UringBackend,
  type UringOptions,
  type UringProbe,
  UringUnavailableError,
} from "./uring.ts";

/** Which backend to create: io_uring, epoll, or io_uring with a fallback to epoll. */
export type BackendKind = "auto" | "uring" | "epoll";

/**
 * Creates a backend. "auto" tries io_uring and, if it cannot be used here, logs one line saying
 * why (through `log`, default console.warn) and returns an epoll backend.
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
    log(`bun-sansio: using the epoll backend: ${e.message}`);
    return new EpollBackend(options as BackendOptions);
  }
}
