/**
 * Worker side of the postMessage peer of bench/runtime-messaging.ts between two Bun Workers, over
 * a MessageChannel port the main thread hands to both (what task-to-task messaging is set
 * against). The first message from the main thread is the job; the worker answers { ready } and,
 * for "send" and "ping", waits for { go } before starting.
 * - recv: counts `count` messages from the port, then tells the main thread { done, misordered };
 * - send: posts the numbers 0..count-1 to the port;
 * - echo: answers every message on the port with itself;
 * - ping: `count` round trips through the port, one at a time; tells the main thread { p50, p99 }
 *   (microseconds).
 */
import { percentile } from "../lib/report.ts";

declare const self: Worker;

interface Job {
  mode: "recv" | "send" | "echo" | "ping";
  port: MessagePort;
  count: number;
}

let job: Job | undefined;
/** When the round trip in flight started ("ping"). */
let t0 = 0;

self.onmessage = (event: MessageEvent) => {
  if (job === undefined) {
    job = event.data as Job;
    start(job);
    self.postMessage({ ready: true });
    return;
  }
  go(job);
};

function start(j: Job): void {
  const port = j.port;
  switch (j.mode) {
    case "recv": {
      let received = 0;
      let misordered = 0;
      port.onmessage = (e) => {
        if (e.data !== received) misordered++;
        received++;
        if (received === j.count) self.postMessage({ done: received, misordered });
      };
      return;
    }
    case "echo":
      port.onmessage = (e) => port.postMessage(e.data);
      return;
    case "ping": {
      const rtts: number[] = [];
      port.onmessage = (e) => {
        rtts.push((Bun.nanoseconds() - t0) / 1000);
        const next = (e.data as number) + 1;
        if (next < j.count) {
          t0 = Bun.nanoseconds();
          port.postMessage(next);
          return;
        }
        rtts.sort((a, b) => a - b);
        self.postMessage({ p50: percentile(rtts, 0.5), p99: percentile(rtts, 0.99) });
      };
      return;
    }
    case "send":
      return;
  }
}

function go(j: Job): void {
  if (j.mode === "send") {
    for (let i = 0; i < j.count; i++) j.port.postMessage(i);
  } else if (j.mode === "ping") {
    // the first round trip starts here; the handler above times it and starts the next
    t0 = Bun.nanoseconds();
    j.port.postMessage(0);
  }
}
