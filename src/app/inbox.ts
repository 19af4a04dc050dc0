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
  // side by side, in step: no object per queued input
  readonly #to = new Outbox<TaskRecord>();
  readonly #inputs = new Outbox<TaskInput>();
  #batch = 0;

  /** Inputs waiting. */
  get length(): number {
    return this.#to.length;
  }

  /** Queues `input` for `to`. */
  queue(to: TaskRecord, input: TaskInput): void {
    this.#to.push(to);
    this.#inputs.push(input);
  }

  /** Gives the next batch of queued inputs through `deliver`; false when there were none. */
  give(deliver: (to: TaskRecord, input: TaskInput) => void): boolean {
    const batch = ++this.#batch;
    let given = false;
    for (let to = this.#to.peek(); to !== undefined; to = this.#to.peek()) {
      if (to.batch === batch) break;
      this.#to.shift();
      to.batch = batch;
      deliver(to, this.#inputs.shift() as TaskInput);
      given = true;
    }
    return given;
  }
}
