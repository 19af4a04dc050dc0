/**
 * The simulated-time harness: several `WorkerInner`s, each on its own `SimBackend`, driven by
 * the worker loop's contract on one `SimNetwork` clock, with a trace of everything that happened.
 */
import { workerOf } from "../app/address.ts";
import { readSpawn } from "../app/spawn.ts";
import { readForController, WireReader } from "../app/wire.ts";
import type { Backend, BackendOptions } from "../backend/backend.ts";
import type { BackendFactory } from "../backend/middleware.ts";
import type { Structured } from "../bus/codec.ts";
import { SocketAddr } from "../io/addr.ts";
import type { IoError, NetEvent } from "../io/events.ts";
import type {
  FromTasks,
  ToTasks,
  WorkerInner,
  WorkerInput,
  WorkerOutput,
} from "../worker/inner.ts";
import { SimBackend } from "./backend.ts";
import { SimBus } from "./bus.ts";
import type { SimHost } from "./host.ts";
import type { SimNetwork } from "./network.ts";
import { hash32 } from "./random.ts";

/** One worker of a harness (`SimHarness.add`). */
export interface SimWorkerOptions {
  /** The host its backend's sockets live on (several workers may share one). */
  readonly host: SimHost;
  readonly inner: WorkerInner;
  /** Tick interval in virtual ms (0: no ticks); default 100. */
  readonly tickMs?: number;
  /** Options of its `SimBackend`. */
  readonly backend?: Omit<BackendOptions, "onEvent">;
  /**
   * Middleware around its backend, `(make) => withFaults(make, { seed, clock: network.clock })`.
   * What it makes must keep `nextDeadline` (every middleware here does).
   */
  readonly wrap?: (make: BackendFactory) => BackendFactory;
}

/** Options of a `SimHarness`. */
export interface SimHarnessOptions {
  /** Virtual ms a bus message or subscription change takes between workers; default 0. */
  readonly busLatencyMs?: number;
}

/** A failure the runtime would report as a controller event (`SimHarness.reports`). */
export type SimReport =
  | { readonly kind: "task-error"; readonly task: string; readonly error: unknown }
  | { readonly kind: "worker-error"; readonly error: unknown };

interface Worker {
  readonly index: number;
  readonly inner: WorkerInner;
  readonly backend: Backend;
  readonly tickMs: number;
  nextTick: number;
  readonly external: Structured[];
  readonly reports: SimReport[];
  readonly fromTasks: FromTasks[];
}

/** More rounds than this at one instant is a loop that never lets time move. */
const MAX_ROUNDS_PER_INSTANT = 100_000;

/**
 * Runs worker inners against each other on simulated time.
 *
 * Contract: it drives each inner as the runtime's worker loop does: the outputs the inner has
 * at `add` are popped first; a tick every `tickMs` of virtual time; every input (the backend's
 * events, as "net" inputs) is followed by popping all outputs before the next; "net" outputs go
 * to the backend's `act`; "bus" outputs travel on a `SimBus` and arrive as "bus" inputs;
 * "spawn" outputs and `spawn` place a task as the controller does (fewest tasks, lowest index on
 * a tie; refused once shutdown has begun); `sendTo` delivers an "external" input; "external"
 * outputs are kept (`external()`); "task-error" outputs and a bad bus output (which the runtime
 * reports as a worker error and survives) are kept (`reports()`); everything is traced.
 * At each instant, workers take turns in the order added (tick if due, bus messages due, then
 * poll if their backend has work now) until none has any; then the clock moves to the next tick,
 * arrival, bus message or delayed delivery. Nothing reads a real clock or `Math.random`, so the same network seed, the
 * same workers and the same calls give the same `trace`, line for line: a failing seed replays.
 */
export class SimHarness {
  /** The network the workers run on (its clock is theirs). */
  readonly network: SimNetwork;
  /**
   * One line per tick, input, output and network fault, in order:
   * "5.000 w1 <- udp-packet socket=0 from=10.0.0.1:32768 data=64B#9a3c5e01 size=64 truncated=false".
   */
  readonly trace: string[] = [];
  readonly #workers: Worker[] = [];
  readonly #bus: SimBus;
  readonly #reader = new WireReader();
  #stopping = false;
  /** Spawns placed for tasks, by ticket (from 2^40: clear of the tickets tests use). */
  readonly #spawners = new Map<number, { parent: number; tag: number }>();
  #nextTicket = 2 ** 40;

  /** A harness on `network` (it takes over `network.onTrace`, to trace faults). */
  constructor(network: SimNetwork, options: SimHarnessOptions = {}) {
    this.network = network;
    this.#bus = new SimBus(options.busLatencyMs ?? 0);
    network.onTrace = (line) => this.trace.push(`${line.replace(" ", " net ")}`);
  }

  /** Adds a worker; returns its index. Its first outputs are popped and acted at once. */
  add(options: SimWorkerOptions): number {
    const index = this.#bus.addWorker();
    const make: BackendFactory = (sink) =>
      new SimBackend(this.network, options.host, { ...options.backend, onEvent: sink });
    const tickMs = options.tickMs ?? 100;
    const worker: Worker = {
      index,
      inner: options.inner,
      backend: (options.wrap?.(make) ?? make)((owner, event) => this.#input(worker, owner, event)),
      tickMs,
      nextTick: tickMs > 0 ? this.network.now + tickMs : Number.POSITIVE_INFINITY,
      external: [],
      reports: [],
      fromTasks: [],
    };
    this.#workers.push(worker);
    this.#drain(worker);
    return index;
  }

  /** Worker `index`'s backend (for its stats, or its middleware's). */
  backend(index: number): Backend {
    return this.#worker(index).backend;
  }

  /** What worker `index` sent to the controller ("external" outputs), in order. */
  external(index: number): readonly Structured[] {
    return this.#worker(index).external;
  }

  /** The task errors and worker errors of worker `index`, in order. */
  reports(index: number): readonly SimReport[] {
    return this.#worker(index).reports;
  }

  /** What worker `index`'s tasks told the controller (a grouped worker's "tasks" outputs). */
  fromTasks(index: number): readonly FromTasks[] {
    return this.#worker(index).fromTasks;
  }

  /** Delivers `message` to worker `index`'s tasks now, as `Controller.sendToTask`/`call` do. */
  toTasks(index: number, message: ToTasks): void {
    this.#deliver(this.#worker(index), { kind: "tasks", message });
  }

  /** Tells every other worker that worker `index` is gone, as the controller does. */
  peerDown(index: number): void {
    for (const w of this.#workers) {
      if (w.index !== index) this.#deliver(w, { kind: "peer-down", worker: index });
    }
  }

  /** Delivers `data` to worker `index` now, as `Controller.sendTo` does. */
  sendTo(index: number, data: Structured): void {
    this.#deliver(this.#worker(index), { kind: "external", data });
  }

  /**
   * Starts a task from `config` on the worker with the fewest tasks (lowest index on a tie), as
   * `Controller.spawn` does; returns that worker's index.
   */
  spawn(config: Structured): number {
    if (this.#workers.length === 0) throw new RangeError("no worker to spawn on: add one first");
    let w = this.#workers[0] as Worker;
    for (const x of this.#workers) if (x.inner.tasks() < w.inner.tasks()) w = x;
    this.#trace(w, `spawn ${format(config)}`);
    w.inner.spawn(this.network.now, config);
    this.#drain(w);
    return w.index;
  }

  /**
   * Runs until `done()` holds (checked whenever the workers are idle at an instant) or the
   * clock reaches `untilMs`; returns whether `done()` held. Throws when one instant takes more
   * than 100,000 rounds (a zero-latency loop that never lets time move) and passes on what an
   * inner throws.
   */
  run(untilMs: number, done: () => boolean = () => false): boolean {
    for (;;) {
      this.#settle();
      if (done()) return true;
      const next = Math.min(
        untilMs,
        this.#bus.nextDue(),
        ...this.#workers.map((w) =>
          Math.min(w.nextTick, deadline(w), w.inner.nextDeadline?.() ?? Number.POSITIVE_INFINITY),
        ),
      );
      if (next === Number.POSITIVE_INFINITY) return false;
      this.network.advanceTo(next);
      if (next >= untilMs) {
        this.#settle();
        return done();
      }
    }
  }

  /**
   * Begins a graceful shutdown, as the controller's: `onShutdown` for every worker, then runs
   * until every inner `isEmpty()` or the clock reaches `untilMs`; returns whether all were.
   */
  shutdown(untilMs: number): boolean {
    this.#stopping = true;
    for (const w of this.#workers) {
      this.#trace(w, "shutdown");
      w.inner.onShutdown(this.network.now);
      this.#drain(w);
    }
    return this.run(untilMs, () => this.#workers.every((w) => w.inner.isEmpty()));
  }

  /** Closes every worker's backend. */
  close(): void {
    for (const w of this.#workers) w.backend.close();
  }

  #worker(index: number): Worker {
    const w = this.#workers[index];
    if (w === undefined) throw new RangeError(`no worker ${index}`);
    return w;
  }

  /** Turns at the current instant until no worker has a tick due or work in its backend. */
  #settle(): void {
    const now = this.network.now;
    for (let round = 0; round < MAX_ROUNDS_PER_INSTANT; round++) {
      let busy = false;
      for (const { to, input } of this.#bus.due(now)) {
        busy = true;
        this.#deliver(this.#workers[to] as Worker, input);
      }
      for (const w of this.#workers) {
        if (w.nextTick <= now) {
          busy = true;
          this.#trace(w, "tick");
          w.inner.onTick(now);
          this.#drain(w);
          w.nextTick += w.tickMs;
          if (w.nextTick <= now) w.nextTick = now + w.tickMs;
        }
        if ((w.inner.nextDeadline?.() ?? Number.POSITIVE_INFINITY) <= now) {
          busy = true;
          this.#trace(w, "deadline");
          w.inner.onDeadline?.(now);
          this.#drain(w);
        }
        if (deadline(w) <= now) {
          busy = true;
          w.backend.poll(0);
        }
      }
      if (!busy) return;
    }
    throw new Error(
      `simulated time cannot move past ${now} ms: more than ${MAX_ROUNDS_PER_INSTANT} rounds of work at one instant (a loop with no delay?)`,
    );
  }

  #input(w: Worker, owner: number, event: NetEvent): void {
    this.#trace(w, `<- ${describe(event)}${owner === 0 ? "" : ` owner=${owner}`}`);
    w.inner.onEvent(this.network.now, { kind: "net", owner, event });
    this.#drain(w);
  }

  #deliver(w: Worker, input: Exclude<WorkerInput, { kind: "net" }>): void {
    this.#trace(w, `<- ${describe(input)}`);
    w.inner.onEvent(this.network.now, input);
    this.#drain(w);
  }

  #drain(w: Worker): void {
    const now = this.network.now;
    for (let out = w.inner.popOutput(now); out !== undefined; out = w.inner.popOutput(now))
      this.#apply(w, out);
  }

  /** Carries out one output as the worker loop would; a failure as the loop reports it. */
  #apply(w: Worker, out: WorkerOutput): void {
    try {
      this.#carry(w, out);
    } catch (error) {
      if (w.inner.outputFailed?.(this.network.now, error) === true) return;
      this.#trace(w, `-> worker-error ${String(error)}`);
      w.reports.push({ kind: "worker-error", error });
    }
  }

  #carry(w: Worker, out: WorkerOutput): void {
    switch (out.kind) {
      case "net":
        this.#trace(w, `-> ${describe(out.action)}${out.owner === 0 ? "" : ` owner=${out.owner}`}`);
        w.backend.act(out.owner, out.action);
        return;
      case "external":
        this.#trace(w, `-> external ${format(out.data)}`);
        w.external.push(this.#bus.copy(out.data));
        return;
      case "task-error":
        this.#trace(w, `-> task-error ${out.task}: ${String(out.error)}`);
        w.reports.push({ kind: "task-error", task: out.task, error: out.error });
        return;
      case "bus":
        this.#trace(w, `-> bus ${describe(out.control)}`);
        if (out.control.op === "direct" && out.control.worker === -1) {
          // a grouped worker's record for the controller: its tasks' messages and answers
          const bytes = (out.control.data as Uint8Array).slice();
          if (!readForController(this.#reader, bytes, (m) => w.fromTasks.push(m))) {
            throw new RangeError(`worker ${w.index} sent the controller a malformed record`);
          }
        } else this.#bus.send(this.network.now, w.index, out.control);
        return;
      case "tasks": {
        this.#trace(w, `-> tasks ${describe(out.message)}`);
        const message = this.#bus.copy(
          out.message as unknown as Structured,
        ) as unknown as FromTasks;
        w.fromTasks.push(message);
        this.#forward(message);
        return;
      }
      case "spawn": {
        const config = this.#bus.copy(out.config);
        const { parent, tag, task, config: taskConfig } = readSpawn(config);
        const asked = parent !== undefined && tag !== undefined ? { parent, tag } : undefined;
        if (this.#stopping) {
          this.#trace(w, `-> spawn refused (shutting down) ${format(config)}`);
          if (asked !== undefined) {
            this.#tellSpawner(asked, {
              error: "spawn not placed: the controller is shutting down",
            });
          }
        } else if (asked === undefined) this.spawn(config);
        else {
          // as the controller: placed with a ticket, the outcome forwarded to the task
          const ticket = this.#nextTicket++;
          this.#spawners.set(ticket, asked);
          this.spawn({ task: task as Structured, config: taskConfig, ticket });
        }
        return;
      }
    }
  }

  /** The outcome of a spawn placed for a task (`#spawners`), forwarded to it as the controller does. */
  #forward(m: FromTasks): void {
    if (m.op !== "spawned" && m.op !== "spawn-failed") return;
    const asked = this.#spawners.get(m.ticket);
    if (asked === undefined) return;
    this.#spawners.delete(m.ticket);
    this.#tellSpawner(asked, m.op === "spawned" ? { address: m.address } : { error: m.error });
  }

  #tellSpawner(
    asked: { parent: number; tag: number },
    outcome: { address: number } | { error: string },
  ): void {
    this.toTasks(workerOf(asked.parent), {
      op: "spawned",
      to: asked.parent,
      tag: asked.tag,
      ...outcome,
    });
  }

  #trace(w: Worker, what: string): void {
    this.trace.push(`${this.network.now.toFixed(3)} w${w.index} ${what}`);
  }
}

/** When a worker's backend has work (a backend without `nextDeadline` always has). */
function deadline(w: Worker): number {
  return w.backend.nextDeadline?.() ?? -1;
}

/** "kind field=value ...": an action or event in a trace, bytes as their length and hash. */
function describe(x: NetEvent | object): string {
  return Object.entries(x)
    .map(([k, v]) => (k === "kind" ? String(v) : `${k}=${format(v)}`))
    .join(" ");
}

function isIoError(v: object): v is IoError {
  const keys = Object.keys(v);
  return keys.length === 2 && keys.includes("code") && keys.includes("message");
}

function format(v: unknown): string {
  if (v instanceof Uint8Array) return `${v.length}B#${hash32(v).toString(16).padStart(8, "0")}`;
  if (v instanceof SocketAddr) return v.toString();
  if (Array.isArray(v)) return `[${v.map(format).join(",")}]`;
  if (typeof v === "object" && v !== null) return isIoError(v) ? v.code : `{${describe(v)}}`;
  return String(v);
}
