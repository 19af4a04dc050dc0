/**
 * Failure paths of the runtime (issue 11): an oversize message behind a busy ring, a worker that
 * ends without closing its sockets, a hung worker, a slow peer's queue, a runaway heap, and what
 * the stats and reports say about each.
 */
import { describe, expect, test } from "bun:test";
import { type ControllerEvent, openFileDescriptors, RecordTooLargeError } from "../../src/index.ts";
import { PROBES } from "../app/reports.ts";
import { lab, statsUntil } from "./lab.ts";
import type { EventLog } from "./log.ts";

type Died = Extract<ControllerEvent, { kind: "worker-died" }>;

/** True once the watchdog has reported worker `w` stalled (busy past `stallMs`). */
function stalled(log: EventLog, w: number): boolean {
  return log.events.some((e) => e.kind === "worker-stalled" && e.worker === w);
}

/**
 * Sends one datagram from each of `flows` fresh sockets (each its own source port, so
 * SO_REUSEPORT spreads them over the workers) and counts the echoes that come back.
 */
async function echoedFlows(port: number, flows: number): Promise<number> {
  let echoed = 0;
  const sockets = await Promise.all(
    Array.from({ length: flows }, () =>
      Bun.udpSocket({
        socket: {
          data() {
            echoed++;
          },
        },
      }),
    ),
  );
  for (const s of sockets) s.send(Uint8Array.of(1, 2, 3), port, "127.0.0.1");
  const deadline = Date.now() + 2000;
  while (echoed < flows && Date.now() < deadline) await Bun.sleep(10);
  for (const s of sockets) s.close();
  return echoed;
}

/** A free UDP port on 127.0.0.1 (bound and released). */
async function freePort(): Promise<number> {
  const s = await Bun.udpSocket({});
  const port = s.port;
  s.close();
  return port;
}

describe("an oversize bus message", () => {
  test("a worker's oversize report behind thousands of others is refused alone: none lost, none doubled, the worker lives", async () => {
    const { controller, log, send } = await lab(1);
    send(0, { op: "reports-then-big", count: 5000, bigBytes: 200_000 });
    await log.until(
      "10,000 reports",
      () => log.messages((d) => "report" in d).length >= 10_000,
      20_000,
    );
    const seq = log.messages((d) => "report" in d).map((d) => d.report);
    expect(seq).toEqual(Array.from({ length: 10_000 }, (_, i) => (i < 5000 ? i : i + 1)));
    await log.until("the refusal", () => log.events.some((e) => e.kind === "worker-error"));
    const error = log.events.find((e) => e.kind === "worker-error");
    expect(error).toMatchObject({ worker: 0, error: { name: "RecordTooLargeError" } });
    expect((error as { error: { message: string } }).error.message).toContain("raise ringBytes");
    send(0, { op: "ping" });
    await log.message("still serving", (d) => d.pong === 0);
    expect(controller.stats()[0]?.state).toBe("running");
    expect(await controller.shutdown()).toEqual({ stopped: [0], terminated: [], dead: [] });
  });

  test("controller.sendTo of an oversize message behind a busy ring throws; what was queued arrives once; shutdown settles", async () => {
    const { controller, log, send } = await lab(1, { controller: { ringBytes: 64 * 1024 } });
    // the worker is busy for a while once it takes this; until then nothing sent in this
    // synchronous run is released, so the ring to it fills and later sends queue
    send(0, { op: "busy", ms: 300 });
    const results = Array.from({ length: 40 }, (_, i) =>
      send(0, { op: "echo", n: i, pad: "x".repeat(4000) }),
    );
    expect(results).toContain("queued");
    expect(() => controller.sendTo(0, { big: "x".repeat(200_000) })).toThrow(RecordTooLargeError);
    for (let i = 40; i < 45; i++) send(0, { op: "echo", n: i });
    await log.until("45 answers", () => log.messages((d) => "echo" in d).length === 45);
    const ids = log.messages((d) => "echo" in d).map((d) => d.echo);
    expect(ids).toEqual(Array.from({ length: 45 }, (_, i) => i));
    expect(await controller.shutdown({ timeoutMs: 2000 })).toEqual({
      stopped: [0],
      terminated: [],
      dead: [],
    });
  });
});

describe("however a worker ends, what it opened is closed", () => {
  for (const backend of ["uring", "epoll"] as const) {
    test(`${backend}: a worker that calls process.exit() leaves no socket, ring or eventfd behind, and its port share goes to the others`, async () => {
      const before = settledFds();
      const port = await freePort();
      const { controller, log, send } = await lab(2, { worker: { backend } });
      send(0, { op: "listen", port });
      send(1, { op: "listen", port });
      await log.until("both listening", () => log.messages((d) => "listening" in d).length === 2);
      expect(await echoedFlows(port, 64)).toBe(64);
      for (let i = 0; i < 50; i++) send(1, { op: "ping" });
      await log.until("50 pongs", () => log.messages((d) => d.pong === 1).length === 50);
      send(1, { op: "exit", code: 0 });
      await log.until("death", () => log.events.some((e) => e.kind === "worker-died"));
      const died = log.events.find((e) => e.kind === "worker-died") as Died;
      expect(died).toMatchObject({ worker: 1, endedBy: "exit", exitCode: 0 });
      // its socket, and its io_uring (ring fd + eventfd) or its epoll fd and eventfd
      expect(died.released.fds).toBeGreaterThanOrEqual(3);
      expect(died.released).toMatchObject({ threadGone: true, socketsLingering: 0 });
      if (backend === "uring") expect(died.released.bytes).toBeGreaterThan(1024 * 1024);
      expect(controller.stats()[1]?.released).toEqual(died.released);
      // its counters are those of its last moment: the listen, 50 pings, the exit (and datagrams)
      expect(controller.stats()[1]?.eventsIn).toBeGreaterThanOrEqual(52);
      expect(controller.stats()[1]?.eventsOut).toBeGreaterThanOrEqual(51);
      // every flow is answered by the worker that is left: no socket of the dead one remains
      expect(await echoedFlows(port, 64)).toBe(64);
      await controller.shutdown();
      expect(openFileDescriptors()).toBe(before);
    });
  }

  test("a worker terminated at the shutdown time-out leaves nothing open and reports no exit code", async () => {
    const before = settledFds();
    const port = await freePort();
    const { controller, log, send } = await lab(2);
    send(1, { op: "listen", port });
    await log.message("listening", (d) => d.listening === 1);
    send(1, { op: "hang-on-shutdown" });
    const report = await controller.shutdown({ timeoutMs: 300 });
    expect(report).toEqual({ stopped: [0], terminated: [1], dead: [] });
    const died = log.events.find((e) => e.kind === "worker-died") as Died;
    expect(died).toMatchObject({
      worker: 1,
      endedBy: "terminated",
      exitCode: undefined,
      error: { name: "ShutdownTimeout" },
    });
    expect(died.released.fds).toBeGreaterThanOrEqual(3);
    expect(controller.stats()[1]).toMatchObject({ exitCode: undefined, endedBy: "terminated" });
    expect(openFileDescriptors()).toBe(before);
  });

  test("an uncaught error while the module loads is reported by its own message, not a source excerpt", async () => {
    const { controller, log } = await lab(0, { maxWorkers: 1 });
    await expect(
      controller.addWorker({
        module: new URL("../worker/workers/throws-at-load.ts", import.meta.url),
      }),
    ).rejects.toThrow("module failed to load: boom");
    const died = log.events.find((e) => e.kind === "worker-died") as Died;
    expect(died.error).toEqual({ name: "TypeError", message: "module failed to load: boom" });
    expect(died.endedBy).toBe("exception");
  });
});

const root = process.getuid?.() === 0;
const noNamespaces = !root ? "needs root" : Bun.which("unshare") === null ? "needs unshare" : "";
if (noNamespaces !== "" && process.env.CI === "true")
  throw new Error(`CI=true but the TUN ownership test ${noNamespaces}`);

describe("what a worker creates is its own", () => {
  test.skipIf(noNamespaces !== "")(
    "a TUN device a worker created goes away when the worker exits",
    () => {
      const script = `${import.meta.dir}/workers/tun-owner.ts`;
      const r = Bun.spawnSync(["unshare", "--net", process.execPath, script], {
        stderr: "pipe",
        timeout: 30_000,
      });
      expect(r.stderr.toString()).toBe("");
      const seen = JSON.parse(r.stdout.toString()) as {
        existed: boolean;
        gone: boolean;
        died: Died;
      };
      expect(seen.existed).toBe(true);
      expect(seen.gone).toBe(true);
      expect(seen.died).toMatchObject({ worker: 0, endedBy: "exit" });
      // the queue, and the worker's io_uring or epoll fds
      expect(seen.died.released.fds).toBeGreaterThanOrEqual(3);
    },
  );
});

describe("a hung worker", () => {
  test("is reported stalled with its counters as they were, routed around, and can be replaced", async () => {
    const before = settledFds();
    const port = await freePort();
    const { controller, log, send, spawn } = await lab(2, {
      maxWorkers: 3,
      controller: { stallMs: 300 },
    });
    send(1, { op: "listen", port });
    await log.message("listening", (d) => d.listening === 1);
    for (let i = 0; i < 200; i++) send(1, { op: "ping" });
    await log.until("200 pongs", () => log.messages((d) => d.pong === 1).length === 200);
    send(1, { op: "spin" });
    await log.until("stall", () => log.events.some((e) => e.kind === "worker-stalled"), 5000);
    const stalled = log.events.find((e) => e.kind === "worker-stalled");
    expect(stalled).toMatchObject({ worker: 1 });
    expect((stalled as { stalledForMs: number }).stalledForMs).toBeGreaterThanOrEqual(300);
    const s = controller.stats()[1];
    expect(s?.state).toBe("stalled");
    expect(s?.stalledForMs).toBeGreaterThanOrEqual(300);
    expect(s?.eventsIn).toBeGreaterThanOrEqual(202); // the listen, 200 pings, the spin
    expect(s?.loops).toBeGreaterThan(0);
    // nothing more is routed to it
    expect(send(1, { op: "ping" })).toBe("stalled");
    expect([spawn({ id: "a" }), spawn({ id: "b" }), spawn({ id: "c" })]).toEqual([0, 0, 0]);
    expect(controller.stats()[0]?.state).toBe("running");
    // the application replaces it; the report says it was terminated, and its socket is closed
    const replacement = await controller.replace(1, "replaced after a stall");
    expect(replacement).toBe(2);
    const died = log.events.find((e) => e.kind === "worker-died") as Died;
    expect(died).toMatchObject({
      worker: 1,
      endedBy: "terminated",
      exitCode: undefined,
      error: { name: "WorkerTerminated", message: "replaced after a stall" },
    });
    expect(died.released.fds).toBeGreaterThanOrEqual(3);
    send(2, { op: "ping" });
    await log.message("the replacement answers", (d) => d.pong === 2);
    await controller.shutdown();
    expect(openFileDescriptors()).toBe(before);
  });

  test("a worker busy for a while is reported stalled, then recovered, and is routed to again", async () => {
    const { controller, log, send } = await lab(2, { controller: { stallMs: 200 } });
    send(1, { op: "busy", ms: 800 });
    await log.until("stall", () => log.events.some((e) => e.kind === "worker-stalled"));
    await log.until("recovery", () => log.events.some((e) => e.kind === "worker-recovered"));
    expect(controller.stats()[1]?.state).toBe("running");
    expect(send(1, { op: "ping" })).toBe("sent");
    await log.message("pong", (d) => d.pong === 1);
  });

  test("an idle worker is never reported stalled, however long it sleeps", async () => {
    const { log } = await lab(1, {
      controller: { stallMs: 100 },
      worker: { tickMs: 0, statsMs: 600 },
    });
    await Bun.sleep(1500);
    expect(log.events.filter((e) => e.kind === "worker-stalled")).toEqual([]);
  });
});

describe("queues toward a slow peer", () => {
  test("a worker publishing to a hung subscriber is capped: refused sends are counted and reported, queued bytes show per destination", async () => {
    const cap = 64 * 1024;
    const { controller, log, send } = await lab(2, {
      controller: { ringBytes: 16 * 1024, maxQueuedBytes: cap, stallMs: 100 },
    });
    send(0, { op: "subscribe", channel: 5 });
    // worker 1 learns of worker 0's subscription before worker 0 hangs
    await statsUntil(controller, "subscription", () => {
      send(1, { op: "publish", channel: 5, text: "hello" });
      return log.messages((d) => d.heard === "hello").length > 0;
    });
    send(0, { op: "spin" });
    await log.until("worker 0 hangs", () => stalled(log, 0));
    send(1, { op: "publish-many", channel: 5, count: 2000, size: 1000 });
    await log.message("published", (d) => d.published === 2000);
    const s = await statsUntil(controller, "capped sends", (x) => (x[1]?.busCapped ?? 0) > 0);
    const w1 = s[1];
    expect(w1?.busQueuedTo[0]).toBeGreaterThan(cap / 2);
    expect(w1?.busQueuedTo[0]).toBeLessThanOrEqual(cap);
    // the total counts what waits for the controller too (the refusal reports, on a small ring)
    expect(w1?.busQueuedBytes).toBe((w1?.busQueuedTo[0] ?? 0) + (w1?.busQueuedToController ?? 0));
    // about 16 KiB in the ring and 64 KiB queued: most of the 2,000 were refused
    expect(w1?.busCapped).toBeGreaterThan(1800);
    await log.until("report", () =>
      log.events.some((e) => e.kind === "worker-error" && e.error.name === "BusQueueCapped"),
    );
    await controller.terminate(0);
    // the dead worker's queue is dropped on worker 1, and its stats say so
    await statsUntil(controller, "queue dropped", (x) => x[1]?.busQueuedBytes === 0);
  });
});

describe("a runaway heap", () => {
  test("a worker past its maxHeapMb ends itself with the reason; the others keep serving", async () => {
    const { controller, log, send } = await lab(2, { worker: { maxHeapMb: 192 } });
    send(1, { op: "hog", mb: 16 });
    await log.until("death", () => log.events.some((e) => e.kind === "worker-died"), 20_000);
    const died = log.events.find((e) => e.kind === "worker-died") as Died;
    expect(died).toMatchObject({ worker: 1, endedBy: "exception", exitCode: 1 });
    expect(died.error.name).toBe("HeapLimitError");
    expect(died.error.message).toMatch(/past this worker's limit of 192 MiB/);
    expect(controller.stats()[1]?.heapBytes).toBeGreaterThan(192 * 2 ** 20);
    send(0, { op: "ping" });
    await log.message("worker 0 answers", (d) => d.pong === 0);
    expect(controller.stats()[0]?.heapBytes).toBeGreaterThan(0);
    expect(controller.stats()[0]?.heapBytes).toBeLessThan(192 * 2 ** 20);
  });
});

describe("error reports", () => {
  test("on a bus too small for a report's stack, the report still arrives, without the stack", async () => {
    const { controller, log } = await lab(1, {
      controller: { ringBytes: 1024 },
      worker: { module: PROBES },
    });
    const bad = await controller.spawnTask("probe");
    controller.sendToTask(bad, { op: "throw" });
    await log.until("task error", () => log.events.some((e) => e.kind === "task-error"));
    const report = log.events.find((e) => e.kind === "task-error") as {
      error: { name: string; message: string; stack?: string };
    };
    expect(report.error).toEqual({ name: "Error", message: `probe ${bad} was told to throw` });
    expect(controller.stats()[0]?.state).toBe("running");
  });
});

describe("stats that tell the truth", () => {
  test("datagrams the kernel dropped while the worker was busy show in its stats", async () => {
    const port = await freePort();
    const { controller, log, send } = await lab(1, { controller: { stallMs: 100 } });
    send(0, { op: "listen", port });
    await log.message("listening", (d) => d.listening === 0);
    expect(controller.stats()[0]?.kernelDrops).toBe(0);
    send(0, { op: "busy", ms: 1000 });
    // once the worker is seen busy, its socket's receive queue fills, then overflows
    await log.until("worker 0 busy", () => stalled(log, 0));
    const flood = await Bun.udpSocket({});
    for (let i = 0; i < 5000; i++) flood.send(new Uint8Array(1000), port, "127.0.0.1");
    flood.close();
    await statsUntil(controller, "kernel drops", (x) => (x[0]?.kernelDrops ?? 0) > 0);
  });
});

/**
 * Open fds once what earlier tests left for the collector to close (pipes of spawned processes,
 * closed sockets) is closed, so that a count taken before a test compares with one after it.
 */
function settledFds(): number {
  Bun.gc(true);
  return openFileDescriptors();
}
