import { wakeBackend } from "../backend/backend.ts";
import type { BackendKind } from "../backend/index.ts";
import { BusEndpoint, type BusMessage, type SendResult } from "../bus/endpoint.ts";
import { type BusLayout, createBusLayout, MAX_ENDPOINTS } from "../bus/layout.ts";
import type { Structured } from "../ring/codec.ts";
import { AtomicsDoorbell } from "../ring/doorbell.ts";
import {
  CONTROLLER_ENDPOINT,
  type ErrorInfo,
  endpointOf,
  type FromWorker,
  Roster,
  RosterState,
  sendControl,
  type ToWorker,
  type WorkerInit,
} from "../worker/protocol.ts";
import { createStatsBlock, readStats } from "../worker/stats.ts";
import { type ControllerEvent, type ControllerListener, EventHub } from "./events.ts";

/** Options of a `Controller`. */
export interface ControllerOptions {
  /** Most workers this controller can run (the bus is sized for them). Default: CPU count. */
  maxWorkers?: number;
  /** Bytes of each bus ring (power of two); the largest message is half. Default 256 KiB. */
  ringBytes?: number;
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
}

/** Where a worker is in its life. */
export type WorkerState = "starting" | "running" | "stopping" | "stopped" | "dead";

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
  /** Inputs since start. */
  readonly eventsIn: number;
  /** Outputs since start. */
  readonly eventsOut: number;
  /** Fullest bus ring into or out of this worker, 0..1. */
  readonly ringOccupancy: number;
  /** Times the receive buffers ran out. */
  readonly bufferExhaustion: number;
  /** Receive buffers held by sends in flight. */
  readonly buffersOutstanding: number;
  /** Datagrams dropped because the backend's send queue was full. */
  readonly sendDrops: number;
  /** Bus messages dropped (full ring on an unsafe send, or a destination that is gone). */
  readonly busDrops: number;
  /** Tasks that threw. */
  readonly taskErrors: number;
  /** Loop iterations since start (an idle worker adds a few per second). */
  readonly loops: number;
  /** The most recent error reported by or about this worker. */
  readonly lastError: string | undefined;
  /** Exit code, once the thread has exited. */
  readonly exitCode: number | undefined;
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

interface Slot {
  readonly index: number;
  readonly thread: Worker;
  readonly stats: SharedArrayBuffer;
  state: WorkerState;
  backend: "uring" | "epoll" | undefined;
  wakeHandle: number;
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
 * event and in `stats()`; the controller and the other workers keep running.
 */
export class Controller {
  readonly #layout: BusLayout;
  readonly #endpoint: BusEndpoint;
  readonly #doorbell: AtomicsDoorbell;
  readonly #roster: Roster;
  readonly #rosterBlock: SharedArrayBuffer;
  readonly #slots: Slot[] = [];
  readonly #hub = new EventHub();
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
    this.#endpoint = new BusEndpoint(this.#layout, CONTROLLER_ENDPOINT, {
      externalWake: wakeBackend,
      onFault: (fault) =>
        this.#workerError(fault.from - 1, { name: fault.error.name, message: fault.error.message }),
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
    if (!(tickMs >= 0) || !(statsMs > 0)) {
      return Promise.reject(new RangeError(`tickMs must be >= 0 and statsMs > 0`));
    }
    const moduleUrl = String(options.module);
    const thread = new Worker(options.module);
    let exited!: () => void;
    const slot: Slot = {
      index,
      thread,
      stats: createStatsBlock(),
      state: "starting",
      backend: undefined,
      wakeHandle: -1,
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
      uncaught = { name: "Error", message: e.message };
    });
    thread.addEventListener("close", (e: Event) => {
      this.#pump(); // the worker's last reports are in the ring: read them first
      slot.exitCode = (e as CloseEvent).code;
      if (slot.state !== "stopped") {
        const error =
          slot.fatal ??
          uncaught ??
          (slot.state === "starting"
            ? {
                name: "WorkerStartError",
                message: `${moduleUrl} exited (code ${slot.exitCode}) before starting a worker (does it call defineWorker?)`,
              }
            : { name: "WorkerExit", message: `exited with code ${slot.exitCode}` });
        this.#died(slot, error);
      }
      exited();
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
      stats: slot.stats,
      roster: this.#rosterBlock,
      epoch: performance.timeOrigin,
    };
    thread.postMessage(init);
    this.#startPump();
    const readyTimeoutMs = options.readyTimeoutMs ?? 10_000;
    return new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => {
        if (slot.state !== "starting") return;
        slot.fatal = {
          name: "WorkerStartTimeout",
          message: `${moduleUrl} did not start within ${readyTimeoutMs} ms (does it call defineWorker?)`,
        };
        thread.terminate();
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
   * worker is gone; messages to a worker still starting wait for it.
   */
  sendTo(worker: number, message: Structured): SendResult {
    const slot = this.#slots[worker];
    if (slot === undefined) {
      throw new RangeError(`no worker ${worker} (workers are 0..${this.#slots.length - 1})`);
    }
    if (slot.state === "dead" || slot.state === "stopped") return "closed";
    const result = this.#endpoint.sendExternal(endpointOf(worker), message, { safe: true });
    this.#scheduleFlush();
    return result;
  }

  /** Sends `message` to the least-loaded running worker; returns its index. */
  sendToBest(message: Structured): number {
    const slot = this.#best();
    this.sendTo(slot.index, message);
    return slot.index;
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
    return this.#slots.map((slot) => {
      const s = readStats(slot.stats);
      const gone = slot.state === "dead" || slot.state === "stopped";
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
        busDrops: s.busDrops,
        taskErrors: slot.taskErrors,
        loops: s.loops,
        lastError: slot.lastError,
        exitCode: slot.exitCode,
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
      if (slot.state === "starting" || slot.state === "running") {
        slot.state = slot.state === "running" ? "stopping" : slot.state;
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
        if (slot.exitCode !== undefined || slot.state === "stopped" || slot.state === "dead") {
          continue;
        }
        terminated.push(slot.index);
        slot.fatal ??= {
          name: "ShutdownTimeout",
          message: `terminated: not empty ${timeoutMs} ms after shutdown began`,
        };
        if (slot.wakeHandle >= 0) wakeBackend(slot.wakeHandle); // leave a blocking poll
        slot.thread.terminate();
      }
      await all;
    }
    this.#closed = true;
    this.#doorbell.wake();
    this.#hub.close();
    const stopped = this.#slots.filter((s) => s.state === "stopped").map((s) => s.index);
    const diedLater = this.#slots
      .filter((s) => s.state === "dead" && !dead.includes(s.index) && !terminated.includes(s.index))
      .map((s) => s.index);
    return { stopped, terminated, dead: [...dead, ...diedLater] };
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
        slot.wakeHandle = message.wakeHandle;
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
        this.#workerError(slot.index, message.error);
        return;
      case "fatal":
        slot.fatal = message.error;
        slot.lastError = `${message.error.name}: ${message.error.message}`;
        return;
      case "stopped":
        slot.state = "stopped";
        this.#gone(slot);
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

  #died(slot: Slot, error: ErrorInfo): void {
    slot.state = "dead";
    slot.lastError = `${error.name}: ${error.message}`;
    this.#gone(slot);
    const ready = slot.ready;
    slot.ready = undefined;
    this.#hub.emit({ kind: "worker-died", worker: slot.index, error, exitCode: slot.exitCode });
    ready?.reject(
      Object.assign(new Error(`worker ${slot.index}: ${error.message}`), { cause: error }),
    );
  }

  /** Stops traffic to a worker that has stopped or died, and tells the others. */
  #gone(slot: Slot): void {
    this.#roster.set(slot.index, RosterState.Gone);
    this.#endpoint.closePeer(endpointOf(slot.index));
    for (const other of this.#slots) {
      if (other !== slot && (other.state === "running" || other.state === "stopping")) {
        this.#control(other, { op: "peer-down", worker: slot.index });
      }
    }
  }
}
