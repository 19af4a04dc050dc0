import { LowestBitSet } from "./bitset.ts";

/**
 * Decides which child to drain next when several children have outputs.
 *
 * Each child has a flag. Giving a child input flags it; a tick flags every child. The current
 * child is the lowest flagged index, and it stays current until it is drained (`finished`).
 * Draining therefore works like a stack within one cycle: child 0 is emptied completely before
 * child 1 is asked, and a lower child flagged mid-cycle is served next.
 *
 * Finding the current child costs O(log32 n), independent of how many children are flagged.
 */
export class TaskSwitcher {
  readonly #flags: LowestBitSet;

  /** Creates a switcher over `tasks` children, none flagged. */
  constructor(tasks = 0) {
    this.#flags = new LowestBitSet(tasks);
  }

  /** Number of children. */
  get tasks(): number {
    return this.#flags.size;
  }

  /** Sets the number of children; flags of removed children are dropped, the rest kept. */
  setTasks(tasks: number): void {
    this.#flags.resize(tasks);
  }

  /** Flags one child (it received input). Throws a RangeError for an index out of range. */
  flagTask(index: number): void {
    this.#flags.add(index);
  }

  /** Flags every child (a tick). */
  flagAll(): void {
    this.#flags.fill();
  }

  /** Marks a child as drained for this cycle. Unknown indices are ignored. */
  finished(index: number): void {
    this.#flags.delete(index);
  }

  /** True when the child is flagged. */
  isFlagged(index: number): boolean {
    return this.#flags.has(index);
  }

  /** The lowest flagged child, or `undefined` when the cycle is complete. */
  current(): number | undefined {
    return this.#flags.lowest();
  }
}
