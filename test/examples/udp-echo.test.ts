import { afterEach, describe, expect, test } from "bun:test";
import { createSocket, type Socket } from "node:dgram";
import type { EchoReport } from "../../examples/udp-echo-worker.ts";
import { Controller, openFileDescriptors } from "../../src/index.ts";
import { KINDS } from "../backend/harness.ts";
import { EventLog } from "../controller/log.ts";

const ROOT = `${import.meta.dir}/../..`;
const ECHO = new URL("../../examples/udp-echo-worker.ts", import.meta.url);
const started: { kill: (signal?: number | NodeJS.Signals) => void }[] = [];
const sockets: Socket[] = [];

afterEach(() => {
  for (const p of started.splice(0)) p.kill("SIGKILL");
  for (const s of sockets.splice(0)) s.close();
});

/** Opens `n` client sockets on 127.0.0.1 (each its own source port). */
async function clients(n: number): Promise<Socket[]> {
  const out = await Promise.all(
    Array.from({ length: n }, async () => {
      const s = createSocket("udp4");
      await new Promise<void>((resolve) => s.bind(0, "127.0.0.1", resolve));
      return s;
    }),
  );
  sockets.push(...out);
  return out;
}

/** A payload that says which client and sequence number it is, filled with a checkable pattern. */
function payload(client: number, seq: number, size: number): Uint8Array {
  const p = new Uint8Array(size);
  new DataView(p.buffer).setUint32(0, client, true);
  new DataView(p.buffer).setUint32(4, seq, true);
  for (let i = 8; i < size; i++) p[i] = (client * 7 + seq * 13 + i) & 0xff;
  return p;
}

describe.each(KINDS)("UDP echo through the controller (%s)", (backend) => {
  test("2 workers share a port with SO_REUSEPORT; every datagram comes back intact", async () => {
    const fds = openFileDescriptors();
    const controller = new Controller({ maxWorkers: 2 });
    const log = new EventLog(controller);
    const listening = (w: number) =>
      log.message<EchoReport & { event: "listening" }>(
        `worker ${w} listening`,
        (d) => d.event === "listening",
      );
    try {
      await controller.addWorker({
        module: ECHO,
        config: { host: "127.0.0.1", port: 0 },
        backend,
        tickMs: 50,
      });
      const { port } = await listening(0);
      await controller.addWorker({
        module: ECHO,
        config: { host: "127.0.0.1", port },
        backend,
        tickMs: 50,
      });
      await log.until("worker 1 listening", () =>
        log.events.some((e) => e.kind === "message" && e.worker === 1),
      );
      expect(controller.stats().map((s) => s.backend)).toEqual([backend, backend]);

      // 32 clients, 4 datagrams in flight each, 100 rounds: 12,800 datagrams of 3 sizes
      const cs = await clients(32);
      const want = new Map<string, Uint8Array>();
      const bad: string[] = [];
      let got = 0;
      cs.forEach((s, c) => {
        s.on("message", (msg) => {
          const seq = msg.readUInt32LE(4);
          const key = `${c}/${seq}`;
          const expected = want.get(key);
          if (expected === undefined || !Buffer.from(expected).equals(msg)) bad.push(key);
          want.delete(key);
          got++;
        });
      });
      const sizes = [1, 64, 1400];
      let seq = 0;
      for (let round = 0; round < 100; round++) {
        const before = got;
        for (let k = 0; k < 4; k++, seq++) {
          cs.forEach((s, c) => {
            const size = Math.max(8, sizes[(c + seq) % sizes.length] as number);
            const p = payload(c, seq, size);
            want.set(`${c}/${seq}`, p);
            s.send(p, port, "127.0.0.1");
          });
        }
        await log.until(`round ${round}`, () => got === before + 4 * cs.length);
      }
      expect(bad).toEqual([]);
      expect(want.size).toBe(0);
      expect(got).toBe(12_800);
      // both workers served part of the load: the kernel spreads the 32 source ports over them
      const echoedBy = (w: number): number =>
        Math.max(
          0,
          ...log.events.flatMap((e) =>
            e.kind === "message" && e.worker === w && (e.data as EchoReport).event === "counters"
              ? [(e.data as { echoed: number }).echoed]
              : [],
          ),
        );
      await log.until("counters adding up", () => echoedBy(0) + echoedBy(1) === 12_800);
      expect(echoedBy(0)).toBeGreaterThan(0);
      expect(echoedBy(1)).toBeGreaterThan(0);
    } finally {
      const report = await controller.shutdown();
      expect(report.stopped).toEqual([0, 1]);
    }
    for (const s of sockets.splice(0)) s.close();
    expect(openFileDescriptors()).toBe(fds);
  });
});

test("receive-buffer exhaustion shows in the controller's stats, and the worker recovers", async () => {
  const controller = new Controller({ maxWorkers: 1 });
  const log = new EventLog(controller);
  try {
    await controller.addWorker({
      module: ECHO,
      config: { host: "127.0.0.1", port: 0 },
      backend: "uring",
      recvBuffers: 16,
      statsMs: 50,
    });
    const { port } = await log.message<{ port: number }>("listening", (d) => "port" in d);
    const [s] = await clients(1);
    if (s === undefined) throw new Error("no socket");
    let echoes = 0;
    let markers = 0;
    s.on("message", (msg) => (msg.length === 1401 ? markers++ : echoes++));
    // room for 16 datagrams of 2 kB (about 20 of 1,400 bytes when packed), each held by its echo
    // until the send completes: a burst runs them out
    for (let i = 0; i < 3000; i++) s.send(new Uint8Array(1400), port, "127.0.0.1");
    const deadline = Date.now() + 10_000;
    while ((controller.stats()[0]?.bufferExhaustion ?? 0) === 0 && Date.now() < deadline) {
      await Bun.sleep(10);
    }
    expect(controller.stats()[0]?.bufferExhaustion).toBeGreaterThan(0);
    expect(echoes).toBeGreaterThan(0);
    // the receive is re-armed: once the burst has drained (each datagram echoed by the worker or
    // dropped by the kernel at its socket), one datagram sent after it is echoed
    const echoed = (): number =>
      Math.max(
        0,
        ...log.messages<EchoReport>().map((d) => (d.event === "counters" ? d.echoed : 0)),
      );
    await log.until(
      "the burst drained",
      () => echoed() + (controller.stats()[0]?.kernelDrops ?? 0) === 3000,
    );
    s.send(new Uint8Array(1401), port, "127.0.0.1");
    await log.until("an echo after the burst", () => markers === 1);
  } finally {
    await controller.shutdown();
  }
});

/** Starts a program from examples/ and returns it with a line reader over its stdout. */
function run(args: string[]) {
  const proc = Bun.spawn([process.execPath, ...args], {
    cwd: ROOT,
    stdout: "pipe",
    stderr: "pipe",
  });
  started.push(proc);
  const lines: string[] = [];
  const done = (async () => {
    let pending = "";
    for await (const chunk of proc.stdout.pipeThrough(new TextDecoderStream())) {
      pending += chunk;
      const parts = pending.split("\n");
      pending = parts.pop() ?? "";
      lines.push(...parts);
    }
    if (pending !== "") lines.push(pending);
  })();
  const stderr = new Response(proc.stderr).text();
  const waitFor = async (pattern: RegExp): Promise<RegExpExecArray> => {
    const deadline = Date.now() + 15_000;
    for (;;) {
      for (const line of lines) {
        const m = pattern.exec(line);
        if (m) return m;
      }
      if (Date.now() > deadline || proc.exitCode !== null) {
        throw new Error(
          `no line matching ${pattern}; stdout: ${lines.join("\n")}; stderr: ${await stderr}`,
        );
      }
      await Bun.sleep(10);
    }
  };
  return { proc, lines, done, stderr, waitFor };
}

describe("the echo programs", () => {
  test("server and client: listening line, stats, intact echoes, clean exit on SIGTERM", async () => {
    const server = run(["examples/udp-echo-server.ts", "--port", "0", "--workers", "2"]);
    const m = await server.waitFor(
      /^listening 127\.0\.0\.1:(\d+) \(2 workers, (uring|epoll) backend\)$/,
    );
    const client = run(["examples/udp-echo-client.ts", "--port", String(m[1]), "--seconds", "1.5"]);
    expect(await client.proc.exited).toBe(0);
    await client.done;
    const out = client.lines.join("\n");
    expect(out).toMatch(/sent (\d+), echoed intact \1, lost 0 \(0\.000%\), late 0, corrupt 0/);
    expect(out).toMatch(/throughput \d+ packets\/s, latency p50 \d+ µs, p99 \d+ µs/);
    expect(out).toContain("result: ok");
    await server.waitFor(/^stats: \d+ events\/s \| w0 running .* \| w1 running/);
    server.proc.kill("SIGTERM");
    expect(await server.proc.exited).toBe(0);
    await server.done;
    const sent = Number(/sent (\d+)/.exec(out)?.[1]);
    expect(server.lines.at(-1)).toBe(
      `stopped: ${sent} datagrams echoed, 0 too large dropped; workers stopped [0,1], terminated [], dead []`,
    );
  }, 30_000);

  test("datagrams larger than --max-size are dropped and counted, never echoed cut short", async () => {
    const server = run([
      "examples/udp-echo-server.ts",
      "--port",
      "0",
      "--max-size",
      "200",
      "--quiet",
    ]);
    const port = Number((await server.waitFor(/^listening .*:(\d+) /))[1]);
    const [s] = await clients(1);
    if (s === undefined) throw new Error("no socket");
    const echoes: number[] = [];
    s.on("message", (msg) => echoes.push(msg.length));
    s.send(new Uint8Array(1000), port, "127.0.0.1");
    s.send(new Uint8Array(200), port, "127.0.0.1");
    const deadline = Date.now() + 5000;
    while (echoes.length === 0 && Date.now() < deadline) await Bun.sleep(10);
    // the 1000-byte datagram was sent first on the same socket: it was dropped before 200 came back
    expect(echoes).toEqual([200]);
    server.proc.kill("SIGINT");
    expect(await server.proc.exited).toBe(0);
    await server.done;
    expect(server.lines.at(-1)).toStartWith("stopped: 1 datagrams echoed, 1 too large dropped;");
  });

  test("a port already taken, or bad arguments, give a readable error and a failing exit code", async () => {
    const [holder] = await clients(1);
    const port = holder?.address().port ?? 0;
    const taken = run(["examples/udp-echo-server.ts", "--port", String(port)]);
    expect(await taken.proc.exited).toBe(1);
    expect(await taken.stderr).toContain(`cannot listen on 127.0.0.1:${port}: EADDRINUSE`);
    const bad = run(["examples/udp-echo-server.ts", "--port", "70000"]);
    expect(await bad.proc.exited).toBe(2);
    expect(await bad.stderr).toContain("--port must be 0..65535, got 70000");
    const noPort = run(["examples/udp-echo-client.ts"]);
    expect(await noPort.proc.exited).toBe(2);
    expect(await noPort.stderr).toContain("--port is required");
  });
});
