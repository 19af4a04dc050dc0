import { TaskAddress } from "../app/address.ts";
import { readSpawn } from "../app/spawn.ts";
import { Batches, CONTROLLER, type Ready, readForController, WireReader } from "../app/wire.ts";
import { wakeBackend } from "../backend/backend.ts";
import type { Encodable, Structured } from "../bus/codec.ts";
import { BusEndpoint } from "../bus/endpoint.ts";
import type { BusLayout } from "../bus/layout.ts";
import type { BusMessage, SendResult } from "../bus/types.ts";
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
} from "../runtime/protocol.ts";
import {
  definitionStart,
  isWorkerDefinition,
  refuseRerunPastDefinitions,
  type WorkerPlan,
  workerPlan,
} from "../worker/host.ts";
import type { FromTasks, ToTasks } from "../worker/inner.ts";
import { awaitExits, releaseWorker } from "./cleanup.ts";
import {
  type ControllerEvent,
  type ControllerListener,
  EventHub,
  type WorkerEnd,
} from "./events.ts";
import {
  type AddWorkerOptions,
  busLayoutFor,
  type ControllerOptions,
  checkWorkerOptions,
  moduleName,
  workerInit,
} from "./options.ts";
import {
  leastLoaded,
  newWorkerRecord,
  recordEnd,
  type ShutdownReport,
  untilReady,
  type WorkerRecord,
  type WorkerStats,
  workerStats,
} from "./record.ts";
import { TaskDesk } from "./tasks.ts";
import { uncaughtError } from "./uncaught.ts";
import { Watchdog } from "./watchdog.ts";

/**
 * What `Controller.sendTo` did: a bus `SendResult`, or `stalled` (not sent: the worker is
 * stalled; wait for `worker-recovered`, or replace it).
 */
export type ControllerSendResult = SendResult | "stalled";

/** Most messages the controller handles before yielding to the event loop. */
const PUMP_BATCH = 1024;
const SAFE = { safe: true } as const;
const UNCAPPED = { safe: true, uncapped: true } as const;
/** Largest record of task messages gathered for one worker. */
const TASK_BATCH_BYTES = 16 * 1024;
/** How long a terminated worker may take to exit before shutdown stops waiting for it. */
/** The io_uring fallback has been reported (once per process: every worker falls back alike). */
let fallbackReported = false;

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
  readonly #workers: WorkerRecord[] = [];
  readonly #hub = new EventHub();
  readonly #tasks = new TaskDesk({
    spawn: (config) => this.spawn(config),
    send: (worker, message) => this.#toTasks(worker, message),
    alive: (worker) => {
      const state = this.#workers[worker]?.state;
      return state !== undefined && state !== "dead" && state !== "stopped";
    },
  });
  readonly #maxQueuedBytes: number;
  /** Messages and calls for tasks, gathered per worker until the next flush (`#toTasks`). */
  readonly #batches: Batches<undefined>;
  readonly #reader = new WireReader();
  readonly #watchdog: Watchdog;
  #pumping = false;
  #closed = false;
  #flushQueued = false;
  #shutdown: Promise<ShutdownReport> | undefined;

  /** Creates a controller; no thread starts before `addWorker`. */
  constructor(options: ControllerOptions = {}) {
    refuseRerunPastDefinitions();
    this.#layout = busLayoutFor(options);
    const maxWorkers = this.maxWorkers;
    this.#maxQueuedBytes = options.maxQueuedBytes ?? 4 * 1024 * 1024;
    this.#watchdog = new Watchdog(options.stallMs ?? 2000, this.#workers, {
      stalled: (w, stalledForMs) => {
        w.lastError = `WorkerStalled: no progress for ${stalledForMs} ms`;
        this.#roster.set(w.index, RosterState.Stalled);
        this.#hub.emit({ kind: "worker-stalled", worker: w.index, stalledForMs });
      },
      recovered: (w, stalledForMs) => {
        if (w.state === "running") this.#roster.set(w.index, RosterState.Running);
        this.#hub.emit({ kind: "worker-recovered", worker: w.index, stalledForMs });
      },
    });
    this.#endpoint = new BusEndpoint(this.#layout, CONTROLLER_ENDPOINT, {
      externalWake: wakeBackend,
      onFault: (fault) =>
        this.#workerError(fault.from - 1, { name: fault.error.name, message: fault.error.message }),
      maxQueuedBytes: this.#maxQueuedBytes,
    });
    const max = this.#endpoint.maxMessageBytes;
    this.#batches = new Batches(Math.min(max, TASK_BATCH_BYTES), max);
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
    return this.#workers.length;
  }

  /**
   * Starts a worker running `options.module`. Resolves with its index once it runs; rejects
   * (and reports a "worker-died" event) if it cannot start: module without `defineWorker`,
   * factory that throws, backend unavailable, invalid CPU.
   */
  addWorker<Config = Structured>(typed: AddWorkerOptions<Config>): Promise<number> {
    // Config checks the caller's module and config against each other; the runtime needs neither
    const options = typed as unknown as AddWorkerOptions;
    const module = options.module;
    if (!isWorkerDefinition(module)) return this.#addWorker(options, undefined);
    return workerPlan(module).then((plan) => this.#addWorker(options, plan));
  }

  /** `addWorker`, where a definition's worker starts as `plan` says. */
  #addWorker(options: AddWorkerOptions, plan: WorkerPlan | undefined): Promise<number> {
    if (this.#closed || this.#shutdown !== undefined) {
      return Promise.reject(new Error("the controller is shut down"));
    }
    const index = this.#workers.length;
    if (index >= this.maxWorkers) {
      return Promise.reject(
        new RangeError(
          `this controller was created for ${this.maxWorkers} workers (raise maxWorkers)`,
        ),
      );
    }
    const problem = checkWorkerOptions(options);
    if (problem !== undefined) return Promise.reject(problem);
    const moduleUrl = moduleName(options.module);
    const shared = {
      layout: this.#layout,
      maxQueuedBytes: this.#maxQueuedBytes,
      roster: this.#rosterBlock,
    };
    let init: WorkerInit | undefined;
    const { record: w, exited } = newWorkerRecord(index, options, this.#layout.endpoints, (own) => {
      init = workerInit(options, index, own, shared, plan);
      if (plan === undefined) return new Worker(options.module as string | URL);
      if ("url" in plan) return new Worker(plan.url);
      // a compiled binary: the worker re-runs the main module, its init in workerData
      return new Worker(Bun.main, {
        workerData: definitionStart(plan.ordinal, init),
      } as WorkerOptions);
    });
    const thread = w.thread;
    this.#workers.push(w);
    let uncaught: ErrorInfo | undefined;
    thread.addEventListener("error", (e: ErrorEvent) => {
      uncaught ??= uncaughtError(e.message);
    });
    thread.addEventListener("close", (e: Event) => {
      w.closed = true;
      this.#pump(); // the worker's last reports are in the ring: read them first
      const code = (e as CloseEvent).code;
      w.exitCode = w.terminated ? undefined : code; // terminate() says 0, which means nothing
      if (w.state === "stopped") {
        void releaseWorker(w, (error) => this.#workerError(w.index, error)).then(exited);
        return;
      }
      const error = recordEnd(w, code, uncaught);
      this.#stopRouting(w, "dead", error);
      void releaseWorker(w, (error) => this.#workerError(w.index, error)).then((released) => {
        this.#hub.emit({
          kind: "worker-died",
          worker: w.index,
          error,
          endedBy: w.endedBy as WorkerEnd,
          exitCode: w.exitCode,
          released,
        });
        exited();
      });
    });
    if (plan === undefined || "url" in plan) thread.postMessage(init);
    this.#startPump();
    this.#watchdog.start();
    const readyTimeoutMs = options.readyTimeoutMs ?? 10_000;
    return untilReady(w, readyTimeoutMs, () =>
      this.#terminate(w, {
        name: "WorkerStartTimeout",
        message: `${moduleUrl} did not start within ${readyTimeoutMs} ms (does it call defineWorker?)`,
      }),
    );
  }

  /**
   * Starts a task from `config` on the least-loaded running worker (fewest tasks, counting
   * spawns not yet handled; lowest index on a tie). Returns that worker's index.
   */
  spawn(config: Structured): number {
    const w = leastLoaded(this.#workers);
    w.spawnsSent++;
    this.#control(w, { op: "spawn", config });
    return w.index;
  }

  /** Starts a task of kind `kind` (`defineTasks`) where `spawn` would; resolves with its address. */
  spawnTask<C = null>(kind: string, config?: C & Encodable<C>): Promise<TaskAddress> {
    return this.#tasks.spawn(kind, (config ?? null) as Structured);
  }

  /** Sends `message` to the task at `to` (see `sendTo` for the results). */
  sendToTask<M>(to: TaskAddress, message: M & Encodable<M>): ControllerSendResult {
    return this.#tasks.send(to, message as Structured);
  }

  /**
   * Calls the task at `to`; resolves with its answer (check its shape: the runtime cannot know
   * it), rejects with a `CallError` after `timeoutMs` (5000) or if it is gone.
   */
  call<M>(
    to: TaskAddress,
    message: M & Encodable<M>,
    options: { timeoutMs?: number } = {},
  ): Promise<Structured> {
    return this.#tasks.call(to, message as Structured, options.timeoutMs ?? 5000);
  }

  /**
   * Sends `message` to worker `worker`'s inner (an "external" input). Returns `closed` when that
   * worker is gone, `stalled` (not sent) while the watchdog reports it stalled, `capped` (not
   * sent) when `maxQueuedBytes` already wait for it; messages to a worker still starting wait
   * for it. Throws `RecordTooLargeError` for a message larger than the bus carries.
   */
  sendTo(worker: number, message: Structured): ControllerSendResult {
    return this.#send(worker, message, true);
  }

  /**
   * Ends worker `worker` now (for a stalled worker, say): its thread is terminated, it is
   * reported `worker-died` with `endedBy: "terminated"` and `error.message` = `reason`, and every
   * fd it held is closed. Resolves once that is done; at once for a worker already gone.
   */
  terminate(worker: number, reason = "terminated by the application"): Promise<void> {
    const w = this.#record(worker);
    if (w.state !== "stopped" && w.state !== "dead") {
      this.#terminate(w, { name: "WorkerTerminated", message: reason });
    }
    return w.exited;
  }

  /**
   * Replaces worker `worker` (a stalled one, say): terminates it if it still runs, then starts a
   * new worker with the same options in a free w. Resolves with the new worker's index. Needs
   * a free w: create the controller with `maxWorkers` above the workers you run.
   */
  async replace(worker: number, reason = "replaced by the application"): Promise<number> {
    const w = this.#record(worker);
    await this.terminate(worker, reason);
    return this.addWorker(w.options);
  }

  /**
   * Sends `message` to the least-loaded running worker; returns which worker and what the send
   * did (see `sendTo`: `capped` means it was not sent).
   */
  sendToBest(message: Structured): { worker: number; result: ControllerSendResult } {
    const w = leastLoaded(this.#workers);
    return { worker: w.index, result: this.sendTo(w.index, message) };
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
    return this.#workers.map((w) => {
      const endpoint = endpointOf(w.index);
      return workerStats(w, now, {
        ringOccupancy: this.#endpoint.occupancy(endpoint),
        queuedBytes: this.#endpoint.queuedBytes(endpoint),
      });
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
    const dead = this.#workers.filter((s) => s.state === "dead").map((s) => s.index);
    for (const w of this.#workers) {
      if (w.state === "starting" || w.state === "running" || w.state === "stalled") {
        if (w.state === "running") w.state = "stopping";
        w.unstalled = "stopping";
        this.#control(w, { op: "shutdown" });
      }
    }
    this.#endpoint.flush();
    const terminated = await awaitExits(this.#workers, timeoutMs, (w) =>
      this.#terminate(w, {
        name: "ShutdownTimeout",
        message: `terminated: not empty ${timeoutMs} ms after shutdown began`,
      }),
    );
    this.#closed = true;
    this.#watchdog.stop();
    this.#doorbell.wake();
    this.#hub.close();
    const stopped = this.#workers.filter((s) => s.state === "stopped").map((s) => s.index);
    const diedLater = this.#workers
      .filter((s) => s.state === "dead" && !dead.includes(s.index) && !terminated.includes(s.index))
      .map((s) => s.index);
    return { stopped, terminated, dead: [...dead, ...diedLater] };
  }

  #record(worker: number): WorkerRecord {
    const w = this.#workers[worker];
    if (w === undefined) {
      throw new RangeError(`no worker ${worker} (workers are 0..${this.#workers.length - 1})`);
    }
    return w;
  }

  /** Ends a worker's thread from here; its report carries `error` and no exit code. */
  #terminate(w: WorkerRecord, error: ErrorInfo): void {
    if (w.terminated) return;
    w.terminated = true;
    w.fatal ??= error;
    w.thread.terminate();
  }

  /** Why nothing is sent to worker `worker` now ("closed": gone; "stalled"), or undefined. */
  #refusal(worker: number): "closed" | "stalled" | undefined {
    const state = this.#record(worker).state;
    if (state === "dead" || state === "stopped") return "closed";
    return state === "stalled" ? "stalled" : undefined;
  }

  /** An application message to a worker: to its inner (`external`), or a `ToWorker` "tasks". */
  #send(worker: number, message: Structured, external: boolean): ControllerSendResult {
    const refused = this.#refusal(worker);
    if (refused !== undefined) return refused;
    const dest = endpointOf(worker);
    this.#sendBatch(this.#batches.take(worker)); // what was gathered for it goes first
    const result = external
      ? this.#endpoint.sendExternal(dest, message, SAFE)
      : this.#endpoint.send(dest, message, SAFE);
    this.#scheduleFlush();
    return result;
  }

  #control(w: WorkerRecord, message: ToWorker): void {
    this.#sendBatch(this.#batches.take(w.index));
    sendControl(this.#endpoint, endpointOf(w.index), message);
    this.#scheduleFlush();
  }

  /**
   * Sends `message` to worker `worker`'s tasks: messages and calls are gathered into one record
   * per worker (`app/wire.ts`) until the flush at the end of this turn of the event loop, or until
   * the record is full. Results as `sendTo`'s: `capped` when `maxQueuedBytes` already wait for
   * the worker (the message is not taken), `queued` when taken behind others that wait.
   */
  #toTasks(worker: number, message: ToTasks): ControllerSendResult {
    if (message.op !== "message" && message.op !== "call") {
      return this.#send(worker, { op: "tasks", message } as unknown as Structured, false);
    }
    const refused = this.#refusal(worker);
    if (refused !== undefined) return refused;
    const dest = endpointOf(worker);
    if (!this.#endpoint.admits(dest, 0)) return "capped";
    this.#sendBatch(
      message.op === "message"
        ? this.#batches.message(worker, message.to, CONTROLLER, message.data, undefined)
        : this.#batches.call(worker, message.call, message.to, CONTROLLER, message.data, undefined),
    );
    this.#scheduleFlush();
    return this.#endpoint.queuedBytes(dest) === 0 ? "sent" : "queued";
  }

  /** Sends a batch of task messages (admitted one by one already, so never capped). */
  #sendBatch(ready: Ready<undefined> | undefined): void {
    if (ready !== undefined) this.#endpoint.send(endpointOf(ready.worker), ready.bytes, UNCAPPED);
  }

  #scheduleFlush(): void {
    if (this.#flushQueued) return;
    this.#flushQueued = true;
    queueMicrotask(() => {
      this.#flushQueued = false;
      for (let r = this.#batches.take(); r !== undefined; r = this.#batches.take()) {
        this.#sendBatch(r);
      }
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
    const w = this.#workers[m.from - 1];
    if (w === undefined) return;
    if (m.kind === "external") {
      const data = m.raw ? (m.data as Uint8Array).slice() : m.data;
      this.#hub.emit({ kind: "message", worker: w.index, data });
      return;
    }
    if (m.kind !== "direct") return;
    if (m.raw) {
      // a grouped worker's record: its tasks' messages and answers to calls
      if (!readForController(this.#reader, m.data as Uint8Array, this.#fromTasks(w))) {
        this.#workerError(w.index, {
          name: "MalformedRecord",
          message: "a record for the controller that is not a grouped worker's was dropped",
        });
      }
      return;
    }
    const message = m.data as FromWorker;
    switch (message.op) {
      case "ready":
        w.backend = message.backend;
        w.progressAt = performance.now();
        if (w.state === "starting") w.state = "running";
        this.#roster.set(w.index, RosterState.Running);
        w.ready?.resolve(w.index);
        w.ready = undefined;
        return;
      case "spawn":
        if (this.#shutdown === undefined) this.#spawnFor(w, message.config);
        else this.#spawnRefused(w, message.config, "the controller is shutting down");
        return;
      case "spawn-refused":
        this.#spawnRefused(w, message.config, message.why);
        return;
      case "task-error":
        w.taskErrors++;
        w.lastError = `task ${message.task}: ${message.error.name}: ${message.error.message}`;
        this.#hub.emit({
          kind: "task-error",
          worker: w.index,
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
        this.#workerError(w.index, message.error);
        return;
      case "fatal":
        w.fatal = message.error;
        w.lastError = `${message.error.name}: ${message.error.message}`;
        return;
      case "stopped":
        this.#stopRouting(w, "stopped", undefined);
        this.#hub.emit({ kind: "worker-stopped", worker: w.index });
        return;
      case "tasks":
        this.#fromTasks(w)(message.message);
        return;
    }
  };

  /** Takes what worker `w`'s tasks sent: a message for the event stream, or an answer. */
  #fromTasks(w: WorkerRecord): (message: FromTasks) => void {
    return (message) => {
      const m = this.#tasks.receive(w.index, message);
      if (m !== undefined) this.#hub.emit({ kind: "message", worker: w.index, ...m });
    };
  }

  #spawnFor(from: WorkerRecord, config: Structured): void {
    const s = readSpawn(config);
    if (s.parent !== undefined && s.tag !== undefined) {
      // a task wants the outcome: placed with a ticket, answered whatever happens
      this.#tasks.spawnFor(TaskAddress.of(s.parent), s.tag, s.task, s.config);
      return;
    }
    try {
      this.spawn(config);
    } catch (e) {
      this.#spawnRefused(from, config, e instanceof Error ? e.message : String(e));
    }
  }

  /**
   * A spawn was not placed or not handled (worker `from` asked for it, or refused it): whoever
   * asked is told (the controller's own `spawnTask`, a task's tagged spawn); anything else is a
   * worker error unless the controller is shutting down.
   */
  #spawnRefused(from: WorkerRecord, config: Structured, why: string): void {
    const { parent, tag, ticket } = readSpawn(config);
    if (ticket !== undefined) {
      this.#tasks.receive(from.index, {
        op: "spawn-failed",
        ticket,
        error: `spawn not handled: ${why}`,
      });
    } else if (parent !== undefined && tag !== undefined) {
      const error = `spawn not placed: ${why}`;
      this.#tasks.refuseSpawn(TaskAddress.of(parent), tag, error);
    } else if (this.#shutdown === undefined) {
      this.#workerError(from.index, {
        name: "SpawnError",
        message: `spawn request not placed: ${why}`,
      });
    }
  }

  #workerError(index: number, error: ErrorInfo): void {
    const w = this.#workers[index];
    if (w === undefined) return;
    w.lastError = `${error.name}: ${error.message}`;
    this.#hub.emit({ kind: "worker-error", worker: index, error });
  }

  /**
   * A worker stopped or died: no more traffic to it (the roster, the controller's queue, the other
   * workers), and a start that was waiting for it fails with `error`.
   */
  #stopRouting(w: WorkerRecord, state: "stopped" | "dead", error: ErrorInfo | undefined): void {
    w.state = state;
    this.#tasks.workerGone(w.index, error === undefined ? "it stopped" : error.message);
    if (error !== undefined) {
      w.lastError = `${error.name}: ${error.message}`;
      const ready = w.ready;
      w.ready = undefined;
      ready?.reject(
        Object.assign(new Error(`worker ${w.index}: ${error.message}`), { cause: error }),
      );
    }
    this.#roster.set(w.index, RosterState.Gone);
    // its eventfd is about to be closed and its number reused: nobody may ring it any more
    const bell = new AtomicsDoorbell(
      this.#layout.doorbells[endpointOf(w.index)] as SharedArrayBuffer,
    );
    bell.setExternalHandle(undefined);
    bell.cancel();
    this.#endpoint.closePeer(endpointOf(w.index));
    for (const other of this.#workers) {
      const alive =
        other.state === "running" || other.state === "stopping" || other.state === "stalled";
      if (other !== w && alive) {
        this.#control(other, { op: "peer-down", worker: w.index });
      }
    }
  }
}
