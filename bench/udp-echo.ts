/**
 * UDP echo servers side by side, each in its own process pinned to CPU 0, driven by a C
 * windowed load generator pinned to CPU 1 (window 64), at 64 B and 1200 B:
 *   - our UringBackend and EpollBackend (bare backend, echo from the sink, zero-copy),
 *   - the full runtime: examples/udp-echo-server.ts (controller + one worker running the echo
 *     example's WorkerInner on io_uring), so the runtime's overhead over the bare backend shows,
 *   - Bun.udpSocket (replies batched with sendMany), node:dgram under Bun,
 *   - a C recvmmsg/sendmmsg echo (bench/ref/udp_echo.c) as the near-the-limit reference.
 * Prints packets/s and server CPU ns per packet (from /proc/PID/stat), with ratios.
 *
 *   bun bench/udp-echo.ts [--quick]
 *
 * Targets: UringBackend >= 1.4x Bun.udpSocket in packets/s and server CPU per packet <= 1.2x the
 * C reference (issue 4); the runtime <= 1.15x the bare backend's CPU per packet and >= 1.3x
 * Bun.udpSocket in packets/s (issue 5).
 */
import { join } from "node:path";
import { buildRef } from "./lib/ref-build.ts";
import { finish, fmt, quick, type Result } from "./lib/report.ts";
import { loadRun, medianRun, type ServerRun } from "./lib/server-run.ts";

const here = import.meta.dir;
const buildDir = buildRef(["udp_echo", "udp_load"]);

const ALL = ["c-ref", "uring", "runtime", "epoll", "bun-udp", "node-dgram"] as const;
type Server = (typeof ALL)[number];
/** SERVERS=uring,epoll,... limits the run (ratios need c-ref and bun-udp). */
const SERVERS = ALL.filter((s) => (process.env.SERVERS ?? ALL.join(",")).split(",").includes(s));
const seconds = quick ? 1.2 : 3;
const runs = quick ? 1 : 5;

function command(server: Server): string[] {
  if (server === "c-ref") return [join(buildDir, "udp_echo"), "0"];
  if (server === "runtime") {
    // same receive buffers as the bare backend server: 4096 x 2048 B
    return [
      process.execPath,
      join(here, "..", "examples", "udp-echo-server.ts"),
      ...["--port", "0", "--workers", "1", "--backend", "uring", "--quiet"],
      ...["--buffers", "4096", "--max-size", "1984"],
    ];
  }
  return [process.execPath, join(here, "servers", "echo.ts"), server, "0"];
}

async function measure(server: Server, size: number): Promise<ServerRun> {
  const proc = Bun.spawn(["taskset", "-c", "0", ...command(server)], {
    stdout: "pipe",
    stderr: "inherit",
  });
  try {
    const reader = proc.stdout.getReader();
    let text = "";
    while (!text.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`${server} server exited before listening`);
      text += new TextDecoder().decode(value);
    }
    const port = Number(/listening (?:\S*:)?(\d+)/.exec(text)?.[1]);
    const load = (secs: number) =>
      Bun.spawnSync([
        "taskset",
        "-c",
        "1",
        join(buildDir, "udp_load"),
        String(port),
        String(secs),
        String(size),
        "64",
      ]);
    return loadRun(proc.pid, seconds, load);
  } finally {
    proc.kill();
    await proc.exited;
  }
}

const results: Result[] = [];
const ratios: Record<string, number> = {};
console.log(
  `udp-echo bench: server on CPU 0, C load generator on CPU 1, window 64, ${seconds}s x ${runs} interleaved rounds (medians)`,
);
for (const size of [64, 1200]) {
  // rounds of every server in turn, so drift in the machine's speed hits them all alike
  const all = new Map<Server, ServerRun[]>(SERVERS.map((server) => [server, []]));
  for (let r = 0; r < runs; r++) {
    for (const server of SERVERS) all.get(server)?.push(await measure(server, size));
  }
  const medians = new Map<Server, ServerRun>();
  for (const [server, list] of all) medians.set(server, medianRun(list));
  const none: ServerRun = { pps: Number.NaN, cpuPerPacket: Number.NaN, lost: 0, corrupt: 0 };
  const ref = medians.get("c-ref") ?? none;
  const bun = medians.get("bun-udp") ?? none;
  console.log(
    `\n${size} B         packets/s  cpu ns/pkt   vs Bun.udpSocket   cpu vs C   lost  corrupt`,
  );
  for (const server of SERVERS) {
    const m = medians.get(server) as ServerRun;
    console.log(
      `${server.padEnd(12)} ${fmt(m.pps, 0).padStart(10)} ${fmt(m.cpuPerPacket, 0).padStart(11)} ${fmt(m.pps / bun.pps, 2).padStart(17)}x ${fmt(m.cpuPerPacket / ref.cpuPerPacket, 2).padStart(9)}x ${String(m.lost).padStart(6)} ${String(m.corrupt).padStart(8)}`,
    );
    results.push(
      { name: `${server} ${size} B`, value: m.pps, unit: "packets/s" },
      { name: `${server} ${size} B cpu`, value: m.cpuPerPacket, unit: "server cpu ns/packet" },
    );
    if (server !== "bun-udp") ratios[`${server} / Bun.udpSocket pps ${size} B`] = m.pps / bun.pps;
    if (server !== "c-ref")
      ratios[`${server} / C cpu per packet ${size} B`] = m.cpuPerPacket / ref.cpuPerPacket;
  }
}
for (const size of [64, 1200]) {
  const rt = results.find((r) => r.name === `runtime ${size} B cpu`)?.value ?? Number.NaN;
  const bare = results.find((r) => r.name === `uring ${size} B cpu`)?.value ?? Number.NaN;
  ratios[`runtime / bare uring cpu per packet ${size} B`] = rt / bare;
}
const uring64 = ratios["uring / Bun.udpSocket pps 64 B"] ?? 0;
const cpu64 = ratios["uring / C cpu per packet 64 B"] ?? 0;
console.log(
  `\ntargets (64 B): uring >= 1.4x Bun.udpSocket: ${fmt(uring64, 2)}x ${uring64 >= 1.4 ? "met" : "NOT met"}; uring cpu/packet <= 1.2x C: ${fmt(cpu64, 2)}x ${cpu64 <= 1.2 ? "met" : "NOT met"}`,
);
const rtCpu = ratios["runtime / bare uring cpu per packet 64 B"] ?? 0;
const rtPps = ratios["runtime / Bun.udpSocket pps 64 B"] ?? 0;
console.log(
  `targets (64 B): runtime cpu/packet <= 1.15x bare uring: ${fmt(rtCpu, 2)}x ${rtCpu <= 1.15 ? "met" : "NOT met"}; runtime >= 1.3x Bun.udpSocket: ${fmt(rtPps, 2)}x ${rtPps >= 1.3 ? "met" : "NOT met"}`,
);
finish("udp-echo", results, ratios);
