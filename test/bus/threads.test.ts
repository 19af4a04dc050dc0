import { describe, expect, test } from "bun:test";
import { createBusLayout } from "../../src/index.ts";
import {
  type PingReport,
  type PublisherReport,
  StressPeer,
  type StressReport,
  type SubscriberReport,
} from "./workers/roles.ts";

const PEER = new URL("./workers/peer.ts", import.meta.url).href;

/** Starts a Worker on one role and resolves with its report; rejects if the Worker fails. */
function run<R>(job: Record<string, unknown>): { done: Promise<R>; worker: Worker } {
  const worker = new Worker(PEER);
  const done = new Promise<R>((resolve, reject) => {
    worker.onmessage = (e: MessageEvent<R>) => resolve(e.data);
    worker.onerror = (e) => reject(new Error(`worker failed: ${e.message}`));
  });
  worker.postMessage(job);
  return { done, worker };
}

describe("bus across Bun Workers", () => {
  test("4 workers + the main thread, all-to-all, 1,000,000 messages with payloads of 0-4096 bytes: nothing lost, duplicated, corrupted or reordered", async () => {
    const endpoints = 5;
    const perDest = 50_000; // 5 senders x 4 destinations x 50,000 = 1,000,000 messages
    const layout = createBusLayout({ endpoints, ringBytes: 64 * 1024 });
    const workers = [1, 2, 3, 4].map((self) =>
      run<StressReport>({ role: "stress", layout, self, perDest }),
    );
    const main = new StressPeer(layout, 0, perDest);
    while (!main.done()) {
      if (!main.step()) {
        main.report.parks++;
        await main.bus.parkAsync(20);
      }
    }
    const reports = [main.report, ...(await Promise.all(workers.map((w) => w.done)))];
    for (const w of workers) w.worker.terminate();
    let total = 0;
    for (const r of reports) {
      expect(r.errors).toEqual([]);
      expect(r.sent).toBe(perDest * (endpoints - 1));
      r.received.forEach((n, from) => {
        expect(n).toBe(from === r.self ? 0 : perDest);
        total += n;
      });
    }
    expect(total).toBe(1_000_000);
    // both paths were exercised: unsafe sends met full rings, safe sends queued
    expect(reports.some((r) => r.fullRetries > 0)).toBe(true);
    expect(reports.some((r) => r.queuedPeak > 0)).toBe(true);
  }, 240_000);

  test("a parked consumer is woken 10,000 times with no lost wake-up", async () => {
    const layout = createBusLayout({ endpoints: 2, ringBytes: 4096 });
    const wakeups = 10_000;
    const maxRounds = 100_000;
    const job = { role: "ping", layout, wakeups, maxRounds };
    const a = run<PingReport>({ ...job, self: 0, peer: 1, starts: true });
    const b = run<PingReport>({ ...job, self: 1, peer: 0, starts: false });
    const [ra, rb] = await Promise.all([a.done, b.done]);
    a.worker.terminate();
    b.worker.terminate();
    for (const r of [ra, rb]) {
      expect(r.errors).toEqual([]);
      expect(r.timedOut).toBe(0);
    }
    expect(ra.rounds).toBe(rb.rounds);
    // the consumer really slept and was woken (not merely found work waiting) 10,000 times
    expect(rb.woken).toBeGreaterThanOrEqual(wakeups);
  }, 120_000);

  test("subscribe/unsubscribe racing with publish: exactly once to current subscribers, in order", async () => {
    const layout = createBusLayout({ endpoints: 3, ringBytes: 16 * 1024 });
    const channel = 42;
    const pub = run<PublisherReport>({
      role: "publisher",
      layout,
      self: 0,
      channel,
      count: 100_000,
    });
    const subs = [1, 2].map((self) =>
      run<SubscriberReport>({ role: "subscriber", layout, self, channel }),
    );
    const p = await pub.done;
    const reports = await Promise.all(subs.map((s) => s.done));
    pub.worker.terminate();
    for (const s of subs) s.worker.terminate();
    for (const r of reports) {
      expect(r.errors).toEqual([]);
      expect(r.fenceSeen).toBe(true);
      // every publish that targeted this subscriber was delivered once or dropped once because it
      // arrived after an unsubscribe: none lost, none duplicated
      expect(r.delivered + r.drops).toBe(p.targeted[r.self] as number);
      expect(r.delivered).toBeGreaterThan(0);
      expect(r.drops).toBeGreaterThan(0);
    }
  }, 120_000);
});
