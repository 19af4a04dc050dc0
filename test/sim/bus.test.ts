/** The harness's bus: latency, order per pair, subscription views, broadcast and direct sends. */
import { describe, expect, test } from "bun:test";
import { SimBus } from "../../src/index.ts";

function bus(workers: number, latencyMs: number): SimBus {
  const b = new SimBus(latencyMs);
  for (let i = 0; i < workers; i++) b.addWorker();
  return b;
}

const texts = (b: SimBus, now: number) =>
  b.due(now).map(({ to, input }) => `${input.from}>${to} ${input.via} ${String(input.data)}`);

describe("the simulated bus", () => {
  test("messages arrive one latency later, in the order sent; nothing is due before", () => {
    const b = bus(2, 3);
    for (let i = 0; i < 4; i++) b.send(i, 0, { op: "direct", worker: 1, data: `d${i}` });
    expect(b.nextDue()).toBe(3);
    expect(texts(b, 2.9)).toEqual([]);
    expect(texts(b, 4)).toEqual(["0>1 direct d0", "0>1 direct d1"]);
    expect(texts(b, 10)).toEqual(["0>1 direct d2", "0>1 direct d3"]);
    expect(b.nextDue()).toBe(Number.POSITIVE_INFINITY);
  });

  test("a subscription counts at once for its own worker and one latency later for the others; so does leaving", () => {
    const b = bus(3, 1);
    b.send(0, 2, { op: "subscribe", channel: 5 });
    b.send(0, 2, { op: "publish", channel: 5, data: "own" });
    b.send(0, 0, { op: "publish", channel: 5, data: "early" });
    expect(texts(b, 1)).toEqual(["2>2 channel own"]);
    b.send(1, 0, { op: "publish", channel: 5, data: "after" });
    b.send(1, 2, { op: "unsubscribe", channel: 5 });
    b.send(1, 1, { op: "publish", channel: 5, data: "leaving" });
    expect(texts(b, 2)).toEqual(["0>2 channel after", "1>2 channel leaving"]);
    b.send(2, 0, { op: "publish", channel: 5, data: "gone" });
    expect(texts(b, 3)).toEqual([]);
  });

  test("a broadcast goes to every other worker; a direct send to no such worker is the runtime's RangeError", () => {
    const b = bus(3, 0);
    b.send(0, 1, { op: "broadcast", data: "all" });
    expect(texts(b, 0)).toEqual(["1>0 broadcast all", "1>2 broadcast all"]);
    expect(() => b.send(0, 0, { op: "direct", worker: 3, data: null })).toThrow(
      "no worker 3 (workers are 0..2)",
    );
    expect(() => new SimBus(-1)).toThrow(RangeError);
  });
});
