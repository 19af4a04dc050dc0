/**
 * The runtime's worker-level semantics (pub/sub ordering, placement, spawn requests, refused
 * outputs, graceful shutdown) on simulated time: the lab workers' hand-written inners under
 * `SimHarness`, where every outcome is exact and a failure replays. Tasks on the grouped worker
 * have their own simulated-time tests in test/app/; what needs real threads (fds, exit codes,
 * rings, the watchdog) is tested in test/controller/.
 */
import { describe, expect, test } from "bun:test";
import { SimHarness, SimNetwork, type Structured } from "../../src/index.ts";
import { type Command, LabWorker } from "../worker/workers/lab.ts";

/** A harness of `workers` lab workers on one host, bus messages taking `busLatencyMs`. */
function labs(workers: number, busLatencyMs = 1) {
  const network = new SimNetwork(7);
  const host = network.addHost("host");
  const h = new SimHarness(network, { busLatencyMs });
  for (let i = 0; i < workers; i++) h.add({ host, inner: new LabWorker(i), tickMs: 50 });
  const send = (w: number, c: Command) => h.sendTo(w, c as unknown as Structured);
  const told = (w: number) => h.external(w) as readonly Record<string, Structured>[];
  return { h, network, send, told };
}

describe("the runtime's semantics on simulated time", () => {
  test("pub/sub: a subscription reaches the other worker one bus latency later; from then on every message arrives once, in order", () => {
    const { h, network, send, told } = labs(2, 1);
    send(0, { op: "subscribe", channel: 7 });
    send(1, { op: "subscribe", channel: 7 });
    send(1, { op: "subscribe", channel: 8 });
    // published at once: worker 0 does not yet know of worker 1's subscription
    send(0, { op: "publish", channel: 7, text: "m0" });
    h.run(network.now + 1);
    send(0, { op: "publish", channel: 7, text: "m1" });
    send(0, { op: "publish", channel: 8, text: "other" });
    send(0, { op: "publish", channel: 7, text: "m2" });
    h.run(network.now + 1);
    const heard = (w: number) =>
      told(w)
        .filter((d) => "heard" in d)
        .map((d) => `${d.heard}@${d.from}/${d.channel}`);
    // its own worker's subscription is seen at once (a publish reaches the publisher's worker)
    expect(heard(0)).toEqual(["m0@0/7", "m1@0/7", "m2@0/7"]);
    expect(heard(1)).toEqual(["m1@0/7", "other@0/8", "m2@0/7"]);
  });

  test("placement: fewest tasks, lowest index on a tie; a spawn a worker asks for is placed the same way", () => {
    const { h, send, told } = labs(2);
    expect(["a", "b", "c"].map((id) => h.spawn({ id }))).toEqual([0, 1, 0]);
    send(0, { op: "spawn-request", id: "child" });
    expect(told(1).at(-1)).toEqual({ spawned: "child", worker: 1 });
    send(1, { op: "spawn-request", id: "next" });
    expect(told(0).at(-1)).toEqual({ spawned: "next", worker: 0 });
  });

  test("an output the runtime cannot carry out is reported as a worker error; the next output still goes", () => {
    const { h, send, told } = labs(1);
    send(0, { op: "bad-output" });
    expect(h.reports(0).map((r) => [r.kind, String(r.error)])).toEqual([
      ["worker-error", "RangeError: no worker 99 (workers are 0..0)"],
    ]);
    expect(told(0).at(-1)).toEqual({ afterBadOutput: 0 });
  });

  test("graceful shutdown: every worker says goodbye for what it holds; spawn requests are refused", () => {
    const { h, network, send, told } = labs(2);
    for (const id of ["a", "b", "c", "d"]) h.spawn({ id });
    expect(h.shutdown(network.now + 1000)).toBe(true);
    for (const w of [0, 1]) {
      const ids = w === 0 ? ["a", "c"] : ["b", "d"];
      expect(
        told(w)
          .filter((d) => "bye" in d)
          .map((d) => d.bye),
      ).toEqual(ids);
    }
    send(0, { op: "spawn-request", id: "late" });
    expect(h.trace.at(-1)).toContain("spawn refused (shutting down)");
    expect(told(1).some((d) => d.spawned === "late")).toBe(false);
  });

  test("a worker that holds on during shutdown keeps the shutdown from completing by its deadline", () => {
    const { h, network, send } = labs(2);
    send(1, { op: "hang-on-shutdown" });
    const start = network.now;
    expect(h.shutdown(start + 300)).toBe(false);
    expect(network.now).toBe(start + 300);
  });

  test("the same calls give the same trace, line for line", () => {
    const run = () => {
      const { h, network, send } = labs(3, 2);
      for (let i = 0; i < 6; i++) send(i % 3, { op: "subscribe", channel: i % 2 });
      for (let i = 0; i < 5; i++) {
        send(i % 3, { op: "publish", channel: i % 2, text: `x${i}` });
        h.run(network.now + 1);
      }
      h.shutdown(network.now + 500);
      return h.trace;
    };
    const first = run();
    expect(first.some((l) => l.includes("<- bus from=") && l.includes("via=channel"))).toBe(true);
    expect(run()).toEqual(first);
  });
});
