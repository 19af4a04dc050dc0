/**
 * A growable set of small non-negative integers whose lowest member is found in O(log32 n).
 *
 * Level 0 holds one bit per index; every upper level holds one bit per non-zero word of the level
 * below, up to a single top word. Finding the lowest member descends from the top word with one
 * count-trailing-zeros per level, so 10,000 members cost three word reads, not 313. All levels
 * live in one Uint32Array (`#offsets[l]` is where level l starts).
 */
export class LowestBitSet {
  #words = new Uint32Array(1);
  #offsets: number[] = [0];
  #top = 0;
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
    if (!(index >= 0 && index < this.#size) || index % 1 !== 0) {
      throw new RangeError(`index ${index} is outside 0..${this.#size - 1}`);
    }
    const words = this.#words;
    const offsets = this.#offsets;
    let i = index;
    for (let l = 0; l <= this.#top; l++) {
      const at = (offsets[l] as number) + (i >>> 5);
      const before = words[at] as number;
      words[at] = before | (1 << (i & 31));
      if (before !== 0) return; // the upper levels already know this word is non-zero
      i >>>= 5;
    }
  }

  /** Removes `index`; removing an absent or out-of-range index does nothing. */
  delete(index: number): void {
    if (!(index >= 0 && index < this.#size)) return;
    const words = this.#words;
    const offsets = this.#offsets;
    let i = index;
    for (let l = 0; l <= this.#top; l++) {
      const at = (offsets[l] as number) + (i >>> 5);
      const after = (words[at] as number) & ~(1 << (i & 31));
      words[at] = after;
      if (after !== 0) return; // the word still has members: the upper levels stay set
      i >>>= 5;
    }
  }

  /** True when `index` is a member. */
  has(index: number): boolean {
    if (!(index >= 0 && index < this.#size)) return false;
    return ((this.#words[index >>> 5] as number) & (1 << (index & 31))) !== 0;
  }

  /** Makes every index below the size a member. */
  fill(): void {
    let width = this.#size;
    for (let l = 0; l <= this.#top; l++) {
      const start = this.#offsets[l] as number;
      const full = width >>> 5;
      this.#words.fill(0xffffffff, start, start + full);
      const rest = width & 31;
      if (rest !== 0) this.#words[start + full] = (1 << rest) - 1;
      width = (width + 31) >>> 5;
    }
  }

  /** Removes every member. */
  clear(): void {
    this.#words.fill(0);
  }

  /** The lowest member, or `undefined` when the set is empty. */
  lowest(): number | undefined {
    const words = this.#words;
    const offsets = this.#offsets;
    let index = 0;
    for (let l = this.#top; l >= 0; l--) {
      const word = words[(offsets[l] as number) + index] as number;
      if (word === 0) return undefined;
      index = (index << 5) | (31 - Math.clz32(word & -word));
    }
    return index;
  }

  /** True when the set has no member. */
  isEmpty(): boolean {
    return this.#words[this.#offsets[this.#top] as number] === 0;
  }

  /** Reallocates for `bits` indices: copies level 0, then rebuilds each upper level from below. */
  #grow(bits: number): void {
    const offsets: number[] = [];
    let total = 0;
    let width = bits;
    do {
      const count = (width + 31) >>> 5;
      offsets.push(total);
      total += count;
      width = count;
    } while (width > 1);
    const words = new Uint32Array(total);
    const levelZero = (this.#offsets[1] ?? this.#words.length) - (this.#offsets[0] as number);
    words.set(this.#words.subarray(0, levelZero));
    for (let l = 1; l < offsets.length; l++) {
      const below = offsets[l - 1] as number;
      const here = offsets[l] as number;
      for (let w = 0; w < here - below; w++) {
        if (words[below + w] !== 0) {
          const at = here + (w >>> 5);
          words[at] = (words[at] as number) | (1 << (w & 31));
        }
      }
    }
    this.#words = words;
    this.#offsets = offsets;
    this.#top = offsets.length - 1;
    this.#allocated = bits;
  }
}
