/**
 * A first-in first-out queue on a growable ring: `push` and `shift` cost O(1) without moving
 * elements (an `Array.shift` moves them all), for the outputs a task or worker queues per packet.
 */
export class Outbox<T> {
  #items: (T | undefined)[] = new Array(16).fill(undefined);
  #head = 0;
  #length = 0;

  /** Number of queued items. */
  get length(): number {
    return this.#length;
  }

  /** Appends `item`. */
  push(item: T): void {
    if (this.#length === this.#items.length) this.#grow();
    this.#items[(this.#head + this.#length) & (this.#items.length - 1)] = item;
    this.#length++;
  }

  /** The oldest item (left in place), or `undefined` when empty. */
  peek(): T | undefined {
    return this.#length === 0 ? undefined : this.#items[this.#head];
  }

  /** Removes and returns the oldest item, or `undefined` when empty. */
  shift(): T | undefined {
    if (this.#length === 0) return undefined;
    const item = this.#items[this.#head];
    this.#items[this.#head] = undefined;
    this.#head = (this.#head + 1) & (this.#items.length - 1);
    this.#length--;
    return item;
  }

  /** Drops every item. */
  clear(): void {
    while (this.#length > 0) this.shift();
  }

  #grow(): void {
    const old = this.#items;
    const next: (T | undefined)[] = new Array(old.length * 2).fill(undefined);
    for (let i = 0; i < this.#length; i++) next[i] = old[(this.#head + i) & (old.length - 1)];
    this.#items = next;
    this.#head = 0;
  }
}
