import type { IoError, NetAction, NetEvent } from "../io/events.ts";
import { native } from "../sys/native.ts";
import { type TcpOptions, type TcpStats, zeroTcpStats } from "./tcp.ts";

/**
 * A backend owns the sockets of one worker thread and moves bytes between them and the tasks.
 *
 * Contract: `act()` queues work and never calls back; `poll()` submits what was queued, waits
 * until an event, a wake-up or the timeout, and hands every event to the sink given at creation.
 * A packet event given to the sink is valid until the sink returns: the backend refills the same
 * event object for its next packet and `data` is a view of a receive buffer (copy what you keep);
 * `from` is a value that stays correct when kept (`AddressBook`). Sending such a view from inside
 * the sink goes out without a copy.
 */
export interface Backend {
  /** Which implementation this is: the kernel's io_uring or epoll, or the simulated network. */
  readonly kind: "uring" | "epoll" | "sim";
  /** Queues an action for `owner` (events about it come back tagged with that owner). */
  act(owner: number, action: NetAction): void;
  /**
   * Submits queued work and delivers events. Waits at most `timeoutMs` (0: do not wait;
   * negative: until something happens). Returns the number of events delivered.
   */
  poll(timeoutMs: number): number;
  /** A handle another thread can pass to `wakeBackend` to end a `poll` early. */
  readonly wakeHandle: number;
  /** Closes every socket, waits (bounded) for operations in flight, and frees the backend. */
  close(): void;
  /** Counters since creation. */
  stats(): BackendStats;
  /**
   * Only on backends whose time is a simulated clock (`SimBackend`) and on middleware over one:
   * the clock time at which `poll` next has something to deliver, or to carry out (the current
   * time when work is waiting, +Infinity when nothing is scheduled). A harness that owns the
   * clock moves it there instead of waiting. The kernel's backends cannot know and leave it out.
   */
  nextDeadline?(): number;
}

/** Receives every event of a backend, tagged with the owner given to `act`. */
export type EventSink = (owner: number, event: NetEvent) => void;

/** Counters of a backend (the TCP ones: `TcpStats`). */
export interface BackendStats extends TcpStats {
  /** Events delivered to the sink. */
  eventsIn: number;
  /** Datagrams handed to the kernel. */
  packetsOut: number;
  /** Datagrams sent straight from a receive buffer (no copy). */
  zeroCopySends: number;
  /** Sends that carried several datagrams to one peer (UDP GSO, io_uring backend). */
  gsoSends: number;
  /** Sockets whose route refused a GSO send: its datagrams went out one by one, and so will later ones. */
  gsoFallbacks: number;
  /** Datagrams that arrived larger than the receive buffer (delivered truncated, flagged). */
  truncated: number;
  /** Times the receive buffers ran out (io_uring ENOBUFS; the receive is re-armed). */
  bufferExhaustion: number;
  /** Sends that failed in the kernel. */
  sendErrors: number;
  /** Sends dropped because the local send queue was full. */
  sendDrops: number;
  /** Sends waiting for a free send buffer or socket space. */
  sendQueued: number;
  /** Receive buffers handed out and not yet returned. */
  buffersOutstanding: number;
  /** Kernel entries (io_uring_enter or epoll_wait calls). */
  submits: number;
  /** Cross-thread wake-ups received. */
  wakeups: number;
  /** Open sockets. */
  sockets: number;
  /**
   * Datagrams or packets the kernel dropped before the backend read them, read when `stats()` is
   * called: the receive-queue overflows (and other receive drops) of every UDP socket, counted
   * per socket from its opening (SO_MEMINFO's SK_MEMINFO_DROPS), and the `tx_dropped` counter of
   * every TUN/TAP device with a bound queue, from the first bind. `tx_dropped` is device-wide: it
   * counts once per device here, but every backend bound to a queue of the same device reports
   * the whole device's drops. Sockets and queues closed since keep their share.
   */
  kernelDrops: number;
  /**
   * Received datagrams whose io_uring header disagreed with what the kernel reported writing
   * (dropped rather than delivered from the wrong place). Always 0 unless something is broken.
   */
  badReceives: number;
}

/** Options shared by both backends. */
export interface BackendOptions {
  /** Where events go. */
  onEvent: EventSink;
  /**
   * io_uring receive memory, in datagrams or packets of up to 2,048 bytes that can wait at once
   * for the tasks or for the zero-copy sends that hold them (a power of two; epoll reads batches of
   * 64 instead). With packed buffers (`UringOptions.packedBuffers`) the memory is
   * `recvBuffers × min(recvBufferSize, 2048)` bytes, cut into blocks of `4 × recvBufferSize` (at
   * least 4) that each hold datagrams back to back. Without, it is `recvBuffers` buffers of
   * `recvBufferSize` bytes, one datagram each. Default 1024, or with one datagram per buffer
   * larger than 2,048 bytes as many as take about 2 MiB (32 of 65,600 bytes, at least 16).
   */
  recvBuffers?: number;
  /**
   * The largest datagram or packet received whole, plus room for headers: default 2048.
   * Datagrams larger than what fits are delivered truncated and flagged; use
   * `recvBufferSizeFor(MAX_UDP_PAYLOAD)` to receive any UDP datagram whole.
   */
  recvBufferSize?: number;
  /** Datagrams that may wait locally for send capacity before new ones are dropped. Default 65,536. */
  sendQueueLimit?: number;
  /** TCP: send queue marks and cap, stream receive buffers, send memory (see `TcpOptions`). */
  tcp?: TcpOptions;
}

/**
 * The `recvBufferSize` with which either backend receives datagrams of up to `maxDatagram` bytes
 * whole (room for the kernel's headers, a multiple of 8, at least 256).
 */
export function recvBufferSizeFor(maxDatagram: number): number {
  return Math.max(256, Math.ceil((maxDatagram + 64) / 8) * 8);
}

/** Largest UDP payload over IPv4. */
export const MAX_UDP_PAYLOAD = 65507;
/** Largest UDP payload over IPv6 (without jumbograms). */
export const MAX_UDP6_PAYLOAD = 65527;

/**
 * The process or the system ran out of something a backend needs (file descriptors, memory): not
 * a missing feature, so `"auto"` does not fall back to epoll for it. `code` is the errno name;
 * the message names the limit and how to raise it.
 */
export class ResourceLimitError extends Error {
  override readonly name = "ResourceLimitError";
  /** @param what what could not be created; @param error the errno behind it */
  constructor(
    what: string,
    readonly error: IoError,
  ) {
    super(`cannot create ${what}: ${error.code}: ${error.message}`);
  }

  /** The errno name, e.g. "EMFILE". */
  get code(): string {
    return this.error.code;
  }
}

/** Writes `value` (a native address or other integer below 2^53) as a little-endian u64. */
export function setU64(view: DataView, at: number, value: number): void {
  view.setUint32(at, value % 2 ** 32, true);
  view.setUint32(at + 4, Math.floor(value / 2 ** 32), true);
}

/** Wakes the backend whose `wakeHandle` is `handle`, from any thread. */
export function wakeBackend(handle: number): void {
  native().sio_wake(handle);
}

/** Base stats object with every counter at zero. */
export function zeroStats(): BackendStats {
  return {
    eventsIn: 0,
    packetsOut: 0,
    zeroCopySends: 0,
    gsoSends: 0,
    gsoFallbacks: 0,
    truncated: 0,
    bufferExhaustion: 0,
    sendErrors: 0,
    sendDrops: 0,
    sendQueued: 0,
    buffersOutstanding: 0,
    submits: 0,
    wakeups: 0,
    sockets: 0,
    kernelDrops: 0,
    badReceives: 0,
    ...zeroTcpStats(),
  };
}
