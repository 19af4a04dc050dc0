import { RecordTooLargeError, RingCorruptError } from "./errors.ts";

// Shared layout, in Int32 cells. Head and tail sit on their own 64-byte cache lines.
const HEAD = 0; // consumer-owned: bytes released so far (u32, wraps)
const TAIL = 16; // producer-owned: bytes published so far (u32, wraps)
const CAPACITY = 32;
const MAGIC = 33;
const WANT_SPACE = 40; // producer sets, consumer clears: tell me when you free space
const MAGIC_VALUE = 0x53504331; // "SPC1"
const DATA_START = 192;
const HEADER = 8; // u32 payload length, u32 tag
const PADDING = 0xffffffff; // length value that means "skip to the start of the data area"

/** Bytes a record of `length` payload bytes occupies: header + payload, rounded up to 8. */
export function recordSize(length: number): number {
  return (length + HEADER + 7) & ~7;
}

/**
 * Creates the shared memory of one single-producer single-consumer ring.
 * `capacity` (bytes of record space) must be a power of two between 64 B and 1 GiB.
 */
export function createRing(capacity: number): SharedArrayBuffer {
  if (
    !Number.isInteger(capacity) ||
    capacity < 64 ||
    capacity > 2 ** 30 ||
    (capacity & (capacity - 1)) !== 0
  ) {
    throw new RangeError(
      `ring capacity must be a power of two from 64 B to 1 GiB, got ${capacity}`,
    );
  }
  const sab = new SharedArrayBuffer(DATA_START + capacity);
  const meta = new Int32Array(sab, 0, DATA_START / 4);
  meta[CAPACITY] = capacity;
  meta[MAGIC] = MAGIC_VALUE;
  return sab;
}

/** The views both ends share, with the layout checks done once. */
class RingMemory {
  readonly meta: Int32Array;
  readonly bytes: Uint8Array;
  readonly words: Uint32Array;
  readonly capacity: number;
  readonly mask: number;
  /** Largest payload: any record up to this size fits once the ring is empty, whatever the offset. */
  readonly maxPayload: number;

  constructor(sab: SharedArrayBuffer) {
    if (!(sab instanceof SharedArrayBuffer) || sab.byteLength < DATA_START + 64) {
      throw new TypeError("not a ring: expected the SharedArrayBuffer made by createRing()");
    }
    this.meta = new Int32Array(sab, 0, DATA_START / 4);
    const capacity = this.meta[CAPACITY] as number;
    if (this.meta[MAGIC] !== MAGIC_VALUE || sab.byteLength !== DATA_START + capacity) {
      throw new TypeError("not a ring: bad magic or size (was it made by createRing()?)");
    }
    this.bytes = new Uint8Array(sab, DATA_START, capacity);
    this.words = new Uint32Array(sab, DATA_START, capacity / 4);
    this.capacity = capacity;
    this.mask = capacity - 1;
    this.maxPayload = capacity / 2 - HEADER;
  }
}

/**
 * The producing end of a ring. Use from one thread only.
 *
 * Records are written in place and become visible to the consumer only at `publish()`, which
 * stores the tail once for the whole batch.
 */
export class RingProducer {
  readonly #meta: Int32Array;
  readonly #words: Uint32Array;
  readonly #mask: number;
  readonly #capacity: number;
  /** Largest payload accepted (half the capacity minus the 8-byte header). */
  readonly maxPayload: number;
  /** The ring's data area: a record's payload is written at the offset `reserve` returns. */
  readonly bytes: Uint8Array;
  #tail: number;
  #published: number;
  #head: number; // last head seen; refreshed only when the ring looks full

  /** Opens the producing end of the ring in `sab`. */
  constructor(sab: SharedArrayBuffer) {
    const mem = new RingMemory(sab);
    this.#meta = mem.meta;
    this.#words = mem.words;
    this.#mask = mem.mask;
    this.#capacity = mem.capacity;
    this.maxPayload = mem.maxPayload;
    this.bytes = mem.bytes;
    this.#tail = Atomics.load(mem.meta, TAIL) >>> 0;
    this.#published = this.#tail;
    this.#head = Atomics.load(mem.meta, HEAD) >>> 0;
  }

  /**
   * Reserves a record of `length` payload bytes with `tag` (a u32 the consumer gets back) and
   * returns the offset in `bytes` where its payload goes, or -1 when the ring is full. The record
   * is visible to the consumer after the next `publish()`. Throws RecordTooLargeError for a
   * payload larger than `maxPayload`.
   */
  reserve(length: number, tag: number): number {
    if (length > this.maxPayload || !(length >= 0))
      throw new RecordTooLargeError(length, this.maxPayload);
    const capacity = this.#capacity;
    const size = (length + HEADER + 7) & ~7;
    let tail = this.#tail;
    let at = tail & this.#mask;
    const tillEnd = capacity - at;
    const need = size > tillEnd ? size + tillEnd : size;
    if (need > capacity - ((tail - this.#head) >>> 0)) {
      this.#head = Atomics.load(this.#meta, HEAD) >>> 0;
      if (need > capacity - ((tail - this.#head) >>> 0)) return -1;
    }
    const words = this.#words;
    if (size > tillEnd) {
      words[at >>> 2] = PADDING;
      tail = (tail + tillEnd) >>> 0;
      at = 0;
    }
    words[at >>> 2] = length;
    words[(at >>> 2) + 1] = tag;
    this.#tail = (tail + size) >>> 0;
    return at + HEADER;
  }

  /** Copies `data` into a new record; false (and nothing written) when the ring is full. */
  tryPush(data: Uint8Array, tag = 0): boolean {
    const at = this.reserve(data.length, tag);
    if (at < 0) return false;
    this.bytes.set(data, at);
    return true;
  }

  /** Makes every record reserved so far visible to the consumer. True if there was anything new. */
  publish(): boolean {
    if (this.#tail === this.#published) return false;
    Atomics.store(this.#meta, TAIL, this.#tail | 0);
    this.#published = this.#tail;
    return true;
  }

  /**
   * Asks the consumer to say when it next frees space (its `release` returns true once). Call it
   * after a push failed, then try again: either that try succeeds or the consumer will say so.
   */
  wantSpace(): void {
    Atomics.store(this.#meta, WANT_SPACE, 1);
  }

  /** Bytes reserved but not yet published plus bytes the consumer has not released. */
  get used(): number {
    return (this.#tail - (Atomics.load(this.#meta, HEAD) >>> 0)) >>> 0;
  }

  /** Capacity of the data area in bytes. */
  get capacity(): number {
    return this.#capacity;
  }
}

/**
 * The consuming end of a ring. Use from one thread only.
 *
 * `next()` steps through published records in place: after it returns true, the record's payload
 * is `bytes[offset .. offset + length)` and its tag is `tag`. The payload stays valid until
 * `release()`, which hands every record read so far back to the producer in one store.
 */
export class RingConsumer {
  readonly #mem: RingMemory;
  /** The ring's data area. */
  readonly bytes: Uint8Array;
  /** Payload offset of the current record. */
  offset = 0;
  /** Payload length of the current record. */
  length = 0;
  /** Tag of the current record. */
  tag = 0;
  #head: number;
  #released: number;
  #tail: number; // tail snapshot; refreshed when the records seen so far are used up
  #broken: RingCorruptError | undefined;

  /** Opens the consuming end of the ring in `sab`. */
  constructor(sab: SharedArrayBuffer) {
    this.#mem = new RingMemory(sab);
    this.bytes = this.#mem.bytes;
    this.#head = Atomics.load(this.#mem.meta, HEAD) >>> 0;
    this.#released = this.#head;
    this.#tail = Atomics.load(this.#mem.meta, TAIL) >>> 0;
  }

  /**
   * Advances to the next published record. Returns false when there is none. Throws
   * RingCorruptError (now and on every later call) when a header is impossible.
   */
  next(): boolean {
    if (this.#broken !== undefined) throw this.#broken;
    const mem = this.#mem;
    if (this.#head === this.#tail) {
      this.#tail = Atomics.load(mem.meta, TAIL) >>> 0;
      if (this.#head === this.#tail) return false;
    }
    let at = this.#head & mem.mask;
    let available = (this.#tail - this.#head) >>> 0;
    let length = mem.words[at >>> 2] as number;
    if (length === PADDING) {
      const skip = mem.capacity - at;
      if (skip >= available)
        return this.#corrupt(at, `padding of ${skip} bytes but only ${available} published`);
      this.#head = (this.#head + skip) >>> 0;
      available -= skip;
      at = 0;
      length = mem.words[0] as number;
    }
    const size = (length + HEADER + 7) & ~7;
    if (length > mem.maxPayload || size > available) {
      return this.#corrupt(
        at,
        `length ${length} but only ${available} bytes published (max record ${mem.maxPayload})`,
      );
    }
    this.offset = at + HEADER;
    this.length = length;
    this.tag = mem.words[(at >>> 2) + 1] as number;
    this.#head = (this.#head + size) >>> 0;
    return true;
  }

  /**
   * Hands every record read so far back to the producer. Their payload views become invalid.
   * True when the producer asked to be told (`wantSpace`): wake it.
   */
  release(): boolean {
    if (this.#head === this.#released) return false;
    const meta = this.#mem.meta;
    Atomics.store(meta, HEAD, this.#head | 0);
    this.#released = this.#head;
    if (Atomics.load(meta, WANT_SPACE) === 0) return false;
    Atomics.store(meta, WANT_SPACE, 0);
    return true;
  }

  /** True when a published record is waiting (cheap enough to call before parking). */
  hasData(): boolean {
    return this.#head !== this.#tail || this.#head !== Atomics.load(this.#mem.meta, TAIL) >>> 0;
  }

  /** The corruption found, if any: a broken ring delivers nothing more. */
  get broken(): RingCorruptError | undefined {
    return this.#broken;
  }

  #corrupt(at: number, detail: string): never {
    this.#broken = new RingCorruptError(at, detail);
    throw this.#broken;
  }
}
