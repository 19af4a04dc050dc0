import { AtomicsDoorbell } from "../ring/doorbell.ts";
import { createRing } from "../ring/spsc.ts";

/**
 * The shared memory of one bus: a ring for every ordered pair of endpoints and a doorbell for
 * every endpoint. Plain data made of SharedArrayBuffers, so it can be posted to Bun Workers; each
 * thread then opens its own `BusEndpoint` on it.
 */
export interface BusLayout {
  /** Number of endpoints (for the runtime: the controller and every worker). */
  readonly endpoints: number;
  /** Capacity of each ring in bytes. */
  readonly ringBytes: number;
  /** `legs[from * endpoints + to]` is the ring from `from` to `to`; `null` where from === to. */
  readonly legs: readonly (SharedArrayBuffer | null)[];
  /** `doorbells[n]` is where endpoint n parks and is woken. */
  readonly doorbells: readonly SharedArrayBuffer[];
}

/** Options for `createBusLayout`. */
export interface BusLayoutOptions {
  /** Number of endpoints, 2 to 255. */
  endpoints: number;
  /** Capacity of each ring in bytes: a power of two, default 256 KiB. Largest message: half. */
  ringBytes?: number;
}

/** The ring capacity of a bus made without `ringBytes`. */
export const DEFAULT_RING_BYTES = 256 * 1024;

/** The largest message a bus of `ringBytes` rings carries (half a ring, less a record header). */
export function maxMessageBytesOf(ringBytes: number): number {
  return ringBytes / 2 - 8;
}

/** Most endpoints a bus can have: endpoint ids must fit in a byte. */
export const MAX_ENDPOINTS = 255;

/** Allocates the rings and doorbells of a bus with `endpoints` endpoints. */
export function createBusLayout(options: BusLayoutOptions): BusLayout {
  const { endpoints, ringBytes = DEFAULT_RING_BYTES } = options;
  if (!Number.isInteger(endpoints) || endpoints < 2 || endpoints > MAX_ENDPOINTS) {
    throw new RangeError(`a bus needs 2 to ${MAX_ENDPOINTS} endpoints, got ${endpoints}`);
  }
  const legs: (SharedArrayBuffer | null)[] = [];
  for (let from = 0; from < endpoints; from++) {
    for (let to = 0; to < endpoints; to++) legs.push(from === to ? null : createRing(ringBytes));
  }
  const doorbells = Array.from({ length: endpoints }, () => AtomicsDoorbell.create());
  return { endpoints, ringBytes, legs, doorbells };
}
