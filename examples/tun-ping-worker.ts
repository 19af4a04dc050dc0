/**
 * The TUN ping responder's worker: one task binds one queue of the device and answers what
 * `PingResponder` answers, writing each reply straight from the receive buffer it arrived in.
 * Everything else is dropped and counted by reason. The task reports "bound" (or "bind-failed") and,
 * every tick and at shutdown, its counters to the controller.
 */
import {
  type AppTask,
  defineTasks,
  type NetAction,
  Outbox,
  type TaskInput,
  type TaskOutput,
} from "bun-sansio";
import { type Drop, PingResponder, type Verdict } from "./ping-responder.ts";

/** What the program passes to each worker. */
export interface PingConfig {
  /** The queue file descriptor this worker reads and writes. */
  readonly fd: number;
  /** The kernel side's address and prefix ("10.77.0.1/24"). */
  readonly address: string;
  readonly mode: "tun" | "tap";
}

/** Packets by what became of them. */
export type PingCounters = { [V in Verdict | "write-errors"]: number };

/** What a worker tells the controller. */
export type PingReport =
  | { readonly event: "bound" }
  | { readonly event: "bind-failed"; readonly code: string; readonly message: string }
  | { readonly event: "counters"; readonly counters: PingCounters };

const DEVICE = 0;

/** A zeroed set of counters. */
export function zeroCounters(): PingCounters {
  const drops: Record<Drop, number> = {
    truncated: 0,
    "bad-version": 0,
    "bad-length": 0,
    "bad-checksum": 0,
    fragment: 0,
    "not-for-us": 0,
    ignored: 0,
  };
  return { "echo-reply": 0, "arp-reply": 0, "write-errors": 0, ...drops };
}

/** Answers pings on one queue; see the module comment. */
export class Ping implements AppTask<PingReport> {
  readonly #out = new Outbox<TaskOutput<PingReport>>();
  readonly #responder: PingResponder;
  readonly #counters = zeroCounters();
  #bound = false;
  #closing = false;

  constructor(config: PingConfig) {
    this.#responder = new PingResponder(config.address, config.mode);
    this.#net({ kind: "tun-bind", device: DEVICE, fd: config.fd });
  }

  onTick(): void {
    this.#report({ event: "counters", counters: { ...this.#counters } });
  }

  onEvent(_now: number, input: TaskInput<PingReport>): void {
    if (input.kind !== "net") return;
    const e = input.event;
    if (e.kind === "tun-packet") {
      // a cut packet cannot be checked or answered whole
      const verdict = e.truncated ? "truncated" : this.#responder.answer(e.data);
      this.#counters[verdict]++;
      if (verdict === "echo-reply" || verdict === "arp-reply") {
        this.#net({ kind: "tun-send", device: DEVICE, data: e.data });
      }
    } else if (e.kind === "tun-bind-result") {
      if (e.error !== undefined) {
        this.#report({ event: "bind-failed", code: e.error.code, message: e.error.message });
        this.#closing = true;
        return;
      }
      this.#bound = true;
      this.#report({ event: "bound" });
      if (this.#closing) this.#net({ kind: "tun-unbind", device: DEVICE });
    } else if (e.kind === "tun-send-error") {
      this.#counters["write-errors"]++;
    } else if (e.kind === "tun-unbound") {
      this.#bound = false;
      if (e.error !== undefined) {
        this.#report({ event: "bind-failed", code: e.error.code, message: e.error.message });
      }
    }
  }

  onShutdown(): void {
    this.#closing = true;
    if (this.#bound) this.#net({ kind: "tun-unbind", device: DEVICE });
    this.onTick();
  }

  popOutput(): TaskOutput<PingReport> | undefined {
    return this.#out.shift();
  }

  isEmpty(): boolean {
    return this.#closing && !this.#bound && this.#out.length === 0;
  }

  #net(action: NetAction): void {
    this.#out.push({ kind: "net", action });
  }

  #report(report: PingReport): void {
    this.#out.push({ kind: "controller", data: report });
  }
}

export default defineTasks<PingConfig>(
  { ping: (config: PingConfig) => new Ping(config) },
  { start: (_index, config) => [{ task: "ping", config }] },
);
