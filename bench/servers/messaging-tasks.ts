/**
 * Worker module of bench/runtime-messaging.ts: one task kind, "bench", driven by messages.
 *
 * What a bench task does with each input:
 * - a number (from the controller or a task): counts it, checking the order (the n-th number
 *   received is n); from a task, every `CREDIT` numbers it gives the sender `CREDIT` credits back;
 * - ["report"] from the controller: reports ["count", received, misordered] and starts over;
 * - ["e", x] from the controller: echoes it back ("controller" output);
 * - ["blast", to, n, window, bytes] from the controller: sends the numbers 0..n-1 to task `to`
 *   (as numbers, or with `bytes` > 0 as Uint8Arrays of that size starting with the number), at most
 *   `window` ahead of the credits it got back (tasks see no bus back-pressure: flow control is
 *   the application's), then ["end", n];
 * - ["end", n] from a task: reports ["flood", received, misordered, n] and starts over;
 * - ["pingpong", to, rounds] from the controller: ping-pong with task `to`, one at a time, then
 *   reports ["rtt", p50, p99, rounds] (microseconds, timed in this thread);
 * - ["ping", i] from a task: answers ["pong", i];
 * - ["calls", to, n, window] from the controller: calls task `to` n times, `window` at a time,
 *   then reports ["calls", ok, failed, p50, p99] (call round trip in microseconds);
 * - a call: answers with its data.
 */
import {
  type AppTask,
  defineTasks,
  Outbox,
  type Structured,
  TaskAddress,
  type TaskContext,
  type TaskInput,
  type TaskOutput,
} from "../../src/index.ts";
import { percentile } from "../lib/report.ts";

/** Numbers a receiving task acknowledges at once (as credits to the sender). */
export const CREDIT = 1024;

/** Time-out of the calls a task makes, ms. */
const CALL_TIMEOUT_MS = 10_000;

type Command =
  | readonly ["report"]
  | readonly ["e", Structured]
  | readonly ["blast", number, number, number, number?]
  | readonly ["credit", number]
  | readonly ["end", number]
  | readonly ["pingpong", number, number]
  | readonly ["ping", number]
  | readonly ["pong", number]
  | readonly ["calls", number, number, number];

/** The sequence number a bytes message starts with. */
function seqOf(data: Uint8Array): number {
  return (
    ((data[0] as number) | ((data[1] as number) << 8) | ((data[2] as number) << 16)) +
    (data[3] as number) * 2 ** 24
  );
}

class BenchTask implements AppTask {
  readonly #out = new Outbox<TaskOutput>();
  #done = false;
  // receiving numbers
  #received = 0;
  #misordered = 0;
  // sending a flood
  #to: TaskAddress | undefined;
  #total = 0;
  #sent = 0;
  #allowed = 0;
  #bytes = 0;
  // ping-pong and calls
  #rounds = 0;
  #issued = 0;
  #ok = 0;
  #failed = 0;
  #window = 0;
  #startedAt: number[] = [];
  #rtts: number[] = [];

  onEvent(_now: number, input: TaskInput): void {
    switch (input.kind) {
      case "message": {
        const data = input.data;
        if (typeof data === "number" || data instanceof Uint8Array) {
          const n = typeof data === "number" ? data : seqOf(data);
          if (n !== this.#received) this.#misordered++;
          this.#received++;
          if (input.from !== null && this.#received % CREDIT === 0) {
            this.#out.push({ kind: "send", to: input.from, data: ["credit", CREDIT] });
          }
          return;
        }
        this.#command(data as unknown as Command, input.from);
        return;
      }
      case "call":
        this.#out.push({ kind: "reply", call: input.call, data: input.data });
        return;
      case "reply": {
        const rtt = (Bun.nanoseconds() - (this.#startedAt[input.tag] ?? 0)) / 1000;
        if (input.ok && input.data === input.tag) {
          this.#ok++;
          this.#rtts.push(rtt);
        } else this.#failed++;
        if (this.#issued < this.#total) this.#call();
        else if (this.#ok + this.#failed === this.#total) {
          this.#rtts.sort((a, b) => a - b);
          this.#report([
            "calls",
            this.#ok,
            this.#failed,
            percentile(this.#rtts, 0.5),
            percentile(this.#rtts, 0.99),
          ]);
        }
        return;
      }
      default:
        return;
    }
  }

  #command(c: Command, from: TaskAddress | null): void {
    switch (c[0]) {
      case "report":
        this.#report(["count", this.#received, this.#misordered]);
        this.#received = 0;
        this.#misordered = 0;
        return;
      case "e":
        this.#out.push({ kind: "controller", data: c as unknown as Structured });
        return;
      case "blast":
        this.#to = TaskAddress.of(c[1]);
        this.#total = c[2];
        this.#sent = 0;
        this.#allowed = c[3];
        this.#bytes = c[4] ?? 0;
        this.#flood();
        return;
      case "credit":
        this.#allowed += c[1];
        this.#flood();
        return;
      case "end":
        this.#report(["flood", this.#received, this.#misordered, c[1]]);
        this.#received = 0;
        this.#misordered = 0;
        return;
      case "pingpong":
        this.#to = TaskAddress.of(c[1]);
        this.#rounds = c[2];
        this.#rtts = [];
        this.#ping(0);
        return;
      case "ping":
        if (from !== null) this.#out.push({ kind: "send", to: from, data: ["pong", c[1]] });
        return;
      case "pong": {
        this.#rtts.push((Bun.nanoseconds() - (this.#startedAt[0] ?? 0)) / 1000);
        const next = c[1] + 1;
        if (next < this.#rounds) this.#ping(next);
        else {
          this.#rtts.sort((a, b) => a - b);
          this.#report([
            "rtt",
            percentile(this.#rtts, 0.5),
            percentile(this.#rtts, 0.99),
            this.#rounds,
          ]);
        }
        return;
      }
      case "calls":
        this.#to = TaskAddress.of(c[1]);
        this.#total = c[2];
        this.#window = c[3];
        this.#issued = 0;
        this.#ok = 0;
        this.#failed = 0;
        this.#rtts = [];
        this.#startedAt = new Array<number>(c[2]).fill(0);
        while (this.#issued < Math.min(this.#window, this.#total)) this.#call();
        return;
    }
  }

  #flood(): void {
    const to = this.#to as TaskAddress;
    const until = Math.min(this.#total, this.#allowed);
    const out = this.#out;
    if (this.#bytes === 0) {
      while (this.#sent < until) out.push({ kind: "send", to, data: this.#sent++ });
    } else {
      while (this.#sent < until) {
        const data = new Uint8Array(this.#bytes);
        const n = this.#sent++;
        data[0] = n;
        data[1] = n >>> 8;
        data[2] = n >>> 16;
        data[3] = n >>> 24;
        out.push({ kind: "send", to, data });
      }
    }
    if (this.#sent === this.#total && this.#total > 0) {
      out.push({ kind: "send", to, data: ["end", this.#total] });
      this.#total = 0;
    }
  }

  #ping(i: number): void {
    this.#startedAt[0] = Bun.nanoseconds();
    this.#out.push({ kind: "send", to: this.#to as TaskAddress, data: ["ping", i] });
  }

  #call(): void {
    const tag = this.#issued++;
    this.#startedAt[tag] = Bun.nanoseconds();
    this.#out.push({
      kind: "call",
      to: this.#to as TaskAddress,
      data: tag,
      tag,
      timeoutMs: CALL_TIMEOUT_MS,
    });
  }

  #report(data: Structured): void {
    this.#out.push({ kind: "controller", data });
  }

  onShutdown(): void {
    this.#done = true;
  }

  popOutput(): TaskOutput | undefined {
    return this.#out.shift();
  }

  isEmpty(): boolean {
    return this.#done && this.#out.length === 0;
  }
}

export default defineTasks({
  bench: (_config: Structured, _context: TaskContext) => new BenchTask(),
});
