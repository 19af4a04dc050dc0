import type { TaskSwitcher } from "./switcher.ts";
import type { OutputOf, SwitcherChild } from "./task.ts";

/**
 * Places one child (a task or a group) at a fixed index of a parent `TaskSwitcher`.
 *
 * `input()` flags the child and hands it back for the call; `popOutput()` drains it and clears the
 * flag when it has nothing more. When a drain finds the child empty, the branch yields the child's
 * `emptyEvent()` exactly once; it re-arms as soon as it sees the child non-empty again.
 */
export class TaskSwitcherBranch<Child extends SwitcherChild<unknown>> {
  #armed: boolean;

  /**
   * @param child the wrapped task or group
   * @param index the child's index in the parent switcher
   */
  constructor(
    readonly child: Child,
    readonly index: number,
  ) {
    this.#armed = !child.isEmpty();
  }

  /** Flags the child in `switcher` and returns it, so the caller can feed it one input. */
  input(switcher: TaskSwitcher): Child {
    switcher.flagTask(this.index);
    return this.child;
  }

  /**
   * The child's next output; when it has none, clears its flag and, if it has become empty since
   * the last report, yields its empty event once.
   */
  popOutput(now: number, switcher: TaskSwitcher): OutputOf<Child> | undefined {
    const child = this.child;
    if (!this.#armed && !child.isEmpty()) this.#armed = true;
    const out = child.popOutput(now) as OutputOf<Child> | undefined;
    if (out !== undefined) return out;
    switcher.finished(this.index);
    if (this.#armed && child.isEmpty()) {
      this.#armed = false;
      return child.emptyEvent() as OutputOf<Child>;
    }
    return undefined;
  }

  /** True when the child is empty. */
  isEmpty(): boolean {
    return this.child.isEmpty();
  }
}
