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

const STATE = 0; // Int32 cell: 0 awake, 1 parked or about to park
const HANDLE = 1; // Int32 cell: 0, or 1 + the handle of a parker that sleeps outside Atomics.wait
const WORDS = 16; // one 64-byte line of its own

/**
 * Rings a parker that sleeps somewhere other than `Atomics.wait` (for example in a backend's
 * poll, woken through an eventfd), given the handle that parker registered.
 */
export type ExternalWake = (handle: number) => void;

/**
 * A Parker/Waker pair over one shared Int32, using Atomics.wait / waitAsync / notify.
 *
 * A consumer that sleeps elsewhere (in a backend's poll) registers a handle with
 * `setExternalHandle`; producers opened with an `ExternalWake` then wake it through that handle
 * instead of `Atomics.notify`.
 */
export class AtomicsDoorbell implements Parker, Waker {
  readonly #state: Int32Array;
  readonly #external: ExternalWake | undefined;

  /** Creates the shared memory for one doorbell. */
  static create(): SharedArrayBuffer {
    return new SharedArrayBuffer(WORDS * 4);
  }

  /**
   * Opens a doorbell made by `AtomicsDoorbell.create()` (any thread). `external` is how this
   * side wakes a consumer that registered an external handle.
   */
  constructor(sab: SharedArrayBuffer, external?: ExternalWake) {
    if (!(sab instanceof SharedArrayBuffer) || sab.byteLength !== WORDS * 4) {
      throw new TypeError(
        "not a doorbell: expected the SharedArrayBuffer from AtomicsDoorbell.create()",
      );
    }
    this.#state = new Int32Array(sab);
    this.#external = external;
  }

  /**
   * Registers (or, with `undefined`, removes) the handle producers use to wake this consumer
   * when it sleeps outside `Atomics.wait`. A non-negative integer below 2^31 - 1.
   */
  setExternalHandle(handle: number | undefined): void {
    if (handle !== undefined && (!Number.isInteger(handle) || handle < 0 || handle >= 0x7fffffff)) {
      throw new RangeError(
        `external wake handle must be an integer from 0 to 2^31 - 2, got ${handle}`,
      );
    }
    Atomics.store(this.#state, HANDLE, handle === undefined ? 0 : handle + 1);
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
    const handle = Atomics.load(this.#state, HANDLE);
    if (handle !== 0 && this.#external !== undefined) this.#external(handle - 1);
    else Atomics.notify(this.#state, STATE);
    return true;
  }
}
