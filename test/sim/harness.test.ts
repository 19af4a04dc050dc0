/**
 * The simulated-time harness, running the examples' own echo server and load client inners
 * against each other over a lossy link: a seed replays exactly and middleware deadlines are kept.
 */
import { describe, expect, test } from "bun:test";
import { type LoadResult, LoadWorker } from "../../examples/udp-echo-client-worker.ts";
import echo from "../../examples/udp-echo-worker.ts";
import {
  type FaultOptions,
  type LinkOptions,
  SimHarness,
  SimNetwork,
  type Structured,
  withFaults,
} from "../../src/index.ts";

function isResult(r: Structured): r is LoadResult {
  return typeof r === "object" && r !== null && "event" in r && r.event === "result";
}

/**
 * The echo server (10.0.0.2:4000) and a load client (8 in flight over 2 sockets for 1 s of
 * virtual time) on two hosts linked as told, with faults injected at the server if asked; runs
 * until the client reports, then shuts down.
 */
function echoRun(seed: number, link: LinkOptions, serverFaults?: Omit<FaultOptions, "clock">) {
  const network = new SimNetwork(seed);
  const clientHost = network.addHost("client", ["10.0.0.1"]);
  const serverHost = network.addHost("server", ["10.0.0.2"]);
  network.link(clientHost, serverHost, link);
  const h = new SimHarness(network);
  h.add({
    host: serverHost,
    inner: echo.factory(0, { host: "10.0.0.2", port: 4000 }),
    ...(serverFaults === undefined
      ? {}
      : { wrap: (make) => withFaults(make, { ...serverFaults, clock: network.clock }) }),
  });
  const client = h.add({
    host: clientHost,
    tickMs: 10,
    inner: new LoadWorker({
      host: "10.0.0.2",
      port: 4000,
      size: 64,
      window: 8,
      seconds: 1,
      sockets: 2,
      lossTimeoutMs: 50,
    }),
  });
  const finished = h.run(10_000, () => h.external(client).some(isResult));
  const stopped = h.shutdown(network.now + 1000);
  h.close();
  return { h, finished, stopped, result: h.external(client).find(isResult) };
}

const LOSSY: LinkOptions = {
  latencyMs: 5,
  loss: 0.05,
  duplicate: 0.03,
  reorder: 0.1,
  reorderMs: 10,
  corrupt: 0.02,
};

describe("the simulated-time harness", () => {
  test("a lossy echo run twice from one seed gives the same trace line for line; another seed gives another", () => {
    const first = echoRun(42, LOSSY);
    expect([first.finished, first.stopped]).toEqual([true, true]);
    const r = first.result as LoadResult;
    // every datagram sent came back or was counted lost; duplicates come back late, corruption bad
    expect(r.error).toBeNull();
    expect(r.sent).toBe(r.received + r.lost);
    expect([r.received > 0, r.lost > 0, r.late + r.bad > 0]).toEqual([true, true, true]);
    const stats = first.h.network.stats();
    expect(
      [stats.lost, stats.duplicated, stats.reordered, stats.corrupted].every((n) => n > 0),
    ).toBe(true);
    for (const fault of ["lost", "duplicated", "held back", "corrupted"])
      expect(first.h.trace.some((l) => l.includes(" net ") && l.includes(fault))).toBe(true);
    expect(first.h.trace.filter((l) => l.includes("w1 -> external {event=result")).length).toBe(1);

    const again = echoRun(42, LOSSY);
    expect(again.h.trace.length).toBe(first.h.trace.length);
    expect(again.h.trace).toEqual(first.h.trace);
    expect(again.result).toEqual(r);
    expect(echoRun(43, LOSSY).h.trace).not.toEqual(first.h.trace);
  });

  test("on a clean link, latency is what the link and the middleware say: 5 ms each way, plus 7 ms of delay injected at the server", () => {
    const clean = echoRun(1, { latencyMs: 5 });
    expect(clean.result).toMatchObject({ lost: 0, late: 0, bad: 0, p50: 10_000, p99: 10_000 });
    const delayed = echoRun(1, { latencyMs: 5 }, { seed: 1, delay: 1, delayMs: 7 });
    expect(delayed.result).toMatchObject({ lost: 0, late: 0, bad: 0, p50: 17_000, p99: 17_000 });
  });
});
