/** Which local tasks subscribe to which bus channel, and when the worker's endpoint must follow. */
import { MAX_CHANNEL } from "../bus/endpoint.ts";
import type { WorkerOutput } from "../worker/inner.ts";
import type { TaskRecord } from "./record.ts";

/**
 * Contract: the worker's bus endpoint subscribes to a channel with its first local subscriber
 * and unsubscribes with its last: `subscribe` and `unsubscribe` return the bus output that does
 * it, when one is due. A task subscribing twice, or leaving a channel it is not in, changes
 * nothing.
 */
export class LocalChannels {
  readonly #byChannel = new Map<number, Set<TaskRecord>>();

  /** Task `r` subscribes to `channel` (an integer 0..MAX_CHANNEL; throws a RangeError otherwise). */
  subscribe(r: TaskRecord, channel: number): WorkerOutput | undefined {
    if (!Number.isInteger(channel) || channel < 0 || channel > MAX_CHANNEL) {
      throw new RangeError(
        `${r.name}: channel must be an integer from 0 to ${MAX_CHANNEL}, not ${channel}`,
      );
    }
    if (r.channels.has(channel)) return undefined;
    r.channels.add(channel);
    let set = this.#byChannel.get(channel);
    if (set === undefined) {
      set = new Set();
      this.#byChannel.set(channel, set);
    }
    set.add(r);
    return set.size === 1 ? { kind: "bus", control: { op: "subscribe", channel } } : undefined;
  }

  /** Task `r` leaves `channel`. */
  unsubscribe(r: TaskRecord, channel: number): WorkerOutput | undefined {
    if (!r.channels.delete(channel)) return undefined;
    const set = this.#byChannel.get(channel);
    set?.delete(r);
    if (set === undefined || set.size > 0) return undefined;
    this.#byChannel.delete(channel);
    return { kind: "bus", control: { op: "unsubscribe", channel } };
  }

  /** The local subscribers of `channel`, in the order they subscribed. */
  of(channel: number): ReadonlySet<TaskRecord> | undefined {
    return this.#byChannel.get(channel);
  }
}
