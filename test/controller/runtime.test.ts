import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  Controller,
  type ControllerEvent,
  openFileDescriptors,
  type TaskAddress,
} from "../../src/index.ts";
import { PROBES, reported } from "../app/reports.ts";
import { LAB, lab, statsUntil, track } from "./lab.ts";
import { EventLog } from "./log.ts";

describe("controller and workers", () => {
  test("controller to worker: each worker answers for itself", async () => {
    const { log, send } = await lab(2);
    expect(send(0, { op: "ping" })).toBe("sent");
    send(1, { op: "ping" });
    await log.until("two pongs", () => log.messages((d) => "pong" in d).length === 2);
    expect(log.messages((d) => "pong" in d).map((d) => d.pong)).toContain(0);
    expect(log.messages((d) => "pong" in d).map((d) => d.pong)).toContain(1);
  });

  test("worker to worker through a pub/sub channel: every message once, in order, with its sender", async () => {
    const { log, send } = await lab(3);
    send(1, { op: "subscribe", channel: 7 });
    send(2, { op: "subscribe", channel: 7 });
    send(0, { op: "subscribe", channel: 8 });
    // a subscription reaches other workers over the bus: publish until both subscribers hear
    let n = 0;
    await log.until(
      "both subscribers",
      () => {
        send(0, { op: "publish", channel: 7, text: `m${n++}` });
        const heard = new Set(log.messages((d) => "heard" in d).map((d) => d.worker));
        return heard.has(1) && heard.has(2);
      },
      10_000,
    );
    // a last message: once both have heard it, they have heard everything published before it
    send(0, { op: "publish", channel: 7, text: `m${n}` });
    await log.until("the last message", () =>
      [1, 2].every((w) => log.messages((d) => d.worker === w && d.heard === `m${n}`).length === 1),
    );
    for (const w of [1, 2]) {
      const heard = log.messages((d) => d.worker === w && "heard" in d);
      // in publish order, no duplicates, and once a worker hears it hears every later message
      const seq = heard.map((d) => Number(String(d.heard).slice(1)));
      expect(seq).toEqual([...seq].sort((a, b) => a - b));
      expect(new Set(seq).size).toBe(seq.length);
      expect(seq.at(-1)).toBe((seq[0] as number) + seq.length - 1);
      expect(heard.every((d) => d.from === 0 && d.channel === 7)).toBe(true);
    }
    expect(log.messages((d) => d.worker === 0 && "heard" in d)).toEqual([]);
  });

  test("stats follow spawned and finished tasks; spawns go to the least-loaded worker", async () => {
    const { controller } = await lab(2, { worker: { module: PROBES } });
    const [a, b, c] = await Promise.all([1, 2, 3].map(() => controller.spawnTask("probe")));
    expect([a, b, c].map((t) => t?.worker)).toEqual([0, 1, 0]);
    await statsUntil(controller, "2 + 1 tasks", (s) => s[0]?.tasks === 2 && s[1]?.tasks === 1);
    controller.sendToTask(b as TaskAddress, { op: "finish" });
    await statsUntil(controller, "worker 1 empty", (s) => s[1]?.tasks === 0);
    // placed when asked, before the workers answer: a spawn just sent counts
    const [d, e, f] = await Promise.all([1, 2, 3].map(() => controller.spawnTask("probe")));
    expect([d, e, f].map((t) => t?.worker)).toEqual([1, 1, 0]);
    controller.sendToTask(a as TaskAddress, { op: "finish" });
    controller.sendToTask(c as TaskAddress, { op: "finish" });
    const s = await statsUntil(
      controller,
      "3 tasks left",
      (x) => x[0]?.tasks === 1 && x[1]?.tasks === 2,
    );
    expect(s.map((w) => w.state)).toEqual(["running", "running"]);
    expect(s.every((w) => w.backend === "uring" || w.backend === "epoll")).toBe(true);
    expect(s[0]?.eventsIn).toBeGreaterThan(0);
    expect(s[0]?.eventsOut).toBeGreaterThan(0);
  });

  test("a worker may ask the controller to spawn (a task's spawn output, by hand)", async () => {
    const { log, send } = await lab(2);
    send(0, { op: "spawn-request", id: "child" });
    const spawned = await log.message("child spawned", (d) => d.spawned === "child");
    expect([0, 1]).toContain(spawned.worker as number);
  });

  test("a throwing task is reported and removed; its neighbours keep working", async () => {
    const { controller, log } = await lab(1, { worker: { module: PROBES } });
    const bad = await controller.spawnTask("probe");
    const good = await controller.spawnTask("probe");
    controller.sendToTask(bad, { op: "throw" });
    await log.until("task error", () => log.events.some((e) => e.kind === "task-error"));
    const err = log.events.find((e) => e.kind === "task-error");
    expect(err).toMatchObject({ kind: "task-error", worker: 0, task: `probe ${bad}` });
    expect((err as { error: { message: string } }).error.message).toBe(
      `probe ${bad} was told to throw`,
    );
    controller.sendToTask(good, { op: "tell", to: good.id, text: "still there?" });
    await reported(log, good, `message from ${good}: still there?`);
    const s = await statsUntil(controller, "stats", (x) => x[0]?.tasks === 1);
    expect(s[0]?.taskErrors).toBe(1);
    expect(s[0]?.lastError).toContain("told to throw");
    expect(s[0]?.state).toBe("running");
  });

  test("a worker whose inner throws dies alone: reported, its fds closed, the other serves on", async () => {
    const { controller, log, send, spawn } = await lab(2);
    spawn({ id: "x" });
    spawn({ id: "y" });
    await log.until("spawns", () => log.messages((d) => "spawned" in d).length === 2);
    send(1, { op: "die" });
    await log.until("death", () => log.events.some((e) => e.kind === "worker-died"));
    const died = log.events.find((e) => e.kind === "worker-died") as Extract<
      ControllerEvent,
      { kind: "worker-died" }
    >;
    expect(died.worker).toBe(1);
    expect(died.error.message).toBe("worker 1 was told to die");
    expect(died.exitCode).toBe(1);
    const s = controller.stats();
    expect(s[1]?.state).toBe("dead");
    expect(s[1]?.lastError).toContain("told to die");
    expect(controller.sendTo(1, { op: "ping" })).toBe("closed");
    expect(spawn({ id: "z" })).toBe(0); // only the live worker takes spawns
    send(0, { op: "ping" });
    await log.message("worker 0 answers", (d) => d.pong === 0);
    const report = await controller.shutdown();
    expect(report).toEqual({ stopped: [0], terminated: [], dead: [1] });
  });

  test("a worker that exits abruptly is reported with its exit code", async () => {
    const { controller, log, send } = await lab(2);
    send(0, { op: "exit", code: 3 });
    await log.until("death", () => log.events.some((e) => e.kind === "worker-died"));
    expect(log.events.find((e) => e.kind === "worker-died")).toMatchObject({
      worker: 0,
      exitCode: 3,
      error: { message: "exited with code 3" },
    });
    send(1, { op: "ping" });
    await log.message("worker 1 answers", (d) => d.pong === 1);
    expect(controller.stats()[0]?.state).toBe("dead");
  });

  test("an output the runtime cannot carry out is reported; the worker carries on", async () => {
    const { controller, log, send } = await lab(1);
    send(0, { op: "bad-output" });
    await log.message("the next output", (d) => d.afterBadOutput === 0);
    await log.until("worker error", () => log.events.some((e) => e.kind === "worker-error"));
    expect(log.events.find((e) => e.kind === "worker-error")).toMatchObject({
      worker: 0,
      error: { name: "RangeError", message: "no worker 99 (workers are 0..0)" },
    });
    expect(controller.stats()[0]?.state).toBe("running");
  });

  test("stats show a bus ring filling while the controller is not reading", async () => {
    const { controller, log, send } = await lab(1);
    send(0, { op: "flood", count: 2000 });
    await Promise.resolve(); // the controller flushes its sends in a microtask
    // then keep the main thread from reading: the worker keeps writing into its ring to the
    // controller, and its stats (written from its own thread) show the ring filling
    const deadline = Date.now() + 10_000;
    while ((controller.stats()[0]?.ringOccupancy ?? 0) <= 0.2 && Date.now() < deadline);
    expect(controller.stats()[0]?.ringOccupancy).toBeGreaterThan(0.2);
    await log.until("the flood", () => log.messages((d) => "flood" in d).length === 2000);
    const seq = log.messages((d) => "flood" in d).map((d) => d.flood);
    expect(seq).toEqual(Array.from({ length: 2000 }, (_, i) => i)); // none lost, in order
    await statsUntil(controller, "the ring drained", (x) => (x[0]?.ringOccupancy ?? 1) < 0.01);
  });

  test("graceful shutdown: tasks say goodbye, workers stop, every file descriptor is released", async () => {
    const before = openFileDescriptors();
    const { controller, log, spawn } = await lab(2);
    for (const id of ["a", "b", "c", "d"]) spawn({ id });
    await log.until("spawns", () => log.messages((d) => "spawned" in d).length === 4);
    expect(openFileDescriptors()).toBeGreaterThan(before);
    const events: ControllerEvent[] = [];
    const iterated = (async () => {
      for await (const e of controller) events.push(e);
    })();
    const report = await controller.shutdown();
    await iterated; // the iterator ends once the controller has shut down
    expect(report).toEqual({ stopped: [0, 1], terminated: [], dead: [] });
    const byes = log.messages((d) => "bye" in d).map((d) => d.bye);
    expect(byes.sort()).toEqual(["a", "b", "c", "d"]);
    expect(events.filter((e) => e.kind === "worker-stopped").length).toBe(2);
    expect(controller.stats().map((s) => s.state)).toEqual(["stopped", "stopped"]);
    expect(openFileDescriptors()).toBe(before);
    expect(() => controller.spawn({ id: "late" })).toThrow("no running worker");
    await expect(controller.addWorker({ module: LAB })).rejects.toThrow("shut down");
  });

  test("a worker that does not finish in time is terminated", async () => {
    const { controller, log, send } = await lab(2);
    send(1, { op: "hang-on-shutdown" });
    send(1, { op: "ping" });
    await log.message("worker 1 took the command", (d) => d.pong === 1); // the ping came after it
    const report = await controller.shutdown({ timeoutMs: 300 });
    expect(report).toEqual({ stopped: [0], terminated: [1], dead: [] });
    expect(controller.stats()[1]?.lastError).toContain("terminated");
  });

  test("an idle worker sleeps until its next deadline instead of spinning", async () => {
    const { controller } = await lab(1, { worker: { tickMs: 200, statsMs: 200 } });
    const before = await statsUntil(controller, "first stats", (s) => (s[0]?.loops ?? 0) > 0);
    await Bun.sleep(1000);
    const after = controller.stats();
    // ~5 ticks and ~5 stats deadlines in a second; a 1 ms tick or a busy loop would be 1000+
    const loops = (after[0]?.loops ?? 0) - (before[0]?.loops ?? 0);
    expect(loops).toBeGreaterThan(2);
    expect(loops).toBeLessThan(30);
    expect(after[0]?.loopUtilisation).toBeLessThan(50);
  });
});

describe("recording a worker's traffic", () => {
  const tcpdump = Bun.which("tcpdump");
  if (tcpdump === null && process.env.CI === "true")
    throw new Error("CI=true but tcpdump is missing (apt-get install tcpdump)");
  test.skipIf(tcpdump === null)(
    "with the pcap option each worker writes its datagrams to its own file, which tcpdump reads",
    async () => {
      const dir = mkdtempSync(join(tmpdir(), "sansio-worker-pcap-"));
      try {
        const probe = await Bun.udpSocket({});
        const port = probe.port;
        probe.close();
        const { controller, log, send } = await lab(2, {
          worker: { pcap: join(dir, "capture.pcap") },
        });
        send(0, { op: "listen", port });
        send(1, { op: "listen", port: 0 });
        await log.until("listening", () => log.messages((d) => "listening" in d).length === 2);
        let echoes = 0;
        let allEchoed!: () => void;
        const done = new Promise<void>((resolve) => {
          allEchoed = resolve;
        });
        const client = await Bun.udpSocket({
          socket: {
            data() {
              if (++echoes === 5) allEchoed();
            },
          },
        });
        for (let i = 0; i < 5; i++) client.send(Uint8Array.of(i, i, i), port, "127.0.0.1");
        await done;
        client.close();
        await controller.shutdown();
        const read = (file: string) =>
          Bun.spawnSync(["tcpdump", "-r", join(dir, file), "-n"], { stderr: "pipe" })
            .stdout.toString()
            .trim()
            .split("\n")
            .filter((line) => line !== "");
        const w0 = read("capture.w0.pcap");
        expect(w0).toHaveLength(10); // 5 received, 5 echoed
        expect(w0.filter((line) => line.includes(`127.0.0.1.${port}: UDP, length 3`))).toHaveLength(
          5,
        );
        expect(read("capture.w1.pcap")).toEqual([]); // its socket saw nothing
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );
});

describe("starting workers", () => {
  test("a module that never calls defineWorker is given up on with a clear error", async () => {
    const controller = track(new Controller({ maxWorkers: 1 }));
    const died: ControllerEvent[] = [];
    controller.on((e) => died.push(e));
    await expect(
      controller.addWorker({
        module: new URL("../worker/workers/not-a-worker.ts", import.meta.url),
        readyTimeoutMs: 500,
      }),
    ).rejects.toThrow("before starting a worker (does it call defineWorker?)");
    expect(died[0]).toMatchObject({ kind: "worker-died", worker: 0 });
  });

  test("a module of several workers: the export named runs; a name that is none of them fails addWorker, saying so", async () => {
    const controller = track(new Controller({ maxWorkers: 2 }));
    const module = new URL("../worker/workers/two-defs.ts", import.meta.url);
    expect(await controller.addWorker({ module, exportName: "second" })).toBe(0);
    await expect(controller.addWorker({ module, exportName: "nope" })).rejects.toThrow(
      `${module} defines several workers and its export "nope" is not one of them`,
    );
    expect(controller.stats().map((s) => s.state)).toEqual(["running", "dead"]);
  });

  test("a factory that throws fails addWorker with its error", async () => {
    const controller = track(new Controller({ maxWorkers: 1 }));
    await expect(
      controller.addWorker({
        module: new URL("../worker/workers/factory-throws.ts", import.meta.url),
      }),
    ).rejects.toThrow("bad config: no port");
    expect(controller.stats()[0]?.state).toBe("dead");
  });

  test("CPU pinning puts the worker on that CPU; a CPU that does not exist is refused", async () => {
    const controller = track(new Controller({ maxWorkers: 2 }));
    const log = new EventLog(controller);
    const last = navigator.hardwareConcurrency - 1;
    await controller.addWorker({ module: LAB, cpu: last });
    controller.sendTo(0, { op: "cpu" });
    expect((await log.message("cpu", (d) => "cpu" in d)).cpu).toBe(last);
    await expect(controller.addWorker({ module: LAB, cpu: 4096 })).rejects.toThrow(
      "cannot pin the thread to CPU 4096",
    );
  });

  test("more workers than the controller was made for is a clear error", async () => {
    const controller = track(new Controller({ maxWorkers: 1 }));
    await controller.addWorker({ module: LAB });
    await expect(controller.addWorker({ module: LAB })).rejects.toThrow("raise maxWorkers");
    expect(() => controller.sendTo(5, null)).toThrow(RangeError);
  });
});
