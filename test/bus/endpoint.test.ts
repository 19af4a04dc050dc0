import { describe, expect, test } from "bun:test";
import {
  BusEndpoint,
  type BusFault,
  type BusMessage,
  createBusLayout,
  RecordTooLargeError,
  RingProducer,
} from "../../src/index.ts";

type Seen = { kind: string; from: number; channel: number; data: unknown };

function collect(e: BusEndpoint): Seen[] {
  const out: Seen[] = [];
  e.poll((m: BusMessage) => {
    out.push({
      kind: m.kind,
      from: m.from,
      channel: m.channel,
      data: m.raw ? [...(m.data as Uint8Array)] : m.data,
    });
  });
  return out;
}

function open(endpoints: number, ringBytes = 4096) {
  const layout = createBusLayout({ endpoints, ringBytes });
  return Array.from({ length: endpoints }, (_, i) => new BusEndpoint(layout, i));
}

describe("bus endpoint", () => {
  test("direct, external and broadcast messages say where they came from", () => {
    const [a, b, c] = open(3) as [BusEndpoint, BusEndpoint, BusEndpoint];
    expect(a.send(1, Uint8Array.of(1, 2))).toBe("sent");
    expect(a.sendExternal(1, { hello: "world" })).toBe("sent");
    expect(c.broadcast({ n: 3 })).toBe(2);
    expect(collect(b)).toEqual([]); // nothing is visible before the senders flush
    a.flush();
    c.flush();
    const got = collect(b);
    expect(got).toContainEqual({ kind: "direct", from: 0, channel: -1, data: [1, 2] });
    expect(got).toContainEqual({
      kind: "external",
      from: 0,
      channel: -1,
      data: { hello: "world" },
    });
    expect(got).toContainEqual({ kind: "broadcast", from: 2, channel: -1, data: { n: 3 } });
    expect(collect(a)).toEqual([{ kind: "broadcast", from: 2, channel: -1, data: { n: 3 } }]);
    expect(collect(c)).toEqual([]);
  });

  test("unsafe sends report a full ring; safe sends queue and keep their order", () => {
    const [a, b] = open(2, 1024) as [BusEndpoint, BusEndpoint];
    const msg = (i: number) => new Uint8Array(120).fill(i);
    let sent = 0;
    while (a.send(1, msg(sent)) === "sent") sent++;
    expect(sent).toBe(1024 / 128);
    expect(a.stats().full).toBe(1);
    // safe sends queue behind the full ring, and an unsafe send may not jump that queue
    expect(a.send(1, msg(sent), { safe: true })).toBe("queued");
    expect(a.send(1, msg(sent + 1), { safe: true })).toBe("queued");
    expect(a.send(1, msg(99))).toBe("full");
    expect(a.flush()).toBe(2);
    const order: number[] = [];
    const drain = () => b.poll((m) => order.push((m.data as Uint8Array)[0] as number));
    drain();
    expect(a.flush()).toBe(0);
    drain();
    expect(order).toEqual(Array.from({ length: sent + 2 }, (_, i) => i));
    expect(a.stats()).toMatchObject({ sent: sent + 2, full: 2, queued: 0 });
  });

  test("a sender with queued messages that sleeps is woken when the receiver frees room, and never sleeps past room already freed", async () => {
    const [a, b] = open(2, 1024) as [BusEndpoint, BusEndpoint];
    const msg = (i: number) => new Uint8Array(120).fill(i);
    const fill = (from: number) => {
      let n = from;
      while (a.send(1, msg(n), { safe: true }) === "sent") n++;
      a.flush(); // publishes; the queued one stays
      expect(a.stats().queued).toBe(1);
      return n + 1;
    };
    const got: number[] = [];
    const drain = () => b.poll((m) => got.push((m.data as Uint8Array)[0] as number));
    // sleeping first: the receiver's poll wakes it (not the 5 s time-out)
    let sent = fill(0);
    const parked = a.parkAsync(5000);
    drain();
    expect(await parked).toBe("woken");
    a.flush();
    expect(a.stats().queued).toBe(0);
    // room freed before the sleep: it does not sleep, and what waited has moved
    drain();
    sent = fill(sent);
    drain();
    expect(await a.parkAsync(5000)).toBe("ready");
    expect(a.stats().queued).toBe(0);
    drain();
    expect(got).toEqual(Array.from({ length: sent }, (_, i) => i));
  });

  test("pub/sub: subscriptions replicate through the bus; each subscriber gets a message once", () => {
    const [a, b, c] = open(3) as [BusEndpoint, BusEndpoint, BusEndpoint];
    b.subscribe(7);
    c.subscribe(7);
    a.subscribe(7); // a subscriber of its own channel gets its own publishes too
    for (const e of [a, b, c]) e.flush();
    for (const e of [a, b, c]) collect(e);
    expect(a.subscribers(7)).toEqual([0, 1, 2]);
    expect(a.publish(7, { v: 1 })).toBe(3);
    a.flush();
    expect(collect(a)).toEqual([{ kind: "channel", from: 0, channel: 7, data: { v: 1 } }]);
    expect(collect(b)).toEqual([{ kind: "channel", from: 0, channel: 7, data: { v: 1 } }]);
    expect(collect(c)).toEqual([{ kind: "channel", from: 0, channel: 7, data: { v: 1 } }]);
    // c unsubscribes, but a publishes before it hears of it: c drops the message on arrival
    c.unsubscribe(7);
    a.publish(7, { v: 2 });
    a.flush();
    c.flush();
    expect(collect(c)).toEqual([]);
    expect(c.stats().unsubscribedDrops).toBe(1);
    collect(a); // a learns that c left
    expect(a.subscribers(7)).toEqual([0, 1]);
    expect(a.publish(7, { v: 3 })).toBe(2);
    a.flush();
    expect(collect(b).map((m) => m.data)).toEqual([{ v: 2 }, { v: 3 }]);
  });

  test("bad use gets clear errors", () => {
    const [a] = open(2, 1024) as [BusEndpoint];
    expect(() => a.send(2, Uint8Array.of(1))).toThrow(/endpoint 2 is not on this bus/);
    expect(() => a.send(-1, Uint8Array.of(1))).toThrow(RangeError);
    expect(() => a.subscribe(-1)).toThrow(/channel must be an integer/);
    expect(() => a.publish(2 ** 27, Uint8Array.of(1))).toThrow(/channel must be an integer/);
    expect(() => a.send(1, new Uint8Array(600))).toThrow(RecordTooLargeError);
    expect(() => a.send(1, { f: (() => 1) as unknown as number })).toThrow(/cannot encode \$\.f/);
    expect(() => createBusLayout({ endpoints: 1 })).toThrow(/2 to 255 endpoints/);
    expect(() => createBusLayout({ endpoints: 3, ringBytes: 1000 })).toThrow(/power of two/);
  });

  test("a corrupted leg is reported and disabled; the other legs keep delivering", () => {
    const layout = createBusLayout({ endpoints: 3, ringBytes: 1024 });
    const faults: BusFault[] = [];
    const [a, b] = [new BusEndpoint(layout, 0), new BusEndpoint(layout, 1)];
    const c = new BusEndpoint(layout, 2, { onFault: (f) => faults.push(f) });
    a.send(2, Uint8Array.of(1));
    b.send(2, Uint8Array.of(2));
    a.flush();
    b.flush();
    // a stray write over the length of a's record to c
    new Uint32Array(layout.legs[0 * 3 + 2] as SharedArrayBuffer, 192)[0] = 0x7fff_0000;
    const got = collect(c);
    expect(got).toEqual([{ kind: "direct", from: 1, channel: -1, data: [2] }]);
    expect(faults).toHaveLength(1);
    expect(faults[0]?.from).toBe(0);
    expect(faults[0]?.error.message).toMatch(/ring memory corrupt at offset 0/);
    expect(c.stats().corruptLegs).toBe(1);
    b.send(2, Uint8Array.of(3));
    b.flush();
    expect(collect(c).map((m) => m.data)).toEqual([[3]]);
  });

  test("a structured record that does not decode is dropped and counted", () => {
    const layout = createBusLayout({ endpoints: 2, ringBytes: 1024 });
    const faults: BusFault[] = [];
    const b = new BusEndpoint(layout, 1, { onFault: (f) => faults.push(f) });
    const a = new BusEndpoint(layout, 0);
    a.send(1, { ok: true });
    a.flush();
    // flip the JSON text of the record into garbage
    new Uint8Array(layout.legs[1] as SharedArrayBuffer, 192 + 8 + 1, 4).set([
      0xff, 0xfe, 0x00, 0x01,
    ]);
    expect(collect(b)).toEqual([]);
    expect(b.stats().malformed).toBe(1);
    expect(faults[0]?.error).toBeInstanceOf(RangeError);
  });

  test("records with a kind no endpoint sends are dropped and counted, later ones still arrive", () => {
    const layout = createBusLayout({ endpoints: 2, ringBytes: 1024 });
    const faults: BusFault[] = [];
    const b = new BusEndpoint(layout, 1, { onFault: (f) => faults.push(f) });
    // a misbehaving writer on a's leg: tags 0, 7 and 15 are not bus kinds
    const rogue = new RingProducer(layout.legs[1] as SharedArrayBuffer);
    for (const tag of [0, 7, 15]) rogue.tryPush(Uint8Array.of(9), tag);
    rogue.tryPush(Uint8Array.of(4), 1); // a well-formed direct message
    rogue.publish();
    expect(collect(b)).toEqual([{ kind: "direct", from: 0, channel: -1, data: [4] }]);
    expect(b.stats().malformed).toBe(3);
    expect(faults.map((f) => f.error.message)).toEqual([
      "unknown message kind 0 from endpoint 0",
      "unknown message kind 7 from endpoint 0",
      "unknown message kind 15 from endpoint 0",
    ]);
  });

  test("broadcast to a chosen set of endpoints skips the others and the sender", () => {
    const [a, b, c, d] = open(4);
    if (!a || !b || !c || !d) throw new Error("setup");
    expect(a.broadcast({ hi: 1 }, { to: [0, 2, 3] })).toBe(2);
    a.flush();
    expect(collect(b)).toEqual([]);
    expect(collect(c)).toEqual([{ kind: "broadcast", from: 0, channel: -1, data: { hi: 1 } }]);
    expect(collect(d)).toEqual([{ kind: "broadcast", from: 0, channel: -1, data: { hi: 1 } }]);
    expect(() => a.broadcast({}, { to: [9] })).toThrow(RangeError);
  });

  test("a closed peer gets nothing more: queued messages discarded, sends and channels counted", () => {
    const [a, b, c] = open(3, 1024);
    if (!a || !b || !c) throw new Error("setup");
    b.subscribe(5);
    b.flush();
    collect(a);
    expect(a.subscribers(5)).toEqual([1]);
    while (a.send(1, new Uint8Array(100), { safe: true }) === "sent");
    a.send(1, new Uint8Array(100), { safe: true });
    expect(a.stats().queued).toBe(2);
    a.closePeer(1);
    expect(a.isClosed(1)).toBe(true);
    expect(a.subscribers(5)).toEqual([]);
    expect(a.send(1, { late: true }, { safe: true })).toBe("closed");
    expect(a.publish(5, { x: 1 })).toBe(0);
    expect(a.broadcast({ y: 1 })).toBe(1); // only c
    expect(a.flush()).toBe(0);
    expect(a.stats().undeliverable).toBe(4); // 2 discarded, the send, the broadcast leg to b
    // a subscription announcement from a closed peer that was already on its way is ignored
    b.subscribe(6);
    b.flush();
    collect(a);
    expect(a.subscribers(6)).toEqual([]);
  });

  test("an oversize message is refused at send even behind a queue; nothing around it is lost or doubled", () => {
    const [a, b] = open(2, 1024) as [BusEndpoint, BusEndpoint];
    const msg = (i: number) => new Uint8Array(100).fill(i);
    let n = 0;
    while (a.send(1, msg(n++), { safe: true }) === "sent"); // the last one is queued
    expect(a.stats().queued).toBe(1);
    // too large for the ring: refused whether or not something is queued, with what to do
    expect(() => a.send(1, new Uint8Array(600), { safe: true })).toThrow(RecordTooLargeError);
    expect(() => a.send(1, new Uint8Array(600), { safe: true })).toThrow(/raise ringBytes/);
    expect(() => a.broadcast(new Uint8Array(600), { safe: true })).toThrow(RecordTooLargeError);
    expect(() => a.publish(1, { big: "x".repeat(600) })).toThrow(RecordTooLargeError);
    expect(a.maxMessageBytes).toBe(1024 / 2 - 8);
    for (let k = 0; k < 3; k++) a.send(1, msg(n++), { safe: true });
    const order: number[] = [];
    for (let round = 0; round < 10 && order.length < n; round++) {
      a.flush(); // must not throw, and must not re-send what an earlier flush moved
      b.poll((m) => order.push((m.data as Uint8Array)[0] as number));
    }
    expect(order).toEqual(Array.from({ length: n }, (_, i) => i));
    expect(a.stats()).toMatchObject({ sent: n, queued: 0, queuedBytes: 0 });
  });

  test("safe sends beyond the per-destination cap are refused and counted; queued bytes show per destination", () => {
    const layout = createBusLayout({ endpoints: 3, ringBytes: 1024 });
    const a = new BusEndpoint(layout, 0, { maxQueuedBytes: 2000 });
    const b = new BusEndpoint(layout, 1);
    const c = new BusEndpoint(layout, 2);
    const msg = new Uint8Array(100);
    while (a.send(1, msg, { safe: true }) === "sent");
    let queued = 1;
    while (a.send(1, msg, { safe: true }) === "queued") queued++;
    expect(queued).toBe(12); // 12 * 164 <= 2000 < 13 * 164
    expect(a.send(1, msg, { safe: true })).toBe("capped"); // still capped, nothing queued
    expect(a.stats().capped).toBe(2);
    // the cap counts payload plus bookkeeping per message, and stops short of the limit
    expect(a.queuedBytes(1)).toBeLessThanOrEqual(2000);
    expect(a.queuedBytes(1)).toBe(queued * (100 + 64));
    expect(a.queuedBytes(2)).toBe(0);
    expect(a.stats().queuedBytes).toBe(a.queuedBytes(1));
    // other destinations are not affected by one slow peer
    expect(a.send(2, msg, { safe: true })).toBe("sent");
    // runtime control (subscriptions) is never capped: it reaches the slow peer in order
    a.subscribe(9);
    expect(a.stats().queued).toBe(queued + 1);
    // the slow peer catches up: the queue drains and sends are accepted again
    for (let i = 0; i < 20 && a.flush() > 0; i++) b.poll(() => {});
    expect(a.send(1, msg, { safe: true })).toBe("sent");
    expect(a.stats()).toMatchObject({ queued: 0, queuedBytes: 0 });
    // closing a peer drops its queue and the counters follow
    while (a.send(1, msg, { safe: true }) === "sent");
    expect(a.stats().queued).toBe(1);
    a.closePeer(1);
    expect(a.stats()).toMatchObject({ queued: 0, queuedBytes: 0 });
    expect(a.queuedBytes(1)).toBe(0);
    c.poll(() => {});
  });

  test("a receiver sleeping outside Atomics.wait is woken through its registered handle", () => {
    const layout = createBusLayout({ endpoints: 2, ringBytes: 1024 });
    const rung: number[] = [];
    const a = new BusEndpoint(layout, 0, { externalWake: (h) => rung.push(h) });
    const b = new BusEndpoint(layout, 1);
    b.setWakeHandle(42);
    // not sleeping: no wake-up
    a.send(1, { n: 1 });
    a.flush();
    expect(rung).toEqual([]);
    // a message is waiting: prepareWait refuses to sleep
    expect(b.prepareWait()).toBe(false);
    collect(b);
    expect(b.prepareWait()).toBe(true);
    a.send(1, { n: 2 });
    a.flush();
    expect(rung).toEqual([42]);
    b.endWait();
    expect(collect(b)).toEqual([{ kind: "direct", from: 0, channel: -1, data: { n: 2 } }]);
    expect(() => b.setWakeHandle(-1)).toThrow(RangeError);
  });
});
