/**
 * A worker's stats block: a SharedArrayBuffer the worker writes and the controller reads without
 * messaging. Two parts:
 * - a snapshot (`StatsSnapshot` fields and the bytes queued toward each bus endpoint), written
 *   once per stats window and at the worker's end; a sequence counter (odd while a write is in
 *   progress) gives readers a consistent copy;
 * - live cells (`LiveCell`), written by the loop as it goes (one store per input, per output,
 *   per iteration), so a worker that dies or hangs shows its counters up to that moment and the
 *   watchdog sees its progress.
 */

import { TCP_STATS_FIELDS } from "../backend/tcp.ts";

/** The fields of the snapshot, in order. */
const FIELDS = [
  "tasks",
  "spawnsHandled",
  "loopUtilisation",
  "eventsInPerSec",
  "eventsOutPerSec",
  "ringOccupancy",
  "bufferExhaustion",
  "buffersOutstanding",
  "sendDrops",
  "kernelDrops",
  "busDrops",
  "busCapped",
  "busQueuedBytes",
  "heapBytes",
  "taskErrors",
  "staleDrops",
  "lateReplies",
  "updatedAt",
  ...TCP_STATS_FIELDS,
] as const;

/** Name of one snapshot field. */
export type StatsField = (typeof FIELDS)[number];

/** The live cells, by index in `StatsWriter.live`. */
export const LiveCell = {
  /** Loop iterations since start: the watchdog's progress counter. */
  loops: 0,
  /** Inputs given to the inner since start. */
  eventsIn: 1,
  /** Outputs popped from the inner since start. */
  eventsOut: 2,
  /** While the loop sleeps: when it will wake at the latest (shared clock, ms); 0 when busy. */
  parkedUntil: 3,
} as const;

const LIVE_CELLS = 4;
const SEQ_BYTES = 8;

/** One consistent reading of a stats block. */
export type StatsSnapshot = Record<StatsField, number> & {
  readonly loops: number;
  readonly eventsIn: number;
  readonly eventsOut: number;
  readonly parkedUntil: number;
  /** Bytes of safe sends the worker holds queued for each bus endpoint (0 is the controller). */
  readonly queuedTo: readonly number[];
};

/** What a worker writes with `StatsWriter.write`. */
export type StatsValues = Record<StatsField, number>;

/** Allocates a zeroed stats block for a bus of `endpoints` endpoints. */
export function createStatsBlock(endpoints: number): SharedArrayBuffer {
  return new SharedArrayBuffer(SEQ_BYTES + (LIVE_CELLS + FIELDS.length + endpoints) * 8);
}

function views(block: SharedArrayBuffer) {
  const cells = (block.byteLength - SEQ_BYTES) / 8;
  return {
    seq: new Int32Array(block, 0, 1),
    live: new Float64Array(block, SEQ_BYTES, LIVE_CELLS),
    values: new Float64Array(block, SEQ_BYTES + LIVE_CELLS * 8, FIELDS.length),
    queuedTo: new Float64Array(
      block,
      SEQ_BYTES + (LIVE_CELLS + FIELDS.length) * 8,
      cells - LIVE_CELLS - FIELDS.length,
    ),
  };
}

/** The writing side, used by the worker thread only. */
export class StatsWriter {
  readonly #seq: Int32Array;
  readonly #values: Float64Array;
  readonly #queuedTo: Float64Array;
  /** The live cells, indexed by `LiveCell`: the loop updates them in place. */
  readonly live: Float64Array;

  /** Opens a block made by `createStatsBlock`. */
  constructor(block: SharedArrayBuffer) {
    const v = views(block);
    this.#seq = v.seq;
    this.#values = v.values;
    this.#queuedTo = v.queuedTo;
    this.live = v.live;
  }

  /** Writes the snapshot: every field of `values` and the bytes queued per endpoint. */
  write(values: StatsValues, queuedTo: (endpoint: number) => number): void {
    Atomics.add(this.#seq, 0, 1);
    for (let i = 0; i < FIELDS.length; i++) this.#values[i] = values[FIELDS[i] as StatsField];
    for (let i = 0; i < this.#queuedTo.length; i++) this.#queuedTo[i] = queuedTo(i);
    Atomics.add(this.#seq, 0, 1);
  }
}

/**
 * Reads a consistent snapshot of `block` (any thread), with the live cells as they are now. If
 * the writer died in the middle of a write, the fields are returned as they are after a bounded
 * number of retries.
 */
export function readStats(block: SharedArrayBuffer): StatsSnapshot {
  const { seq, live, values, queuedTo } = views(block);
  const out = {} as Record<StatsField, number>;
  let queued: number[] = [];
  for (let attempt = 0; attempt < 10_000; attempt++) {
    const before = Atomics.load(seq, 0);
    for (let i = 0; i < FIELDS.length; i++) out[FIELDS[i] as StatsField] = values[i] as number;
    queued = Array.from(queuedTo);
    if ((before & 1) === 0 && Atomics.load(seq, 0) === before) break;
  }
  return {
    ...out,
    loops: live[LiveCell.loops] as number,
    eventsIn: live[LiveCell.eventsIn] as number,
    eventsOut: live[LiveCell.eventsOut] as number,
    parkedUntil: live[LiveCell.parkedUntil] as number,
    queuedTo: queued,
  };
}
