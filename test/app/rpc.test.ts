/**
 * RPC at volume on real threads: 100,000 calls from the controller and 100,000 between tasks
 * on two workers, none lost, every answer matched to its call; calls to a stalled worker fail
 * at once instead of piling up.
 */
import { describe, expect, test } from "bun:test";
import { lab } from "../controller/lab.ts";
import { PROBES, said } from "./reports.ts";

const CALLS = 100_000;

describe("RPC at volume", () => {
  test("100,000 calls from the controller, 512 in flight: every one answered, with its own answer", async () => {
    const { controller } = await lab(2, { worker: { module: PROBES } });
    const a = await controller.spawnTask("probe");
    let next = 0;
    let right = 0;
    let wrong = 0;
    const caller = async () => {
      while (next < CALLS) {
        const i = next++;
        const answer = await controller.call(a, i, { timeoutMs: 30_000 });
        if (answer === `re: ${i}`) right++;
        else wrong++;
      }
    };
    await Promise.all(Array.from({ length: 512 }, caller));
    expect({ right, wrong }).toEqual({ right: CALLS, wrong: 0 });
    expect(controller.stats()[a.worker]).toMatchObject({ lateReplies: 0, staleDrops: 0 });
  }, 60_000);

  test("100,000 calls between tasks on two workers, 256 in flight: every one answered, with its own answer", async () => {
    const { controller, log } = await lab(2, { worker: { module: PROBES } });
    const a = await controller.spawnTask("probe");
    const b = await controller.spawnTask("probe");
    expect(a.worker).not.toBe(b.worker);
    controller.sendToTask(a, { op: "call-many", to: b.id, count: CALLS, window: 256 });
    await log.until(
      "the calls to be done",
      () => said(log, a).some((s) => s.startsWith("calls:")),
      60_000,
    );
    expect(said(log, a).find((s) => s.startsWith("calls:"))).toBe(`calls: ${CALLS}/0/0`);
  }, 60_000);

  test("a flood of calls to a stalled worker fails at once, none left pending; after it recovers calls are answered", async () => {
    const { controller, log } = await lab(1, {
      worker: { module: PROBES },
      controller: { stallMs: 100 },
    });
    const a = await controller.spawnTask("probe");
    controller.sendToTask(a, { op: "block", ms: 1500 });
    await log.until("the stall", () => log.events.some((e) => e.kind === "worker-stalled"));
    const outcomes = await Promise.all(
      Array.from({ length: 1000 }, (_, i) =>
        controller.call(a, i).then(
          () => "answered",
          (e: Error) => e.message,
        ),
      ),
    );
    expect(new Set(outcomes)).toEqual(new Set([`call to ${a} not sent: the send was stalled`]));
    await log.until("unblocked", () => said(log, a).includes("unblocked"), 10_000);
    await log.until("the recovery", () => log.events.some((e) => e.kind === "worker-recovered"));
    expect(await controller.call(a, "again")).toBe("re: again");
    expect(controller.stats()[0]?.lateReplies).toBe(0);
  }, 20_000);
});
