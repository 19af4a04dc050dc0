/**
 * The sans-IO task contract.
 *
 * A task is a deterministic state machine. It never performs I/O, never reads a clock and never
 * sets a timer: the runtime passes `now` (monotonic milliseconds) into every call.
 *
 * **Pop before the next input.** After `onTick`, `onEvent` or `onShutdown`, the caller drains
 * `popOutput(now)` until it returns `undefined` before feeding the task anything else. Inputs may
 * be views into the runtime's receive buffers that stay valid only until that drain ends, so a task
 * that keeps input data past its drain must copy it.
 */
export interface SwitcherChild<Out> {
  /** The next queued output, or `undefined` when the child has nothing more for now. */
  popOutput(now: number): Out | undefined;
  /** True once the child has finished all its work and may be dropped. */
  isEmpty(): boolean;
  /** The output that announces this child became empty; reported once per emptying by its owner. */
  emptyEvent(): Out;
}

/** The output type of a switcher child (a task's `Out`, or a group's `GroupOutput<Out>`). */
export type OutputOf<Child> = Child extends SwitcherChild<infer Out> ? Out : never;

/** A sans-IO task: receives ticks, events and a shutdown request; produces outputs on demand. */
export interface Task<In, Out> extends SwitcherChild<Out> {
  /** Periodic tick. May queue outputs. */
  onTick(now: number): void;
  /** One input for this task. May queue outputs. */
  onEvent(now: number, input: In): void;
  /** Asks the task to wind down; it should become empty after its remaining outputs are popped. */
  onShutdown(now: number): void;
}

/** The task method that was running when a task failed. */
export type TaskPhase =
  | "onTick"
  | "onEvent"
  | "onShutdown"
  | "popOutput"
  | "isEmpty"
  | "emptyEvent";

/** A task threw: it has been removed from its group; every other task keeps running. */
export class TaskFailure extends Error {
  override readonly name = "TaskFailure";

  /**
   * @param index the slot the failed task occupied in its group
   * @param phase the method that threw
   * @param cause what the task threw
   */
  constructor(
    readonly index: number,
    readonly phase: TaskPhase,
    override readonly cause: unknown,
  ) {
    super(`task ${index} threw in ${phase}: ${describe(cause)}`, { cause });
  }
}

function describe(thrown: unknown): string {
  if (thrown instanceof Error) return `${thrown.name}: ${thrown.message}`;
  try {
    return String(thrown);
  } catch {
    return "an unprintable value";
  }
}
