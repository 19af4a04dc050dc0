/**
 * The bus of a `SimHarness`: the runtime's worker-to-worker messages (direct, broadcast,
 * pub/sub) carried in memory on the simulated clock, with a fixed latency.
 */

import { JsonBytesCodec, type Structured } from "../bus/codec.ts";
import { Subscriptions } from "../bus/subscriptions.ts";
import type { BusControl, WorkerInput } from "../worker/inner.ts";

/** A message from another worker, as the receiving inner gets it. */
type BusInput = Extract<WorkerInput, { kind: "bus" }>;

/** One message on its way to a worker. */
interface InFlight {
  readonly at: number;
  readonly to: number;
  readonly input: BusInput;
}

/** A subscription change on its way to the other workers' views. */
interface ViewChange {
  readonly at: number;
  readonly view: number;
  readonly from: number;
  readonly channel: number;
  readonly subscribe: boolean;
}

/**
 * In-memory bus between the workers of a harness.
 *
 * Contract (the runtime bus's, minus rings): every message takes `latencyMs` of virtual time and
 * messages from one worker to another arrive in the order sent. Each worker has its own view of
 * who subscribes to what: its own subscribe/unsubscribe applies to its view at once and reaches
 * the other views `latencyMs` later, so a publish sent before that does not reach the new
 * subscriber, as on the real bus. A publish goes to every subscriber in the sender's view, the
 * sender included; a broadcast to every other worker. There are no rings here, so nothing is
 * ever full or capped and `safe` makes no difference. A direct send to a worker that does not
 * exist throws the runtime's `RangeError`.
 */
export class SimBus {
  readonly #latencyMs: number;
  readonly #views: Subscriptions[] = [];
  #inFlight: InFlight[] = [];
  #changes: ViewChange[] = [];

  /** A bus whose messages take `latencyMs` (≥ 0) of virtual time. */
  readonly #codec = new JsonBytesCodec();
  constructor(latencyMs: number) {
    if (!(latencyMs >= 0)) throw new RangeError(`bus latency must be ≥ 0 ms, not ${latencyMs}`);
    this.#latencyMs = latencyMs;
  }

  /** Makes room for one more worker; returns its index. */
  addWorker(): number {
    this.#views.push(new Subscriptions());
    return this.#views.length - 1;
  }

  /** Carries `control` from worker `from`, sent at `now`. */
  send(now: number, from: number, control: BusControl): void {
    const workers = this.#views.length;
    const at = now + this.#latencyMs;
    switch (control.op) {
      case "subscribe":
      case "unsubscribe": {
        const subscribe = control.op === "subscribe";
        this.#apply(from, from, control.channel, subscribe);
        for (let view = 0; view < workers; view++) {
          if (view !== from) {
            this.#changes.push({ at, view, from, channel: control.channel, subscribe });
          }
        }
        return;
      }
      case "publish":
        for (const to of this.#views[from]?.of(control.channel) ?? []) {
          this.#post(at, to, from, "channel", control.channel, control.data);
        }
        return;
      case "broadcast":
        for (let to = 0; to < workers; to++) {
          if (to !== from) this.#post(at, to, from, "broadcast", -1, control.data);
        }
        return;
      case "direct":
        if (!Number.isInteger(control.worker) || control.worker < 0 || control.worker >= workers) {
          throw new RangeError(`no worker ${control.worker} (workers are 0..${workers - 1})`);
        }
        this.#post(at, control.worker, from, "direct", -1, control.data);
        return;
    }
  }

  /**
   * `data` through the bus codec, as the real bus and control rings carry it: a copy, and a
   * TypeError naming the path for a value the codec cannot carry.
   */
  copy(data: Structured): Structured {
    return this.#codec.decode(this.#codec.encode(data));
  }

  /** When the next message or subscription change is due (∞ when none is on its way). */
  nextDue(): number {
    return Math.min(this.#inFlight[0]?.at ?? Infinity, this.#changes[0]?.at ?? Infinity);
  }

  /**
   * Applies the subscription changes due by `now`, then takes the messages due by `now`, in the
   * order they were sent.
   */
  due(now: number): { readonly to: number; readonly input: BusInput }[] {
    while (this.#changes[0] !== undefined && this.#changes[0].at <= now) {
      const c = this.#changes.shift() as ViewChange;
      this.#apply(c.view, c.from, c.channel, c.subscribe);
    }
    let n = 0;
    while (n < this.#inFlight.length && (this.#inFlight[n] as InFlight).at <= now) n++;
    if (n === 0) return [];
    const ready = this.#inFlight.slice(0, n);
    this.#inFlight = this.#inFlight.slice(n);
    return ready;
  }

  #apply(view: number, from: number, channel: number, subscribe: boolean): void {
    const v = this.#views[view] as Subscriptions;
    if (subscribe) v.add(channel, from);
    else v.remove(channel, from);
  }

  #post(
    at: number,
    to: number,
    from: number,
    via: "direct" | "broadcast" | "channel",
    channel: number,
    data: Structured,
  ): void {
    const copy = this.copy(data);
    // one fixed latency: appending keeps the queue in time order, and sends in order per pair
    this.#inFlight.push({ at, to, input: { kind: "bus", from, via, channel, data: copy } });
  }
}
