import { wakeBackend } from "../backend/backend.ts";
import type { BackendKind } from "../backend/index.ts";
import type { Structured } from "../bus/codec.ts";
import { BusEndpoint, type BusMessage, type SendResult } from "../bus/endpoint.ts";
import { type BusLayout, createBusLayout, MAX_ENDPOINTS } from "../bus/layout.ts";
import { AtomicsDoorbell } from "../ring/doorbell.ts";
import {
  CONTROLLER_ENDPOINT,
  type ErrorInfo,
  endpointOf,
  errorInfo,
  type FromWorker,
  Roster,
  RosterState,
  sendControl,
  type ToWorker,
  type WorkerInit,
} from "../runtime/protocol.ts";
import { createStatsBlock, readStats } from "../runtime/stats.ts";
import { type LedgerRelease, newLedgerOwner, releaseLedger } from "../sys/ledger.ts";
import {
  type ControllerEvent,
  type ControllerListener,
  EventHub,
  type WorkerEnd,
} from "./events.ts";
import { uncaughtError } from "./uncaught.ts";

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
export interface AddWorkerOptions {
  /** The worker module (its URL or absolute path); it must call `defineWorker`. */
  module: string | URL;
  /** The export holding the definition, when the module defines several. Default "default". */
  exportName?: string;
  /** Passed to the module's factory. */
  config?: Structured;
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
}

/**
 * Where a worker is in its life. `stalled`: the watchdog saw no progress (see
 * `ControllerOptions.stallMs`); it becomes `running` (or `stopping`) again if progress resumes.
 */
export type WorkerState = "starting" | "running" | "stalled" | "stopping" | "stopped" | "dead";

/**
 * What `Controller.sendTo` did: a bus `SendResult`, or `stalled` (not sent: the worker is
 * stalled; wait for `worker-recovered`, or replace it).
 */
export type ControllerSendResult = SendResult | "stalled";

/** One worker's figures, as `Controller.stats()` reports them. */
export interface WorkerStats {
  readonly index: number;
  readonly state: WorkerState;
  /** The backend it runs, once started. */
  readonly backend: "uring" | "epoll" | undefined;
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

/** Most messages the controller handles before yielding to the event loop. */
const PUMP_BATCH = 1024;
/** How long a terminated worker may take to exit before shutdown stops waiting for it. */
const TERMINATE_WAIT_MS = 5000;
/** How often the release of a worker whose thread lingers is tried again. */
const LINGER_RETRY_MS = 100;
/** The io_uring fallback has been reported (once per process: every worker falls back alike). */
let fallbackReported = false;

interface Slot {
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
  backend: "uring" | "epoll" | undefined;
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
 * The main thread's side of the runtime: starts workers in Bun Workers, routes messages to them
 * over the bus, places spawned tasks, reports their events and stats, and shuts them down.
 *
 * Messages are delivered by a pump on the main thread's event loop, which sleeps on the bus
 * doorbell while nothing arrives. A worker that dies or a task that throws is reported as an
 * event and in `stats()`; the controller and the other workers keep running. However a worker
 * ends, the controller closes every fd it left open and frees its native memory (the ledger); a
 * worker that stops making progress is reported by the watchdog and routed around.
 */
export class Controller {
  readonly #layout: BusLayout;
  readonly #endpoint: BusEndpoint;
  readonly #doorbell: AtomicsDoorbell;
  readonly #roster: Roster;
  readonly #rosterBlock: SharedArrayBuffer;
  readonly #slots: Slot[] = [];
  readonly #hub = new EventHub();
  readonly #maxQueuedBytes: number;
  readonly #stallMs: number;
  #watchdog: ReturnType<typeof setInterval> | undefined;
  #pumping = false;
  #closed = false;
  #flushQueued = false;
  #shutdown: Promise<ShutdownReport> | undefined;

  /** Creates a controller; no thread starts before `addWorker`. */
  constructor(options: ControllerOptions = {}) {
    const maxWorkers = options.maxWorkers ?? navigator.hardwareConcurrency;
    if (!Number.isInteger(maxWorkers) || maxWorkers < 1 || maxWorkers >= MAX_ENDPOINTS) {
      throw new RangeError(`maxWorkers must be 1 to ${MAX_ENDPOINTS - 1}, got ${maxWorkers}`);
    }
    this.#layout = createBusLayout({
      endpoints: maxWorkers + 1,
      ...(options.ringBytes === undefined ? {} : { ringBytes: options.ringBytes }),
    });
    this.#maxQueuedBytes = options.maxQueuedBytes ?? 4 * 1024 * 1024;
    this.#stallMs = options.stallMs ?? 2000;
    if (!(this.#stallMs >= 0)) throw new RangeError(`stallMs must be >= 0, got ${this.#stallMs}`);
    this.#endpoint = new BusEndpoint(this.#layout, CONTROLLER_ENDPOINT, {
      externalWake: wakeBackend,
      onFault: (fault) =>
        this.#workerError(fault.from - 1, { name: fault.error.name, message: fault.error.message }),
      maxQueuedBytes: this.#maxQueuedBytes,
    });
    this.#doorbell = new AtomicsDoorbell(
      this.#layout.doorbells[CONTROLLER_ENDPOINT] as SharedArrayBuffer,
    );
    this.#rosterBlock = Roster.create(maxWorkers);
    this.#roster = new Roster(this.#rosterBlock);
    if (options.onEvent !== undefined) this.#hub.on(options.onEvent);
  }

  /** Most workers this controller can run. */
  get maxWorkers(): number {
    return this.#layout.endpoints - 1;
  }

  /** Number of workers added so far (whatever their state). */
  get workers(): number {
    return this.#slots.length;
  }

  /**
   * Starts a worker running `options.module`. Resolves with its index once it runs; rejects
   * (and reports a "worker-died" event) if it cannot start: module without `defineWorker`,
   * factory that throws, backend unavailable, invalid CPU.
   */
  addWorker(options: AddWorkerOptions): Promise<number> {
    if (this.#closed || this.#shutdown !== undefined) {
      return Promise.reject(new Error("the controller is shut down"));
    }
    const index = this.#slots.length;
    if (index >= this.maxWorkers) {
      return Promise.reject(
        new RangeError(
          `this controller was created for ${this.maxWorkers} workers (raise maxWorkers)`,
        ),
      );
    }
    const tickMs = options.tickMs ?? 100;
    const statsMs = options.statsMs ?? 1000;
    const maxHeapMb = options.maxHeapMb ?? 0;
    if (!(tickMs >= 0) || !(statsMs > 0) || !(maxHeapMb >= 0)) {
      return Promise.reject(new RangeError(`tickMs and maxHeapMb must be >= 0 and statsMs > 0`));
    }
    const moduleUrl = String(options.module);
    const thread = new Worker(options.module);
    let exited!: () => void;
    const slot: Slot = {
      index,
      options,
      thread,
      stats: createStatsBlock(this.#layout.endpoints),
      ledgerOwner: newLedgerOwner(),
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
    this.#slots.push(slot);
    let uncaught: ErrorInfo | undefined;
    thread.addEventListener("error", (e: ErrorEvent) => {
      uncaught ??= uncaughtError(e.message);
    });
    thread.addEventListener("close", (e: Event) => {
      slot.closed = true;
      this.#pump(); // the worker's last reports are in the ring: read them first
      const code = (e as CloseEvent).code;
      slot.exitCode = slot.terminated ? undefined : code; // terminate() says 0, which means nothing
      if (slot.state === "stopped") {
        void this.#release(slot).then(exited);
        return;
      }
      const starting = slot.state === "starting";
      slot.endedBy = slot.terminated
        ? "terminated"
        : slot.fatal !== undefined || uncaught !== undefined
          ? "exception"
          : "exit";
      const error =
        slot.fatal ??
        uncaught ??
        (starting
          ? {
              name: "WorkerStartError",
              message: `${moduleUrl} exited (code ${code}) before starting a worker (does it call defineWorker?)`,
            }
          : { name: "WorkerExit", message: `exited with code ${code}` });
      this.#stopRouting(slot, "dead", error);
      void this.#release(slot).then((released) => {
        this.#hub.emit({
          kind: "worker-died",
          worker: slot.index,
          error,
          endedBy: slot.endedBy as WorkerEnd,
          exitCode: slot.exitCode,
          released,
        });
        exited();
      });
    });
    const init: WorkerInit = {
      sansio: "init",
      index,
      moduleUrl,
      exportName: options.exportName ?? "default",
      config: options.config,
      tickMs,
      statsMs,
      backend: options.backend ?? "auto",
      cpu: options.cpu,
      recvBuffers: options.recvBuffers,
      recvBufferSize: options.recvBufferSize,
      layout: this.#layout,
      maxQueuedBytes: this.#maxQueuedBytes,
      maxHeapBytes: maxHeapMb * 2 ** 20,
      ledgerOwner: slot.ledgerOwner,
      stats: slot.stats,
      roster: this.#rosterBlock,
      epoch: performance.timeOrigin,
    };
    thread.postMessage(init);
    this.#startPump();
    this.#startWatchdog();
    const readyTimeoutMs = options.readyTimeoutMs ?? 10_000;
    return new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => {
        if (slot.state !== "starting") return;
        this.#terminate(slot, {
          name: "WorkerStartTimeout",
          message: `${moduleUrl} did not start within ${readyTimeoutMs} ms (does it call defineWorker?)`,
        });
      }, readyTimeoutMs);
      slot.ready = {
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
   * Starts a task from `config` on the least-loaded running worker (fewest tasks, counting
   * spawns not yet handled; lowest index on a tie). Returns that worker's index.
   */
  spawn(config: Structured): number {
    const slot = this.#best();
    slot.spawnsSent++;
    this.#control(slot, { op: "spawn", config });
    return slot.index;
  }

  /**
   * Sends `message` to worker `worker`'s inner (an "external" input). Returns `closed` when that
   * worker is gone, `stalled` (not sent) while the watchdog reports it stalled, `capped` (not
   * sent) when `maxQueuedBytes` already wait for it; messages to a worker still starting wait
   * for it. Throws `RecordTooLargeError` for a message larger than the bus carries.
   */
  sendTo(worker: number, message: Structured): ControllerSendResult {
    const slot = this.#slot(worker);
    if (slot.state === "dead" || slot.state === "stopped") return "closed";
    if (slot.state === "stalled") return "stalled";
    const result = this.#endpoint.sendExternal(endpointOf(worker), message, { safe: true });
    this.#scheduleFlush();
    return result;
  }

  /**
   * Ends worker `worker` now (for a stalled worker, say): its thread is terminated, it is
   * reported `worker-died` with `endedBy: "terminated"` and `error.message` = `reason`, and every
   * fd it held is closed. Resolves once that is done; at once for a worker already gone.
   */
  terminate(worker: number, reason = "terminated by the application"): Promise<void> {
    const slot = this.#slot(worker);
    if (slot.state !== "stopped" && slot.state !== "dead") {
      this.#terminate(slot, { name: "WorkerTerminated", message: reason });
    }
    return slot.exited;
  }

  /**
   * Replaces worker `worker` (a stalled one, say): terminates it if it still runs, then starts a
   * new worker with the same options in a free slot. Resolves with the new worker's index. Needs
   * a free slot: create the controller with `maxWorkers` above the workers you run.
   */
  async replace(worker: number, reason = "replaced by the application"): Promise<number> {
    const slot = this.#slot(worker);
    await this.terminate(worker, reason);
    return this.addWorker(slot.options);
  }

  /**
   * Sends `message` to the least-loaded running worker; returns which worker and what the send
   * did (see `sendTo`: `capped` means it was not sent).
   */
  sendToBest(message: Structured): { worker: number; result: ControllerSendResult } {
    const slot = this.#best();
    return { worker: slot.index, result: this.sendTo(slot.index, message) };
  }

  /** Adds an event callback; returns a function that removes it. */
  on(listener: ControllerListener): () => void {
    return this.#hub.on(listener);
  }

  /** Events from now on, until the controller has shut down. */
  events(): AsyncIterableIterator<ControllerEvent> {
    return this.#hub.iterate();
  }

  /** Same as `events()`: `for await (const event of controller)`. */
  [Symbol.asyncIterator](): AsyncIterableIterator<ControllerEvent> {
    return this.#hub.iterate();
  }

  /** Figures of every worker added so far, by index. */
  stats(): WorkerStats[] {
    const now = performance.now();
    return this.#slots.map((slot) => {
      const s = readStats(slot.stats);
      const gone = slot.state === "dead" || slot.state === "stopped";
      const endpoint = endpointOf(slot.index);
      return {
        index: slot.index,
        state: slot.state,
        backend: slot.backend,
        tasks: gone ? 0 : s.tasks,
        loopUtilisation: s.loopUtilisation * 100,
        eventsInPerSec: s.eventsInPerSec,
        eventsOutPerSec: s.eventsOutPerSec,
        eventsIn: s.eventsIn,
        eventsOut: s.eventsOut,
        ringOccupancy: Math.max(s.ringOccupancy, this.#endpoint.occupancy(endpointOf(slot.index))),
        bufferExhaustion: s.bufferExhaustion,
        buffersOutstanding: s.buffersOutstanding,
        sendDrops: s.sendDrops,
        kernelDrops: s.kernelDrops,
        busDrops: s.busDrops,
        busCapped: s.busCapped,
        busQueuedBytes: s.busQueuedBytes,
        busQueuedTo: s.queuedTo.slice(1),
        busQueuedToController: s.queuedTo[CONTROLLER_ENDPOINT] ?? 0,
        controllerQueuedBytes: this.#endpoint.queuedBytes(endpoint),
        heapBytes: s.heapBytes,
        stalledForMs: slot.state === "stalled" ? now - slot.progressAt : 0,
        taskErrors: slot.taskErrors,
        loops: s.loops,
        lastError: slot.lastError,
        endedBy: slot.endedBy,
        exitCode: slot.exitCode,
        released: slot.released,
      };
    });
  }

  /**
   * Graceful shutdown: every worker's inner gets `onShutdown` and runs until it is empty. Workers
   * still running after `timeoutMs` (default 5,000) are terminated. Resolves once every thread
   * has exited; calling it again returns the same promise.
   */
  shutdown(options: { timeoutMs?: number } = {}): Promise<ShutdownReport> {
    this.#shutdown ??= this.#runShutdown(options.timeoutMs ?? 5000);
    return this.#shutdown;
  }

  async #runShutdown(timeoutMs: number): Promise<ShutdownReport> {
    const dead = this.#slots.filter((s) => s.state === "dead").map((s) => s.index);
    for (const slot of this.#slots) {
      if (slot.state === "starting" || slot.state === "running" || slot.state === "stalled") {
        if (slot.state === "running") slot.state = "stopping";
        slot.unstalled = "stopping";
        this.#control(slot, { op: "shutdown" });
      }
    }
    this.#endpoint.flush();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), timeoutMs);
    });
    const all = Promise.all(this.#slots.map((s) => s.exited));
    const outcome = await Promise.race([all, timedOut]);
    clearTimeout(timer);
    const terminated: number[] = [];
    if (outcome === "timeout") {
      for (const slot of this.#slots) {
        if (slot.closed) continue;
        if (slot.state !== "stopped" && slot.state !== "dead") terminated.push(slot.index);
        this.#terminate(slot, {
          name: "ShutdownTimeout",
          message: `terminated: not empty ${timeoutMs} ms after shutdown began`,
        });
      }
      // a thread that never exits (stuck in a system call that ignores signals) must not hold
      // the shutdown forever
      await Promise.race([all, Bun.sleep(TERMINATE_WAIT_MS)]);
    }
    this.#closed = true;
    clearInterval(this.#watchdog);
    this.#doorbell.wake();
    this.#hub.close();
    const stopped = this.#slots.filter((s) => s.state === "stopped").map((s) => s.index);
    const diedLater = this.#slots
      .filter((s) => s.state === "dead" && !dead.includes(s.index) && !terminated.includes(s.index))
      .map((s) => s.index);
    return { stopped, terminated, dead: [...dead, ...diedLater] };
  }

  #slot(worker: number): Slot {
    const slot = this.#slots[worker];
    if (slot === undefined) {
      throw new RangeError(`no worker ${worker} (workers are 0..${this.#slots.length - 1})`);
    }
    return slot;
  }

  /** Ends a worker's thread from here; its report carries `error` and no exit code. */
  #terminate(slot: Slot, error: ErrorInfo): void {
    if (slot.terminated) return;
    slot.terminated = true;
    slot.fatal ??= error;
    slot.thread.terminate();
  }

  /**
   * After a worker's thread has ended: closes what it left open and frees its native memory
   * (nothing, after a graceful stop), and keeps the figures for its stats.
   */
  async #release(slot: Slot): Promise<LedgerRelease> {
    let released: LedgerRelease;
    try {
      released = await releaseLedger(slot.ledgerOwner);
    } catch (e) {
      // never leave the worker's end (and a shutdown waiting for it) hanging on the cleanup
      this.#workerError(slot.index, errorInfo(e));
      released = { fds: 0, bytes: 0, threadGone: false, socketsLingering: 0 };
    }
    slot.released = released;
    if (!released.threadGone) {
      this.#workerError(slot.index, {
        name: "WorkerThreadLingers",
        message: `the thread had not gone 2 s after the worker ended: its fds were closed; its io_uring instances (${released.bytes} bytes, their ring fds and the sockets their requests hold) are released once it has gone`,
      });
      this.#releaseLater(slot);
    } else if (slot.state === "stopped" && released.fds > 0) {
      this.#workerError(slot.index, {
        name: "WorkerLeak",
        message: `the worker stopped with ${released.fds} fds still open (its inner did not close them): the controller closed them`,
      });
    }
    return released;
  }

  /** Retries the release of a worker whose thread outlived it, until the thread has gone. */
  #releaseLater(slot: Slot): void {
    const timer = setInterval(() => {
      void releaseLedger(slot.ledgerOwner, 0).then((later) => {
        if (!later.threadGone) return;
        clearInterval(timer);
        const before = slot.released as LedgerRelease;
        slot.released = {
          fds: before.fds + later.fds,
          bytes: later.bytes,
          threadGone: true,
          socketsLingering: later.socketsLingering,
        };
      });
    }, LINGER_RETRY_MS);
    timer.unref();
  }

  #startWatchdog(): void {
    if (this.#watchdog !== undefined || this.#stallMs === 0) return;
    const every = Math.min(250, Math.max(10, this.#stallMs / 4));
    this.#watchdog = setInterval(() => this.#watch(), every);
    this.#watchdog.unref();
  }

  /**
   * The watchdog's round: a worker's loop count must change, unless it is asleep until a known
   * time (a worker always wakes for its next tick or stats window). No progress for `stallMs`
   * past that is a stall; progress again is a recovery.
   */
  #watch(): void {
    const now = performance.now();
    for (const slot of this.#slots) {
      const watched =
        slot.state === "running" || slot.state === "stopping" || slot.state === "stalled";
      if (!watched) continue;
      const s = readStats(slot.stats);
      if (s.loops !== slot.seenLoops) {
        slot.seenLoops = s.loops;
        slot.progressAt = now;
        if (slot.state === "stalled") this.#recovered(slot, now);
        continue;
      }
      const due = Math.max(slot.progressAt, s.parkedUntil);
      if (slot.state !== "stalled" && now - due > this.#stallMs) this.#stalled(slot, now);
    }
  }

  #stalled(slot: Slot, now: number): void {
    slot.unstalled = slot.state === "stopping" ? "stopping" : "running";
    slot.state = "stalled";
    slot.stalledAt = slot.progressAt;
    const stalledForMs = Math.round(now - slot.progressAt);
    slot.lastError = `WorkerStalled: no progress for ${stalledForMs} ms`;
    this.#roster.set(slot.index, RosterState.Stalled);
    this.#hub.emit({ kind: "worker-stalled", worker: slot.index, stalledForMs });
  }

  #recovered(slot: Slot, now: number): void {
    slot.state = slot.unstalled;
    if (slot.state === "running") this.#roster.set(slot.index, RosterState.Running);
    const stalledForMs = Math.round(now - slot.stalledAt);
    this.#hub.emit({ kind: "worker-recovered", worker: slot.index, stalledForMs });
  }

  #best(): Slot {
    let best: Slot | undefined;
    let bestLoad = Number.POSITIVE_INFINITY;
    for (const slot of this.#slots) {
      if (slot.state !== "running") continue;
      const s = readStats(slot.stats);
      const load = s.tasks + (slot.spawnsSent - s.spawnsHandled);
      if (load < bestLoad) {
        best = slot;
        bestLoad = load;
      }
    }
    if (best === undefined) throw new Error("no running worker");
    return best;
  }

  #control(slot: Slot, message: ToWorker): void {
    sendControl(this.#endpoint, endpointOf(slot.index), message);
    this.#scheduleFlush();
  }

  #scheduleFlush(): void {
    if (this.#flushQueued) return;
    this.#flushQueued = true;
    queueMicrotask(() => {
      this.#flushQueued = false;
      this.#endpoint.flush();
    });
  }

  #startPump(): void {
    if (this.#pumping) return;
    this.#pumping = true;
    void (async () => {
      while (!this.#closed) {
        // a busy bus must not starve the event loop: yield to it after every batch
        if (this.#pump() === PUMP_BATCH) await new Promise((resolve) => setImmediate(resolve));
        else await this.#endpoint.parkAsync(1000);
      }
    })();
  }

  /** Delivers what arrived and flushes what is queued; returns the number delivered. */
  #pump(): number {
    const n = this.#endpoint.poll(this.#onMessage, PUMP_BATCH);
    this.#endpoint.flush();
    return n;
  }

  readonly #onMessage = (m: BusMessage): void => {
    const slot = this.#slots[m.from - 1];
    if (slot === undefined) return;
    if (m.kind === "external") {
      const data = m.raw ? (m.data as Uint8Array).slice() : m.data;
      this.#hub.emit({ kind: "message", worker: slot.index, data });
      return;
    }
    if (m.kind !== "direct" || m.raw) return;
    const message = m.data as FromWorker;
    switch (message.op) {
      case "ready":
        slot.backend = message.backend;
        slot.progressAt = performance.now();
        if (slot.state === "starting") slot.state = "running";
        this.#roster.set(slot.index, RosterState.Running);
        slot.ready?.resolve(slot.index);
        slot.ready = undefined;
        return;
      case "spawn":
        if (this.#shutdown === undefined) this.#spawnFor(slot, message.config);
        return;
      case "task-error":
        slot.taskErrors++;
        slot.lastError = `task ${message.task}: ${message.error.name}: ${message.error.message}`;
        this.#hub.emit({
          kind: "task-error",
          worker: slot.index,
          task: message.task,
          error: message.error,
        });
        return;
      case "error":
        if (message.error.name === "BackendFallback") {
          // every worker falls back for the same reason: say it once per process
          if (fallbackReported) return;
          fallbackReported = true;
        }
        this.#workerError(slot.index, message.error);
        return;
      case "fatal":
        slot.fatal = message.error;
        slot.lastError = `${message.error.name}: ${message.error.message}`;
        return;
      case "stopped":
        this.#stopRouting(slot, "stopped", undefined);
        this.#hub.emit({ kind: "worker-stopped", worker: slot.index });
        return;
    }
  };

  #spawnFor(from: Slot, config: Structured): void {
    try {
      this.spawn(config);
    } catch (e) {
      this.#workerError(from.index, {
        name: "SpawnError",
        message: `spawn request not placed: ${e instanceof Error ? e.message : String(e)}`,
      });
    }
  }

  #workerError(index: number, error: ErrorInfo): void {
    const slot = this.#slots[index];
    if (slot === undefined) return;
    slot.lastError = `${error.name}: ${error.message}`;
    this.#hub.emit({ kind: "worker-error", worker: index, error });
  }

  /**
   * A worker stopped or died: no more traffic to it (the roster, the controller's queue, the other
   * workers), and a start that was waiting for it fails with `error`.
   */
  #stopRouting(slot: Slot, state: "stopped" | "dead", error: ErrorInfo | undefined): void {
    slot.state = state;
    if (error !== undefined) {
      slot.lastError = `${error.name}: ${error.message}`;
      const ready = slot.ready;
      slot.ready = undefined;
      ready?.reject(
        Object.assign(new Error(`worker ${slot.index}: ${error.message}`), { cause: error }),
      );
    }
    this.#roster.set(slot.index, RosterState.Gone);
    // its eventfd is about to be closed and its number reused: nobody may ring it any more
    const bell = new AtomicsDoorbell(
      this.#layout.doorbells[endpointOf(slot.index)] as SharedArrayBuffer,
    );
    bell.setExternalHandle(undefined);
    bell.cancel();
    this.#endpoint.closePeer(endpointOf(slot.index));
    for (const other of this.#slots) {
      const alive =
        other.state === "running" || other.state === "stopping" || other.state === "stalled";
      if (other !== slot && alive) {
        this.#control(other, { op: "peer-down", worker: slot.index });
      }
    }
  }
}
