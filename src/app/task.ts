/**
 * What an application writes for the grouped-task worker: tasks of named kinds, each a sans-IO
 * state machine (docs/design.md, "the sans-IO contract") with its own address, sockets, timer,
 * channels and calls. The runtime routes everything by address; a task never sees another's.
 */
import type { Encodable, Structured } from "../bus/codec.ts";
import type { NetAction, NetEvent } from "../io/events.ts";
import type { TaskAddress } from "./address.ts";

/** Who sent a message or call: a task, or the controller (`null`). */
export type Sender = TaskAddress | null;

/**
 * One input for a task. Valid until the task's outputs for it have been popped: the runtime
 * reuses input objects and receive buffers, so copy the payload bytes you keep (`data.slice()`).
 * Addresses, a datagram's `from` (`SocketAddr`) and `TaskAddress`, are values and may be kept.
 */
export type TaskInput<M = Structured> =
  /** An event for one of this task's sockets or devices, with the task's own ids. */
  | { readonly kind: "net"; readonly event: NetEvent }
  /** A message sent to this task's address (`from` null: by the controller, `sendToTask`). */
  | { readonly kind: "message"; readonly from: Sender; readonly data: M }
  /** A message published on a channel this task subscribes to. */
  | {
      readonly kind: "channel";
      readonly channel: number;
      readonly from: TaskAddress;
      readonly data: M;
    }
  /** A call to answer with a "reply" output carrying the same `call` (once). */
  | { readonly kind: "call"; readonly call: number; readonly from: Sender; readonly data: M }
  /** The answer to a "call" output of this task, matched by its `tag`. */
  | { readonly kind: "reply"; readonly tag: number; readonly ok: true; readonly data: M }
  /** A call of this task failed: timed out, or its target is gone (`error` says which). */
  | { readonly kind: "reply"; readonly tag: number; readonly ok: false; readonly error: string }
  /** The task this task spawned with a "spawn" output carrying `tag` runs at `address`. */
  | {
      readonly kind: "spawned";
      readonly tag: number;
      readonly ok: true;
      readonly address: TaskAddress;
    }
  /** The spawn with `tag` failed (an unknown kind, a factory that threw, no slot left). */
  | { readonly kind: "spawned"; readonly tag: number; readonly ok: false; readonly error: string }
  /** The deadline this task set with a "timer" output has come (it is cleared). */
  | { readonly kind: "timer"; readonly at: number };

/** One output of a task. The runtime carries each out before popping the next. */
export type TaskOutput<M = Structured> =
  /** An I/O action on the task's own sockets and devices (ids are the task's: any number). */
  | { readonly kind: "net"; readonly action: NetAction }
  /** A message to another task, on this worker or another. */
  | { readonly kind: "send"; readonly to: TaskAddress; readonly data: M }
  /** A message to the controller (a "message" event carrying this task's address). */
  | { readonly kind: "controller"; readonly data: M }
  /** Receive what is published on `channel` from now on (`channel` an integer ≥ 0). */
  | { readonly kind: "subscribe"; readonly channel: number }
  /** Stop receiving `channel`. */
  | { readonly kind: "unsubscribe"; readonly channel: number }
  /** Send `data` to every task subscribed to `channel`, on every worker (this task included). */
  | { readonly kind: "publish"; readonly channel: number; readonly data: M }
  /**
   * Start a task of kind `task` from `config`, on the least-loaded worker. With a `tag`, the
   * outcome comes back as one "spawned" input with that tag: the new task's address, or why it
   * could not start. (The config's type depends on the kind, which TypeScript cannot follow: a
   * config the bus codec cannot carry fails this task with a task error saying why.)
   */
  | {
      readonly kind: "spawn";
      readonly task: string;
      readonly config: unknown;
      readonly tag?: number;
    }
  /**
   * Call task `to`: its answer (or the failure: a timeout after `timeoutMs`, the task or its
   * worker gone) comes back as one "reply" input with this `tag`.
   */
  | {
      readonly kind: "call";
      readonly to: TaskAddress;
      readonly data: M;
      readonly tag: number;
      readonly timeoutMs: number;
    }
  /** Answer call `call` (a "call" input) with `data`. */
  | { readonly kind: "reply"; readonly call: number; readonly data: M }
  /** Answer call `call` with a failure. */
  | { readonly kind: "reply-error"; readonly call: number; readonly error: string }
  /** Wake this task with a "timer" input at `at` (the runtime's clock; Infinity: no timer). */
  | { readonly kind: "timer"; readonly at: number };

/**
 * A task of the grouped worker.
 *
 * Contract: the sans-IO contract of docs/design.md. After `onEvent`, `onTick` and `onShutdown`
 * the runtime pops every output before giving this task anything else. The task is removed once
 * a drain finds `isEmpty()` true; then, and when it throws, the runtime closes its sockets,
 * unbinds its devices, leaves its channels, cancels its timer and fails its calls. A throw is
 * reported as a task error naming its kind and address; the other tasks keep running.
 */
export interface AppTask<M = Structured> {
  /** One input. */
  onEvent(now: number, input: TaskInput<M>): void;
  /**
   * The next output, or `undefined` when there is none for now. (Typed `Encodable<M>` so that a
   * message type the bus cannot carry is a type error on the class that implements this.)
   */
  popOutput(now: number): TaskOutput<Encodable<M>> | undefined;
  /** True once the task has finished and may be removed. */
  isEmpty(): boolean;
  /** Wind down (graceful shutdown): become empty soon. */
  onShutdown(now: number): void;
  /** Periodic tick (every `tickMs` of the worker), if the task wants one. */
  onTick?(now: number): void;
}

/**
 * Any task, whatever its message type: what `TaskKinds` holds. An `AppTask<M>` is one; the
 * runtime gives it only the inputs its own outputs and its senders produce.
 */
export interface AnyTask {
  onEvent(now: number, input: never): void;
  popOutput(now: number): TaskOutput<unknown> | undefined;
  isEmpty(): boolean;
  onShutdown(now: number): void;
  onTick?(now: number): void;
}

/** What a task is told when it is made. */
export interface TaskContext {
  /** Its own address (give it to others so they can message or call it). */
  readonly address: TaskAddress;
  /** The index of the worker it runs on. */
  readonly worker: number;
  /** Its kind, as declared. */
  readonly kind: string;
  /** The runtime's clock at its creation. */
  readonly now: number;
}

/** Makes a task of one kind from its spawn config (`C`: what `spawnTask` is given for it). */
export type TaskFactory<C = never, M = Structured> = (
  config: C,
  context: TaskContext,
) => AppTask<M>;
