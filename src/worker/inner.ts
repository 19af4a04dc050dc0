/**
 * The `WorkerInner` contract: what the application writes for one worker thread. The runtime
 * owns the thread, the clock, the sockets and the bus; the inner is a sans-IO state machine that
 * turns inputs into outputs, usually by holding task groups behind a `TaskSwitcher`.
 */

import type { Structured } from "../bus/codec.ts";
import type { NetAction, NetEvent } from "../io/events.ts";

/** What the controller sends the tasks of a grouped worker (addresses as packed ids). */
export type ToTasks =
  /** `Controller.sendToTask`. */
  | { readonly op: "message"; readonly to: number; readonly data: Structured }
  /** `Controller.call`: answered by a "reply" with the same `call`. */
  | { readonly op: "call"; readonly call: number; readonly to: number; readonly data: Structured }
  /** The outcome of task `to`'s spawn `tag` (a "spawn" output with a tag): an address, or why not. */
  | { readonly op: "spawned"; readonly to: number; readonly tag: number; readonly address: number }
  | { readonly op: "spawned"; readonly to: number; readonly tag: number; readonly error: string };

/** What the tasks of a grouped worker tell the controller. */
export type FromTasks =
  /** A task's "controller" output. */
  | { readonly op: "message"; readonly from: number; readonly data: Structured }
  /** The answer to a controller's call. */
  | { readonly op: "reply"; readonly call: number; readonly ok: true; readonly data: Structured }
  /** A controller's call failed (the task is gone, or finished without answering). */
  | { readonly op: "reply"; readonly call: number; readonly ok: false; readonly error: string }
  /** A spawn with a ticket (`Controller.spawnTask`) made the task at `address`. */
  | { readonly op: "spawned"; readonly ticket: number; readonly address: number }
  /** A spawn with a ticket failed. */
  | { readonly op: "spawn-failed"; readonly ticket: number; readonly error: string };

/** How a message from another worker reached this one. */
export type BusVia = "direct" | "broadcast" | "channel";

/**
 * One input for the inner. Input objects and any bytes in them are valid only until the inner's
 * outputs for this input have been popped (the runtime reuses them): copy what you keep.
 */
export type WorkerInput =
  /** A network event for the owner that asked for the action (`WorkerOutput` "net"). */
  | { readonly kind: "net"; readonly owner: number; readonly event: NetEvent }
  /**
   * A message from another worker (`from` is its index; `channel` is -1 unless via a channel),
   * or a raw record from the controller for a grouped worker's tasks (`from` is -1).
   */
  | {
      readonly kind: "bus";
      readonly from: number;
      readonly via: BusVia;
      readonly channel: number;
      readonly data: Structured;
    }
  /** A message from the controller (`Controller.sendTo` / `sendToBest`). */
  | { readonly kind: "external"; readonly data: Structured }
  /** A message from the controller for this worker's tasks (grouped workers). */
  | { readonly kind: "tasks"; readonly message: ToTasks }
  /** Worker `worker` has stopped or died: nothing sent to it arrives any more. */
  | { readonly kind: "peer-down"; readonly worker: number };

/** A bus operation asked for by the inner. `safe` defaults to true (queued, never dropped). */
export type BusControl =
  /** Receive what is published on `channel` from now on. */
  | { readonly op: "subscribe"; readonly channel: number }
  /** Stop receiving `channel`. */
  | { readonly op: "unsubscribe"; readonly channel: number }
  /** Send to every current subscriber of `channel` (this worker included, if subscribed). */
  | {
      readonly op: "publish";
      readonly channel: number;
      readonly data: Structured;
      readonly safe?: boolean;
    }
  /** Send to every other running worker. */
  | { readonly op: "broadcast"; readonly data: Structured; readonly safe?: boolean }
  /**
   * Send to worker `worker`; worker -1 is the controller, which takes only a grouped worker's
   * records (`app/wire.ts`) this way.
   */
  | {
      readonly op: "direct";
      readonly worker: number;
      readonly data: Structured;
      readonly safe?: boolean;
    };

/**
 * One output of the inner. Unsafe bus sends to a full ring are dropped and counted in the
 * worker's stats; safe ones wait in order.
 */
export type WorkerOutput =
  /** An I/O action; its events come back as "net" inputs with the same `owner`. */
  | { readonly kind: "net"; readonly owner: number; readonly action: NetAction }
  /** A bus operation. */
  | { readonly kind: "bus"; readonly control: BusControl }
  /** A message for the controller (delivered as a "message" controller event). */
  | { readonly kind: "external"; readonly data: Structured }
  /** Ask the controller to spawn `config` on the least-loaded worker (maybe this one). */
  | { readonly kind: "spawn"; readonly config: Structured }
  /** Report that a task failed (it should already be removed); `task` names it in the report. */
  | { readonly kind: "task-error"; readonly task: string; readonly error: unknown }
  /** A message for the controller from this worker's tasks (grouped workers). */
  | { readonly kind: "tasks"; readonly message: FromTasks };

/**
 * The application side of one worker thread.
 *
 * Contract: after every `spawn`, `onTick`, `onEvent` and `onShutdown` the runtime calls
 * `popOutput(now)` until it returns `undefined` before giving the inner anything else. `now` is
 * monotonic milliseconds, the same clock in every worker of one controller. An exception that
 * escapes any method is fatal for this worker: it is reported as the worker dying, its sockets
 * are closed, and the other workers keep running. Task failures should be caught (`TaskGroup`
 * does) and reported with a "task-error" output instead.
 *
 * Shutdown: after `onShutdown` the runtime keeps delivering events and ticks until `isEmpty()`
 * is true, then stops the worker.
 */
export interface WorkerInner {
  /** Number of live tasks (for stats and spawn placement). */
  tasks(): number;
  /** True when the inner has nothing left to do (checked during shutdown). */
  isEmpty(): boolean;
  /** Starts a new task from `config` (from `Controller.spawn` or a "spawn" output). */
  spawn(now: number, config: Structured): void;
  /** Periodic tick, every `tickMs` of the worker. */
  onTick(now: number): void;
  /** One input. */
  onEvent(now: number, input: WorkerInput): void;
  /** Graceful shutdown begins: wind every task down. */
  onShutdown(now: number): void;
  /** The next output, or `undefined` when there is none for now. */
  popOutput(now: number): WorkerOutput | undefined;
  /**
   * When the inner next needs `onDeadline` (the runtime's clock; Infinity: never). The worker
   * sleeps until the earliest of this and its tick. Read after every drain.
   */
  nextDeadline?(): number;
  /** The deadline from `nextDeadline` has come. */
  onDeadline?(now: number): void;
  /**
   * The output last popped could not be carried out (the bus codec refused its data, a record
   * too large for the bus): return true when the inner has dealt with it (the grouped worker
   * fails the task that made it, with a task error naming it); otherwise, or without this
   * method, it is reported as a worker error.
   */
  outputFailed?(now: number, error: unknown): boolean;
  /** Counters the worker's stats carry (stale deliveries dropped, late replies dropped). */
  counters?(): { readonly staleDrops: number; readonly lateReplies: number };
}

/** What a worker's bus allows, for its inner to respect (`WorkerFactory`). */
export interface WorkerBusLimits {
  /** Largest bus message, in bytes (half the controller's `ringBytes`). */
  readonly maxMessageBytes: number;
}

/**
 * Builds the inner of worker `index` from the config given to `Controller.addWorker`, and the
 * limits of its bus (the runtime always gives them; a test may leave them out, for those of the
 * default bus).
 */
export type WorkerFactory<Config = Structured> = (
  index: number,
  config: Config,
  bus?: WorkerBusLimits,
) => WorkerInner;
