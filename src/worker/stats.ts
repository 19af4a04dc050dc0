/**
 * A worker's stats block: a SharedArrayBuffer the worker writes and the controller reads without
 * messaging. A sequence counter (odd while a write is in progress) gives readers a consistent
 * snapshot.
 */

/** The fields of a stats block, in order. */
const FIELDS = [
  "tasks",
  "spawnsHandled",
  "loopUtilisation",
  "eventsInPerSec",
  "eventsOutPerSec",
  "eventsIn",
  "eventsOut",
  "ringOccupancy",
  "bufferExhaustion",
  "buffersOutstanding",
  "sendDrops",
  "busDrops",
  "loops",
  "taskErrors",
  "updatedAt",
] as const;

/** Name of one stats field. */
export type StatsField = (typeof FIELDS)[number];

/** One consistent reading of a stats block. */
export type StatsSnapshot = Record<StatsField, number>;

const SEQ_BYTES = 8;

/** Allocates a zeroed stats block. */
export function createStatsBlock(): SharedArrayBuffer {
  return new SharedArrayBuffer(SEQ_BYTES + FIELDS.length * 8);
}

/** The writing side, used by the worker thread only. */
export class StatsWriter {
  readonly #seq: Int32Array;
  readonly #values: Float64Array;

  /** Opens a block made by `createStatsBlock`. */
  constructor(block: SharedArrayBuffer) {
    this.#seq = new Int32Array(block, 0, 1);
    this.#values = new Float64Array(block, SEQ_BYTES, FIELDS.length);
  }

  /** Writes every field of `values` as one snapshot. */
  write(values: StatsSnapshot): void {
    Atomics.add(this.#seq, 0, 1);
    for (let i = 0; i < FIELDS.length; i++) this.#values[i] = values[FIELDS[i] as StatsField];
    Atomics.add(this.#seq, 0, 1);
  }
}

/**
 * Reads a consistent snapshot of `block` (any thread). If the writer died in the middle of a
 * write, the fields are returned as they are after a bounded number of retries.
 */
export function readStats(block: SharedArrayBuffer): StatsSnapshot {
  const seq = new Int32Array(block, 0, 1);
  const values = new Float64Array(block, SEQ_BYTES, FIELDS.length);
  const out = {} as StatsSnapshot;
  for (let attempt = 0; attempt < 10_000; attempt++) {
    const before = Atomics.load(seq, 0);
    for (let i = 0; i < FIELDS.length; i++) out[FIELDS[i] as StatsField] = values[i] as number;
    if ((before & 1) === 0 && Atomics.load(seq, 0) === before) break;
  }
  return out;
}
