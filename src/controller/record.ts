/**
 * A worker as the controller keeps it (`WorkerRecord`), and what the controller reports about its
 * workers: their state, their figures (`workerStats`), what a shutdown did.
 */
import type { Backend } from "../backend/backend.ts";
import { pickTcpStats, type TcpStats } from "../backend/tcp.ts";
import type { ErrorInfo } from "../runtime/protocol.ts";
import { createStatsBlock, readStats } from "../runtime/stats.ts";
import { type LedgerRelease, newLedgerOwner } from "../sys/ledger.ts";
import type { WorkerEnd } from "./events.ts";
import { type AddWorkerOptions, moduleName } from "./options.ts";

/**
 * Where a worker is in its life. `stalled`: the watchdog saw no progress (see
 * `ControllerOptions.stallMs`); it becomes `running` (or `stopping`) again if progress resumes.
 */
export type WorkerState = "starting" | "running" | "stalled" | "stopping" | "stopped" | "dead";

/** One worker's figures, as `Controller.stats()` reports them. */
export interface WorkerStats {
  readonly index: number;
  readonly state: WorkerState;
  /** The backend it runs, once started. */
  readonly backend: Backend["kind"] | undefined;
  /** Live tasks. */
  readonly tasks: number;
  /** CPU time the worker thread used (user + system) in the last stats window, in percent. */
  readonly loopUtilisation: number;
  /** Inputs (I/O events, bus and controller messages, spawns) per second, last window. */
  readonly eventsInPerSec: number;
  /** Outputs per second, last window. */
  readonly eventsOutPerSec: number;
  /** Inputs since start (live: current up to the moment a worker died or hung). */
  readonly eventsIn: number;
  /** Outputs since start (live, as `eventsIn`). */
  readonly eventsOut: number;
  /** Fullest bus ring into or out of this worker, 0..1. */
  readonly ringOccupancy: number;
  /** Times the receive buffers ran out. */
  readonly bufferExhaustion: number;
  /** Receive buffers held by sends in flight. */
  readonly buffersOutstanding: number;
  /** Datagrams dropped because the backend's send queue was full. */
  readonly sendDrops: number;
  /**
   * Datagrams and packets the kernel dropped before the worker read them: its UDP sockets'
   * receive-queue overflows, and the `tx_dropped` of the TUN/TAP devices it binds (device-wide:
   * workers bound to queues of one device each report the device's figure).
   */
  readonly kernelDrops: number;
  /**
   * Bus messages the worker could not send: full ring on an unsafe send, a destination's queue at
   * its cap (`busCapped`), or a destination that is gone or stalled.
   */
  readonly busDrops: number;
  /** Safe bus sends refused because their destination's queue was at `maxQueuedBytes`. */
  readonly busCapped: number;
  /** Bytes of safe messages the worker holds queued for slow destinations, in all. */
  readonly busQueuedBytes: number;
  /** The same by destination: index `i` is worker `i`. */
  readonly busQueuedTo: readonly number[];
  /** Bytes of the worker's queued messages for the controller. */
  readonly busQueuedToController: number;
  /** Bytes of messages the controller holds queued for this worker. */
  readonly controllerQueuedBytes: number;
  /** The worker's JS heap, array buffers included, as of its last collection (bytes). */
  readonly heapBytes: number;
  /** How long the worker has shown no progress, while `stalled` (ms); otherwise 0. */
  readonly stalledForMs: number;
  /** Tasks that threw. */
  readonly taskErrors: number;
  /** Events, messages and replies for tasks that had ended (stale addresses), dropped. */
  readonly staleDrops: number;
  /** Answers to task calls that came after the call had failed (timed out), dropped. */
  readonly lateReplies: number;
  /** The backend's TCP counters: connections, bytes, queued bytes, refusals (see `TcpStats`). */
  readonly tcp: TcpStats;
  /** When the worker last wrote these figures (the runtime's clock, ms). */
  readonly updatedAt: number;
  /** How old the figures are (ms): a multiple of `statsMs` means the worker stopped writing. */
  readonly ageMs: number;
  /** Loop iterations since start (an idle worker adds a few per second; live). */
  readonly loops: number;
  /** The most recent error reported by or about this worker. */
  readonly lastError: string | undefined;
  /** How it ended, once it has (undefined for a graceful stop or while it runs). */
  readonly endedBy: WorkerEnd | undefined;
  /** Exit code, once the thread has exited by itself (undefined when it was terminated). */
  readonly exitCode: number | undefined;
  /** What the controller closed and freed for it after it ended (nothing left after a stop). */
  readonly released: LedgerRelease | undefined;
}

/** What `shutdown` did to each worker. */
export interface ShutdownReport {
  /** Workers that finished gracefully. */
  readonly stopped: readonly number[];
  /** Workers terminated because they did not finish before the timeout. */
  readonly terminated: readonly number[];
  /** Workers that had died before or during the shutdown. */
  readonly dead: readonly number[];
}

/** A worker as the controller keeps it, from `addWorker` until its thread has gone. */
export interface WorkerRecord {
  readonly index: number;
  readonly options: AddWorkerOptions;
  readonly thread: Worker;
  readonly stats: SharedArrayBuffer;
  readonly ledgerOwner: number;
  state: WorkerState;
  /** The state to go back to when a stall ends. */
  unstalled: "running" | "stopping";
  /** Set when the controller ends the thread (it then reports exit code 0, which means nothing). */
  terminated: boolean;
  /** The thread's "close" event has come. */
  closed: boolean;
  endedBy: WorkerEnd | undefined;
  released: LedgerRelease | undefined;
  /** Watchdog: the loop count last seen, when it last changed, when the stall began. */
  seenLoops: number;
  progressAt: number;
  backend: Backend["kind"] | undefined;
  stalledAt: number;
  spawnsSent: number;
  taskErrors: number;
  lastError: string | undefined;
  fatal: ErrorInfo | undefined;
  exitCode: number | undefined;
  ready: { resolve: (index: number) => void; reject: (e: Error) => void } | undefined;
  exited: Promise<void>;
}

/**
 * The figures of worker `w`, read from its stats block; `ringOccupancy` and `queuedBytes` are the
 * controller's own occupancy of, and bytes queued on, its ring toward the worker.
 */
export function workerStats(
  w: WorkerRecord,
  now: number,
  controllerSide: { readonly ringOccupancy: number; readonly queuedBytes: number },
): WorkerStats {
  const s = readStats(w.stats);
  const gone = w.state === "dead" || w.state === "stopped";
  return {
    index: w.index,
    state: w.state,
    backend: w.backend,
    tasks: gone ? 0 : s.tasks,
    loopUtilisation: s.loopUtilisation * 100,
    eventsInPerSec: s.eventsInPerSec,
    eventsOutPerSec: s.eventsOutPerSec,
    eventsIn: s.eventsIn,
    eventsOut: s.eventsOut,
    ringOccupancy: Math.max(s.ringOccupancy, controllerSide.ringOccupancy),
    bufferExhaustion: s.bufferExhaustion,
    buffersOutstanding: s.buffersOutstanding,
    sendDrops: s.sendDrops,
    kernelDrops: s.kernelDrops,
    busDrops: s.busDrops,
    busCapped: s.busCapped,
    busQueuedBytes: s.busQueuedBytes,
    busQueuedTo: s.queuedTo.slice(1),
    busQueuedToController: s.queuedTo[0] ?? 0,
    controllerQueuedBytes: controllerSide.queuedBytes,
    heapBytes: s.heapBytes,
    stalledForMs: w.state === "stalled" ? now - w.progressAt : 0,
    taskErrors: w.taskErrors,
    staleDrops: s.staleDrops,
    lateReplies: s.lateReplies,
    tcp: pickTcpStats((field) => s[field]),
    updatedAt: s.updatedAt,
    ageMs: Math.max(0, now - s.updatedAt),
    loops: s.loops,
    lastError: w.lastError,
    endedBy: w.endedBy,
    exitCode: w.exitCode,
    released: w.released,
  };
}

/**
 * The record of worker `index` (a bus of `endpoints` endpoints), its thread started by `launch`
 * with the record's stats block and ledger owner, and the function that settles its `exited`
 * promise.
 */
export function newWorkerRecord(
  index: number,
  options: AddWorkerOptions,
  endpoints: number,
  launch: (shared: { stats: SharedArrayBuffer; ledgerOwner: number }) => Worker,
): { record: WorkerRecord; exited: () => void } {
  let exited!: () => void;
  const stats = createStatsBlock(endpoints);
  const ledgerOwner = newLedgerOwner();
  const record: WorkerRecord = {
    index,
    options,
    thread: launch({ stats, ledgerOwner }),
    stats,
    ledgerOwner,
    state: "starting",
    unstalled: "running",
    terminated: false,
    closed: false,
    endedBy: undefined,
    released: undefined,
    seenLoops: 0,
    progressAt: 0,
    stalledAt: 0,
    backend: undefined,
    spawnsSent: 0,
    taskErrors: 0,
    lastError: undefined,
    fatal: undefined,
    exitCode: undefined,
    ready: undefined,
    exited: new Promise<void>((resolve) => {
      exited = resolve;
    }),
  };
  return { record, exited };
}

/**
 * Notes how worker `w` ended, its thread having closed with `code` (after `uncaught`, if an
 * uncaught error was reported), and returns the error its report carries.
 */
export function recordEnd(
  w: WorkerRecord,
  code: number,
  uncaught: ErrorInfo | undefined,
): ErrorInfo {
  w.endedBy = w.terminated
    ? "terminated"
    : w.fatal !== undefined || uncaught !== undefined
      ? "exception"
      : "exit";
  const module = moduleName(w.options.module);
  return (
    w.fatal ??
    uncaught ??
    (w.state === "starting"
      ? {
          name: "WorkerStartError",
          message: `${module} exited (code ${code}) before starting a worker (does it call defineWorker?)`,
        }
      : { name: "WorkerExit", message: `exited with code ${code}` })
  );
}

/**
 * Resolves with `w.index` once the worker reports it runs, rejects if it ends first; calls
 * `onTimeout` (which should end it) if it is still starting after `timeoutMs`.
 */
export function untilReady(
  w: WorkerRecord,
  timeoutMs: number,
  onTimeout: () => void,
): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => {
      if (w.state === "starting") onTimeout();
    }, timeoutMs);
    w.ready = {
      resolve: (i) => {
        clearTimeout(timer);
        resolve(i);
      },
      reject: (e) => {
        clearTimeout(timer);
        reject(e);
      },
    };
  });
}

/**
 * The running worker with the fewest tasks, counting spawns sent but not yet handled (lowest
 * index on a tie); throws when no worker runs.
 */
export function leastLoaded(workers: readonly WorkerRecord[]): WorkerRecord {
  let best: WorkerRecord | undefined;
  let bestLoad = Number.POSITIVE_INFINITY;
  for (const w of workers) {
    if (w.state !== "running") continue;
    const s = readStats(w.stats);
    const load = s.tasks + (w.spawnsSent - s.spawnsHandled);
    if (load < bestLoad) {
      best = w;
      bestLoad = load;
    }
  }
  if (best === undefined) throw new Error("no running worker");
  return best;
}
