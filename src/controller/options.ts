/** How to create a `Controller` and how to start each of its workers. */
import type { BackendKind, TcpOptions } from "../backend/index.ts";
import type { Encodable, Structured } from "../bus/codec.ts";
import { type BusLayout, createBusLayout, MAX_ENDPOINTS } from "../bus/layout.ts";
import type { WorkerInit } from "../runtime/protocol.ts";
import { isWorkerDefinition, type WorkerDefinition, type WorkerPlan } from "../worker/host.ts";
import type { ControllerListener } from "./events.ts";

/** Options of a `Controller`. */
export interface ControllerOptions {
  /** Most workers this controller can run (the bus is sized for them). Default: CPU count. */
  maxWorkers?: number;
  /** Bytes of each bus ring (power of two); the largest message is half. Default 256 KiB. */
  ringBytes?: number;
  /**
   * Most bytes of safe messages held for one destination whose ring is full, on the controller
   * and on every worker; past it a send returns "capped" (see `BusEndpointOptions`). Default 4 MiB.
   */
  maxQueuedBytes?: number;
  /**
   * The watchdog: a worker that makes no progress for this long (ms) while it is not asleep is
   * reported `worker-stalled` and routed around. 0 turns the watchdog off. Default 2,000.
   */
  stallMs?: number;
  /** Called with every event, synchronously. */
  onEvent?: ControllerListener;
}

/** How to start one worker. */
export interface AddWorkerOptions<Config = Structured> {
  /**
   * The worker: its definition (the default export of a worker module, imported), or the
   * module's URL or absolute path (it must call `defineWorker`). A definition also works in a
   * binary made by `bun build --compile` with no more than the application's entry point; a URL
   * needs the module to be given to `bun build` as an entry point of its own.
   */
  module: WorkerDefinition<Config> | string | URL;
  /** With a module URL: the export holding the definition, when it defines several. */
  exportName?: string;
  /** Passed to the module's factory (its type: the module's `Config`; checked by the codec). */
  config?: Config & Encodable<Config>;
  /** Tick interval in ms; 0 disables ticks. Default 100. */
  tickMs?: number;
  /** Stats window in ms. Default 1000. */
  statsMs?: number;
  /** I/O backend. Default "auto" (io_uring, else epoll). */
  backend?: BackendKind;
  /** Pin the worker thread to this CPU. */
  cpu?: number;
  /** Receive buffers of the backend (see BackendOptions). */
  recvBuffers?: number;
  /** Bytes per receive buffer (see BackendOptions). */
  recvBufferSize?: number;
  /** TCP send queue marks and cap, stream buffers, send memory (see `TcpOptions`). */
  tcp?: TcpOptions;
  /** How long the worker may take to start before it is terminated. Default 10,000 ms. */
  readyTimeoutMs?: number;
  /**
   * A soft heap limit (MiB, array buffers included): the worker checks its heap every 100 ms and
   * ends itself with a `HeapLimitError` when it is past the limit, so that one runaway worker is
   * reported dead instead of the kernel's OOM killer ending the whole process. Bun cannot bound a
   * Worker's heap (its `resourceLimits` are ignored), and the check runs between inputs: a single
   * handler that allocates without returning is not stopped. Default: no limit.
   */
  maxHeapMb?: number;
  /**
   * Record everything the worker's backend sends and receives (UDP datagrams with IP and UDP
   * headers made up from their addresses, TUN packets as they are) in a pcap file that Wireshark
   * and tcpdump read: `PATH` with the worker's index (`capture.pcap` → `capture.w0.pcap`). The
   * file is complete once the worker has stopped. For debugging: it costs a copy per packet.
   */
  pcap?: string;
  /**
   * Catch payload views kept past their handler (`PayloadGuard`): each received packet's bytes
   * are overwritten with 0xDB once its handler returns, and sending a view of them later fails
   * the task that sent it with a `PayloadKeptError` naming it. For tests and debugging: it costs
   * a copy per packet. Default: on when the environment variable `BUN_SANSIO_CHECK_PAYLOADS` is 1.
   */
  checkPayloads?: boolean;
}

/** The bus layout `options` ask for; throws a RangeError for a `maxWorkers` out of range. */
export function busLayoutFor(options: ControllerOptions): BusLayout {
  const maxWorkers = options.maxWorkers ?? navigator.hardwareConcurrency;
  if (!Number.isInteger(maxWorkers) || maxWorkers < 1 || maxWorkers >= MAX_ENDPOINTS) {
    throw new RangeError(`maxWorkers must be 1 to ${MAX_ENDPOINTS - 1}, got ${maxWorkers}`);
  }
  return createBusLayout({
    endpoints: maxWorkers + 1,
    ...(options.ringBytes === undefined ? {} : { ringBytes: options.ringBytes }),
  });
}

/** Why `options` cannot start a worker, or undefined when they can. */
export function checkWorkerOptions(options: AddWorkerOptions): RangeError | undefined {
  const { tickMs = 100, statsMs = 1000, maxHeapMb = 0 } = options;
  if (tickMs >= 0 && statsMs > 0 && maxHeapMb >= 0) return undefined;
  return new RangeError(`tickMs and maxHeapMb must be >= 0 and statsMs > 0`);
}

/** The init message that starts worker `w` (options checked by `checkWorkerOptions`). */
export function workerInit(
  options: AddWorkerOptions,
  index: number,
  own: { stats: SharedArrayBuffer; ledgerOwner: number },
  shared: { layout: BusLayout; maxQueuedBytes: number; roster: SharedArrayBuffer },
  plan: WorkerPlan | undefined,
): WorkerInit {
  return {
    sansio: "init",
    index,
    moduleUrl: plan !== undefined && "url" in plan ? plan.url : moduleName(options.module),
    exportName:
      plan !== undefined && "url" in plan ? plan.exportName : (options.exportName ?? "default"),
    config: options.config,
    tickMs: options.tickMs ?? 100,
    statsMs: options.statsMs ?? 1000,
    backend: options.backend ?? "auto",
    cpu: options.cpu,
    recvBuffers: options.recvBuffers,
    recvBufferSize: options.recvBufferSize,
    tcp: options.tcp,
    layout: shared.layout,
    maxQueuedBytes: shared.maxQueuedBytes,
    maxHeapBytes: (options.maxHeapMb ?? 0) * 2 ** 20,
    pcap: options.pcap === undefined ? undefined : pcapPath(options.pcap, index),
    checkPayloads: options.checkPayloads ?? process.env.BUN_SANSIO_CHECK_PAYLOADS === "1",
    ledgerOwner: own.ledgerOwner,
    stats: own.stats,
    roster: shared.roster,
    epoch: performance.timeOrigin,
  };
}

/** The pcap file of worker `index` for the `pcap` option `path`: its index before the extension. */
function pcapPath(path: string, index: number): string {
  const dot = path.lastIndexOf(".");
  const slash = path.lastIndexOf("/");
  return dot > slash + 1
    ? `${path.slice(0, dot)}.w${index}${path.slice(dot)}`
    : `${path}.w${index}`;
}

/** How a worker's module is named in messages: its URL, or where its definition was made. */
export function moduleName(module: AddWorkerOptions["module"]): string {
  if (!isWorkerDefinition(module)) return String(module);
  return `${module.file ?? Bun.main} (worker definition #${module.ordinal})`;
}
