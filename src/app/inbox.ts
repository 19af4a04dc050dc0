/** Inputs for a grouped worker's own tasks that wait for the current drain to end. */
import { Outbox } from "./outbox.ts";
import type { TaskRecord } from "./record.ts";
import type { TaskInput } from "./task.ts";

/**
 * Contract: `queue` never gives anything (a drain may be under way); `give` hands out queued
 * inputs in order, as many as it can without giving a task a second input before its outputs
 * for the first are popped, so a channel's fan-out is given whole and its outputs come in the
 * two-level order. `give` returns false when nothing was queued.
 */
export class LocalInbox {
  readonly #queued = new Outbox<{ readonly to: TaskRecord; readonly input: TaskInput }>();
  #batch = 0;

  /** Inputs waiting. */
  get length(): number {
    return this.#queued.length;
  }

  /** Queues `input` for `to`. */
  queue(to: TaskRecord, input: TaskInput): void {
    this.#queued.push({ to, input });
  }

  /** Gives the next batch of queued inputs through `deliver`; false when there were none. */
  give(deliver: (to: TaskRecord, input: TaskInput) => void): boolean {
    const batch = ++this.#batch;
    let given = false;
    for (let next = this.#queued.peek(); next !== undefined; next = this.#queued.peek()) {
      if (next.to.batch === batch) break;
      this.#queued.shift();
      next.to.batch = batch;
      deliver(next.to, next.input);
      given = true;
    }
    return given;
  }
}
