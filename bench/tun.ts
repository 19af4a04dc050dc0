/**
 * ICMP echo round trips through a TUN device, in a network namespace made (and removed) for each
 * run. The responder runs pinned to CPU 0; a C windowed flood (bench/ref/icmp_flood.c, window 64,
 * 16 destination addresses, bounded in time) runs in the same namespace pinned to CPU 1:
 *   - the full runtime: examples/tun-ping.ts (controller + one worker) on io_uring and on epoll,
 *   - a C responder doing blocking read()/write() per packet (bench/ref/tun_ping.c) as the
 *     near-the-limit reference.
 * Prints round trips/s and the responder's CPU ns per round trip (from /proc/PID/stat, every
 * thread), with ratios against the C reference and between the backends. Needs root.
 *
 *   bun bench/tun.ts [--quick]
 */
import { join } from "node:path";
import { buildRef } from "./lib/ref-build.ts";
import { finish, fmt, quick, type Result } from "./lib/report.ts";
import { loadRun, medianRun, type ServerRun } from "./lib/server-run.ts";

const here = import.meta.dir;
const buildDir = buildRef(["icmp_flood", "tun_ping"]);
if (process.getuid?.() !== 0) throw new Error("bench/tun.ts needs root (namespaces, TUN devices)");

const SERVERS = ["c-ref", "uring", "epoll"] as const;
type Server = (typeof SERVERS)[number];
const SIZES = [56, 1400]; // ICMP data bytes: ping's default, and near the MTU
const seconds = quick ? 1.5 : 3;
const runs = quick ? 1 : 5;
const DEVICE = "sbench0";

function command(server: Server): string[] {
  if (server === "c-ref") return [join(buildDir, "tun_ping"), DEVICE, "10.77.0.1", "24"];
  return [
    process.execPath,
    join(here, "..", "examples", "tun-ping.ts"),
    ...["--name", DEVICE, "--addr", "10.77.0.1/24", "--backend", server, "--quiet"],
  ];
}

function inNs(ns: string, ...cmd: string[]): Bun.SyncSubprocess<"pipe", "pipe"> {
  const r = Bun.spawnSync(["ip", "netns", "exec", ns, ...cmd], { stdout: "pipe", stderr: "pipe" });
  if (!r.success) throw new Error(`${cmd.join(" ")} failed: ${r.stderr}`);
  return r;
}

async function measure(server: Server, size: number): Promise<ServerRun> {
  const ns = `siobench${process.pid}`;
  if (!Bun.spawnSync(["ip", "netns", "add", ns]).success) throw new Error("ip netns add failed");
  // `ip netns exec` and `taskset` exec the server, so the spawned PID is the server's
  const proc = Bun.spawn(["ip", "netns", "exec", ns, "taskset", "-c", "0", ...command(server)], {
    stdout: "pipe",
    stderr: "inherit",
  });
  try {
    const reader = proc.stdout.getReader();
    let text = "";
    while (!text.includes("ready")) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`${server} exited before it was ready`);
      text += new TextDecoder().decode(value);
    }
    if (server === "c-ref") {
      inNs(ns, "ip", "addr", "add", "10.77.0.1/24", "dev", DEVICE);
      inNs(ns, "ip", "link", "set", DEVICE, "up");
    }
    const flood = (secs: number) =>
      inNs(
        ns,
        "taskset",
        "-c",
        "1",
        join(buildDir, "icmp_flood"),
        "10.77.0",
        "16",
        String(secs),
        String(size),
        "64",
      );
    return loadRun(proc.pid, seconds, flood);
  } finally {
    proc.kill("SIGTERM");
    await proc.exited;
    Bun.spawnSync(["ip", "netns", "del", ns]);
  }
}

const results: Result[] = [];
const ratios: Record<string, number> = {};
console.log(
  `tun bench: responder on CPU 0, C ICMP flood on CPU 1 (window 64, 16 addresses), ${seconds}s x ${runs} interleaved rounds (medians)`,
);
for (const size of SIZES) {
  const all = new Map<Server, ServerRun[]>(SERVERS.map((server) => [server, []]));
  for (let r = 0; r < runs; r++) {
    for (const server of SERVERS) all.get(server)?.push(await measure(server, size));
  }
  const medians = new Map<Server, ServerRun>();
  for (const [server, list] of all) medians.set(server, medianRun(list));
  const ref = medians.get("c-ref") as ServerRun;
  console.log(`\n${size} B data   round trips/s  cpu ns/trip   vs C   cpu vs C   lost  corrupt`);
  for (const server of SERVERS) {
    const m = medians.get(server) as ServerRun;
    console.log(
      `${server.padEnd(12)} ${fmt(m.pps, 0).padStart(13)} ${fmt(m.cpuPerPacket, 0).padStart(12)} ${fmt(m.pps / ref.pps, 2).padStart(5)}x ${fmt(m.cpuPerPacket / ref.cpuPerPacket, 2).padStart(9)}x ${String(m.lost).padStart(6)} ${String(m.corrupt).padStart(8)}`,
    );
    results.push(
      { name: `${server} ${size} B`, value: m.pps, unit: "round trips/s" },
      {
        name: `${server} ${size} B cpu`,
        value: m.cpuPerPacket,
        unit: "responder cpu ns/round trip",
      },
    );
    if (server !== "c-ref") {
      ratios[`${server} / C round trips ${size} B`] = m.pps / ref.pps;
      ratios[`${server} / C cpu per round trip ${size} B`] = m.cpuPerPacket / ref.cpuPerPacket;
    }
  }
  const uring = medians.get("uring") as ServerRun;
  const epoll = medians.get("epoll") as ServerRun;
  ratios[`uring / epoll cpu per round trip ${size} B`] = uring.cpuPerPacket / epoll.cpuPerPacket;
}
finish("tun", results, ratios);
