import { AtomicsDoorbell } from "../ring/doorbell.ts";
import { RecordTooLargeError, RingCorruptError } from "../ring/errors.ts";
import { RingConsumer, RingProducer } from "../ring/spsc.ts";
import { type Codec, JsonBytesCodec, type Structured } from "./codec.ts";
import { type BusLayout, maxMessageBytesOf } from "./layout.ts";
import { type Held, SendQueue, type Taken } from "./queue.ts";
import { Subscriptions } from "./subscriptions.ts";
import type {
  BroadcastOptions,
  BusEndpointOptions,
  BusFault,
  BusMessage,
  BusParkResult,
  BusStats,
  MessageKind,
  SendOptions,
  SendResult,
} from "./types.ts";

const KIND_DIRECT = 1;
const KIND_BROADCAST = 2;
const KIND_PUBLISH = 3;
const KIND_EXTERNAL = 4;
const KIND_SUBSCRIBE = 8;
const KIND_UNSUBSCRIBE = 9;
const STRUCTURED = 0x10;
const CHANNEL_SHIFT = 5;
/** Channels are integers from 0 to MAX_CHANNEL. */
export const MAX_CHANNEL = 2 ** 27 - 1;

const KINDS: readonly (MessageKind | undefined)[] = [];
(KINDS as (MessageKind | undefined)[])[KIND_DIRECT] = "direct";
(KINDS as (MessageKind | undefined)[])[KIND_BROADCAST] = "broadcast";
(KINDS as (MessageKind | undefined)[])[KIND_PUBLISH] = "channel";
(KINDS as (MessageKind | undefined)[])[KIND_EXTERNAL] = "external";

/**
 * One endpoint of a bus, used from one thread. Sends go to per-destination rings and become
 * visible at `flush()` (one store per ring per batch, then a wake-up for a parked receiver);
 * `poll()` delivers what arrived, in order per sender.
 *
 * Pub/sub: `subscribe` and `unsubscribe` are replicated to every endpoint through the bus itself.
 * A publisher sends to the subscribers it knows of; a subscriber drops channel messages that
 * arrive after it unsubscribed. So a message reaches each current subscriber exactly once, in
 * publish order per publisher.
 */
export class BusEndpoint<T = Structured> {
  /** This endpoint's id. */
  readonly self: number;
  /** Number of endpoints on the bus. */
  readonly endpoints: number;
  readonly #out: (RingProducer | undefined)[] = [];
  readonly #in: (RingConsumer | undefined)[] = [];
  readonly #doorbells: AtomicsDoorbell[];
  readonly #pending: SendQueue[] = [];
  readonly #dirty: boolean[] = []; // per destination: written since the last publish
  readonly #loopback: Held[] = [];
  readonly #subs = new Subscriptions();
  readonly #codec: Codec<T>;
  readonly #onFault: ((fault: BusFault) => void) | undefined;
  readonly #closed: boolean[] = [];
  readonly #maxQueuedBytes: number;
  readonly #stats: BusStats = {
    sent: 0,
    received: 0,
    queued: 0,
    queuedBytes: 0,
    capped: 0,
    full: 0,
    unsubscribedDrops: 0,
    corruptLegs: 0,
    malformed: 0,
    undeliverable: 0,
  };
  #nextLeg = 0;
  /** Largest message (payload bytes) the rings of this bus carry: half a ring minus its header. */
  readonly maxMessageBytes: number;

  /** Opens endpoint `self` of the bus in `layout`. */
  constructor(layout: BusLayout, self: number, options: BusEndpointOptions<T> = {}) {
    if (!Number.isInteger(self) || self < 0 || self >= layout.endpoints) {
      throw new RangeError(`endpoint ${self} is not on this bus (0..${layout.endpoints - 1})`);
    }
    this.self = self;
    this.endpoints = layout.endpoints;
    for (let peer = 0; peer < layout.endpoints; peer++) {
      const out = layout.legs[self * layout.endpoints + peer];
      const inc = layout.legs[peer * layout.endpoints + self];
      this.#out.push(out ? new RingProducer(out) : undefined);
      this.#in.push(inc ? new RingConsumer(inc) : undefined);
      this.#pending.push(new SendQueue());
      this.#dirty.push(false);
      this.#closed.push(false);
    }
    this.#doorbells = layout.doorbells.map((sab) => new AtomicsDoorbell(sab, options.externalWake));
    this.#codec = options.codec ?? (new JsonBytesCodec() as unknown as Codec<T>);
    this.#onFault = options.onFault;
    this.maxMessageBytes = maxMessageBytesOf(layout.ringBytes);
    const cap = options.maxQueuedBytes ?? 4 * 1024 * 1024;
    if (!(cap >= 0)) throw new RangeError(`maxQueuedBytes must be >= 0, got ${cap}`);
    this.#maxQueuedBytes = cap;
  }

  /** Sends raw bytes or a structured value to endpoint `dest`. */
  send(dest: number, message: Uint8Array | T, options?: SendOptions): SendResult {
    this.#checkDest(dest);
    return this.#send(dest, KIND_DIRECT, message, options);
  }

  /** Like `send`, marked as relayed from outside the bus (for example an HTTP request). */
  sendExternal(dest: number, message: Uint8Array | T, options?: SendOptions): SendResult {
    this.#checkDest(dest);
    return this.#send(dest, KIND_EXTERNAL, message, options);
  }

  /**
   * Sends to every other endpoint (or to those in `options.to`, skipping this one). Returns how
   * many endpoints it reached (sent or queued).
   */
  broadcast(message: Uint8Array | T, options?: BroadcastOptions): number {
    const bytes = this.#encode(message);
    const tag = tagOf(KIND_BROADCAST, message);
    let reached = 0;
    const reach = (dest: number): void => {
      if (dest !== this.self && isSent(this.#push(dest, tag, bytes, options))) reached++;
    };
    if (options?.to === undefined) for (let dest = 0; dest < this.endpoints; dest++) reach(dest);
    else
      for (const dest of options.to) {
        this.#checkDest(dest);
        reach(dest);
      }
    return reached;
  }

  /** Subscribes this endpoint to `channel` and tells every other endpoint (never dropped). */
  subscribe(channel: number): void {
    checkChannel(channel);
    if (!this.#subs.add(channel, this.self)) return;
    this.#control(KIND_SUBSCRIBE, channel);
  }

  /** Unsubscribes from `channel`; messages already on their way are dropped on arrival. */
  unsubscribe(channel: number): void {
    checkChannel(channel);
    if (!this.#subs.remove(channel, this.self)) return;
    this.#control(KIND_UNSUBSCRIBE, channel);
  }

  /** True when this endpoint is subscribed to `channel`. */
  isSubscribed(channel: number): boolean {
    return this.#subs.has(channel, this.self);
  }

  /** The endpoints this endpoint currently knows as subscribers of `channel`. */
  subscribers(channel: number): readonly number[] {
    return this.#subs.of(channel);
  }

  /**
   * Publishes to every known subscriber of `channel` (this endpoint included, if subscribed).
   * Returns how many subscribers it reached (sent or queued).
   */
  publish(channel: number, message: Uint8Array | T, options?: SendOptions): number {
    checkChannel(channel);
    const bytes = this.#encode(message);
    const tag = tagOf(KIND_PUBLISH | (channel << CHANNEL_SHIFT), message);
    let reached = 0;
    for (const dest of this.#subs.of(channel)) {
      if (isSent(this.#push(dest, tag, bytes, options))) reached++;
    }
    return reached;
  }

  /**
   * Declares endpoint `peer` gone (its thread died or stopped): messages queued for it are
   * discarded, it is dropped from every channel, and later sends to it return `closed`. All
   * discarded and refused messages count as `undeliverable`. Cannot be undone.
   */
  closePeer(peer: number): void {
    this.#checkDest(peer);
    if (peer === this.self || this.#closed[peer]) return;
    this.#closed[peer] = true;
    const dropped = (this.#pending[peer] as SendQueue).clear();
    this.#stats.undeliverable += dropped.messages;
    this.#stats.queued -= dropped.messages;
    this.#stats.queuedBytes -= dropped.bytes;
    this.#subs.removeEndpoint(peer);
  }

  /** True once `closePeer(peer)` was called. */
  isClosed(peer: number): boolean {
    return this.#closed[peer] === true;
  }

  /**
   * Publishes every message written since the last flush (one store per ring), moves queued safe
   * sends into rings that have room, and wakes receivers that are parked. Returns how many
   * messages are still queued locally.
   */
  flush(): number {
    for (let dest = 0; dest < this.endpoints; dest++) {
      const queue = this.#pending[dest] as SendQueue;
      if (queue.length === 0) continue;
      const ring = this.#out[dest] as RingProducer;
      this.#moved(dest, queue.drainInto(ring));
      if (queue.length === 0) continue;
      // still full: the consumer wakes this endpoint when it frees space (or this try sees it)
      ring.wantSpace();
      this.#moved(dest, queue.drainInto(ring));
    }
    for (let dest = 0; dest < this.endpoints; dest++) {
      if (!this.#dirty[dest]) continue;
      this.#dirty[dest] = false;
      if ((this.#out[dest] as RingProducer).publish()) {
        (this.#doorbells[dest] as AtomicsDoorbell).wake();
      }
    }
    return this.#stats.queued;
  }

  /**
   * Before sleeping (the sleep announced): moves what waits in the send queues into rings that
   * have room now; true if any moved. What cannot move asked its consumer to wake this endpoint
   * when it frees space; announced first, that wake is not lost.
   */
  #movedQueued(): boolean {
    const before = this.#stats.queued;
    if (before === 0) return false;
    this.flush();
    return this.#stats.queued < before;
  }

  #moved(dest: number, moved: Taken): void {
    if (moved.messages === 0) return;
    this.#stats.queued -= moved.messages;
    this.#stats.queuedBytes -= moved.bytes;
    this.#stats.sent += moved.messages;
    this.#dirty[dest] = true;
  }

  /** Safe sends refused by `maxQueuedBytes` so far (`stats().capped`, without the copy). */
  get cappedSends(): number {
    return this.#stats.capped;
  }

  /**
   * Whether a safe send of `length` bytes to `dest` would be taken now rather than refused by
   * `maxQueuedBytes` (for senders that gather messages before sending them uncapped); a refusal
   * is counted as a capped send.
   */
  admits(dest: number, length: number): boolean {
    const queue = this.#pending[dest];
    if (queue === undefined || queue.length === 0 || queue.fits(length, this.#maxQueuedBytes)) {
      return true;
    }
    this.#stats.capped++;
    return false;
  }

  /** Bytes of safe sends queued locally for `dest` (see `maxQueuedBytes`). */
  queuedBytes(dest: number): number {
    return this.#pending[dest]?.bytes ?? 0;
  }

  /**
   * Delivers up to `limit` arrived messages to `handler`, taking senders in turn, in order per
   * sender. Subscription changes from other endpoints are applied as they arrive. Returns the
   * number delivered. If the handler throws, the message it was given counts as delivered and the
   * error propagates.
   */
  poll(handler: (message: BusMessage<T>) => void, limit = Number.POSITIVE_INFINITY): number {
    let delivered = 0;
    while (delivered < limit && this.#loopback.length > 0) {
      const p = this.#loopback.shift() as Held;
      delivered += this.#deliver(this.self, p.tag, p.bytes, handler);
    }
    const n = this.endpoints;
    for (let k = 0; k < n && delivered < limit; k++) {
      const from = (this.#nextLeg + k) % n;
      const ring = this.#in[from];
      if (ring === undefined) continue;
      try {
        while (delivered < limit && ring.next()) {
          delivered += this.#deliver(
            from,
            ring.tag,
            ring.bytes.subarray(ring.offset, ring.offset + ring.length),
            handler,
          );
        }
      } catch (e) {
        if (!(e instanceof RingCorruptError)) throw e;
        this.#in[from] = undefined;
        this.#stats.corruptLegs++;
        this.#onFault?.({ from, error: e });
      } finally {
        // the sender waits for room for what it queued: wake it
        if (ring.release()) (this.#doorbells[from] as AtomicsDoorbell).wake();
      }
    }
    this.#nextLeg = (this.#nextLeg + 1) % n;
    this.#stats.received += delivered;
    return delivered;
  }

  /** True when a message (or a subscription change) is waiting for `poll`. */
  hasIncoming(): boolean {
    if (this.#loopback.length > 0) return true;
    for (const ring of this.#in) if (ring?.hasData()) return true;
    return false;
  }

  /**
   * Blocks this thread until a message arrives or `timeoutMs` passes; returns "ready" at once
   * when something is already waiting. For Worker threads; the main thread uses `parkAsync`.
   */
  park(timeoutMs: number): BusParkResult {
    if (!this.prepareWait()) return "ready";
    return (this.#doorbells[this.self] as AtomicsDoorbell).park(timeoutMs);
  }

  /** Like `park`, without blocking the event loop. */
  parkAsync(timeoutMs: number): Promise<BusParkResult> {
    if (!this.prepareWait()) return Promise.resolve("ready");
    return (this.#doorbells[this.self] as AtomicsDoorbell).parkAsync(timeoutMs);
  }

  /**
   * Registers the handle through which other endpoints wake this one while it sleeps outside
   * `park` (for example in a backend's poll); they must have been opened with `externalWake`.
   */
  setWakeHandle(handle: number | undefined): void {
    (this.#doorbells[this.self] as AtomicsDoorbell).setExternalHandle(handle);
  }

  /**
   * For a receiver that sleeps in its own way (see `setWakeHandle`): announces the sleep and
   * returns true when nothing is waiting, so the caller may sleep until woken; returns false
   * (announcement withdrawn) when a message is already waiting. Call `endWait` after sleeping.
   */
  prepareWait(): boolean {
    const bell = this.#doorbells[this.self] as AtomicsDoorbell;
    bell.prepare();
    if (!this.hasIncoming() && !this.#movedQueued()) return true;
    bell.cancel();
    return false;
  }

  /** Ends a sleep announced by `prepareWait`. */
  endWait(): void {
    (this.#doorbells[this.self] as AtomicsDoorbell).cancel();
  }

  /** Counters since this endpoint was opened. */
  stats(): Readonly<BusStats> {
    return { ...this.#stats };
  }

  /** Fraction (0..1) of the ring to `dest` that holds unreleased messages. */
  occupancy(dest: number): number {
    const ring = this.#out[dest];
    return ring === undefined ? 0 : ring.used / ring.capacity;
  }

  #send(dest: number, kind: number, message: Uint8Array | T, options?: SendOptions): SendResult {
    const bytes = this.#encode(message);
    return this.#push(dest, tagOf(kind, message), bytes, options);
  }

  /** The bytes of a message; refuses one no ring of this bus can carry. */
  #encode(message: Uint8Array | T): Uint8Array {
    const raw = message instanceof Uint8Array;
    const bytes = raw ? message : this.#codec.encode(message);
    if (bytes.length > this.maxMessageBytes) {
      throw new RecordTooLargeError(
        bytes.length,
        this.maxMessageBytes,
        `a ${raw ? "raw" : "structured"} message of ${bytes.length} bytes is larger than this bus carries (${this.maxMessageBytes} bytes, half of ringBytes): raise ringBytes or send it in parts`,
      );
    }
    return bytes;
  }

  #push(dest: number, tag: number, bytes: Uint8Array, options?: SendOptions): SendResult {
    if (this.#closed[dest]) {
      this.#stats.undeliverable++;
      return "closed";
    }
    if (dest === this.self) {
      this.#loopback.push({ tag, bytes: bytes.slice() });
      this.#stats.sent++;
      return "sent";
    }
    const queue = this.#pending[dest] as SendQueue;
    if (queue.length === 0 && (this.#out[dest] as RingProducer).tryPush(bytes, tag)) {
      this.#dirty[dest] = true;
      this.#stats.sent++;
      return "sent";
    }
    if (options?.safe !== true) {
      this.#stats.full++;
      return "full";
    }
    if (options.uncapped !== true && !queue.fits(bytes.length, this.#maxQueuedBytes)) {
      this.#stats.capped++;
      return "capped";
    }
    this.#stats.queuedBytes += queue.push(tag, bytes);
    this.#stats.queued++;
    return "queued";
  }

  #control(kind: number, channel: number): void {
    const tag = kind | (channel << CHANNEL_SHIFT);
    const empty = new Uint8Array(0);
    for (let dest = 0; dest < this.endpoints; dest++) {
      if (dest !== this.self && !this.#closed[dest]) this.#push(dest, tag, empty, CONTROL);
    }
  }

  #deliver(
    from: number,
    tag: number,
    bytes: Uint8Array,
    handler: (m: BusMessage<T>) => void,
  ): number {
    const kind = tag & 0xf;
    const channel = tag >>> CHANNEL_SHIFT;
    if (kind === KIND_SUBSCRIBE) {
      if (!this.#closed[from]) this.#subs.add(channel, from);
      return 0;
    }
    if (kind === KIND_UNSUBSCRIBE) {
      this.#subs.remove(channel, from);
      return 0;
    }
    const name = KINDS[kind];
    if (name === undefined) {
      this.#fault(from, new RangeError(`unknown message kind ${kind} from endpoint ${from}`));
      return 0;
    }
    if (kind === KIND_PUBLISH && !this.#subs.has(channel, this.self)) {
      this.#stats.unsubscribedDrops++;
      return 0;
    }
    const raw = (tag & STRUCTURED) === 0;
    let data: Uint8Array | T;
    if (raw) {
      data = bytes;
    } else {
      try {
        data = this.#codec.decode(bytes);
      } catch (e) {
        this.#fault(from, e instanceof Error ? e : new Error(String(e)));
        return 0;
      }
    }
    handler({ kind: name, from, channel: kind === KIND_PUBLISH ? channel : -1, data, raw });
    return 1;
  }

  #fault(from: number, error: Error): void {
    this.#stats.malformed++;
    this.#onFault?.({ from, error });
  }

  #checkDest(dest: number): void {
    if (!Number.isInteger(dest) || dest < 0 || dest >= this.endpoints) {
      throw new RangeError(`endpoint ${dest} is not on this bus (0..${this.endpoints - 1})`);
    }
  }
}

const CONTROL: SendOptions = { safe: true, uncapped: true };

/** The record tag of `message` sent as `kind`: raw bytes as they are, anything else encoded. */
function tagOf(kind: number, message: unknown): number {
  return message instanceof Uint8Array ? kind : kind | STRUCTURED;
}

function isSent(result: SendResult): boolean {
  return result === "sent" || result === "queued";
}

function checkChannel(channel: number): void {
  if (!Number.isInteger(channel) || channel < 0 || channel > MAX_CHANNEL) {
    throw new RangeError(`channel must be an integer from 0 to ${MAX_CHANNEL}, got ${channel}`);
  }
}
