import type { TaskAddress } from "../app/address.ts";
import type { Structured } from "../bus/codec.ts";
import type { ErrorInfo } from "../runtime/protocol.ts";
import type { LedgerRelease } from "../sys/ledger.ts";

/**
 * How a worker ended: `exception` (its inner or the loop threw, or an uncaught error), `exit`
 * (its thread ended by itself: `process.exit()` inside it, or the module returned), `terminated`
 * (the controller ended it: `terminate`/`replace`, the shutdown time-out, the start time-out).
 */
export type WorkerEnd = "exception" | "exit" | "terminated";

/** Something that happened in a worker, as the controller reports it. */
export type ControllerEvent =
  /**
   * An "external" output of worker `worker` (byte arrays are copies the listener may keep), or
   * a grouped worker's task's "controller" output (`from`: the task's address).
   */
  | {
      readonly kind: "message";
      readonly worker: number;
      readonly data: Structured;
      readonly from?: TaskAddress;
    }
  /** A task of worker `worker` threw and was removed; the worker keeps running. */
  | {
      readonly kind: "task-error";
      readonly worker: number;
      readonly task: string;
      readonly error: ErrorInfo;
    }
  /** A problem that did not stop the worker (an output it could not carry out, a bus fault). */
  | { readonly kind: "worker-error"; readonly worker: number; readonly error: ErrorInfo }
  /**
   * Worker `worker` ended other than by a graceful shutdown (or failed to start); the others keep
   * running. `endedBy` says how; `exitCode` is the thread's exit code, undefined when the
   * controller terminated it; `released` is what the controller closed and freed on its behalf
   * (fds and native memory the worker could not close itself).
   */
  | {
      readonly kind: "worker-died";
      readonly worker: number;
      readonly error: ErrorInfo;
      readonly endedBy: WorkerEnd;
      readonly exitCode: number | undefined;
      readonly released: LedgerRelease;
    }
  /**
   * The watchdog saw no progress from worker `worker` for `stalledForMs` (a task in an endless
   * loop, a blocking call): spawns and `sendToBest` skip it and `sendTo` refuses ("stalled")
   * until it recovers; other workers' messages to it wait, up to their cap. `Controller.terminate`
   * or `replace` ends it.
   */
  | { readonly kind: "worker-stalled"; readonly worker: number; readonly stalledForMs: number }
  /** A stalled worker made progress again after `stalledForMs`; it is routed to again. */
  | { readonly kind: "worker-recovered"; readonly worker: number; readonly stalledForMs: number }
  /** Worker `worker` finished a graceful shutdown. */
  | { readonly kind: "worker-stopped"; readonly worker: number };

/** Receives controller events. */
export type ControllerListener = (event: ControllerEvent) => void;

/**
 * Fans events out to callbacks and to async iterators. Each iterator sees every event emitted
 * after it was created, in order, until the hub is closed; callbacks are called synchronously.
 */
export class EventHub {
  readonly #listeners = new Set<ControllerListener>();
  readonly #queues = new Set<Queue>();
  #closed = false;

  /** Adds a callback; returns a function that removes it. */
  on(listener: ControllerListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Delivers `event` to every callback and iterator. A throwing callback does not stop others. */
  emit(event: ControllerEvent): void {
    for (const listener of this.#listeners) {
      try {
        listener(event);
      } catch (e) {
        queueMicrotask(() => {
          throw e; // surface it as an uncaught error, outside the runtime's own code
        });
      }
    }
    for (const q of this.#queues) q.push(event);
  }

  /** An iterator over events from now on; it ends when the hub closes. */
  iterate(): AsyncIterableIterator<ControllerEvent> {
    const q = new Queue(() => this.#queues.delete(q));
    if (this.#closed) q.close();
    else this.#queues.add(q);
    return q;
  }

  /** Ends every iterator (after their queued events). */
  close(): void {
    this.#closed = true;
    for (const q of this.#queues) q.close();
    this.#queues.clear();
  }
}

class Queue implements AsyncIterableIterator<ControllerEvent> {
  readonly #items: ControllerEvent[] = [];
  #waiter: ((r: IteratorResult<ControllerEvent>) => void) | undefined;
  #closed = false;

  constructor(readonly detach: () => void) {}

  push(event: ControllerEvent): void {
    const waiter = this.#waiter;
    if (waiter === undefined) {
      this.#items.push(event);
      return;
    }
    this.#waiter = undefined;
    waiter({ value: event, done: false });
  }

  close(): void {
    this.#closed = true;
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter?.({ value: undefined, done: true });
  }

  next(): Promise<IteratorResult<ControllerEvent>> {
    const item = this.#items.shift();
    if (item !== undefined) return Promise.resolve({ value: item, done: false });
    if (this.#closed) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => {
      this.#waiter = resolve;
    });
  }

  return(): Promise<IteratorResult<ControllerEvent>> {
    this.#items.length = 0;
    this.detach();
    this.close();
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<ControllerEvent> {
    return this;
  }
}
