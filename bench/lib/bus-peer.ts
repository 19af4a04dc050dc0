/**
 * Worker side of bench/bus.ts: consumes what the main thread sends and reports back.
 * Modes: ring (read the raw ring in place), bus (BusEndpoint.poll), post (postMessage),
 * echo (parked bus endpoint that answers every message), ping (parked endpoint timing round trips
 * to an echo), post-echo, sub (channel subscriber).
 */
import { AtomicsDoorbell, BusEndpoint, type BusLayout, RingConsumer } from "../../src/index.ts";

declare const self: Worker;

type Job =
  | { mode: "ring"; ring: SharedArrayBuffer; bell: SharedArrayBuffer; count: number }
  | { mode: "bus" | "echo" | "ping"; layout: BusLayout; self: number; count: number }
  | { mode: "sub"; layout: BusLayout; self: number; count: number; channel: number }
  | { mode: "post" | "post-echo"; count: number };

let job: Job | undefined;
let received = 0;

self.onmessage = (event: MessageEvent) => {
  if (job === undefined) {
    job = event.data as Job;
    start(job);
    return;
  }
  // postMessage modes: every later message is a payload
  received++;
  if (job.mode === "post-echo") self.postMessage(event.data);
  else if (received === job.count) self.postMessage({ done: received });
};

function start(j: Job): void {
  switch (j.mode) {
    case "ring": {
      const ring = new RingConsumer(j.ring);
      const bell = new AtomicsDoorbell(j.bell);
      self.postMessage({ ready: true });
      let n = 0;
      let sum = 0;
      while (n < j.count) {
        let batch = 0;
        while (batch < 256 && ring.next()) {
          sum += ring.bytes[ring.offset] ?? 0;
          batch++;
        }
        if (batch > 0) {
          ring.release();
          n += batch;
        } else {
          // nothing published: sleep until the producer rings (announce, re-check, wait)
          bell.prepare();
          if (ring.hasData()) bell.cancel();
          else bell.park(100);
        }
      }
      self.postMessage({ done: n, sum });
      return;
    }
    case "bus":
    case "sub": {
      const bus = new BusEndpoint(j.layout, j.self);
      if (j.mode === "sub") {
        bus.subscribe(j.channel);
        bus.flush();
      }
      self.postMessage({ ready: true });
      let n = 0;
      let sum = 0;
      const onMessage = (m: { data: unknown }) => {
        sum += (m.data as Uint8Array)[0] ?? 0;
      };
      while (n < j.count) {
        const got = bus.poll(onMessage, 256);
        n += got;
        if (got === 0) bus.park(100);
      }
      self.postMessage({ done: n, sum });
      return;
    }
    case "echo": {
      const bus = new BusEndpoint(j.layout, j.self);
      self.postMessage({ ready: true });
      let n = 0;
      const onMessage = (m: { from: number; data: unknown }) => {
        bus.send(m.from, m.data as Uint8Array, { safe: true });
      };
      while (n < j.count) {
        const got = bus.poll(onMessage);
        if (got === 0) bus.park(1000);
        bus.flush();
        n += got;
      }
      return;
    }
    case "ping": {
      const bus = new BusEndpoint(j.layout, j.self);
      const msg = new Uint8Array(8);
      const halves: number[] = [];
      const ignore = () => {};
      for (let i = 0; i < j.count; i++) {
        const t0 = Bun.nanoseconds();
        bus.send(1 - j.self, msg, { safe: true });
        bus.flush();
        while (bus.poll(ignore) === 0) bus.park(1000);
        halves.push((Bun.nanoseconds() - t0) / 2000);
      }
      self.postMessage({ done: j.count, halves });
      return;
    }
    case "post":
    case "post-echo":
      self.postMessage({ ready: true });
      return;
  }
}
