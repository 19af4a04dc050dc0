import { LowestBitSet } from "./bitset.ts";
import { TaskSwitcher } from "./switcher.ts";
import { type Task, TaskFailure, type TaskPhase } from "./task.ts";

/** One output of a `TaskGroup`, tagged with the slot index of the task it concerns. */
export type GroupOutput<Out> =
  /** A task's output. */
  | { readonly kind: "output"; readonly index: number; readonly value: Out }
  /** A task drained empty and was removed; `value` is its `emptyEvent()`. */
  | { readonly kind: "finished"; readonly index: number; readonly value: Out }
  /** A task threw and was removed. */
  | { readonly kind: "error"; readonly index: number; readonly error: TaskFailure }
  /** The group itself has become empty (see `TaskGroup.emptyEvent`). */
  | { readonly kind: "empty" };

const GROUP_EMPTY: GroupOutput<never> = Object.freeze({ kind: "empty" });

/**
 * Many tasks of one type behind their own `TaskSwitcher`, addressed by slot index.
 *
 * Contract (see `Task`): after `onTick`, `onEvent` or `onShutdown`, drain `popOutput` until it
 * returns `undefined` before the next input. Outputs come task by task, lowest flagged slot first.
 * An "output" the drain yields is one object reused for the next: read it before popping again.
 *
 * - A task that drains empty is removed; the drain yields a `finished` output carrying its
 *   `emptyEvent()`.
 * - A task that throws from any of its methods is removed; the drain yields an `error` output
 *   naming it, and every other task keeps its state and its queued outputs.
 * - The group is a `SwitcherChild`: hold it in a `TaskSwitcherBranch` to have its `empty` event
 *   reported once each time its last task goes away.
 */
export class TaskGroup<In, Out, T extends Task<In, Out> = Task<In, Out>> {
  readonly #slots: (T | undefined)[] = [];
  readonly #switcher = new TaskSwitcher();
  readonly #free = new LowestBitSet();
  readonly #failures: GroupOutput<Out>[] = [];
  #count = 0;
  readonly #output = { kind: "output" as const, index: 0, value: undefined as Out };

  /** Number of live tasks. */
  get size(): number {
    return this.#count;
  }

  /** One past the highest occupied slot (slots below it may be free). */
  get slots(): number {
    return this.#slots.length;
  }

  /** Adds a task in the lowest free slot and returns that slot's index. */
  add(task: T): number {
    const index = this.#free.lowest() ?? this.#slots.length;
    this.set(index, task);
    return index;
  }

  /**
   * Puts `task` at `index`, replacing (and returning) any task already there. Slots between the
   * current end and `index` become free slots.
   */
  set(index: number, task: T): T | undefined {
    if (!Number.isInteger(index) || index < 0) {
      throw new RangeError(`task index must be a non-negative integer, got ${index}`);
    }
    const length = this.#slots.length;
    if (index >= length) {
      this.#resize(index + 1);
      for (let i = length; i < index; i++) this.#free.add(i);
    }
    const previous = this.#slots[index];
    this.#slots[index] = task;
    this.#free.delete(index);
    if (previous === undefined) this.#count++;
    return previous;
  }

  /**
   * Removes the task at `index` and returns it (`undefined` if the slot is free or unknown). Its
   * queued outputs are discarded; trailing free slots are released.
   */
  remove(index: number): T | undefined {
    const task = this.#slots[index];
    if (task === undefined) return undefined;
    this.#slots[index] = undefined;
    this.#switcher.finished(index);
    this.#count--;
    if (index === this.#slots.length - 1) {
      let end = index;
      while (end > 0 && this.#slots[end - 1] === undefined) end--;
      this.#resize(end);
    } else {
      this.#free.add(index);
    }
    return task;
  }

  /** True when a task occupies `index`. */
  has(index: number): boolean {
    return this.#slots[index] !== undefined;
  }

  /** The task at `index`, if any. */
  get(index: number): T | undefined {
    return this.#slots[index];
  }

  /**
   * Flags the task at `index` for draining without giving it input (a new task whose
   * constructor queued outputs). False when no task occupies that slot.
   */
  wake(index: number): boolean {
    if (this.#slots[index] === undefined) return false;
    this.#switcher.flagTask(index);
    return true;
  }

  /** Ticks every task and flags them all for draining. */
  onTick(now: number): void {
    this.#switcher.flagAll();
    this.#each("onTick", (task) => task.onTick(now));
  }

  /**
   * Gives `input` to the task at `index` and flags it. Returns false (and does nothing) when no task
   * occupies that slot.
   */
  onEvent(now: number, index: number, input: In): boolean {
    const task = this.#slots[index];
    if (task === undefined) return false;
    this.#switcher.flagTask(index);
    try {
      task.onEvent(now, input);
    } catch (thrown) {
      this.#fail(index, "onEvent", thrown);
    }
    return true;
  }

  /** Asks every task to shut down and flags them all for draining. */
  onShutdown(now: number): void {
    this.#switcher.flagAll();
    this.#each("onShutdown", (task) => task.onShutdown(now));
  }

  /**
   * The next output: pending failures first, then the lowest flagged task's outputs until it has
   * none; `undefined` when every flagged task is drained.
   */
  popOutput(now: number): GroupOutput<Out> | undefined {
    if (this.#failures.length !== 0) return this.#failures.shift();
    const switcher = this.#switcher;
    for (;;) {
      const index = switcher.current();
      if (index === undefined) return undefined;
      const task = this.#slots[index];
      if (task === undefined) {
        switcher.finished(index); // a free slot flagged by a tick
        continue;
      }
      let phase: TaskPhase = "popOutput";
      try {
        const value = task.popOutput(now);
        if (value !== undefined) {
          const output = this.#output;
          output.index = index;
          output.value = value;
          return output;
        }
        switcher.finished(index);
        phase = "isEmpty";
        if (!task.isEmpty()) continue;
        phase = "emptyEvent";
        const event = task.emptyEvent();
        this.remove(index);
        return { kind: "finished", index, value: event };
      } catch (thrown) {
        this.remove(index);
        return { kind: "error", index, error: new TaskFailure(index, phase, thrown) };
      }
    }
  }

  /** True when the group holds no task. */
  isEmpty(): boolean {
    return this.#count === 0;
  }

  /** The event a `TaskSwitcherBranch` reports when this group has become empty. */
  emptyEvent(): GroupOutput<Out> {
    return GROUP_EMPTY;
  }

  #each(phase: TaskPhase, call: (task: T) => void): void {
    const slots = this.#slots;
    for (let index = 0; index < slots.length; index++) {
      const task = slots[index];
      if (task === undefined) continue;
      try {
        call(task);
      } catch (thrown) {
        this.#fail(index, phase, thrown);
      }
    }
  }

  #fail(index: number, phase: TaskPhase, thrown: unknown): void {
    this.remove(index);
    this.#failures.push({ kind: "error", index, error: new TaskFailure(index, phase, thrown) });
  }

  #resize(length: number): void {
    const slots = this.#slots;
    // grow by pushing: assigning a larger length makes a holey array that JSC indexes slowly
    while (slots.length < length) slots.push(undefined);
    slots.length = length;
    this.#switcher.setTasks(length);
    this.#free.resize(length);
  }
}
