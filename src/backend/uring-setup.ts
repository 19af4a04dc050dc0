/**
 * Setting up the io_uring backend: its options, what the kernel offers (`probeUring`), how
 * receive memory is cut, and the errors for a ring that cannot be had.
 */
import { Probe } from "../sys/abi.ts";
import { ioError } from "../sys/errno.ts";
import { native } from "../sys/native.ts";
import { type BackendOptions, ResourceLimitError } from "./backend.ts";

/** io_uring backend options. */
export interface UringOptions extends BackendOptions {
  /** Submission queue entries. Default 1024. */
  entries?: number;
  /** Send buffers for datagrams up to 1,920 bytes. Default 1024. */
  sendBuffers?: number;
  /** Send buffers for larger datagrams and packets (up to 65,535 bytes). Default 16. */
  largeSendBuffers?: number;
  /**
   * Read TUN/TAP queues with one multishot read (kernel 6.7+) rather than one read per packet.
   * Default: when the kernel has it.
   */
  multishotRead?: boolean;
  /**
   * Pack received datagrams and packets back to back into blocks of `4 × recvBufferSize`, each
   * taking only its own size (plus 44 bytes of headers for a datagram), instead of one buffer of
   * `recvBufferSize` each: incrementally consumed buffers that the kernel retires once less than
   * `recvBufferSize` is left, so anything up to that size still lands whole (IOU_PBUF_RING_INC
   * with `min_left`; see `UringProbe.packedBuffers`). Default: when the kernel has it.
   */
  packedBuffers?: boolean;
}

/** Receive memory by default: 1024 buffers of the default 2,048 bytes. */
const RECV_MEMORY = 1024 * 2048;
/** The datagram size packed receive memory is sized for (`BackendOptions.recvBuffers`). */
const ORDINARY_DATAGRAM = 2048;
/** Datagrams of `recvBufferSize` a packed block holds at least. */
const BLOCK_DATAGRAMS = 4;

/**
 * How the io_uring receive memory is cut: `count` buffers of `size` bytes, where a buffer holds
 * one datagram or, packed, a block of them (see `BackendOptions.recvBuffers`).
 */
export function recvLayout(
  recvBuffers: number | undefined,
  recvBufferSize: number,
  packed: boolean,
): { count: number; size: number } {
  if (packed) {
    const size = BLOCK_DATAGRAMS * recvBufferSize;
    const memory = (recvBuffers ?? 1024) * Math.min(recvBufferSize, ORDINARY_DATAGRAM);
    return { count: powerOfTwoAtLeast(Math.max(4, Math.ceil(memory / size))), size };
  }
  const fitting = powerOfTwoAtLeast(Math.ceil(RECV_MEMORY / recvBufferSize));
  return { count: recvBuffers ?? Math.max(16, Math.min(1024, fitting)), size: recvBufferSize };
}

function powerOfTwoAtLeast(n: number): number {
  return 2 ** Math.ceil(Math.log2(n));
}

/** What the io_uring feature probe found (see `probeUring`). */
export interface UringProbe {
  readonly available: boolean;
  /** -errno name when unavailable (ENOSYS: no io_uring; EPERM: disabled by policy/seccomp). */
  readonly error?: string;
  readonly singleIssuer: boolean;
  readonly deferTaskrun: boolean;
  readonly coopTaskrun: boolean;
  readonly multishotRecvmsg: boolean;
  readonly bufferRings: boolean;
  /** IORING_OP_READ_MULTISHOT (kernel 6.7): one read request delivers every TUN/TAP packet. */
  readonly multishotRead: boolean;
  /**
   * Incrementally consumed provided buffers (IOU_PBUF_RING_INC, kernel 6.12) with a minimum size
   * left (`min_left`; the 6.18.44 kernel this was built on has it), which
   * `UringOptions.packedBuffers` needs.
   */
  readonly packedBuffers: boolean;
}

/** Probes what io_uring offers on this kernel (never throws for missing support). */
export function probeUring(): UringProbe {
  const bits = native().sio_uring_probe();
  if (bits < 0) {
    const e = ioError(bits);
    return {
      available: false,
      error: `${e.code}: ${e.message}`,
      singleIssuer: false,
      deferTaskrun: false,
      coopTaskrun: false,
      multishotRecvmsg: false,
      bufferRings: false,
      multishotRead: false,
      packedBuffers: false,
    };
  }
  const has = (bit: number): boolean => (bits & (1 << bit)) !== 0;
  return {
    available: has(Probe.AVAILABLE),
    singleIssuer: has(Probe.SINGLE_ISSUER),
    deferTaskrun: has(Probe.DEFER_TASKRUN),
    coopTaskrun: has(Probe.COOP_TASKRUN),
    multishotRecvmsg: has(Probe.MULTISHOT_RECVMSG),
    bufferRings: has(Probe.BUFFER_RINGS),
    multishotRead: has(Probe.MULTISHOT_READ),
    packedBuffers: has(Probe.PACKED_BUFFERS),
  };
}

/** Whether this kernel has packed buffers (probed once per thread). */
let packedBuffersHere: boolean | undefined;

/** Whether this kernel has packed receive buffers (`UringProbe.packedBuffers`), probed once. */
export function packedBuffersAvailable(): boolean {
  packedBuffersHere ??= probeUring().packedBuffers;
  return packedBuffersHere;
}

/**
 * io_uring cannot be used here (missing, disabled, or not allowed to lock its memory): `"auto"`
 * falls back to epoll for it. `reason` says why; the message adds what to do.
 */
export class UringUnavailableError extends Error {
  override readonly name = "UringUnavailableError";
  /** @param reason why io_uring cannot be used, and how to make it usable */
  constructor(readonly reason: string) {
    super(`${reason}; or use backend: "epoll" (or "auto", which falls back to it by itself)`);
  }
}

/** The error for a ring that could not be set up (`negErrno` from the shim). */
export function setupError(negErrno: number): Error {
  const e = ioError(negErrno);
  switch (e.code) {
    case "EMFILE":
    case "ENFILE":
      return new ResourceLimitError("the io_uring backend", e);
    case "ENOMEM":
      return new UringUnavailableError(
        "io_uring could not lock memory for its rings (ENOMEM): raise the locked-memory limit (ulimit -l, or LimitMEMLOCK=; about 256 KiB per worker) or grant CAP_IPC_LOCK",
      );
    default:
      return new UringUnavailableError(
        `io_uring is not usable here (${e.code}: ${e.message}): the kernel may lack it or have it disabled (sysctl kernel.io_uring_disabled, a container's seccomp profile)`,
      );
  }
}
