/**
 * Task messages at volume on real threads: what the runtime gathers into one bus record per
 * destination (src/app/wire.ts) arrives whole, once, in order, across workers and from the
 * controller, with numbers, objects and bytes mixed.
 */
import { describe, expect, test } from "bun:test";
import { lab } from "../controller/lab.ts";
import { sequenceValue } from "./probe.ts";
import { PROBES, reported, said } from "./reports.ts";

const COUNT = 300_000;

describe("messages at volume", () => {
  test("300,000 messages between tasks on two workers: every one, once, in order", async () => {
    const { controller, log } = await lab(2, { worker: { module: PROBES } });
    const a = await controller.spawnTask("probe");
    const b = await controller.spawnTask("probe");
    expect(a.worker).not.toBe(b.worker);
    controller.sendToTask(b, { op: "count" });
    // 1,000 a millisecond: tasks see no bus back-pressure, and a receiver takes ~3M/s at best
    controller.sendToTask(a, { op: "tell-many", to: b.id, count: COUNT, chunk: 1000 });
    await reported(log, a, `told ${COUNT}`);
    // the last messages are on the bus behind the report: ask until all have come
    for (let i = 0; ; i++) {
      controller.sendToTask(b, { op: "report-count" });
      await log.until("a count", () => said(log, b).length > i + 1);
      if (said(log, b).at(-1) === `counted ${COUNT}, wrong 0`) break;
      expect(said(log, b).at(-1)).toMatch(/^counted \d+, wrong 0$/);
      await Bun.sleep(20);
    }
    expect(log.events.filter((e) => e.kind === "worker-error")).toEqual([]);
    expect(controller.stats()[b.worker]).toMatchObject({ staleDrops: 0 });
  }, 60_000);

  test("300,000 messages from the controller: every one taken arrives once, in order; a capped one is sent again", async () => {
    const { controller, log } = await lab(1, { worker: { module: PROBES } });
    const a = await controller.spawnTask("probe");
    controller.sendToTask(a, { op: "count" });
    for (let i = 0; i < COUNT; ) {
      const result = controller.sendToTask(a, sequenceValue(i));
      if (result === "sent" || result === "queued") i++;
      else if (result === "capped")
        await Bun.sleep(1); // the worker catches up
      else throw new Error(`send ${i} was ${result}`);
      if (i % 10_000 === 0) await Bun.sleep(0);
    }
    controller.sendToTask(a, { op: "report-count" });
    await reported(log, a, /^counted/);
    expect(said(log, a).at(-1)).toBe(`counted ${COUNT}, wrong 0`);
    expect(log.events.filter((e) => e.kind === "worker-error")).toEqual([]);
  }, 60_000);
});
