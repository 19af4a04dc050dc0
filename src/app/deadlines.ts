/**
 * Deadlines of many owners in one binary min-heap: the earliest is found in O(1) and each set or
 * expiry costs O(log n), so a worker sleeps until its next deadline without scanning its tasks.
 */
export class Deadlines {
  readonly #at: number[] = [];
  readonly #key: number[] = [];

  /** Number of entries (expired-but-unclaimed and superseded ones included). */
  get size(): number {
    return this.#at.length;
  }

  /**
   * Adds an entry: `key` is due at `at`. Entries are never updated in place: a caller that moves
   * a deadline adds a new entry and ignores the old one when it comes out (`popDue`).
   */
  add(at: number, key: number): void {
    const at_ = this.#at;
    const keys = this.#key;
    let i = at_.length;
    at_.push(at);
    keys.push(key);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if ((at_[parent] as number) <= at) break;
      at_[i] = at_[parent] as number;
      keys[i] = keys[parent] as number;
      i = parent;
    }
    at_[i] = at;
    keys[i] = key;
  }

  /** The earliest deadline, or Infinity when there is none. */
  next(): number {
    return this.#at[0] ?? Number.POSITIVE_INFINITY;
  }

  /** Removes the earliest entry due by `now` and returns its key, or `undefined` when none is. */
  popDue(now: number): number | undefined {
    const first = this.#at[0];
    if (first === undefined || first > now) return undefined;
    const key = this.#key[0] as number;
    const lastAt = this.#at.pop() as number;
    const lastKey = this.#key.pop() as number;
    const n = this.#at.length;
    if (n > 0) this.#siftDown(lastAt, lastKey, n);
    return key;
  }

  #siftDown(at: number, key: number, n: number): void {
    const at_ = this.#at;
    const keys = this.#key;
    let i = 0;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= n) break;
      if (child + 1 < n && (at_[child + 1] as number) < (at_[child] as number)) child++;
      if ((at_[child] as number) >= at) break;
      at_[i] = at_[child] as number;
      keys[i] = keys[child] as number;
      i = child;
    }
    at_[i] = at;
    keys[i] = key;
  }
}
