/**
 * The grouped-task worker: a `WorkerInner` that runs the application's tasks, one `TaskGroup`
 * per kind behind a `TaskSwitcher` (the two-level pop order: lowest flagged kind, then lowest
 * flagged slot), and routes everything by task address.
 */
import type { Structured } from "../bus/codec.ts";
import { DEFAULT_RING_BYTES, maxMessageBytesOf } from "../bus/layout.ts";
import type { NetAction, NetEvent } from "../io/events.ts";
import { TaskSwitcher } from "../task/switcher.ts";
import type { FromTasks, WorkerInner, WorkerInput, WorkerOutput } from "../worker/inner.ts";
import { ADDRESS_LIMITS, groupOf, slotOf, TaskAddress, workerOf } from "./address.ts";
import { BusInbound } from "./bus-inbound.ts";
import { Calls, gone, type Owed } from "./calls.ts";
import { LocalChannels } from "./channels.ts";
import { Deadlines } from "./deadlines.ts";
import { type Group, makeGroups, startTask, type TaskKinds } from "./groups.ts";
import { LocalInbox } from "./inbox.ts";
import { NetRoutes } from "./net-routes.ts";
import { Outbox } from "./outbox.ts";
import type { TaskRecord } from "./record.ts";
import { type GroupedSpawn, readSpawn, type Spawn } from "./spawn.ts";
import type { TaskInput, TaskOutput } from "./task.ts";
import { Batches, CONTROLLER, type Ready } from "./wire.ts";

/** Options of a `GroupedWorker`. */
export interface GroupedWorkerOptions {
  /** The bus's largest message (`WorkerBusLimits`); by default, that of the default bus. */
  readonly maxMessageBytes?: number;
}

/** The batch (`Batches` destination) of what goes to the controller: past every worker index. */
const TO_CONTROLLER = ADDRESS_LIMITS.workers;

/** The "direct" output's worker for batch destination `dest` (-1: the controller). */
function busWorker(dest: number): number {
  return dest === TO_CONTROLLER ? -1 : dest;
}

/** Largest record of messages gathered for one other worker (a larger message goes alone). */
const DEFAULT_BATCH_BYTES = 16 * 1024;

/** Whose entry a batch holds: the task that sent it, or the answer it gives (and to whom). */
type Sender = TaskRecord | AnswerOf;

/** An answer in a batch: the call it answers, and the task giving it (none: the runtime's). */
interface AnswerOf {
  readonly owed: Owed;
  readonly by: TaskRecord | undefined;
}

/**
 * Runs tasks of the given kinds. Contract: the `WorkerInner` contract, plus:
 * - each task's net actions are owned by it and their events come back to it, with its own
 *   socket and device ids (two tasks may both use socket 0); a task that ends has its sockets
 *   closed and devices unbound, leaves its channels, loses its timer, and its unanswered calls
 *   are answered with an error;
 * - an event, message or reply for a task that has ended (a stale address: the slot's
 *   generation moved on) is dropped and counted (`counters().staleDrops`), never delivered to
 *   the slot's new task; a reply after its call timed out is dropped and counted (`lateReplies`);
 * - channel deliveries fan out to the local subscribers; the worker's bus endpoint subscribes
 *   with the first local subscriber and unsubscribes with the last;
 * - deadlines: each task has one timer ("timer" output); the worker's `nextDeadline()` is the
 *   earliest of all timers and call time-outs, kept in a heap;
 * - messages, calls and answers for tasks on another worker and for the controller are gathered
 *   during a drain into one bus record per destination (`wire.ts`, a "direct" bus output; to
 *   worker -1 for the controller), sent when the drain ends, when a record is full, and before
 *   any other bus or controller output, so what one task sends keeps its order.
 */
export class GroupedWorker implements WorkerInner {
  readonly #index: number;
  readonly #groups: readonly Group[];
  readonly #byKind = new Map<string, number>();
  readonly #switcher = new TaskSwitcher();
  readonly #out = new Outbox<WorkerOutput>();
  /** Inputs for local tasks waiting for the current drain to end (never nested in a drain). */
  readonly #local = new LocalInbox();
  readonly #deadlines = new Deadlines();
  readonly #net: NetRoutes;
  readonly #calls: Calls;
  readonly #channels = new LocalChannels();
  readonly #downPeers = new Set<number>();
  readonly #batches: Batches<Sender>;
  readonly #inbound: BusInbound;
  /** An output waiting for the batches to be sent first, with whom it is from. */
  #held: WorkerOutput | undefined;
  #heldMade: TaskRecord | undefined;
  #heldAnswering: Owed | undefined;
  #stopping = false;
  #count = 0;
  #stale = 0;
  #now = 0;
  /** The task whose output was popped last (undefined: the runtime's own). */
  #made: TaskRecord | undefined;
  /** The call the output popped last answers, if it is an answer. */
  #answering: Owed | undefined;
  // reused objects of the hot path (valid until the next output is popped / the drain ends)
  readonly #netOut: { kind: "net"; owner: number; action: NetAction } = {
    kind: "net",
    owner: 0,
    action: { kind: "udp-unlisten", socket: 0 },
  };
  readonly #netIn: { kind: "net"; event: NetEvent } = {
    kind: "net",
    event: { kind: "udp-closed", socket: 0 },
  };
  readonly #batchOut: { kind: "bus"; control: { op: "direct"; worker: number; data: Structured } } =
    { kind: "bus", control: { op: "direct", worker: 0, data: undefined } };

  /** A worker of index `index` running tasks of `kinds` (at most 256 kinds). */
  constructor(index: number, kinds: TaskKinds, options: GroupedWorkerOptions = {}) {
    this.#index = index;
    const max = options.maxMessageBytes ?? maxMessageBytesOf(DEFAULT_RING_BYTES);
    this.#batches = new Batches(Math.min(max, DEFAULT_BATCH_BYTES), max);
    this.#groups = makeGroups(kinds);
    for (const [g, group] of this.#groups.entries()) this.#byKind.set(group.kind, g);
    this.#switcher.setTasks(this.#groups.length);
    this.#net = new NetRoutes((r, event) => this.#queue(r, { kind: "net", event }));
    this.#calls = new Calls(this.#deadlines);
    this.#inbound = new BusInbound(
      {
        record: (id) => this.#record(id),
        queue: this.#queueTo,
        answer: (owed, ok, data) => this.#answer(owed, ok, data),
        dropped: () => {
          this.#stale++;
        },
      },
      this.#calls,
      this.#channels,
    );
  }

  tasks(): number {
    return this.#count;
  }

  isEmpty(): boolean {
    return (
      this.#stopping &&
      this.#count === 0 &&
      this.#out.length === 0 &&
      this.#local.length === 0 &&
      this.#held === undefined &&
      !this.#batches.pending &&
      this.#net.isEmpty()
    );
  }

  counters(): { readonly staleDrops: number; readonly lateReplies: number } {
    return { staleDrops: this.#stale + this.#net.staleDrops, lateReplies: this.#calls.late };
  }

  /** Spawns from a `GroupedSpawn` (a "spawn" output or `Controller.spawnTask`). */
  spawn(now: number, config: Structured): void {
    this.#now = now;
    const spawn = readSpawn(config);
    const g = typeof spawn.task === "string" ? this.#byKind.get(spawn.task) : undefined;
    const kind = typeof spawn.task === "string" ? spawn.task : (JSON.stringify(spawn.task) ?? "?");
    if (g === undefined) {
      const kinds = [...this.#byKind.keys()].join(", ");
      this.#spawned(
        spawn,
        kind,
        `no task kind ${JSON.stringify(spawn.task)} on this worker (kinds: ${kinds})`,
      );
      return;
    }
    const group = this.#groups[g] as Group;
    if (this.#stopping) {
      this.#spawned(spawn, kind, "the worker is shutting down");
      return;
    }
    const record = startTask(group, this.#index, g, spawn.config, now);
    if (typeof record === "string") {
      this.#spawned(spawn, kind, record);
      return;
    }
    this.#count++;
    group.tasks.wake(record.address.slot); // what its constructor queued is popped at once
    this.#switcher.flagTask(g);
    this.#spawned(spawn, kind, record.address.id);
  }

  onTick(now: number): void {
    this.#now = now;
    for (let g = 0; g < this.#groups.length; g++) {
      const tasks = (this.#groups[g] as Group).tasks;
      if (tasks.isEmpty()) continue;
      tasks.onTick(now);
      this.#switcher.flagTask(g);
    }
  }

  onShutdown(now: number): void {
    this.#now = now;
    this.#stopping = true;
    for (let g = 0; g < this.#groups.length; g++) {
      const tasks = (this.#groups[g] as Group).tasks;
      if (tasks.isEmpty()) continue;
      tasks.onShutdown(now);
      this.#switcher.flagTask(g);
    }
  }

  nextDeadline(): number {
    return this.#deadlines.next();
  }

  onDeadline(now: number): void {
    this.#now = now;
    for (;;) {
      const at = this.#deadlines.next();
      const key = this.#deadlines.popDue(now);
      if (key === undefined) return;
      if (key < 0) {
        this.#calls.expire(-key - 1, this.#give);
        continue;
      }
      const record = this.#record(key);
      if (record === undefined) continue;
      if (record.heapAt === at) record.heapAt = Number.POSITIVE_INFINITY;
      if (record.timerAt <= now) {
        const due = record.timerAt;
        record.timerAt = Number.POSITIVE_INFINITY;
        this.#deliver(record, { kind: "timer", at: due });
      } else if (record.timerAt < record.heapAt) {
        record.heapAt = record.timerAt;
        this.#deadlines.add(record.timerAt, record.address.id);
      }
    }
  }

  onEvent(now: number, input: WorkerInput): void {
    this.#now = now;
    switch (input.kind) {
      case "net": {
        const route = this.#net.inbound(input.event);
        if (this.#net.followUps.length !== 0) this.#followUps();
        if (route === undefined) return;
        const netIn = this.#netIn;
        netIn.event = route.event;
        this.#deliver(route.record, netIn);
        return;
      }
      case "bus":
        this.#inbound.take(input.from, input.channel, input.data);
        return;
      case "tasks": {
        const m = input.message;
        const record = this.#record(m.to);
        if (m.op !== "call") {
          if (record === undefined) this.#stale++;
          else if (m.op === "message") {
            this.#deliver(record, { kind: "message", from: null, data: m.data });
          } else if ("address" in m) {
            const address = TaskAddress.of(m.address);
            this.#deliver(record, { kind: "spawned", tag: m.tag, ok: true, address });
          } else this.#deliver(record, { kind: "spawned", tag: m.tag, ok: false, error: m.error });
          return;
        }
        if (record === undefined) {
          this.#answer({ worker: -1, id: m.call }, false, gone(m.to));
          return;
        }
        const handle = this.#calls.owe(record, -1, m.call);
        this.#deliver(record, { kind: "call", call: handle, from: null, data: m.data });
        return;
      }
      case "peer-down":
        this.#downPeers.add(input.worker);
        this.#calls.peerDown(input.worker, this.#give);
        return;
      case "external":
        // a grouped worker takes controller messages through sendToTask
        this.#stale++;
        return;
    }
  }

  popOutput(now: number): WorkerOutput | undefined {
    this.#now = now;
    this.#answering = undefined;
    this.#made = undefined;
    if (this.#held !== undefined) {
      const ready = this.#batches.take();
      if (ready !== undefined) return this.#sendBatch(ready);
      const held = this.#held;
      this.#held = undefined;
      this.#made = this.#heldMade;
      this.#answering = this.#heldAnswering;
      return held;
    }
    for (;;) {
      const own = this.#out.shift();
      if (own !== undefined) return this.#leave(own, undefined);
      const g = this.#switcher.current();
      if (g === undefined) {
        if (this.#local.give(this.#give)) continue;
        // the drain ends: what was gathered for other workers goes now
        const ready = this.#batches.take();
        return ready === undefined ? undefined : this.#sendBatch(ready);
      }
      const group = this.#groups[g] as Group;
      const out = group.tasks.popOutput(now);
      if (out === undefined) {
        this.#switcher.finished(g);
        continue;
      }
      if (out.kind === "empty") continue;
      const record = group.records[out.index] as TaskRecord;
      switch (out.kind) {
        case "output": {
          try {
            const done = this.#carry(now, record, out.value);
            if (done !== undefined)
              return done === this.#batchOut ? done : this.#leave(done, record);
          } catch (error) {
            // an output the runtime refuses (a bad channel, a call answered twice) fails its task
            return this.#fail(record, error);
          }
          continue;
        }
        case "finished":
          this.#end(record);
          continue;
        case "error": {
          this.#end(record);
          return this.#leave(
            { kind: "task-error", task: record.name, error: out.error.cause },
            undefined,
          );
        }
      }
    }
  }

  /**
   * `out`, made by `made`, goes now unless batches wait and it must not overtake them (anything
   * but a net action): then it is held, and the batches go first.
   */
  #leave(out: WorkerOutput, made: TaskRecord | undefined): WorkerOutput {
    if (out.kind === "net" || !this.#batches.pending) {
      this.#made = made;
      return out;
    }
    this.#held = out;
    this.#heldMade = made;
    this.#heldAnswering = this.#answering;
    this.#answering = undefined;
    return this.#sendBatch(this.#batches.take() as Ready<Sender>);
  }

  /** The output that sends `ready`; a batch of one entry is its sender's, for `outputFailed`. */
  #sendBatch(ready: Ready<Sender>): WorkerOutput {
    const who = ready.who;
    if (who === undefined || "address" in who) this.#made = who;
    else {
      this.#made = who.by;
      this.#answering = who.owed;
    }
    const out = this.#batchOut;
    out.control.worker = busWorker(ready.worker);
    out.control.data = ready.bytes;
    return out;
  }

  /** Fails the task that made the output the loop could not carry out (a value the bus refused). */
  outputFailed(now: number, error: unknown): boolean {
    this.#now = now;
    const r = this.#made;
    this.#made = undefined;
    const owed = this.#answering;
    this.#answering = undefined;
    if (r === undefined || !r.alive) return false;
    this.#out.push(this.#fail(r, this.#unsendable(r, error, owed)));
    return true;
  }

  /**
   * The error of task `r` whose output could not be sent (`error` says why); the caller of the
   * call it answered, if it was an answer, is answered with an error.
   */
  #unsendable(r: TaskRecord, error: unknown, owed?: Owed): Error {
    const why = error instanceof Error ? error.message : String(error);
    if (owed !== undefined)
      this.#answer(owed, false, `${r.name} could not send its answer: ${why}`);
    return new Error(`${r.name}: an output could not be sent: ${why}`, { cause: error });
  }

  /** Removes `r` (its output was refused) and says why, as a task error. */
  #fail(r: TaskRecord, error: unknown): WorkerOutput {
    (this.#groups[r.address.group] as Group).tasks.remove(r.address.slot);
    this.#end(r);
    this.#made = undefined;
    return { kind: "task-error", task: r.name, error };
  }

  /** Carries out one task output; returns the worker output it becomes, if one. */
  #carry(now: number, r: TaskRecord, o: TaskOutput): WorkerOutput | undefined {
    switch (o.kind) {
      case "net": {
        const action = this.#net.outbound(r, o.action);
        if (action === undefined) return undefined;
        const netOut = this.#netOut;
        netOut.owner = r.address.id;
        netOut.action = action;
        return netOut;
      }
      case "send": {
        const to = o.to;
        if (to.worker === this.#index) {
          this.#inbound.message(to.id, r.address.id, o.data);
          return undefined;
        }
        if (this.#downPeers.has(to.worker)) {
          this.#stale++;
          return undefined;
        }
        try {
          return this.#readyOut(this.#batches.message(to.worker, to.id, r.address.id, o.data, r));
        } catch (error) {
          throw this.#unsendable(r, error);
        }
      }
      case "controller":
        try {
          const ready = this.#batches.message(TO_CONTROLLER, CONTROLLER, r.address.id, o.data, r);
          return this.#readyOut(ready);
        } catch (error) {
          throw this.#unsendable(r, error);
        }
      case "subscribe":
        return this.#channels.subscribe(r, o.channel);
      case "unsubscribe":
        return this.#channels.unsubscribe(r, o.channel);
      case "publish": {
        let data: Uint8Array;
        try {
          data = this.#batches.publish(r.address.id, o.data);
        } catch (error) {
          throw this.#unsendable(r, error);
        }
        return { kind: "bus", control: { op: "publish", channel: o.channel, data } };
      }
      case "spawn": {
        const config: GroupedSpawn = { task: o.task, config: o.config as Structured };
        const asked =
          o.tag === undefined ? config : { ...config, parent: r.address.id, tag: o.tag };
        return { kind: "spawn", config: asked as unknown as Structured };
      }
      case "call": {
        const target = o.to;
        const problem = this.#unreachable(target);
        if (problem !== undefined) {
          this.#queue(r, { kind: "reply", tag: o.tag, ok: false, error: problem });
          return undefined;
        }
        const call = this.#calls.start(now, r, o.tag, target.worker, String(target), o.timeoutMs);
        if (target.worker === this.#index) {
          this.#inbound.call(this.#index, call, target.id, r.address.id, o.data);
          return undefined;
        }
        try {
          const ready = this.#batches.call(target.worker, call, target.id, r.address.id, o.data, r);
          return this.#readyOut(ready);
        } catch (error) {
          throw this.#unsendable(r, error);
        }
      }
      case "reply":
      case "reply-error": {
        const owed = this.#calls.answer(r, o.call);
        if (owed === undefined) {
          throw new RangeError(
            `${r.name} answered call ${o.call}, which it does not owe (answered twice, or never given)`,
          );
        }
        const ok = o.kind === "reply";
        const data = o.kind === "reply" ? o.data : o.error;
        if (owed.worker === this.#index) {
          this.#inbound.reply(this.#index, owed.id, ok, data);
          return undefined;
        }
        try {
          const to = owed.worker < 0 ? TO_CONTROLLER : owed.worker;
          return this.#readyOut(this.#batches.reply(to, owed.id, ok, data, { owed, by: r }));
        } catch (error) {
          throw this.#unsendable(r, error, owed);
        }
      }
      case "timer":
        this.#setTimer(r, o.at);
        return undefined;
    }
  }

  /** Why `target` cannot be called now, or undefined. */
  #unreachable(target: TaskAddress): string | undefined {
    if (this.#downPeers.has(target.worker)) return `worker ${target.worker} is gone`;
    if (target.worker === this.#index && this.#record(target.id) === undefined) {
      return gone(target.id);
    }
    return undefined;
  }

  /** The output that sends `ready` now, if a batch is ready. */
  #readyOut(ready: Ready<Sender> | undefined): WorkerOutput | undefined {
    return ready === undefined ? undefined : this.#sendBatch(ready);
  }

  readonly #queueTo = (r: TaskRecord, input: TaskInput): void => this.#queue(r, input);

  /** An input for a task, given once the current drain has no flagged task left. */
  #queue(r: TaskRecord, input: TaskInput): void {
    this.#local.queue(r, input);
  }

  readonly #give = (r: TaskRecord, input: TaskInput): void => this.#deliver(r, input);

  /**
   * Sends the runtime's answer to call `owed` (its task ended, or is gone): to the controller
   * (worker -1), to a caller on this worker, or in a batch for the caller's worker.
   */
  #answer(owed: Owed, ok: boolean, data: Structured): void {
    if (owed.worker === this.#index) this.#inbound.reply(this.#index, owed.id, ok, data);
    else if (!this.#downPeers.has(owed.worker)) {
      const to = owed.worker < 0 ? TO_CONTROLLER : owed.worker;
      const ready = this.#batches.reply(to, owed.id, ok, data, { owed, by: undefined });
      // a full batch: copied, as it waits behind other outputs
      if (ready !== undefined) {
        const worker = busWorker(ready.worker);
        const copy = ready.bytes.slice();
        this.#out.push({ kind: "bus", control: { op: "direct", worker, data: copy } });
      }
    }
  }

  /** Gives `input` to `r` now (never while `r` is being drained) and flags it. */
  #deliver(r: TaskRecord, input: TaskInput): void {
    const g = r.address.group;
    // a task that failed is out of its slot until its failure is popped: stale too
    if (r.alive && (this.#groups[g] as Group).tasks.onEvent(this.#now, r.address.slot, input)) {
      this.#switcher.flagTask(g);
    } else {
      this.#stale++;
    }
  }

  #record(id: number): TaskRecord | undefined {
    if (workerOf(id) !== this.#index) return undefined;
    const r = this.#groups[groupOf(id)]?.records[slotOf(id)];
    return r !== undefined && r.address.id === id && r.alive ? r : undefined;
  }

  /** Closes what failed opens left (the backend's closing events then free their ids). */
  #followUps(): void {
    for (const f of this.#net.followUps.splice(0)) {
      this.#out.push({ kind: "net", owner: f.owner, action: f.action });
    }
  }

  #setTimer(r: TaskRecord, at: number): void {
    if (Number.isNaN(at)) throw new RangeError(`${r.name}: a timer at NaN`);
    r.timerAt = at;
    if (at < r.heapAt) {
      r.heapAt = at;
      this.#deadlines.add(at, r.address.id);
    }
  }

  /** A task ended (finished or failed): undo what it leaves behind. */
  #end(r: TaskRecord): void {
    if (!r.alive) return;
    r.alive = false;
    this.#count--;
    const group = this.#groups[r.address.group] as Group;
    if (group.records[r.address.slot] === r) group.records[r.address.slot] = undefined;
    for (const channel of [...r.channels]) {
      const out = this.#channels.unsubscribe(r, channel);
      if (out !== undefined) this.#out.push(out);
    }
    r.timerAt = Number.POSITIVE_INFINITY;
    for (const action of this.#net.release(r)) {
      this.#out.push({ kind: "net", owner: r.address.id, action });
    }
    for (const owed of this.#calls.forget(r)) {
      this.#answer(owed, false, `${r.name} ended without answering`);
    }
  }

  /**
   * Tells who asked for a spawn its outcome (the new task's address id, or why it failed): the
   * controller by its ticket (a task's tagged spawn comes with one too: the controller forwards
   * the outcome); a failure nobody asked about is a task error.
   */
  #spawned(spawn: Spawn, kind: string, outcome: number | string): void {
    const { ticket } = spawn;
    if (ticket !== undefined) {
      const message: FromTasks =
        typeof outcome === "number"
          ? { op: "spawned", ticket, address: outcome }
          : { op: "spawn-failed", ticket, error: outcome };
      this.#out.push({ kind: "tasks", message });
    } else if (typeof outcome === "string") {
      this.#out.push({
        kind: "task-error",
        task: kind,
        error: new Error(`spawn failed: ${outcome}`),
      });
    }
  }
}
