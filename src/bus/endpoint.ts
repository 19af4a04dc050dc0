import { AtomicsDoorbell, type ExternalWake, type ParkResult } from "../ring/doorbell.ts";
import { RecordTooLargeError, RingCorruptError } from "../ring/errors.ts";
import { RingConsumer, RingProducer } from "../ring/spsc.ts";
import { type Codec, JsonBytesCodec, type Structured } from "./codec.ts";
import type { BusLayout } from "./layout.ts";
import { Subscriptions } from "./subscriptions.ts";

/** How a delivered message reached this endpoint. */
export type MessageKind = "direct" | "broadcast" | "channel" | "external";

/** One delivered message. Valid only inside the handler given to `poll`. */
export interface BusMessage<T = Structured> {
  /** Direct send, broadcast, channel publish, or a message the sender relayed from outside. */
  readonly kind: MessageKind;
  /** The endpoint that sent it. */
  readonly from: number;
  /** The channel, for `kind === "channel"`; otherwise -1. */
  readonly channel: number;
  /**
   * For raw sends: a view of the record in shared memory, valid only until the handler returns
   * (copy what you keep). Otherwise: the value, decoded with the bus codec.
   */
  readonly data: Uint8Array | T;
  /** True when `data` is raw bytes, false when it is a decoded structured value. */
  readonly raw: boolean;
}

/** Why `park` returned: woken by a sender, timed out, or "ready" (work was already waiting). */
export type BusParkResult = ParkResult | "ready";

/**
 * What a send did. `sent`: in the ring. `queued`: a safe send held locally until the ring has
 * room. `full`: not sent, the ring is full (only unsafe sends report it). `capped`: not sent, a
 * safe send to a destination that already has `maxQueuedBytes` queued (it is not keeping up;
 * counted in `capped`). `closed`: not sent, the destination was closed with `closePeer` (counted
 * as undeliverable).
 */
export type SendResult = "sent" | "queued" | "full" | "capped" | "closed";

/** Options of `send`, `broadcast` and `publish`. */
export interface SendOptions {
  /**
   * A safe send is never dropped: when the ring is full it is queued locally and flushed, in
   * order, before anything newer to the same endpoint. An unsafe send (the default) reports
   * `full` instead and costs no memory.
   */
  safe?: boolean;
  /**
   * Runtime control only (subscriptions, the controller's own protocol): a safe send that is
   * never refused by `maxQueuedBytes`. Such messages are few and small; application messages
   * must not use it.
   */
  uncapped?: boolean;
}

/** Counters of one endpoint, cumulative since it was opened. */
export interface BusStats {
  /** Messages written into rings (or the local loopback) by this endpoint. */
  sent: number;
  /** Messages delivered to this endpoint's handler. */
  received: number;
  /** Messages waiting in local overflow queues (safe sends to a full ring). */
  queued: number;
  /** Bytes those messages account for (see `BusEndpointOptions.maxQueuedBytes`). */
  queuedBytes: number;
  /** Safe sends refused because their destination's queue was at `maxQueuedBytes`. */
  capped: number;
  /** Unsafe sends refused because the ring was full. */
  full: number;
  /** Channel messages that arrived after this endpoint unsubscribed, dropped. */
  unsubscribedDrops: number;
  /** Incoming legs found corrupt and disabled. */
  corruptLegs: number;
  /** Records that could not be decoded or had an unknown kind, dropped. */
  malformed: number;
  /** Messages dropped because their destination was closed (see `closePeer`). */
  undeliverable: number;
}

/** A problem with one incoming leg, reported through `BusEndpointOptions.onFault`. */
export interface BusFault {
  /** The sending endpoint of the faulty leg. */
  readonly from: number;
  readonly error: Error;
}

/** Options for opening an endpoint. */
export interface BusEndpointOptions<T> {
  /** Codec for structured messages; default JsonBytesCodec. All endpoints must agree. */
  codec?: Codec<T>;
  /** Called when an incoming leg is found corrupt (it is then disabled). Default: none. */
  onFault?: (fault: BusFault) => void;
  /**
   * How to wake a receiver that parks outside `Atomics.wait` and registered a handle with
   * `setWakeHandle` (the runtime's workers park in their backend and pass `wakeBackend`).
   */
  externalWake?: ExternalWake;
  /**
   * Most bytes of safe sends queued locally for one destination whose ring is full; a safe send
   * beyond it returns `capped`. A message counts its payload plus `QUEUED_MESSAGE_OVERHEAD`.
   * Default 4 MiB per destination.
   */
  maxQueuedBytes?: number;
}

/** Bytes a queued message counts toward `maxQueuedBytes` beyond its payload (its bookkeeping). */
export const QUEUED_MESSAGE_OVERHEAD = 64;

/** Options of `broadcast`. */
export interface BroadcastOptions extends SendOptions {
  /** Only these endpoints (default: every other endpoint). */
  to?: readonly number[];
}

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

interface Pending {
  readonly tag: number;
  readonly bytes: Uint8Array;
}

/** Safe sends waiting, in order, for room in the ring to one destination. */
interface Queue {
  readonly items: Pending[];
  /** Index of the first item not yet moved into the ring. */
  head: number;
  /** Bytes the waiting items count (payload + overhead each). */
  bytes: number;
}

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
  readonly #pending: Queue[] = [];
  readonly #dirty: boolean[] = []; // per destination: written since the last publish
  readonly #loopback: Pending[] = [];
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
      this.#pending.push({ items: [], head: 0, bytes: 0 });
      this.#dirty.push(false);
      this.#closed.push(false);
    }
    this.#doorbells = layout.doorbells.map((sab) => new AtomicsDoorbell(sab, options.externalWake));
    this.#codec = options.codec ?? (new JsonBytesCodec() as unknown as Codec<T>);
    this.#onFault = options.onFault;
    this.maxMessageBytes = layout.ringBytes / 2 - 8;
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
    const [tag, bytes] = this.#encode(KIND_BROADCAST, message);
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
    const [tag, bytes] = this.#encode(KIND_PUBLISH | (channel << CHANNEL_SHIFT), message);
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
    const queue = this.#pending[peer] as Queue;
    const dropped = queue.items.length - queue.head;
    this.#stats.undeliverable += dropped;
    this.#stats.queued -= dropped;
    this.#stats.queuedBytes -= queue.bytes;
    this.#pending[peer] = { items: [], head: 0, bytes: 0 };
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
      const queue = this.#pending[dest] as Queue;
      if (queue.head < queue.items.length) this.#move(dest, queue);
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
   * Moves queued messages into the ring to `dest` while it has room. Each message leaves the
   * queue as it enters the ring, so nothing is moved twice whatever happens.
   */
  #move(dest: number, queue: Queue): void {
    const ring = this.#out[dest] as RingProducer;
    const items = queue.items;
    while (queue.head < items.length) {
      const p = items[queue.head] as Pending;
      if (!ring.tryPush(p.bytes, p.tag)) break;
      items[queue.head] = EMPTY;
      queue.head++;
      const size = p.bytes.length + QUEUED_MESSAGE_OVERHEAD;
      queue.bytes -= size;
      this.#stats.queued--;
      this.#stats.queuedBytes -= size;
      this.#stats.sent++;
      this.#dirty[dest] = true;
    }
    if (queue.head === items.length) {
      items.length = 0;
      queue.head = 0;
    } else if (queue.head > 1024 && queue.head * 2 > items.length) {
      items.splice(0, queue.head);
      queue.head = 0;
    }
  }

  /** Safe sends refused by `maxQueuedBytes` so far (`stats().capped`, without the copy). */
  get cappedSends(): number {
    return this.#stats.capped;
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
      const p = this.#loopback.shift() as Pending;
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
        ring.release();
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
    const bell = this.#doorbells[this.self] as AtomicsDoorbell;
    bell.prepare();
    if (this.hasIncoming()) {
      bell.cancel();
      return "ready";
    }
    return bell.park(timeoutMs);
  }

  /** Like `park`, without blocking the event loop. */
  parkAsync(timeoutMs: number): Promise<BusParkResult> {
    const bell = this.#doorbells[this.self] as AtomicsDoorbell;
    bell.prepare();
    if (this.hasIncoming()) {
      bell.cancel();
      return Promise.resolve("ready");
    }
    return bell.parkAsync(timeoutMs);
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
    if (!this.hasIncoming()) return true;
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
    const [tag, bytes] = this.#encode(kind, message);
    return this.#push(dest, tag, bytes, options);
  }

  /** The tag and bytes of a message; refuses one no ring of this bus can carry. */
  #encode(tag: number, message: Uint8Array | T): [number, Uint8Array] {
    const raw = message instanceof Uint8Array;
    const bytes = raw ? message : this.#codec.encode(message);
    if (bytes.length > this.maxMessageBytes) {
      throw new RecordTooLargeError(
        bytes.length,
        this.maxMessageBytes,
        `a ${raw ? "raw" : "structured"} message of ${bytes.length} bytes is larger than this bus carries (${this.maxMessageBytes} bytes, half of ringBytes): raise ringBytes or send it in parts`,
      );
    }
    return [raw ? tag : tag | STRUCTURED, bytes];
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
    const queue = this.#pending[dest] as Queue;
    if (
      queue.head === queue.items.length &&
      (this.#out[dest] as RingProducer).tryPush(bytes, tag)
    ) {
      this.#dirty[dest] = true;
      this.#stats.sent++;
      return "sent";
    }
    if (options?.safe !== true) {
      this.#stats.full++;
      return "full";
    }
    const size = bytes.length + QUEUED_MESSAGE_OVERHEAD;
    if (options.uncapped !== true && queue.bytes + size > this.#maxQueuedBytes) {
      this.#stats.capped++;
      return "capped";
    }
    queue.items.push({ tag, bytes: bytes.slice() });
    queue.bytes += size;
    this.#stats.queued++;
    this.#stats.queuedBytes += size;
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

const EMPTY: Pending = { tag: 0, bytes: new Uint8Array(0) };
const CONTROL: SendOptions = { safe: true, uncapped: true };

function isSent(result: SendResult): boolean {
  return result === "sent" || result === "queued";
}

function checkChannel(channel: number): void {
  if (!Number.isInteger(channel) || channel < 0 || channel > MAX_CHANNEL) {
    throw new RangeError(`channel must be an integer from 0 to ${MAX_CHANNEL}, got ${channel}`);
  }
}
