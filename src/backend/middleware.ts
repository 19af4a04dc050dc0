/**
 * Backend middleware: a backend that wraps another (real or simulated) and keeps the `Backend`
 * contract, so wrappers compose: `withPcap(withFaults(make, ...), path)`.
 */
import type { NetAction, NetEvent } from "../io/events.ts";
import type { Backend, BackendStats, EventSink } from "./backend.ts";

/**
 * Makes a backend that delivers its events to `sink`: the shape the worker loop takes its
 * backend in (`WorkerLoopOptions.backend`), and what middleware wraps, since a backend's sink is
 * fixed when it is made.
 */
export type BackendFactory<B extends Backend = Backend> = (sink: EventSink) => B;

/**
 * The base of every middleware: each call goes to the inner backend unchanged unless a subclass
 * overrides it, and the inner backend's events arrive at `onEvent`, which a subclass passes on
 * to `sink` (or not). A subclass that delivers events itself (queued, delayed) counts them in
 * what its `poll` returns. `nextDeadline` is the inner backend's where it has one, else
 * +Infinity.
 */
export abstract class BackendMiddleware implements Backend {
  /** The wrapped backend. */
  protected readonly inner: Backend;
  /** Where this middleware's events go. */
  protected readonly sink: EventSink;

  /** Makes the inner backend with `make`, its events routed through `onEvent`. */
  constructor(make: BackendFactory, sink: EventSink) {
    this.sink = sink;
    this.inner = make((owner, event) => this.onEvent(owner, event));
  }

  /** The inner backend's kind. */
  get kind(): Backend["kind"] {
    return this.inner.kind;
  }

  /** The inner backend's wake-up handle. */
  get wakeHandle(): number {
    return this.inner.wakeHandle;
  }

  /** See `Backend.act`. */
  act(owner: number, action: NetAction): void {
    this.inner.act(owner, action);
  }

  /** See `Backend.poll`. */
  poll(timeoutMs: number): number {
    return this.inner.poll(timeoutMs);
  }

  /** See `Backend.close`. */
  close(): void {
    this.inner.close();
  }

  /** See `Backend.stats`. */
  stats(): BackendStats {
    return this.inner.stats();
  }

  /** See `Backend.nextDeadline`. */
  nextDeadline(): number {
    return this.inner.nextDeadline?.() ?? Number.POSITIVE_INFINITY;
  }

  /** An event of the inner backend, valid until this returns (as for any sink). */
  protected abstract onEvent(owner: number, event: NetEvent): void;
}
