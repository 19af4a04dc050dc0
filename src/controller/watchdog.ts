/**
 * The watchdog: every worker publishes its loop count and, while it sleeps, when it will wake at
 * the latest (its stats block's live cells). A worker whose count has not moved for `stallMs`
 * past that is stalled; one whose count moves again has recovered.
 */
import { readStats } from "../runtime/stats.ts";
import type { WorkerRecord } from "./record.ts";

/** What the controller does when a worker stalls or recovers (its state is already updated). */
export interface WatchdogListener {
  stalled(w: WorkerRecord, stalledForMs: number): void;
  recovered(w: WorkerRecord, stalledForMs: number): void;
}

/** Watches the workers of one controller every `min(250, stallMs / 4)` ms (0: never). */
export class Watchdog {
  readonly #stallMs: number;
  readonly #workers: readonly WorkerRecord[];
  readonly #on: WatchdogListener;
  #timer: ReturnType<typeof setInterval> | undefined;

  /** Watches `workers` (the controller's own list, read at every round). */
  constructor(stallMs: number, workers: readonly WorkerRecord[], on: WatchdogListener) {
    if (!(stallMs >= 0)) throw new RangeError(`stallMs must be >= 0, got ${stallMs}`);
    this.#stallMs = stallMs;
    this.#workers = workers;
    this.#on = on;
  }

  /** Starts the rounds (idempotent; does nothing with `stallMs` 0). */
  start(): void {
    if (this.#timer !== undefined || this.#stallMs === 0) return;
    const every = Math.min(250, Math.max(10, this.#stallMs / 4));
    this.#timer = setInterval(() => this.#round(performance.now()), every);
    this.#timer.unref();
  }

  /** Stops the rounds. */
  stop(): void {
    clearInterval(this.#timer);
  }

  #round(now: number): void {
    for (const w of this.#workers) {
      if (w.state !== "running" && w.state !== "stopping" && w.state !== "stalled") continue;
      const s = readStats(w.stats);
      if (s.loops !== w.seenLoops) {
        w.seenLoops = s.loops;
        w.progressAt = now;
        if (w.state === "stalled") {
          w.state = w.unstalled;
          this.#on.recovered(w, Math.round(now - w.stalledAt));
        }
        continue;
      }
      const due = Math.max(w.progressAt, s.parkedUntil);
      if (w.state !== "stalled" && now - due > this.#stallMs) {
        w.unstalled = w.state === "stopping" ? "stopping" : "running";
        w.state = "stalled";
        w.stalledAt = w.progressAt;
        this.#on.stalled(w, Math.round(now - w.progressAt));
      }
    }
  }
}
