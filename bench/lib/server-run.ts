/**
 * Shared by the benchmarks that drive a server process with a C load generator: the server's
 * CPU time, resident memory and open fds, one measured run, and the median of several
 * interleaved runs.
 */
import { readdirSync, readFileSync } from "node:fs";

const TICKS = 100; // clock ticks per second in /proc/PID/stat (USER_HZ)

/** CPU time of process `pid` (user + system, every thread) in nanoseconds, from /proc/PID/stat. */
export function processCpuNs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return ((Number(fields[11]) + Number(fields[12])) * 1e9) / TICKS;
}

/**
 * Resident memory of process `pid` in KiB (VmRSS in /proc/PID/status: the whole process, every
 * thread, since threads share one address space).
 */
export function processRssKiB(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (m === null) throw new Error(`no VmRSS for process ${pid} (has it exited?)`);
  return Number(m[1]);
}

/** Number of open file descriptors of process `pid` (entries of /proc/PID/fd). */
export function processFds(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/**
 * Datagrams the kernel dropped at the UDP sockets bound to local `port` (their receive queue was
 * full, or the packet was refused): the sum of the `drops` column of /proc/net/udp and udp6.
 */
export function udpSocketDrops(port: number): number {
  const hexPort = `:${port.toString(16).toUpperCase().padStart(4, "0")}`;
  let drops = 0;
  for (const table of ["/proc/net/udp", "/proc/net/udp6"]) {
    for (const line of readFileSync(table, "utf8").split("\n").slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields[1]?.endsWith(hexPort)) drops += Number(fields[fields.length - 1]);
    }
  }
  return drops;
}

/** One run of a server under load. */
export interface ServerRun {
  /** Replies per second seen by the load generator. */
  pps: number;
  /** Server CPU nanoseconds per reply. */
  cpuPerPacket: number;
  lost: number;
  corrupt: number;
}

/** The median rate and CPU cost of `runs` (each taken separately), and the summed losses. */
export function medianRun(runs: readonly ServerRun[]): ServerRun {
  const median = (key: "pps" | "cpuPerPacket") =>
    runs.map((run) => run[key]).sort((a, b) => a - b)[Math.floor(runs.length / 2)] as number;
  return {
    pps: median("pps"),
    cpuPerPacket: median("cpuPerPacket"),
    lost: runs.reduce((n, run) => n + run.lost, 0),
    corrupt: runs.reduce((n, run) => n + run.corrupt, 0),
  };
}

/**
 * Runs `load` (a load generator that prints one JSON line with received, lost, corrupt and pps)
 * for a 0.3 s warm-up and then for `seconds`, and measures server `pid`'s CPU over the second.
 */
export function loadRun(
  pid: number,
  seconds: number,
  load: (seconds: number) => { stdout: Buffer },
): ServerRun {
  load(0.3); // warm-up: JIT tiers, socket buffers, neighbour and route caches
  const cpu0 = processCpuNs(pid);
  const out = load(seconds);
  const cpu1 = processCpuNs(pid);
  const r = JSON.parse(out.stdout.toString()) as Omit<ServerRun, "cpuPerPacket"> & {
    received: number;
  };
  return {
    pps: r.pps,
    cpuPerPacket: (cpu1 - cpu0) / Math.max(1, r.received),
    lost: r.lost,
    corrupt: r.corrupt,
  };
}
