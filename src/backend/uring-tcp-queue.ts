/**
 * The io_uring backend's TCP send queues: native send memory (mapped by the shim, never
 * GC-managed, so the kernel may read it after the call that queued it returns) cut into blocks,
 * and per connection a FIFO of blocks its bytes are copied into. A send hands the kernel iovecs
 * over the queued bytes; blocks go back to the pool as the kernel takes their bytes.
 */

/** Bytes per block of send memory. */
export const SEND_BLOCK = 16384;

/** The blocks of send memory, shared by every connection of a backend. */
export class SendBlocks {
  /** The memory, viewed from JS. */
  readonly bytes: Uint8Array;
  /** Its native address. */
  readonly addr: number;
  readonly #free: number[] = [];

  /** A pool over `bytes` (native, at `addr`), cut into `SEND_BLOCK`-byte blocks. */
  constructor(bytes: Uint8Array, addr: number) {
    this.bytes = bytes;
    this.addr = addr;
    for (let b = Math.floor(bytes.length / SEND_BLOCK) - 1; b >= 0; b--) this.#free.push(b);
  }

  /** Blocks free right now. */
  get available(): number {
    return this.#free.length;
  }

  /** Takes a free block (the caller checked `available`). */
  take(): number {
    return this.#free.pop() as number;
  }

  /** Gives block `b` back. */
  give(b: number): void {
    this.#free.push(b);
  }
}

/**
 * One connection's queued bytes: blocks `#blocks[#first..#end)` in order, the first read from
 * `head`, the last filled up to `tail` (every block between is full). The array is used as a
 * deque that never shrinks: a queue that empties and fills again on every request (an echo)
 * must not make the engine free and reallocate the array's storage each time.
 */
export class SendQueue {
  readonly #pool: SendBlocks;
  readonly #blocks: number[] = [];
  #first = 0;
  #end = 0;
  #head = 0;
  #tail = 0;
  /** Bytes handed to the kernel by the send under way (0: none under way). */
  sending = 0;

  constructor(pool: SendBlocks) {
    this.#pool = pool;
  }

  /** Bytes queued (those under way included). */
  get length(): number {
    const n = this.#end - this.#first;
    return n === 0 ? 0 : (n - 1) * SEND_BLOCK + this.#tail - this.#head;
  }

  /** Copies `data` in at the end; false (nothing copied) when the pool lacks the blocks. */
  push(data: Uint8Array): boolean {
    const room = this.#end === this.#first ? 0 : SEND_BLOCK - this.#tail;
    const needed = Math.ceil(Math.max(0, data.length - room) / SEND_BLOCK);
    if (needed > this.#pool.available) return false;
    let at = 0;
    while (at < data.length) {
      if (this.#end === this.#first || this.#tail === SEND_BLOCK) {
        this.#blocks[this.#end++] = this.#pool.take();
        this.#tail = 0;
      }
      const block = this.#blocks[this.#end - 1] as number;
      const n = Math.min(SEND_BLOCK - this.#tail, data.length - at);
      const into = block * SEND_BLOCK + this.#tail;
      // the whole of a small send fits: no view to make
      this.#pool.bytes.set(n === data.length ? data : data.subarray(at, at + n), into);
      this.#tail += n;
      at += n;
    }
    return true;
  }

  /**
   * Writes iovecs (base u64, length u64) for up to `max` blocks of queued bytes at byte `at` of
   * `iovs`; returns how many, and sets `sending` to the bytes they cover.
   */
  fill(iovs: DataView, at: number, max: number): number {
    const count = this.#end - this.#first;
    const n = Math.min(max, count);
    let bytes = 0;
    for (let i = 0; i < n; i++) {
      const start = i === 0 ? this.#head : 0;
      const end = i === count - 1 ? this.#tail : SEND_BLOCK;
      const base = this.#pool.addr + (this.#blocks[this.#first + i] as number) * SEND_BLOCK + start;
      iovs.setUint32(at + i * 16, base % 2 ** 32, true);
      iovs.setUint32(at + i * 16 + 4, Math.floor(base / 2 ** 32), true);
      iovs.setUint32(at + i * 16 + 8, end - start, true);
      iovs.setUint32(at + i * 16 + 12, 0, true);
      bytes += end - start;
    }
    this.sending = bytes;
    return n;
  }

  /** The kernel took `bytes` from the front: the blocks it emptied go back to the pool. */
  consume(bytes: number): void {
    let left = bytes;
    while (left > 0 && this.#end > this.#first) {
      const last = this.#end - this.#first === 1;
      const end = last ? this.#tail : SEND_BLOCK;
      const n = Math.min(left, end - this.#head);
      this.#head += n;
      left -= n;
      if (this.#head === end) {
        this.#pool.give(this.#blocks[this.#first++] as number);
        this.#head = 0;
        if (last) {
          this.#tail = 0;
          this.#first = 0;
          this.#end = 0;
        }
      }
    }
  }

  /** Drops everything queued (no send may be under way): the blocks go back to the pool. */
  clear(): void {
    for (let i = this.#first; i < this.#end; i++) this.#pool.give(this.#blocks[i] as number);
    this.#first = 0;
    this.#end = 0;
    this.#head = 0;
    this.#tail = 0;
  }
}
