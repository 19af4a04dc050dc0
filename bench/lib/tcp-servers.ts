/**
 * Shared by bench/tcp-echo.ts and bench/tcp-idle.ts: the TCP echo servers compared (the runtime
 * on each backend, Bun.listen, node:net, and the C epoll reference), starting one in its own
 * process and learning its port, one closed-loop run of the C load generator against it, and the
 * kernel's view of a listening socket's accept queue.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { type Child, stop, track, within } from "./children.ts";
import { LineReader } from "./lines.ts";
import { processCpuNs } from "./server-run.ts";

/** Every TCP echo server the benchmarks know, in the order they run. */
export const TCP_SERVERS = [
  "c-epoll",
  "runtime",
  "runtime-epoll",
  "bun-listen",
  "node-net",
] as const;

/** One of {@link TCP_SERVERS}. */
export type TcpServer = (typeof TCP_SERVERS)[number];

/**
 * The servers named in the SERVERS environment variable (comma-separated), or `fallback` when it
 * is unset; unknown names are refused.
 */
export function selectedServers(fallback: readonly TcpServer[]): TcpServer[] {
  const env = process.env.SERVERS;
  if (env === undefined || env === "") return [...fallback];
  const names = env.split(",").map((s) => s.trim());
  for (const name of names) {
    if (!TCP_SERVERS.some((s) => s === name))
      throw new Error(`SERVERS: unknown server ${name} (known: ${TCP_SERVERS.join(", ")})`);
  }
  return TCP_SERVERS.filter((s) => names.includes(s));
}

const benchDir = join(import.meta.dir, "..");
/** The runtime's TCP echo example, which the `runtime` and `runtime-epoll` servers run. */
export const runtimeExample: string = join(benchDir, "..", "examples", "tcp-echo-server.ts");

/**
 * Why `server` cannot run here (its program is missing), or `undefined` if it can. Only the
 * runtime's servers can be missing: their example is written separately from these benchmarks.
 */
export function unavailable(server: TcpServer): string | undefined {
  if ((server === "runtime" || server === "runtime-epoll") && !existsSync(runtimeExample))
    return "examples/tcp-echo-server.ts does not exist";
  return undefined;
}

/** The command line of `server` listening on a port the system picks (no CPU pinning). */
export function serverCommand(server: TcpServer, buildDir: string): string[] {
  if (server === "c-epoll") return [join(buildDir, "tcp_echo"), "0"];
  if (server === "runtime" || server === "runtime-epoll") {
    const backend = server === "runtime" ? "uring" : "epoll";
    return [
      process.execPath,
      runtimeExample,
      ...["--port", "0", "--workers", "1", "--backend", backend, "--quiet"],
    ];
  }
  return [process.execPath, join(benchDir, "servers", "tcp-echo.ts"), server, "0"];
}

/** A started server: its process (tracked, stopped on exit) and the port it listens on. */
export interface Started {
  proc: Child;
  port: number;
}

/**
 * Starts `command` (already wrapped in taskset, prlimit, ...), waits up to `timeoutMs` for the
 * line containing "listening" (its port is the last number after a colon, or the number right
 * after "listening"), and keeps draining its output afterwards so that it can never block on a
 * full pipe. Throws, with the process stopped, if it exits or stays silent.
 */
export async function startServer(
  name: string,
  command: readonly string[],
  timeoutMs = 15_000,
): Promise<Started> {
  const proc = track(Bun.spawn([...command], { stdout: "pipe", stderr: "inherit" }));
  const lines = new LineReader(proc.stdout);
  try {
    const line = await within(lines.until("listening"), timeoutMs, `${name} listening`);
    if (line === undefined) throw new Error(`${name} exited before listening (${proc.exitCode})`);
    const port = Number(/listening (?:\S*:)?(\d+)/.exec(line)?.[1]);
    if (!(port > 0)) throw new Error(`${name}: no port in "${line}"`);
    void (async () => {
      while ((await lines.next()) !== undefined) {}
    })();
    return { proc, port };
  } catch (error) {
    await stop(proc, 2000);
    throw error;
  }
}

/** One run of a TCP echo server under closed-loop load. */
export interface TcpRun {
  /** Requests (request and complete response) per second seen by the load generator. */
  rps: number;
  /** Server CPU nanoseconds (user + system, every thread) per request. */
  cpuPerRequest: number;
  /** Median and 99th percentile request latency in microseconds. */
  p50Us: number;
  p99Us: number;
  /** Connections that failed, and responses that differed from their request. */
  errors: number;
  corrupt: number;
  /**
   * Share of one CPU the server and the load generator used over the run (0..1 each): a side
   * near 1 was the limit on requests/s.
   */
  serverBusy: number;
  loadBusy: number;
}

/**
 * What tcp_load printed, by name:
 * `requests N seconds S rps R p50_us X p99_us Y errors E corrupt C cpu_s T`.
 */
export function parseTcpLoad(line: string): Record<string, number> {
  const words = line.trim().split(/\s+/);
  const out: Record<string, number> = {};
  for (let i = 0; i + 1 < words.length; i += 2) out[words[i] as string] = Number(words[i + 1]);
  if (!Number.isFinite(out.requests) || !Number.isFinite(out.rps))
    throw new Error(`tcp_load printed "${line.trim()}"`);
  return out;
}

/**
 * Runs tcp_load (`loadCommand(seconds)` gives its command line) for a warm-up of `warmUpSeconds`
 * and then for `seconds`, and measures server `pid`'s CPU over the second run. Throws if tcp_load fails (it
 * exits non-zero when it cannot connect) or the server dies.
 */
export async function tcpLoadRun(
  pid: number,
  seconds: number,
  loadCommand: (seconds: number) => string[],
  warmUpSeconds = 0.3,
): Promise<TcpRun> {
  const run = async (secs: number): Promise<Record<string, number>> => {
    const load = Bun.spawn(loadCommand(secs), { stdout: "pipe", stderr: "pipe" });
    const [out, err, code] = await Promise.all([
      new Response(load.stdout).text(),
      new Response(load.stderr).text(),
      load.exited,
    ]);
    if (code !== 0) throw new Error(`tcp_load exited with ${code}: ${err.trim()}`);
    return parseTcpLoad(out);
  };
  await run(warmUpSeconds); // warm-up: JIT tiers, buffer pools, socket buffers
  const cpu0 = processCpuNs(pid);
  const r = await run(seconds);
  const cpu1 = processCpuNs(pid);
  const wall = r.seconds ?? seconds;
  return {
    rps: r.rps ?? 0,
    cpuPerRequest: (cpu1 - cpu0) / Math.max(1, r.requests ?? 0),
    p50Us: r.p50_us ?? 0,
    p99Us: r.p99_us ?? 0,
    errors: r.errors ?? 0,
    corrupt: r.corrupt ?? 0,
    serverBusy: (cpu1 - cpu0) / 1e9 / wall,
    loadBusy: (r.cpu_s ?? Number.NaN) / wall,
  };
}

/** The median of each figure of `runs` (taken separately), and the summed errors. */
export function medianTcpRun(runs: readonly TcpRun[]): TcpRun {
  const median = (key: "rps" | "cpuPerRequest" | "p50Us" | "p99Us" | "serverBusy" | "loadBusy") =>
    runs.map((run) => run[key]).sort((a, b) => a - b)[Math.floor(runs.length / 2)] ?? Number.NaN;
  return {
    rps: median("rps"),
    cpuPerRequest: median("cpuPerRequest"),
    p50Us: median("p50Us"),
    p99Us: median("p99Us"),
    errors: runs.reduce((n, run) => n + run.errors, 0),
    corrupt: runs.reduce((n, run) => n + run.corrupt, 0),
    serverBusy: median("serverBusy"),
    loadBusy: median("loadBusy"),
  };
}

/**
 * Connections waiting in the accept queues of the sockets listening on 127.0.0.1:`port` (or any
 * address), summed: the rx_queue column of their LISTEN lines in /proc/net/tcp. 0 once the
 * server has accepted everything that connected.
 */
export function acceptQueue(port: number): number {
  const hexPort = `:${port.toString(16).toUpperCase().padStart(4, "0")}`;
  let queued = 0;
  for (const line of readFileSync("/proc/net/tcp", "utf8").split("\n").slice(1)) {
    const fields = line.trim().split(/\s+/);
    // local_address rem_address st tx_queue:rx_queue ...; st 0A is LISTEN
    if (fields[3] === "0A" && fields[1]?.endsWith(hexPort))
      queued += Number.parseInt(fields[4]?.split(":")[1] ?? "0", 16);
  }
  return queued;
}
