/** What a bus endpoint takes and gives: send options and results, messages, counters, faults. */
import type { ExternalWake, ParkResult } from "../ring/doorbell.ts";
import type { Codec, Structured } from "./codec.ts";

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
   * beyond it returns `capped`. A message counts its payload plus `QUEUED_MESSAGE_OVERHEAD`
   * (./queue.ts).
   * Default 4 MiB per destination.
   */
  maxQueuedBytes?: number;
}

/** Options of `broadcast`. */
export interface BroadcastOptions extends SendOptions {
  /** Only these endpoints (default: every other endpoint). */
  to?: readonly number[];
}
