/**
 * A growable set of small non-negative integers whose lowest member is found in O(log32 n).
 *
 * Level 0 holds one bit per index; every upper level holds one bit per non-zero word of the level
 * below. Finding the lowest member descends from the single top word with one count-trailing-zeros
 * per level, so 10,000 members cost three word reads, not 313.
 */
export class LowestBitSet {
  #levels: Uint32Array[] = [new Uint32Array(1)];
  #allocated = 32;
  #size = 0;

  /** Creates a set able to hold the indices `0 .. size - 1`. */
  constructor(size = 0) {
    this.resize(size);
  }

  /** Number of indices the set can hold (members are always below it). */
  get size(): number {
    return this.#size;
  }

  /**
   * Changes how many indices the set can hold. Growing keeps every member; shrinking drops the
   * members at or above the new size. Storage grows geometrically, so growing one at a time is
   * amortised O(1).
   */
  resize(size: number): void {
    if (!Number.isInteger(size) || size < 0) {
      throw new RangeError(`size must be a non-negative integer, got ${size}`);
    }
    for (let i = size; i < this.#size; i++) this.delete(i);
    if (size > this.#allocated) this.#grow(Math.max(size, this.#allocated * 2));
    this.#size = size;
  }

  /** Adds `index` (must be below the size). */
  add(index: number): void {
    this.#check(index);
    let i = index;
    for (const level of this.#levels) {
      const w = i >>> 5;
      const before = level[w] as number;
      level[w] = before | (1 << (i & 31));
      if (before !== 0) return; // the upper levels already know this word is non-zero
      i = w;
    }
  }

  /** Removes `index`; removing an absent or out-of-range index does nothing. */
  delete(index: number): void {
    if (index < 0 || index >= this.#size) return;
    let i = index;
    for (const level of this.#levels) {
      const w = i >>> 5;
      const after = (level[w] as number) & ~(1 << (i & 31));
      level[w] = after;
      if (after !== 0) return; // the word still has members: the upper levels stay set
      i = w;
    }
  }

  /** True when `index` is a member. */
  has(index: number): boolean {
    if (index < 0 || index >= this.#size) return false;
    return (((this.#levels[0] as Uint32Array)[index >>> 5] as number) & (1 << (index & 31))) !== 0;
  }

  /** Makes every index below the size a member. */
  fill(): void {
    let width = this.#size;
    for (const level of this.#levels) {
      const full = width >>> 5;
      level.fill(0xffffffff, 0, full);
      const rest = width & 31;
      if (rest !== 0) level[full] = (1 << rest) - 1;
      width = (width + 31) >>> 5;
    }
  }

  /** Removes every member. */
  clear(): void {
    for (const level of this.#levels) level.fill(0);
  }

  /** The lowest member, or `undefined` when the set is empty. */
  lowest(): number | undefined {
    const levels = this.#levels;
    let top = levels.length - 1;
    let index = 0;
    for (; top >= 0; top--) {
      const word = (levels[top] as Uint32Array)[index] as number;
      if (word === 0) return undefined;
      index = (index << 5) | (31 - Math.clz32(word & -word));
    }
    return index;
  }

  /** True when the set has no member. */
  isEmpty(): boolean {
    return (this.#levels[this.#levels.length - 1] as Uint32Array)[0] === 0;
  }

  #check(index: number): void {
    if (!Number.isInteger(index) || index < 0 || index >= this.#size) {
      throw new RangeError(`index ${index} is outside 0..${this.#size - 1}`);
    }
  }

  /** Reallocates for `bits` indices: copies level 0, then rebuilds each upper level from below. */
  #grow(bits: number): void {
    const levels: Uint32Array[] = [];
    let width = bits;
    do {
      const words = (width + 31) >>> 5;
      levels.push(new Uint32Array(words));
      width = words;
    } while (width > 1);
    (levels[0] as Uint32Array).set(this.#levels[0] as Uint32Array);
    for (let l = 1; l < levels.length; l++) {
      const below = levels[l - 1] as Uint32Array;
      const level = levels[l] as Uint32Array;
      for (let w = 0; w < below.length; w++) {
        if (below[w] !== 0) level[w >>> 5] = (level[w >>> 5] as number) | (1 << (w & 31));
      }
    }
    this.#levels = levels;
    this.#allocated = bits;
  }
}
