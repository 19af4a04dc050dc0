/**
 * TCP echo servers side by side, each in its own process pinned to CPU 0, driven by a C
 * closed-loop load generator pinned to CPU 1 (bench/ref/tcp_load.c: 50 connections, each writing
 * a request and reading the whole echo back before the next), at 64 B and 16 KiB:
 *   - the runtime: examples/tcp-echo-server.ts (controller + one worker) on io_uring (`runtime`)
 *     and on epoll (`runtime-epoll`),
 *   - Bun.listen and node:net under Bun (bench/servers/tcp-echo.ts),
 *   - a single-threaded C epoll echo (bench/ref/tcp_echo.c) as the CPU reference.
 * Prints requests/s, server CPU ns per request (from /proc/PID/stat, every thread), p50/p99
 * latency from the load generator, errors and corrupt responses, with ratios, the spread of the
 * rounds' requests/s ((max - min) / median: this VM's speed drifts), and how busy the
 * server's and the generator's CPUs were (a side near 100% was the limit on requests/s; on
 * loopback the sender's CPU also does much of the receiver's TCP work). Medians of several
 * rounds; each round starts every server afresh, in turn, so drift in the machine hits them alike.
 *
 *   bun bench/tcp-echo.ts [--quick]
 *   SERVERS=c-epoll,bun-listen,node-net bun bench/tcp-echo.ts    (a subset; ratios need c-epoll
 *                                                                  and bun-listen)
 *
 * Targets (64 B): the runtime >= 1.3x Bun.listen in requests/s, and its server CPU per request
 * <= 1.0x the C epoll echo's. A server that is missing or fails to start is reported and skipped.
 */
import { join } from "node:path";
import { stop } from "./lib/children.ts";
import { buildRef } from "./lib/ref-build.ts";
import { finish, fmt, quick, type Result } from "./lib/report.ts";
import {
  medianTcpRun,
  selectedServers,
  serverCommand,
  startServer,
  TCP_SERVERS,
  type TcpRun,
  type TcpServer,
  tcpLoadRun,
  unavailable,
} from "./lib/tcp-servers.ts";

const buildDir = buildRef(["tcp_echo", "tcp_load"]);
const SERVERS = selectedServers(TCP_SERVERS);
const SIZES = [64, 16384] as const;
const CONNECTIONS = 50;
const seconds = quick ? 1 : 3;
const runs = quick ? 1 : 5;
/**
 * Load before the first measured size of each server start: a JIT-compiled server needs seconds
 * of load before JavaScriptCore has tiered its hot path up to the optimising compilers (the
 * runtime's hot path is deeper than Bun.listen's callback, so it needs longer), and a long-running
 * server lives in that steady state. The same for every server; later sizes get 1 s.
 */
const warmUp = quick ? 1 : 4;

/** Starts `server` on CPU 0 and measures it at every size, one after the other. */
async function measure(server: TcpServer): Promise<TcpRun[]> {
  const { proc, port } = await startServer(server, [
    ...["taskset", "-c", "0"],
    ...serverCommand(server, buildDir),
  ]);
  try {
    const out: TcpRun[] = [];
    for (const [i, size] of SIZES.entries()) {
      const load = (secs: number) => [
        ...["taskset", "-c", "1", join(buildDir, "tcp_load")],
        ...[String(port), String(secs), String(size), String(CONNECTIONS)],
      ];
      out.push(await tcpLoadRun(proc.pid, seconds, load, i === 0 ? warmUp : 1));
    }
    return out;
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
  `tcp-echo bench: server on CPU 0, C load generator on CPU 1, ${CONNECTIONS} connections closed-loop, ${seconds}s x ${runs} interleaved rounds (medians), after ${warmUp}s of warm-up load`,
);
const all = new Map<TcpServer, TcpRun[][]>(SERVERS.map((s) => [s, SIZES.map(() => [])]));
for (let r = 0; r < runs; r++) {
  for (const server of SERVERS) {
    if (failed.has(server)) continue;
    try {
      const bySize = await measure(server);
      bySize.forEach((run, i) => {
        all.get(server)?.[i]?.push(run);
      });
    } catch (error) {
      failed.set(server, error instanceof Error ? error.message : String(error));
    }
  }
}
for (const [server, why] of failed) console.log(`${server}: skipped: ${why}`);

const results: Result[] = [];
const ratios: Record<string, number> = {};
const none: TcpRun = {
  rps: Number.NaN,
  cpuPerRequest: Number.NaN,
  p50Us: Number.NaN,
  p99Us: Number.NaN,
  errors: 0,
  corrupt: 0,
  serverBusy: Number.NaN,
  loadBusy: Number.NaN,
};
const measured = SERVERS.filter((s) => !failed.has(s));
SIZES.forEach((size, i) => {
  const medians = new Map<TcpServer, TcpRun>(
    measured.map((s) => [s, medianTcpRun(all.get(s)?.[i] ?? [])]),
  );
  const ref = medians.get("c-epoll") ?? none;
  const bun = medians.get("bun-listen") ?? none;
  const label = size >= 1024 ? `${size / 1024} KiB` : `${size} B`;
  console.log(
    `\n${label.padEnd(14)} requests/s  spread  cpu ns/req  p50 us  p99 us  vs Bun.listen  cpu vs C  srv/load busy  errors  corrupt`,
  );
  for (const server of measured) {
    const m = medians.get(server) ?? none;
    // how far apart the rounds were: (max - min) / median requests/s
    const rpsList = (all.get(server)?.[i] ?? []).map((run) => run.rps);
    const spread = (Math.max(...rpsList) - Math.min(...rpsList)) / m.rps;
    console.log(
      `${server.padEnd(14)} ${fmt(m.rps, 0).padStart(10)} ${`${fmt(spread * 100, 0)}%`.padStart(7)} ${fmt(m.cpuPerRequest, 0).padStart(11)} ${fmt(m.p50Us, 0).padStart(7)} ${fmt(m.p99Us, 0).padStart(7)} ${fmt(m.rps / bun.rps, 2).padStart(13)}x ${fmt(m.cpuPerRequest / ref.cpuPerRequest, 2).padStart(8)}x ${`${fmt(m.serverBusy * 100, 0)}%/${fmt(m.loadBusy * 100, 0)}%`.padStart(14)} ${String(m.errors).padStart(7)} ${String(m.corrupt).padStart(8)}`,
    );
    results.push(
      { name: `${server} ${label}`, value: m.rps, unit: "requests/s" },
      { name: `${server} ${label} cpu`, value: m.cpuPerRequest, unit: "server cpu ns/request" },
      { name: `${server} ${label} p50`, value: m.p50Us, unit: "us" },
      { name: `${server} ${label} p99`, value: m.p99Us, unit: "us" },
      { name: `${server} ${label} spread`, value: spread, unit: "(max-min)/median requests/s" },
      { name: `${server} ${label} errors`, value: m.errors, unit: "connections" },
      { name: `${server} ${label} corrupt`, value: m.corrupt, unit: "responses" },
    );
    if (server !== "bun-listen" && medians.has("bun-listen"))
      ratios[`${server} / Bun.listen rps ${label}`] = m.rps / bun.rps;
    if (server !== "c-epoll" && medians.has("c-epoll"))
      ratios[`${server} / C epoll cpu per request ${label}`] = m.cpuPerRequest / ref.cpuPerRequest;
  }
});
const rps64 = ratios["runtime / Bun.listen rps 64 B"];
const cpu64 = ratios["runtime / C epoll cpu per request 64 B"];
const verdict = (v: number | undefined, ok: (v: number) => boolean) =>
  v === undefined ? "not measured" : `${fmt(v, 2)}x ${ok(v) ? "met" : "NOT met"}`;
console.log(
  `\ntargets (64 B): runtime >= 1.3x Bun.listen requests/s: ${verdict(rps64, (v) => v >= 1.3)}; runtime cpu/request <= 1.0x C epoll: ${verdict(cpu64, (v) => v <= 1.0)}`,
);
finish("tcp-echo", results, ratios);
