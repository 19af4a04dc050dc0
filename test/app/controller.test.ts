/**
 * Grouped workers under the real controller, on real threads and sockets: spawnTask, messages
 * by address both ways, calls with time-outs, a failed task's socket closed by the runtime.
 */
import { describe, expect, test } from "bun:test";
import {
  CallError,
  type ControllerEvent,
  openFileDescriptors,
  SpawnError,
} from "../../src/index.ts";
import { lab } from "../controller/lab.ts";
import type { ProbeCommand } from "./probe.ts";
import { PROBES, reported, said } from "./reports.ts";

type Message = Extract<ControllerEvent, { kind: "message" }>;

describe("grouped workers under the controller", () => {
  test("spawnTask resolves with the address; messages carry it both ways; calls are answered", async () => {
    const { controller, log } = await lab(2, { worker: { module: PROBES } });
    const a = await controller.spawnTask("probe", "alpha");
    const b = await controller.spawnTask("probe", "beta");
    expect([a.worker, b.worker].sort()).toEqual([0, 1]);
    await reported(log, a, 'born "alpha"');
    const born = log.events.find((e) => e.kind === "message" && e.from?.id === a.id) as Message;
    expect(born.worker).toBe(a.worker);
    expect(controller.sendToTask(b, { op: "tell", to: a.id, text: "hello" })).toBe("sent");
    await reported(log, a, `message from ${b}: hello`);
    expect(await controller.call(a, "ping")).toBe("re: ping");
    await expect(controller.spawnTask("nope")).rejects.toThrow(SpawnError);
  });

  test("a call times out, and fails at once for an ended task", async () => {
    const { controller, log } = await lab(2, { worker: { module: PROBES } });
    const a = await controller.spawnTask("probe");
    controller.sendToTask(a, { op: "answer-after", ms: -1 });
    const slow = controller.call(a, "?", { timeoutMs: 100 });
    await expect(slow).rejects.toThrow(`call to ${a} timed out after 100 ms`);
    controller.sendToTask(a, { op: "finish" });
    await log.until("a finished", () => controller.stats()[a.worker]?.tasks === 0);
    await expect(controller.call(a, "?")).rejects.toThrow(`no task ${a}: it has ended`);
  });

  test("a call to a task on a worker that is terminated fails with the reason, and later calls at once", async () => {
    const { controller } = await lab(2, { worker: { module: PROBES } });
    const b = await controller.spawnTask("probe");
    controller.sendToTask(b, { op: "answer-after", ms: -1 });
    // settled into a value, not awaited through expect(): the rejection comes only after terminate
    const pending = controller.call(b, "?", { timeoutMs: 60_000 }).then(
      () => "answered",
      (e: unknown) => e,
    );
    await controller.terminate(b.worker);
    const error = await pending;
    expect(error).toBeInstanceOf(CallError);
    expect((error as CallError).message).toBe(
      `call to a task of worker ${b.worker} failed: terminated by the application`,
    );
    await expect(controller.call(b, "?")).rejects.toThrow(
      `call to ${b} failed: worker ${b.worker} is gone`,
    );
  });

  test("a task that throws is reported by kind and address, and the runtime closes its socket", async () => {
    const { controller, log } = await lab(1, { worker: { module: PROBES } });
    const a = await controller.spawnTask("probe");
    await reported(log, a, "born null");
    const fds = openFileDescriptors();
    controller.sendToTask(a, { op: "listen", socket: 0, port: 0 });
    await reported(log, a, /^listen 0: ok \d+$/);
    expect(openFileDescriptors()).toBe(fds + 1);
    controller.sendToTask(a, { op: "throw" });
    await log.until("the task error", () => log.events.some((e) => e.kind === "task-error"));
    expect(log.events.find((e) => e.kind === "task-error")).toMatchObject({
      worker: 0,
      task: `probe ${a}`,
    });
    await log.until("the socket closed", () => openFileDescriptors() === fds);
    controller.sendToTask(a, { op: "finish" });
    await log.until("a stale drop counted", () => (controller.stats()[0]?.staleDrops ?? 0) === 1);
  });

  test("with checkPayloads, a payload view kept past its drain and sent later fails the task that kept it, named; a typed message needs no cast", async () => {
    const { controller, log } = await lab(1, {
      worker: { module: PROBES, checkPayloads: true },
    });
    const a = await controller.spawnTask("probe");
    const b = await controller.spawnTask("probe");
    const command: ProbeCommand = { op: "listen", socket: 0, port: 0 };
    controller.sendToTask(a, command);
    controller.sendToTask(b, { op: "listen", socket: 0, port: 0 });
    await reported(log, a, /^listen 0: ok \d+$/);
    const port = Number(
      said(log, a)
        .find((s) => s.startsWith("listen 0: ok"))
        ?.slice(13),
    );
    controller.sendToTask(a, { op: "keep" });
    controller.sendToTask(b, { op: "send", socket: 0, port, text: "kept" });
    await reported(log, a, "packet on 0: kept");
    controller.sendToTask(a, { op: "send-kept", socket: 0 });
    await log.until("the task error", () => log.events.some((e) => e.kind === "task-error"));
    const error = log.events.find((e) => e.kind === "task-error");
    expect(error).toMatchObject({ task: `probe ${a}`, error: { name: "Error" } });
    expect(error?.kind === "task-error" && error.error.message).toBe(
      `probe ${a}: an output could not be sent: a view of received packet #1's payload was sent after its handler returned, when its buffer is already reused: copy what you keep (data.slice())`,
    );
    expect(said(log, b).filter((s) => s.startsWith("packet"))).toEqual([]);
  });

  test("a message that arrives while the worker sleeps is handled at its own time: a timer set from it is not early", async () => {
    const { controller, log } = await lab(1, {
      worker: { module: PROBES, tickMs: 0, statsMs: 1000 },
    });
    const a = await controller.spawnTask("probe");
    await reported(log, a, "born null");
    await Bun.sleep(600); // the worker sleeps (no tick, no deadline) on purpose
    const sent = performance.now();
    controller.sendToTask(a, { op: "timer", inMs: 200 });
    await reported(log, a, /^timer /);
    const at = Number(
      said(log, a)
        .find((s) => s.startsWith("timer "))
        ?.slice(6),
    );
    expect(at).toBeGreaterThanOrEqual(sent + 200 - 1);
  });

  test("a subscription made before a datagram is seen by the worker the datagram wakes: its publish in reply reaches the subscriber, every time", async () => {
    const { controller, log } = await lab(2, { worker: { module: PROBES } });
    const s = await controller.spawnTask("probe");
    const p = await controller.spawnTask("probe");
    expect(s.worker).not.toBe(p.worker);
    controller.sendToTask(p, { op: "listen", socket: 0, port: 0 });
    controller.sendToTask(s, { op: "listen", socket: 0, port: 0 });
    await reported(log, p, /^listen 0: ok \d+$/);
    await reported(log, s, /^listen 0: ok \d+$/);
    const port = Number(
      said(log, p)
        .find((x) => x.startsWith("listen 0: ok"))
        ?.slice(13),
    );
    controller.sendToTask(p, { op: "publish-packets" });
    const ROUNDS = 100;
    for (let i = 1; i <= ROUNDS; i++) {
      // subscribe, then send: the publish the datagram causes must find the subscription
      controller.sendToTask(s, { op: "subscribe", channel: i });
      controller.sendToTask(s, { op: "send", socket: 0, port, text: String(i) });
      await reported(log, s, `channel ${i} from ${p}: ${i}`);
    }
  }, 30_000);

  test("a task's tagged spawn refused because the controller is shutting down is answered, and the task can end", async () => {
    const { controller, log } = await lab(1, { worker: { module: PROBES } });
    const a = await controller.spawnTask("probe");
    controller.sendToTask(a, { op: "spawn-at-shutdown" });
    await controller.call(a, "sync"); // the command is in before the shutdown
    const report = await controller.shutdown({ timeoutMs: 5000 });
    expect(report).toMatchObject({ stopped: [0], terminated: [], dead: [] });
    expect(said(log, a).slice(-2)).toEqual([
      "bye",
      "spawn 99 failed: spawn not placed: the controller is shutting down",
    ]);
  });

  test("a task's tagged spawn whose worker is terminated before it handles it is answered with the reason", async () => {
    const { controller, log } = await lab(2, { worker: { module: PROBES } });
    const a = await controller.spawnTask("probe");
    const b = await controller.spawnTask("probe");
    const c = await controller.spawnTask("probe");
    expect([a.worker, b.worker, c.worker]).toEqual([0, 1, 0]);
    controller.sendToTask(b, { op: "block", ms: 3000 }); // worker 1 takes nothing for a while
    controller.sendToTask(a, { op: "spawn", config: null, tag: 5 }); // placed on worker 1
    // a's answer comes after its spawn output on the same ring: once answered, the spawn is placed
    expect(await controller.call(a, "sync")).toBe("re: sync");
    await controller.terminate(1, "terminated by the test");
    await reported(log, a, /^spawn 5 /);
    expect(said(log, a).find((x) => x.startsWith("spawn 5 "))).toBe(
      "spawn 5 failed: spawn on worker 1 failed: terminated by the test",
    );
  });
});
