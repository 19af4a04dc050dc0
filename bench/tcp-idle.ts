/**
 * Memory per idle TCP connection: each server in turn (in its own process on CPU 0, with a
 * 20,000-fd limit through prlimit) is held 10,000 idle connections by bench/ref/tcp_idle.c (on
 * CPU 1), and its resident memory (VmRSS: every thread, user space only; the kernel's socket
 * memory is not in it) is read before and after:
 *   1. start the server, let it settle for a second, read RSS and open fds,
 *   2. tcp_idle opens the connections and prints "connected 10000"; wait until the server has
 *      accepted them all (the listening socket's accept queue in /proc/net/tcp is empty) and one
 *      more second, read RSS and fds again,
 *   3. tcp_idle exits by itself after holding them for a few seconds; a second later RSS is read
 *      once more (what was kept after the connections closed, for information).
 * Reports (RSS delta) / 10,000 in bytes per connection, with ratios to Bun.listen (the C epoll
 * echo, which keeps 32 B per connection, is the floor), the median of several rounds (one with
 * --quick, which also leaves node:net out unless SERVERS names it).
 *
 *   bun bench/tcp-idle.ts [--quick]
 *   SERVERS=runtime,bun-listen bun bench/tcp-idle.ts     (a subset)
 *
 * Target: the runtime (io_uring) <= 2 KiB per idle connection. A server that is missing or fails
 * is reported and skipped.
 */
import { join } from "node:path";
import { stop, track, within } from "./lib/children.ts";
import { LineReader } from "./lib/lines.ts";
import { buildRef } from "./lib/ref-build.ts";
import { finish, fmt, quick, type Result } from "./lib/report.ts";
import { processFds, processRssKiB } from "./lib/server-run.ts";
import {
  acceptQueue,
  selectedServers,
  serverCommand,
  startServer,
  TCP_SERVERS,
  type TcpServer,
  unavailable,
} from "./lib/tcp-servers.ts";

const buildDir = buildRef(["tcp_echo", "tcp_idle"]);
// --quick leaves out node:net (slow to accept 10,000 connections) to stay under 30 s
const SERVERS = selectedServers(quick ? TCP_SERVERS.filter((s) => s !== "node-net") : TCP_SERVERS);
const COUNT = 10_000;
// tcp_idle's hold after connecting: enough for the accept wait, the settle and the read
const HOLD_SECONDS = quick ? 3 : 4;
const AFTER_CLOSE_MS = quick ? 500 : 1000;
const runs = quick ? 1 : 3;

/** One server's memory with and without the idle connections. */
interface IdleRun {
  /** RSS growth per connection, in bytes. */
  bytesPerConnection: number;
  /** RSS (KiB) before, while holding them, and after they closed. */
  rssBefore: number;
  rssHeld: number;
  rssAfter: number;
  /** Open fds gained while holding them (less than COUNT if the server keeps them elsewhere). */
  fdsGained: number;
  /** Seconds from starting tcp_idle until the server had accepted every connection. */
  acceptSeconds: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function measure(server: TcpServer): Promise<IdleRun> {
  const { proc, port } = await startServer(server, [
    ...["prlimit", `--nofile=${COUNT * 2}:${COUNT * 2}`],
    ...["taskset", "-c", "0"],
    ...serverCommand(server, buildDir),
  ]);
  try {
    await sleep(1000);
    const rssBefore = processRssKiB(proc.pid);
    const fdsBefore = processFds(proc.pid);
    const t0 = Bun.nanoseconds();
    const idle = track(
      Bun.spawn(
        [
          ...["taskset", "-c", "1", join(buildDir, "tcp_idle")],
          ...[String(port), String(COUNT), String(HOLD_SECONDS)],
        ],
        { stdout: "pipe", stderr: "inherit" },
      ),
    );
    try {
      const line = await within(
        new LineReader(idle.stdout).until("connected"),
        40_000,
        "tcp_idle connecting",
      );
      if (line === undefined) throw new Error(`tcp_idle failed (exit ${await idle.exited})`);
      const deadline = Date.now() + 10_000;
      while (acceptQueue(port) > 0) {
        if (Date.now() > deadline) throw new Error(`${server} did not accept every connection`);
        await sleep(20);
      }
      const acceptSeconds = (Bun.nanoseconds() - t0) / 1e9;
      await sleep(1000);
      const rssHeld = processRssKiB(proc.pid);
      const fdsGained = processFds(proc.pid) - fdsBefore;
      if (idle.exitCode !== null) throw new Error("tcp_idle exited before the measurement");
      const code = await within(idle.exited, (HOLD_SECONDS + 5) * 1000, "tcp_idle holding");
      if (code !== 0) throw new Error(`tcp_idle exited with ${code}`);
      await sleep(AFTER_CLOSE_MS);
      if (proc.exitCode !== null) throw new Error(`${server} exited (${proc.exitCode})`);
      return {
        bytesPerConnection: ((rssHeld - rssBefore) * 1024) / COUNT,
        rssBefore,
        rssHeld,
        rssAfter: processRssKiB(proc.pid),
        fdsGained,
        acceptSeconds,
      };
    } finally {
      await stop(idle, 1000, "SIGTERM");
    }
  } finally {
    await stop(proc, 2000, "SIGTERM");
  }
}

const failed = new Map<TcpServer, string>();
for (const server of SERVERS) {
  const why = unavailable(server);
  if (why !== undefined) failed.set(server, why);
}
console.log(
  `tcp-idle bench: server on CPU 0, ${fmt(COUNT, 0)} idle connections from CPU 1, ${runs} round(s) (medians)`,
);
const all = new Map<TcpServer, IdleRun[]>(SERVERS.map((s) => [s, []]));
for (let r = 0; r < runs; r++) {
  for (const server of SERVERS) {
    if (failed.has(server)) continue;
    try {
      all.get(server)?.push(await measure(server));
    } catch (error) {
      failed.set(server, error instanceof Error ? error.message : String(error));
    }
  }
}
for (const [server, why] of failed) console.log(`${server}: skipped: ${why}`);

/** The run with the median bytes per connection. */
function median(list: readonly IdleRun[]): IdleRun | undefined {
  const sorted = [...list].sort((a, b) => a.bytesPerConnection - b.bytesPerConnection);
  return sorted[Math.floor(sorted.length / 2)];
}

const medians = new Map<TcpServer, IdleRun>();
for (const server of SERVERS) {
  const m = failed.has(server) ? undefined : median(all.get(server) ?? []);
  if (m !== undefined) medians.set(server, m);
}
const results: Result[] = [];
const ratios: Record<string, number> = {};
const bun = medians.get("bun-listen")?.bytesPerConnection;
console.log(
  "\nserver         B/conn  RSS before KiB  held KiB  after close KiB  fds gained  accepted in s  vs Bun.listen",
);
for (const [server, m] of medians) {
  console.log(
    `${server.padEnd(14)} ${fmt(m.bytesPerConnection, 0).padStart(6)} ${fmt(m.rssBefore, 0).padStart(15)} ${fmt(m.rssHeld, 0).padStart(9)} ${fmt(m.rssAfter, 0).padStart(16)} ${String(m.fdsGained).padStart(11)} ${fmt(m.acceptSeconds, 2).padStart(14)} ${bun === undefined ? "-" : `${fmt(m.bytesPerConnection / bun, 2)}x`.padStart(14)}`,
  );
  results.push(
    {
      name: `${server} idle connection`,
      value: m.bytesPerConnection,
      unit: "RSS bytes/connection",
    },
    { name: `${server} RSS before`, value: m.rssBefore, unit: "KiB" },
    { name: `${server} RSS with ${COUNT} idle`, value: m.rssHeld, unit: "KiB" },
    { name: `${server} RSS after close`, value: m.rssAfter, unit: "KiB" },
    { name: `${server} fds gained`, value: m.fdsGained, unit: "fds" },
  );
  if (server !== "bun-listen" && bun !== undefined)
    ratios[`${server} / Bun.listen bytes per idle connection`] = m.bytesPerConnection / bun;
}
const rt = medians.get("runtime")?.bytesPerConnection;
console.log(
  `\ntarget: runtime <= 2 KiB (2,048 B) RSS per idle connection: ${rt === undefined ? "not measured" : `${fmt(rt, 0)} B ${rt <= 2048 ? "met" : "NOT met"}`}`,
);
finish("tcp-idle", results, ratios);
