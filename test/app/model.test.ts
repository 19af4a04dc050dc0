/**
 * Property test of the grouped worker against a reference model, on simulated time: a random
 * schedule of spawns (three kinds), controller messages, task→task messages and calls (same
 * worker and across), channel subscriptions and publishes, timers, datagrams between task-local
 * sockets, task failures and finishes, then shutdown, on two workers. The model says what every
 * task reports to the controller and in which order (the two-level order for what reaches
 * several tasks of one worker at one instant: kind first, then slot), which deliveries are
 * stale and dropped, and which task errors there are.
 */
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import {
  type AppTask,
  GroupedWorker,
  SimHarness,
  SimNetwork,
  SocketAddr,
  TaskAddress,
  type TaskContext,
  type TaskInput,
  type TaskOutput,
} from "../../src/index.ts";

/** What the controller tells a model task to do. */
type Command =
  | { readonly op: "sub" | "unsub"; readonly channel: number }
  | { readonly op: "pub"; readonly channel: number; readonly n: number }
  | { readonly op: "tell"; readonly to: number; readonly n: number }
  | { readonly op: "call"; readonly to: number; readonly n: number }
  | { readonly op: "timer"; readonly at: number }
  | { readonly op: "listen"; readonly socket: number; readonly port: number }
  | { readonly op: "udp"; readonly socket: number; readonly port: number; readonly n: number }
  | { readonly op: "throw" | "finish" };

/** A report: the reporting task's address id, then what happened. */
type Report = readonly [number, ...(string | number)[]];
type Wire = Command | number | Report;

/** A task that does what it is told and reports everything it is given. */
class ModelTask implements AppTask<Wire> {
  readonly #out: TaskOutput<Wire>[] = [];
  readonly #id: number;
  #done = false;

  constructor(context: TaskContext) {
    this.#id = context.address.id;
    this.#report("born", context.kind);
  }

  onEvent(_now: number, input: TaskInput<Wire>): void {
    switch (input.kind) {
      case "message":
        if (input.from === null) this.#command(input.data as Command);
        else this.#report("msg", input.from.id, input.data as number);
        return;
      case "channel":
        this.#report("ch", input.channel, input.from.id, input.data as number);
        return;
      case "call":
        this.#report("called", input.from?.id ?? -1, input.data as number);
        this.#out.push({ kind: "reply", call: input.call, data: (input.data as number) * 2 });
        return;
      case "reply":
        this.#report("reply", input.tag, input.ok ? (input.data as number) : "failed");
        return;
      case "timer":
        this.#report("timer", input.at);
        return;
      case "net": {
        const e = input.event;
        if (e.kind === "udp-packet") this.#report("pkt", e.socket, e.data[0] as number);
        else if (e.kind === "udp-listen-result")
          this.#report("listen", e.socket, e.error?.code ?? "ok");
        else if (e.kind === "udp-send-error") this.#report("send-error", e.socket);
        return;
      }
    }
  }

  #command(c: Command): void {
    switch (c.op) {
      case "sub":
      case "unsub":
        this.#out.push({ kind: c.op === "sub" ? "subscribe" : "unsubscribe", channel: c.channel });
        return;
      case "pub":
        this.#out.push({ kind: "publish", channel: c.channel, data: c.n });
        return;
      case "tell":
        this.#out.push({ kind: "send", to: TaskAddress.of(c.to), data: c.n });
        return;
      case "call":
        this.#out.push({
          kind: "call",
          to: TaskAddress.of(c.to),
          data: c.n,
          tag: c.n,
          timeoutMs: 1000,
        });
        return;
      case "timer":
        this.#out.push({ kind: "timer", at: c.at });
        return;
      case "listen":
        this.#out.push({
          kind: "net",
          action: {
            kind: "udp-listen",
            socket: c.socket,
            bind: SocketAddr.parse("127.0.0.1", c.port),
          },
        });
        return;
      case "udp":
        this.#out.push({
          kind: "net",
          action: {
            kind: "udp-send",
            socket: c.socket,
            to: SocketAddr.parse("127.0.0.1", c.port),
            data: new Uint8Array([c.n]),
          },
        });
        return;
      case "throw":
        throw new Error("told to");
      case "finish":
        this.#done = true;
        return;
    }
  }

  onShutdown(): void {
    this.#report("bye");
    this.#done = true;
  }

  popOutput(): TaskOutput<Wire> | undefined {
    return this.#out.shift();
  }

  isEmpty(): boolean {
    return this.#done && this.#out.length === 0;
  }

  #report(...what: (string | number)[]): void {
    this.#out.push({ kind: "controller", data: [this.#id, ...what] });
  }
}

const make = (_config: null, context: TaskContext) => new ModelTask(context);
const KINDS = { a: make, b: make, c: make };
const KIND_NAMES = Object.keys(KINDS);

/** One step of a schedule; task numbers index the tasks spawned so far (modulo their count). */
type Step =
  | { readonly s: "spawn"; readonly kind: number }
  | { readonly s: "do"; readonly task: number; readonly command: StepCommand };
type StepCommand =
  | { readonly op: "sub" | "unsub"; readonly channel: number }
  | { readonly op: "pub"; readonly channel: number }
  | { readonly op: "tell" | "call" | "udp"; readonly to: number }
  | { readonly op: "timer"; readonly inSteps: number }
  | { readonly op: "listen"; readonly socket: number }
  | { readonly op: "throw" | "finish" };

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ s: fc.constant("spawn" as const), kind: fc.nat(2) }) },
  {
    weight: 12,
    arbitrary: fc.record({
      s: fc.constant("do" as const),
      task: fc.nat(40),
      command: fc.oneof(
        fc.record({ op: fc.constantFrom("sub" as const, "unsub" as const), channel: fc.nat(2) }),
        fc.record({ op: fc.constant("pub" as const), channel: fc.nat(2) }),
        fc.record({
          op: fc.constantFrom("tell" as const, "call" as const, "udp" as const),
          to: fc.nat(40),
        }),
        fc.record({ op: fc.constant("timer" as const), inSteps: fc.integer({ min: 0, max: 3 }) }),
        fc.record({ op: fc.constant("listen" as const), socket: fc.nat(1) }),
        {
          weight: 1,
          arbitrary: fc.record({ op: fc.constantFrom("throw" as const, "finish" as const) }),
        },
      ),
    }),
  },
);

const STEP_MS = 10;

/** The model's view of one task. */
interface Modelled {
  readonly address: TaskAddress;
  /** Its port, once it has listened (one socket per task in this test). */
  port: number | undefined;
  socket: number | undefined;
  alive: boolean;
  readonly channels: Set<number>;
  timerAt: number;
}

/** Runs `steps` on the grouped worker and on the model; returns both outcomes. */
function run(steps: readonly Step[]) {
  const network = new SimNetwork(7);
  const host = network.addHost("host");
  const h = new SimHarness(network, { busLatencyMs: 1 });
  const inners = [new GroupedWorker(0, KINDS), new GroupedWorker(1, KINDS)];
  for (const inner of inners) h.add({ host, inner, tickMs: 0 });

  const tasks: Modelled[] = [];
  const expected: Report[][] = [[], []];
  const expectedErrors: string[][] = [[], []];
  let expectedStale = 0;
  let ticket = 0;
  const say = (t: Modelled, ...what: (string | number)[]) => {
    (expected[t.address.worker] as Report[]).push([t.address.id, ...what]);
  };
  /** The two-level order of one worker: kind (group) first, then slot. */
  const twoLevel = (a: Modelled, b: Modelled) =>
    a.address.group - b.address.group || a.address.slot - b.address.slot;
  const end = (t: Modelled) => {
    t.alive = false;
    t.channels.clear();
    t.timerAt = Number.POSITIVE_INFINITY;
  };
  /** Timers due at `at`, in the two-level order per worker. */
  const timersAt = (at: number) => {
    for (const t of tasks.filter((x) => x.alive && x.timerAt === at).sort(twoLevel)) {
      t.timerAt = Number.POSITIVE_INFINITY;
      say(t, "timer", at);
    }
  };

  for (const [i, step] of steps.entries()) {
    const now = i * STEP_MS;
    h.run(now);
    if (step.s === "spawn") {
      const t = ticket++;
      const w = h.spawn({ task: KIND_NAMES[step.kind] as string, config: null, ticket: t });
      const spawned = h.fromTasks(w).find((m) => m.op === "spawned" && m.ticket === t);
      if (spawned?.op !== "spawned") throw new Error("a spawn was not answered");
      const address = TaskAddress.of(spawned.address);
      // never an address handed out before
      expect(tasks.some((x) => x.address.id === address.id)).toBe(false);
      const m: Modelled = {
        address,
        port: undefined,
        socket: undefined,
        alive: true,
        channels: new Set(),
        timerAt: Number.POSITIVE_INFINITY,
      };
      tasks.push(m);
      say(m, "born", KIND_NAMES[step.kind] as string);
    } else if (tasks.length > 0) {
      const x = tasks[step.task % tasks.length] as Modelled;
      const c = step.command;
      const target = "to" in c ? (tasks[c.to % tasks.length] as Modelled) : x;
      let command: Command;
      switch (c.op) {
        case "sub":
        case "unsub":
          command = c;
          break;
        case "pub":
        case "tell":
        case "call":
          command =
            c.op === "pub"
              ? { op: "pub", channel: c.channel, n: i }
              : { op: c.op, to: target.address.id, n: i };
          break;
        case "timer":
          command = { op: "timer", at: now + c.inSteps * STEP_MS + STEP_MS / 2 };
          break;
        case "listen":
          command = { op: "listen", socket: x.socket ?? c.socket, port: 6000 + tasks.indexOf(x) };
          break;
        case "udp":
          command = { op: "udp", socket: x.socket ?? 0, port: target.port ?? 5999, n: i % 256 };
          break;
        default:
          command = c;
      }
      h.toTasks(x.address.worker, { op: "message", to: x.address.id, data: command });
      // the model
      if (!x.alive) expectedStale++;
      else {
        switch (command.op) {
          case "sub":
            x.channels.add(command.channel);
            break;
          case "unsub":
            x.channels.delete(command.channel);
            break;
          case "tell":
            if (!target.alive) expectedStale++;
            else say(target, "msg", x.address.id, i);
            break;
          case "call":
            if (target.alive) say(target, "called", x.address.id, i);
            // a call to a task gone fails, at once on its own worker, after a round trip otherwise
            say(x, "reply", i, target.alive ? i * 2 : "failed");
            break;
          case "pub":
            for (const w of [0, 1]) {
              for (const s of tasks
                .filter((t) => t.alive && t.address.worker === w && t.channels.has(command.channel))
                .sort(twoLevel)) {
                say(s, "ch", command.channel, x.address.id, i);
              }
            }
            break;
          case "timer":
            x.timerAt = command.at;
            break;
          case "listen":
            // a second listen reuses the task's socket id: the runtime refuses an id in use
            if (x.socket === undefined) {
              x.socket = command.socket;
              x.port = command.port;
              say(x, "listen", command.socket, "ok");
            } else say(x, "listen", command.socket, "EEXIST");
            break;
          case "udp":
            if (x.socket === undefined) say(x, "send-error", 0);
            else if (target.alive && target.port === command.port) {
              say(target, "pkt", target.socket as number, i % 256);
            }
            break;
          case "throw":
            end(x);
            (expectedErrors[x.address.worker] as string[]).push(
              `${KIND_NAMES[x.address.group]} ${x.address}`,
            );
            break;
          case "finish":
            end(x);
            break;
        }
      }
    }
    h.run(now + STEP_MS / 2);
    timersAt(now + STEP_MS / 2);
  }
  h.run(steps.length * STEP_MS);
  expect(h.shutdown(steps.length * STEP_MS + 1000)).toBe(true);
  for (const t of tasks.filter((x) => x.alive).sort(twoLevel)) say(t, "bye");

  const got = [0, 1].map((w) =>
    h.fromTasks(w).flatMap((m) => (m.op === "message" ? [m.data as unknown as Report] : [])),
  );
  const errors = [0, 1].map((w) =>
    h.reports(w).map((r) => (r.kind === "task-error" ? r.task : `worker-error ${String(r.error)}`)),
  );
  const stale = inners.reduce((n, inner) => n + inner.counters().staleDrops, 0);
  return {
    got,
    expected,
    errors,
    expectedErrors,
    stale,
    expectedStale,
    tasks: inners.map((inner) => inner.tasks()),
  };
}

describe("the grouped worker against a reference model", () => {
  test("random schedules: every report, in order; stale deliveries counted; task errors named; shutdown ends all", () => {
    fc.assert(
      fc.property(fc.array(stepArb, { minLength: 20, maxLength: 80, size: "max" }), (steps) => {
        const r = run(steps);
        expect(r.errors).toEqual(r.expectedErrors);
        expect(r.got).toEqual(r.expected);
        expect(r.stale).toBe(r.expectedStale);
        expect(r.tasks).toEqual([0, 0]);
      }),
      { numRuns: 300 },
    );
  });
});
