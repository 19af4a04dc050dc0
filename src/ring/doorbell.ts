/**
 * How a consumer that ran out of work sleeps, and how a producer wakes it, without lost wake-ups.
 *
 * Protocol (both sides use sequentially consistent operations):
 * - consumer: `prepare()` (announce "about to sleep"), re-check every source of work, then either
 *   `cancel()` (work found) or `park()`;
 * - producer: publish first, then `wake()`, which notifies only when the consumer announced sleep.
 * Either the producer sees the announcement, or the consumer's re-check sees the published data.
 *
 * A backend can implement this interface differently (for example parking inside io_uring and
 * waking through an eventfd); `AtomicsDoorbell` is the portable one.
 */
export interface Parker {
  /** Announces that the consumer is about to sleep. Re-check for work after this. */
  prepare(): void;
  /** Withdraws the announcement (work was found). */
  cancel(): void;
  /** Sleeps until woken or `timeoutMs` passes (blocking the thread). */
  park(timeoutMs: number): ParkResult;
  /** Like `park`, without blocking the thread (for the main thread's event loop). */
  parkAsync(timeoutMs: number): Promise<ParkResult>;
}

/** Why a park returned. */
export type ParkResult = "woken" | "timed-out";

/** The producer's side of a `Parker`. */
export interface Waker {
  /** Wakes the consumer if it announced sleep. Call after publishing. Returns true if it did. */
  wake(): boolean;
}

const STATE = 0; // Int32 slot: 0 awake, 1 parked or about to park
const WORDS = 16; // one 64-byte line of its own

/** A Parker/Waker pair over one shared Int32, using Atomics.wait / waitAsync / notify. */
export class AtomicsDoorbell implements Parker, Waker {
  readonly #state: Int32Array;

  /** Creates the shared memory for one doorbell. */
  static create(): SharedArrayBuffer {
    return new SharedArrayBuffer(WORDS * 4);
  }

  /** Opens a doorbell made by `AtomicsDoorbell.create()` (any thread). */
  constructor(sab: SharedArrayBuffer) {
    if (!(sab instanceof SharedArrayBuffer) || sab.byteLength !== WORDS * 4) {
      throw new TypeError(
        "not a doorbell: expected the SharedArrayBuffer from AtomicsDoorbell.create()",
      );
    }
    this.#state = new Int32Array(sab);
  }

  prepare(): void {
    Atomics.store(this.#state, STATE, 1);
  }

  cancel(): void {
    Atomics.store(this.#state, STATE, 0);
  }

  park(timeoutMs: number): ParkResult {
    const r = Atomics.wait(this.#state, STATE, 1, timeoutMs);
    Atomics.store(this.#state, STATE, 0);
    return r === "timed-out" ? "timed-out" : "woken";
  }

  async parkAsync(timeoutMs: number): Promise<ParkResult> {
    const r = Atomics.waitAsync(this.#state, STATE, 1, timeoutMs);
    const outcome = r.async ? await r.value : r.value;
    Atomics.store(this.#state, STATE, 0);
    return outcome === "timed-out" ? "timed-out" : "woken";
  }

  wake(): boolean {
    if (Atomics.load(this.#state, STATE) === 0) return false;
    Atomics.store(this.#state, STATE, 0);
    Atomics.notify(this.#state, STATE);
    return true;
  }
}
