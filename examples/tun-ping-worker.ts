/**
 * The TUN ping responder's worker: binds one queue of the device and answers what
 * `PingResponder` answers, writing each reply straight from the receive buffer it arrived in.
 * Everything else is dropped and counted by reason. It reports "bound" (or "bind-failed") and,
 * every tick and at shutdown, its counters to the controller.
 */
import {
  defineWorker,
  type NetEvent,
  type Structured,
  type WorkerInner,
  type WorkerInput,
  type WorkerOutput,
} from "bun-sansio";
import { type Drop, PingResponder, type Verdict } from "./ping-responder.ts";

/** What the program passes to each worker. */
export interface PingConfig {
  readonly [key: string]: Structured;
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
export class PingWorker implements WorkerInner {
  readonly #out: WorkerOutput[] = [];
  readonly #responder: PingResponder;
  readonly #counters = zeroCounters();
  #bound = false;
  #closing = false;

  constructor(config: PingConfig) {
    this.#responder = new PingResponder(config.address, config.mode);
    this.#out.push({
      kind: "net",
      owner: 0,
      action: { kind: "tun-bind", device: DEVICE, fd: config.fd },
    });
  }

  tasks(): number {
    return this.#bound ? 1 : 0;
  }

  isEmpty(): boolean {
    return !this.#bound && this.#out.length === 0;
  }

  spawn(): void {
    throw new Error("the ping worker has no spawnable tasks");
  }

  onTick(): void {
    this.#report({ event: "counters", counters: { ...this.#counters } });
  }

  onEvent(_now: number, input: WorkerInput): void {
    if (input.kind !== "net") return;
    const e = input.event;
    if (e.kind === "tun-packet") {
      // a cut packet cannot be checked or answered whole
      const verdict = e.truncated ? "truncated" : this.#responder.answer(e.data);
      this.#counters[verdict]++;
      if (verdict === "echo-reply" || verdict === "arp-reply") {
        this.#out.push({
          kind: "net",
          owner: 0,
          action: { kind: "tun-send", device: DEVICE, data: e.data },
        });
      }
      return;
    }
    this.#onControl(e);
  }

  onShutdown(): void {
    this.#closing = true;
    if (this.#bound) {
      this.#out.push({ kind: "net", owner: 0, action: { kind: "tun-unbind", device: DEVICE } });
    }
    this.onTick();
  }

  popOutput(): WorkerOutput | undefined {
    return this.#out.shift();
  }

  #onControl(e: NetEvent): void {
    if (e.kind === "tun-bind-result") {
      if (e.error !== undefined) {
        this.#report({ event: "bind-failed", code: e.error.code, message: e.error.message });
        return;
      }
      this.#bound = true;
      this.#report({ event: "bound" });
      if (this.#closing) {
        this.#out.push({ kind: "net", owner: 0, action: { kind: "tun-unbind", device: DEVICE } });
      }
    } else if (e.kind === "tun-send-error") {
      this.#counters["write-errors"]++;
    } else if (e.kind === "tun-unbound") {
      this.#bound = false;
      if (e.error !== undefined) {
        this.#report({ event: "bind-failed", code: e.error.code, message: e.error.message });
      }
    }
  }

  #report(report: PingReport): void {
    this.#out.push({ kind: "external", data: report });
  }
}

export default defineWorker<PingConfig>((_index, config) => new PingWorker(config));
