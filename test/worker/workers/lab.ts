/**
 * A hand-written worker (the low-level `WorkerInner` path) for the tests of what happens to a
 * whole worker: it answers the controller, publishes and listens on channels, echoes datagrams,
 * and on command misbehaves (throws, exits, hangs, spins, hoards memory, sends what the bus or
 * the runtime refuses). Tasks are not its business: the grouped worker's tests use the probe
 * tasks of test/app/probe.ts.
 *
 * Controller → worker ("external") commands: see `Command`; every answer is an external
 * message. A spawn config `{ id }` only counts as a task (for placement): it says
 * `{ spawned: id, worker }` now and `{ bye: id }` at shutdown.
 */

import {
  defineWorker,
  SocketAddr,
  type Structured,
  TunDevice,
  type WorkerInner,
  type WorkerInput,
  type WorkerOutput,
} from "../../../src/index.ts";
import { currentCpu } from "../../../src/sys/thread.ts";

/** A spawn config: what the placed "task" is called. */
export interface LabSpawn {
  readonly [key: string]: Structured;
  readonly id: string;
}

/** Commands the tests send. */
export type Command =
  | { op: "ping" }
  | { op: "cpu" }
  /** Answers `{ echo: n }` (`pad` makes the command as large as a test needs). */
  | { op: "echo"; n: number; pad?: string }
  /** Subscribes to `channel`; what is published there is told as `{ heard, from }`. */
  | { op: "subscribe"; channel: number }
  | { op: "publish"; channel: number; text: string }
  /** Asks the controller to spawn `{ id }` (a task's "spawn" output, by hand). */
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

/** Memory kept by "hog". */
const hoard: Uint8Array[] = [];

/** The lab worker's inner (exported so the simulated-time harness can run it too). */
export class LabWorker implements WorkerInner {
  readonly #placed: string[] = [];
  readonly #out: WorkerOutput[] = [];
  #stopping = false;
  #hang = false;
  #hogMb = 0;
  #listening = false;

  constructor(readonly index: number) {}

  tasks(): number {
    return this.#placed.length;
  }

  isEmpty(): boolean {
    return this.#stopping && !this.#hang && this.#out.length === 0;
  }

  spawn(_now: number, config: Structured): void {
    const { id } = config as LabSpawn;
    this.#placed.push(id);
    this.#tell({ spawned: id, worker: this.index });
  }

  onTick(): void {
    for (let i = 0; i < this.#hogMb; i++) hoard.push(new Uint8Array(2 ** 20).fill(1));
  }

  onEvent(_now: number, input: WorkerInput): void {
    if (input.kind === "net") {
      const e = input.event;
      if (e.kind === "udp-listen-result") {
        this.#tell(
          e.error === undefined ? { listening: this.index } : { listenError: e.error.code },
        );
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
      this.#tell({ worker: this.index, heard: text, channel: input.channel, from: input.from });
      return;
    }
    if (input.kind === "external") this.#command(input.data as Command);
  }

  #command(c: Command): void {
    switch (c.op) {
      case "ping":
        this.#tell({ pong: this.index });
        return;
      case "cpu":
        this.#tell({ cpu: currentCpu() });
        return;
      case "echo":
        this.#tell({ echo: c.n });
        return;
      case "subscribe":
        this.#out.push({ kind: "bus", control: { op: "subscribe", channel: c.channel } });
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
        this.#tell({ afterBadOutput: this.index });
        return;
      case "flood":
        for (let i = 0; i < c.count; i++) this.#tell({ flood: i, pad: "x".repeat(64) });
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
          this.#tell(i === c.count ? { big: "x".repeat(c.bigBytes) } : { report: i });
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
        this.#tell({ published: c.count });
        return;
      }
      case "hog":
        this.#hogMb = c.mb;
        return;
      case "make-tun": {
        const device = TunDevice.create({ name: c.name });
        this.#tell({ tun: device.name, fd: device.queues[0] ?? -1 });
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

  onShutdown(): void {
    this.#stopping = true;
    for (const id of this.#placed.splice(0)) this.#tell({ bye: id, worker: this.index });
  }

  popOutput(): WorkerOutput | undefined {
    return this.#out.shift();
  }

  #tell(data: Structured): void {
    this.#out.push({ kind: "external", data });
  }
}

export default defineWorker((index) => new LabWorker(index));
