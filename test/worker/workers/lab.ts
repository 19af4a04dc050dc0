/**
 * A worker for the runtime tests: tasks in a TaskGroup that answer the controller, talk over
 * pub/sub channels, finish, throw; and commands that make the whole worker misbehave.
 *
 * Controller → worker ("external") commands: see `Command`. Every answer is an external message.
 */

import {
  defineWorker,
  SocketAddr,
  type Structured,
  type Task,
  TaskGroup,
  TunDevice,
  type WorkerInner,
  type WorkerInput,
  type WorkerOutput,
} from "../../../src/index.ts";
import { currentCpu } from "../../../src/sys/thread.ts";

/** A spawn config: a task id and, optionally, a channel it listens to. */
export interface LabSpawn {
  readonly [key: string]: Structured;
  readonly id: string;
  readonly channel?: number;
}

/** Commands the tests send. */
export type Command =
  | { op: "ping" }
  | { op: "cpu" }
  | { op: "to-task"; id: string; text: string }
  | { op: "finish"; id: string }
  | { op: "throw"; id: string }
  | { op: "publish"; channel: number; text: string }
  | { op: "spawn-request"; id: string }
  | { op: "bad-output" }
  | { op: "flood"; count: number }
  | { op: "die" }
  | { op: "exit"; code: number }
  | { op: "hang-on-shutdown" }
  /** Reports `count` messages, then one of `bigBytes` (too large for the bus), then `count` more. */
  | { op: "reports-then-big"; count: number; bigBytes: number }
  /** Busy for `ms` (the thread does nothing else meanwhile). */
  | { op: "busy"; ms: number }
  /** An endless loop: the worker hangs for good. */
  | { op: "spin" }
  /** Publishes `count` messages of `size` bytes on `channel` (safe sends). */
  | { op: "publish-many"; channel: number; count: number; size: number }
  /** Keeps `mb` more MiB on every tick, without end. */
  | { op: "hog"; mb: number }
  /** Opens a UDP socket on 127.0.0.1:`port` (SO_REUSEPORT) that echoes every datagram. */
  | { op: "listen"; port: number }
  /** Creates TUN device `name` inside the worker (its queue is the worker's own fd). */
  | { op: "make-tun"; name: string };

type TaskIn =
  | { op: "say"; text: string }
  | { op: "finish" }
  | { op: "throw" }
  | { op: "heard"; text: string; from: number };

class LabTask implements Task<TaskIn, WorkerOutput> {
  readonly #out: WorkerOutput[] = [];
  #done = false;

  constructor(
    readonly id: string,
    readonly worker: number,
  ) {}

  onTick(): void {}

  onEvent(_now: number, input: TaskIn): void {
    switch (input.op) {
      case "say":
        this.#tell({ task: this.id, worker: this.worker, got: input.text });
        return;
      case "heard":
        this.#tell({ task: this.id, worker: this.worker, heard: input.text, from: input.from });
        return;
      case "finish":
        this.#done = true;
        return;
      case "throw":
        throw new Error(`task ${this.id} was told to throw`);
    }
  }

  onShutdown(): void {
    this.#tell({ task: this.id, worker: this.worker, bye: true });
    this.#done = true;
  }

  popOutput(): WorkerOutput | undefined {
    return this.#out.shift();
  }

  isEmpty(): boolean {
    return this.#done && this.#out.length === 0;
  }

  emptyEvent(): WorkerOutput {
    return { kind: "external", data: { finished: this.id, worker: this.worker } };
  }

  #tell(data: Structured): void {
    this.#out.push({ kind: "external", data });
  }
}

/** Memory kept by "hog". */
const hoard: Uint8Array[] = [];

/** The lab worker's inner (exported so the simulated-time harness can run it too). */
export class LabWorker implements WorkerInner {
  readonly #group = new TaskGroup<TaskIn, WorkerOutput, LabTask>();
  readonly #slots = new Map<string, number>();
  readonly #listeners = new Map<number, Set<string>>();
  readonly #out: WorkerOutput[] = [];
  #stopping = false;
  #hang = false;
  #hogMb = 0;
  #listening = false;

  constructor(readonly index: number) {}

  tasks(): number {
    return this.#group.size;
  }

  isEmpty(): boolean {
    return this.#stopping && !this.#hang && this.#group.isEmpty() && this.#out.length === 0;
  }

  spawn(_now: number, config: Structured): void {
    const { id, channel } = config as LabSpawn;
    const slot = this.#group.add(new LabTask(id, this.index));
    this.#slots.set(id, slot);
    if (channel !== undefined) {
      let ids = this.#listeners.get(channel);
      if (ids === undefined) {
        ids = new Set();
        this.#listeners.set(channel, ids);
        this.#out.push({ kind: "bus", control: { op: "subscribe", channel } });
      }
      ids.add(id);
    }
    this.#out.push({ kind: "external", data: { spawned: id, worker: this.index } });
  }

  onTick(now: number): void {
    for (let i = 0; i < this.#hogMb; i++) hoard.push(new Uint8Array(2 ** 20).fill(1));
    this.#group.onTick(now);
  }

  onEvent(now: number, input: WorkerInput): void {
    if (input.kind === "net") {
      const e = input.event;
      if (e.kind === "udp-listen-result") {
        const data =
          e.error === undefined ? { listening: this.index } : { listenError: e.error.code };
        this.#out.push({ kind: "external", data });
      } else if (e.kind === "udp-packet") {
        this.#out.push({
          kind: "net",
          owner: 0,
          action: { kind: "udp-send", socket: 0, to: e.from, data: e.data },
        });
      }
      return;
    }
    if (input.kind === "bus") {
      const { text } = input.data as { text: string };
      for (const id of this.#listeners.get(input.channel) ?? []) {
        this.#toTask(now, id, { op: "heard", text, from: input.from });
      }
      return;
    }
    if (input.kind !== "external") return;
    const c = input.data as Command;
    switch (c.op) {
      case "ping":
        this.#out.push({ kind: "external", data: { pong: this.index } });
        return;
      case "cpu":
        this.#out.push({ kind: "external", data: { cpu: currentCpu() } });
        return;
      case "to-task":
        this.#toTask(now, c.id, { op: "say", text: c.text });
        return;
      case "finish":
        this.#toTask(now, c.id, { op: "finish" });
        return;
      case "throw":
        this.#toTask(now, c.id, { op: "throw" });
        return;
      case "publish":
        this.#out.push({
          kind: "bus",
          control: { op: "publish", channel: c.channel, data: { text: c.text } },
        });
        return;
      case "spawn-request":
        this.#out.push({ kind: "spawn", config: { id: c.id } });
        return;
      case "bad-output":
        this.#out.push({ kind: "bus", control: { op: "direct", worker: 99, data: null } });
        this.#out.push({ kind: "external", data: { afterBadOutput: this.index } });
        return;
      case "flood":
        for (let i = 0; i < c.count; i++) {
          this.#out.push({ kind: "external", data: { flood: i, pad: "x".repeat(64) } });
        }
        return;
      case "die":
        throw new Error(`worker ${this.index} was told to die`);
      case "exit":
        process.exit(c.code);
        return;
      case "hang-on-shutdown":
        this.#hang = true;
        return;
      case "reports-then-big":
        for (let i = 0; i < 2 * c.count + 1; i++) {
          const data = i === c.count ? { big: "x".repeat(c.bigBytes) } : { report: i };
          this.#out.push({ kind: "external", data });
        }
        return;
      case "busy": {
        const until = performance.now() + c.ms;
        while (performance.now() < until);
        return;
      }
      case "spin":
        for (;;);
      case "publish-many": {
        const data = { text: "p".repeat(c.size) };
        for (let i = 0; i < c.count; i++) {
          this.#out.push({ kind: "bus", control: { op: "publish", channel: c.channel, data } });
        }
        this.#out.push({ kind: "external", data: { published: c.count } });
        return;
      }
      case "hog":
        this.#hogMb = c.mb;
        return;
      case "make-tun": {
        const device = TunDevice.create({ name: c.name });
        this.#out.push({
          kind: "external",
          data: { tun: device.name, fd: device.queues[0] ?? -1 },
        });
        return;
      }
      case "listen":
        if (this.#listening) return;
        this.#listening = true;
        this.#out.push({
          kind: "net",
          owner: 0,
          action: {
            kind: "udp-listen",
            socket: 0,
            bind: SocketAddr.parse("127.0.0.1", c.port),
            reusePort: true,
          },
        });
        return;
    }
  }

  onShutdown(now: number): void {
    this.#stopping = true;
    this.#group.onShutdown(now);
  }

  popOutput(now: number): WorkerOutput | undefined {
    const own = this.#out.shift();
    if (own !== undefined) return own;
    for (;;) {
      const out = this.#group.popOutput(now);
      if (out === undefined) return undefined;
      switch (out.kind) {
        case "output":
          return out.value;
        case "finished":
          this.#forget(out.index);
          return out.value;
        case "error":
          return { kind: "task-error", task: this.#forget(out.index), error: out.error };
        case "empty":
          continue;
      }
    }
  }

  #toTask(now: number, id: string, input: TaskIn): void {
    const slot = this.#slots.get(id);
    if (slot === undefined) {
      this.#out.push({ kind: "external", data: { unknownTask: id } });
      return;
    }
    this.#group.onEvent(now, slot, input);
  }

  #forget(slot: number): string {
    for (const [id, s] of this.#slots) {
      if (s !== slot) continue;
      this.#slots.delete(id);
      for (const ids of this.#listeners.values()) ids.delete(id);
      return id;
    }
    return `slot ${slot}`;
  }
}

export default defineWorker((index) => new LabWorker(index));
