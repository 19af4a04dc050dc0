/**
 * The parts the multi-thread bus tests run on each endpoint, in Workers and on the main thread.
 * Each role returns a plain report that the test asserts on.
 */
import { BusEndpoint, type BusLayout, type BusMessage } from "../../../src/index.ts";

/** A small deterministic PRNG (xorshift32), so that failures can be replayed. */
export function prng(seed: number): () => number {
  let x = seed | 0 || 0x9e3779b9;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

const HEADER = 12; // u32 seq, u32 crc32 of the payload, u32 sender

export interface StressReport {
  self: number;
  sent: number;
  received: number[]; // per sender
  errors: string[];
  queuedPeak: number;
  fullRetries: number;
  parks: number;
}

/**
 * All-to-all stress: sends `perDest` messages with random payloads of 0..4096 bytes to every other
 * endpoint (half safe, half unsafe with retry), and checks everything it receives: sequence per
 * sender (nothing lost, duplicated or reordered), sender id, and CRC-32 of the payload.
 */
export class StressPeer {
  readonly bus: BusEndpoint;
  readonly #random: () => number;
  readonly #block: Uint8Array;
  readonly #nextSeq: number[];
  readonly #expect: number[];
  readonly #held: (Uint8Array | undefined)[];
  readonly report: StressReport;

  constructor(
    layout: BusLayout,
    self: number,
    readonly perDest: number,
  ) {
    this.bus = new BusEndpoint(layout, self);
    this.#random = prng(self * 7919 + 1);
    this.#block = new Uint8Array(8192);
    for (let i = 0; i < this.#block.length; i++) this.#block[i] = (this.#random() * 256) | 0;
    this.#nextSeq = Array.from({ length: layout.endpoints }, () => 0);
    this.#expect = Array.from({ length: layout.endpoints }, () => 0);
    this.#held = Array.from({ length: layout.endpoints }, () => undefined);
    this.report = {
      self,
      sent: 0,
      received: Array.from({ length: layout.endpoints }, () => 0),
      errors: [],
      queuedPeak: 0,
      fullRetries: 0,
      parks: 0,
    };
  }

  #message(dest: number): Uint8Array {
    const size = Math.floor(this.#random() * 4097);
    const start = Math.floor(this.#random() * (this.#block.length - size));
    const msg = new Uint8Array(HEADER + size);
    const payload = this.#block.subarray(start, start + size);
    msg.set(payload, HEADER);
    const view = new DataView(msg.buffer);
    view.setUint32(0, this.#nextSeq[dest] as number, true);
    view.setUint32(4, Bun.hash.crc32(payload), true);
    view.setUint32(8, this.bus.self, true);
    this.#nextSeq[dest] = (this.#nextSeq[dest] as number) + 1;
    return msg;
  }

  #check = (m: BusMessage): void => {
    const r = this.report;
    const data = m.data as Uint8Array;
    if (!m.raw || m.kind !== "direct" || data.length < HEADER) {
      if (r.errors.length < 10)
        r.errors.push(`bad message from ${m.from}: ${m.kind} ${data.length}`);
      return;
    }
    const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    const seq = view.getUint32(0, true);
    const crc = view.getUint32(4, true);
    const sender = view.getUint32(8, true);
    const want = this.#expect[m.from] as number;
    if (sender !== m.from || seq !== want || Bun.hash.crc32(data.subarray(HEADER)) !== crc) {
      if (r.errors.length < 10) {
        r.errors.push(
          `from ${m.from}: sender ${sender}, seq ${seq} (want ${want}), crc ok ${Bun.hash.crc32(data.subarray(HEADER)) === crc}`,
        );
      }
    }
    this.#expect[m.from] = seq + 1;
    r.received[m.from] = (r.received[m.from] as number) + 1;
  };

  /** One round: send a batch to every peer, flush, deliver what arrived. True when there was work. */
  step(): boolean {
    const bus = this.bus;
    let work = false;
    for (let dest = 0; dest < bus.endpoints; dest++) {
      if (dest === bus.self) continue;
      for (let k = 0; k < 16; k++) {
        let msg = this.#held[dest];
        if (msg === undefined) {
          if ((this.#nextSeq[dest] as number) >= this.perDest) break;
          msg = this.#message(dest);
        }
        const safe = this.#random() < 0.5;
        const result = bus.send(dest, msg, { safe });
        work = true;
        if (result === "full" || result === "capped") {
          this.#held[dest] = msg; // refused (full ring, or queue at its cap): retry it, keeping order
          this.report.fullRetries++;
          break;
        }
        this.#held[dest] = undefined;
        this.report.sent++;
      }
    }
    const queued = bus.flush();
    if (queued > this.report.queuedPeak) this.report.queuedPeak = queued;
    if (bus.poll(this.#check, 256) > 0) work = true;
    return work || queued > 0;
  }

  /** True when everything was sent and everything expected has arrived. */
  done(): boolean {
    const bus = this.bus;
    for (let p = 0; p < bus.endpoints; p++) {
      if (p === bus.self) continue;
      if ((this.#nextSeq[p] as number) < this.perDest || this.#held[p] !== undefined) return false;
      if ((this.report.received[p] as number) < this.perDest) return false;
    }
    return bus.flush() === 0;
  }
}

export interface PingReport {
  rounds: number;
  woken: number;
  ready: number;
  timedOut: number;
  errors: string[];
}

const STOP = 0x80000000;

/**
 * Ping-pong over the bus with both sides parked between messages. The responder answers until
 * it has really slept and been woken `wakeups` times (or `maxRounds` passed), then sets the stop
 * bit in its answer. A lost wake-up shows as a timed-out park.
 */
export function pingPong(
  layout: BusLayout,
  self: number,
  peer: number,
  starts: boolean,
  wakeups: number,
  maxRounds: number,
): PingReport {
  const bus = new BusEndpoint(layout, self);
  const report: PingReport = { rounds: 0, woken: 0, ready: 0, timedOut: 0, errors: [] };
  const out = new Uint8Array(4);
  const outView = new DataView(out.buffer);
  let last = -1;
  const onMessage = (m: BusMessage) => {
    const data = m.data as Uint8Array;
    last = new DataView(data.buffer, data.byteOffset, 4).getUint32(0, true);
  };
  const answer = (value: number) => {
    outView.setUint32(0, value >>> 0, true);
    bus.send(peer, out, { safe: true });
    bus.flush();
  };
  const await1 = () => {
    while (bus.poll(onMessage) === 0) {
      const r = bus.park(5000);
      if (r === "woken") report.woken++;
      else if (r === "ready") report.ready++;
      else report.timedOut++;
    }
  };
  for (let i = 0; ; i++) {
    if (starts) answer(i);
    await1();
    report.rounds++;
    if ((last & ~STOP) !== i && report.errors.length < 10)
      report.errors.push(`round ${i}: got ${last}`);
    if (starts) {
      if ((last & STOP) !== 0) return report;
    } else {
      const stop = report.woken >= wakeups || i + 1 >= maxRounds;
      answer(stop ? i | STOP : i);
      if (stop) return report;
    }
  }
}

export interface SubscriberReport {
  self: number;
  delivered: number;
  drops: number;
  errors: string[];
  fenceSeen: boolean;
}

export interface PublisherReport {
  published: number;
  /** How many publishes each endpoint was a known subscriber for. */
  targeted: number[];
}

/**
 * Publishes sequence-numbered messages on `channel` until at least `count` are out and every
 * subscriber has announced it stopped toggling (by subscribing to `channel + 1`, which travels
 * behind its last change to `channel`); then publishes a fence (seq 0xffffffff).
 */
export function publisher(
  layout: BusLayout,
  self: number,
  channel: number,
  count: number,
): PublisherReport {
  const bus = new BusEndpoint(layout, self);
  const targeted = Array.from({ length: layout.endpoints }, () => 0);
  const msg = new Uint8Array(4);
  const view = new DataView(msg.buffer);
  const ignore = () => {};
  const settled = () => bus.subscribers(channel + 1).length === layout.endpoints - 1;
  let seq = 0;
  for (; seq < count || !settled(); seq++) {
    bus.poll(ignore); // apply subscription changes as they come
    view.setUint32(0, seq, true);
    for (const s of bus.subscribers(channel)) targeted[s] = (targeted[s] as number) + 1;
    bus.publish(channel, msg, { safe: true });
    if (seq % 8 === 0 && bus.flush() > 4096) bus.park(1); // let slow subscribers catch up
  }
  view.setUint32(0, 0xffffffff, true);
  for (const s of bus.subscribers(channel)) targeted[s] = (targeted[s] as number) + 1;
  bus.publish(channel, msg, { safe: true });
  while (bus.flush() > 0) bus.park(1);
  return { published: seq, targeted };
}

/**
 * Subscribes and unsubscribes at random moments (300 changes, 0.2-2 ms apart) while receiving,
 * then settles subscribed and announces it on `channel + 1`. Checks order and that nothing
 * arrives while unsubscribed.
 */
export function subscriber(layout: BusLayout, self: number, channel: number): SubscriberReport {
  const bus = new BusEndpoint(layout, self);
  const random = prng(self + 17);
  const report: SubscriberReport = { self, delivered: 0, drops: 0, errors: [], fenceSeen: false };
  let last = -1;
  const onMessage = (m: BusMessage) => {
    const data = m.data as Uint8Array;
    const seq = new DataView(data.buffer, data.byteOffset, 4).getUint32(0, true);
    if (report.errors.length < 10) {
      if (!bus.isSubscribed(channel)) report.errors.push(`got ${seq} while unsubscribed`);
      if (m.kind !== "channel" || m.channel !== channel)
        report.errors.push(`wrong source ${m.kind} ${m.channel}`);
      if (seq !== 0xffffffff && seq <= last) report.errors.push(`seq ${seq} after ${last}`);
    }
    if (seq === 0xffffffff) report.fenceSeen = true;
    else last = seq;
    report.delivered++;
  };
  let toggles = 0;
  let nextToggle = Bun.nanoseconds();
  while (!report.fenceSeen) {
    const now = Bun.nanoseconds();
    if (toggles < 300 && now >= nextToggle) {
      if (bus.isSubscribed(channel)) bus.unsubscribe(channel);
      else bus.subscribe(channel);
      toggles++;
      nextToggle = now + (0.2 + random() * 1.8) * 1e6;
    } else if (toggles >= 300 && !bus.isSubscribed(channel + 1)) {
      bus.subscribe(channel); // no-op if already subscribed
      bus.subscribe(channel + 1);
    }
    bus.flush();
    if (bus.poll(onMessage, 64) === 0) bus.park(1);
  }
  report.drops = bus.stats().unsubscribedDrops;
  return report;
}
