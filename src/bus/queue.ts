/**
 * The local queue of safe sends to one destination whose ring was full: messages wait here, in
 * order, and move into the ring as it gets room. Each counts its payload plus
 * `QUEUED_MESSAGE_OVERHEAD` toward the destination's cap.
 */
import type { RingProducer } from "../ring/spsc.ts";

/** Bytes a queued message counts toward `maxQueuedBytes` beyond its payload (its bookkeeping). */
export const QUEUED_MESSAGE_OVERHEAD = 64;

/** A message held for later: its record tag and a copy of its bytes. */
export interface Held {
  readonly tag: number;
  readonly bytes: Uint8Array;
}

const EMPTY: Held = { tag: 0, bytes: new Uint8Array(0) };

/** What `SendQueue.drainInto` or `clear` took out: messages and the bytes they counted. */
export interface Taken {
  readonly messages: number;
  readonly bytes: number;
}

/** Safe sends waiting, in order, for room in the ring to one destination. */
export class SendQueue {
  #items: Held[] = [];
  #head = 0; // index of the first message not yet moved into the ring
  #bytes = 0;

  /** Messages waiting. */
  get length(): number {
    return this.#items.length - this.#head;
  }

  /** Bytes the waiting messages count (payload + overhead each). */
  get bytes(): number {
    return this.#bytes;
  }

  /** True when `payload` more bytes would keep the queue within `cap`. */
  fits(payload: number, cap: number): boolean {
    return this.#bytes + payload + QUEUED_MESSAGE_OVERHEAD <= cap;
  }

  /** Holds a copy of `bytes`; returns the bytes it counts. */
  push(tag: number, bytes: Uint8Array): number {
    this.#items.push({ tag, bytes: bytes.slice() });
    const size = bytes.length + QUEUED_MESSAGE_OVERHEAD;
    this.#bytes += size;
    return size;
  }

  /**
   * Moves waiting messages into `ring` while it has room, in order. Each message leaves the queue
   * as it enters the ring, so nothing is moved twice whatever happens.
   */
  drainInto(ring: RingProducer): Taken {
    const items = this.#items;
    let messages = 0;
    let bytes = 0;
    while (this.#head < items.length) {
      const held = items[this.#head] as Held;
      if (!ring.tryPush(held.bytes, held.tag)) break;
      items[this.#head] = EMPTY;
      this.#head++;
      messages++;
      bytes += held.bytes.length + QUEUED_MESSAGE_OVERHEAD;
    }
    this.#bytes -= bytes;
    if (this.#head === items.length) {
      this.#items = [];
      this.#head = 0;
    } else if (this.#head > 1024 && this.#head * 2 > items.length) {
      items.splice(0, this.#head);
      this.#head = 0;
    }
    return { messages, bytes };
  }

  /** Drops every waiting message; returns what was dropped. */
  clear(): Taken {
    const taken = { messages: this.length, bytes: this.#bytes };
    this.#items = [];
    this.#head = 0;
    this.#bytes = 0;
    return taken;
  }
}
