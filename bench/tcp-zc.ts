/**
 * Does io_uring zero-copy send (IORING_OP_SEND_ZC) or a registered (fixed) socket pay for a TCP
 * stream or echo server on this machine? Runs the C program bench/ref/tcp_zc.c (built here with
 * -luring), which keeps everything in one process on one loopback connection:
 *   - stream: a sender thread pinned to CPU 0 pushes a fixed number of bytes in 64 B, 4 KiB,
 *     16 KiB and 64 KiB sends through io_uring, WINDOW sends in flight each from its own buffer,
 *     to a receiver thread on CPU 1 that reads and discards with blocking recv(). Modes: `send`
 *     (IORING_OP_SEND), `fixed` (send on the socket registered as a fixed file), `send_zc`
 *     (IORING_OP_SEND_ZC with IORING_SEND_ZC_REPORT_USAGE; a buffer is reused only after its
 *     notification, and notifications saying the kernel copied anyway are counted) and
 *     `zc_regbuf` (send_zc from registered buffers, which skips pinning pages on every send).
 *     Plus one window-8 pair at 4 KiB (send vs send_zc) showing what a small window does to
 *     zero-copy, whose buffers come back only once the data is acknowledged.
 *   - rr: closed-loop 64 B ping-pong, blocking client on CPU 1, io_uring echo server on CPU 0
 *     (one io_uring_enter per round trip), with the socket as a plain fd or a fixed file.
 * Prints MB/s, sender CPU per send and per KiB (getrusage RUSAGE_THREAD user + sys, so kernel
 * time spent on the thread's behalf counts), receiver and whole-process CPU per KiB, the busy time
 * of all CPUs per KiB (/proc/stat, which also sees softirq work charged to no thread of ours),
 * the copied fraction of zero-copy notifications, and the server's CPU per round trip, with ratios against
 * plain `send` / the plain fd. Medians of interleaved rounds, each figure its own median.
 *
 *   bun bench/tcp-zc.ts [--quick]
 *
 * No targets: this decides whether SEND_ZC or fixed files are worth adding to the TCP path.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { finish, fmt, percentile, quick, type Result } from "./lib/report.ts";

const refDir = join(import.meta.dir, "ref");

/** Like buildRef in lib/ref-build.ts, but with extra compiler/linker flags (here -luring). */
function buildRefWith(name: string, flags: readonly string[]): string {
  const buildDir = join(refDir, "build");
  mkdirSync(buildDir, { recursive: true });
  const out = join(buildDir, name);
  const r = Bun.spawnSync(["cc", "-O2", "-o", out, join(refDir, `${name}.c`), ...flags], {
    stderr: "inherit",
  });
  if (!r.success)
    throw new Error(`could not build bench/ref/${name}.c (needs a C compiler and liburing-dev)`);
  return out;
}

const exe = buildRefWith("tcp_zc", ["-luring", "-lpthread"]);

const MODES = ["send", "fixed", "send_zc", "zc_regbuf"] as const;
type Mode = (typeof MODES)[number];
const SIZES = [64, 4096, 16384, 65536] as const;
const WINDOW = 32;
const SMALL_WINDOW = 8;
const MiB = 1024 * 1024;
const scale = quick ? 4 : 1;
/** Bytes per stream run: enough for ~0.2-1 s each here (zero-copy at 64 B runs at a few MB/s). */
function bytesFor(mode: Mode, size: number, window: number): number {
  const zc = mode === "send_zc" || mode === "zc_regbuf";
  if (window === SMALL_WINDOW) return (8 * MiB) / scale;
  if (size === 64) return ((zc ? 2 : 32) * MiB) / scale;
  return (size === 4096 ? 512 * MiB : 1024 * MiB) / scale;
}
const runs = quick ? 1 : 7;
const RR_TRIPS = quick ? 15_000 : 40_000;
const rrRuns = quick ? 1 : 7;

/** One line printed by `tcp_zc stream`. */
interface StreamOut {
  mode: Mode;
  size: number;
  inflight: number;
  bytes: number;
  wall_ns: number;
  sender_cpu_ns: number;
  receiver_cpu_ns: number;
  proc_cpu_ns: number;
  machine_cpu_ns: number;
  notifs: number;
  copied: number;
}

/** One line printed by `tcp_zc rr`. */
interface RrOut {
  mode: "plain" | "fixed";
  round_trips: number;
  wall_ns: number;
  server_cpu_ns: number;
  client_cpu_ns: number;
}

function run<T>(args: string[]): T {
  const r = Bun.spawnSync([exe, ...args], { stderr: "inherit", timeout: 60_000 });
  if (!r.success) throw new Error(`tcp_zc ${args.join(" ")} failed (exit ${r.exitCode})`);
  return JSON.parse(r.stdout.toString()) as T;
}

/** Derived figures of one stream run. */
interface StreamFig {
  mbps: number;
  cpuPerSend: number;
  cpuPerKiB: number;
  rcvPerKiB: number;
  procPerKiB: number;
  machinePerKiB: number;
  copied: number;
}

function streamFig(o: StreamOut): StreamFig {
  const kib = o.bytes / 1024;
  return {
    mbps: (o.bytes / o.wall_ns) * 1e3,
    cpuPerSend: o.sender_cpu_ns / (o.bytes / o.size),
    cpuPerKiB: o.sender_cpu_ns / kib,
    rcvPerKiB: o.receiver_cpu_ns / kib,
    procPerKiB: o.proc_cpu_ns / kib,
    machinePerKiB: o.machine_cpu_ns / kib,
    copied: o.notifs > 0 ? o.copied / o.notifs : Number.NaN,
  };
}

function median(xs: number[]): number {
  return percentile(
    [...xs].sort((a, b) => a - b),
    0.5,
  );
}

function medianFig<T extends object>(figs: T[]): T {
  const first = figs[0] as T;
  const out = {} as Record<string, number>;
  for (const key of Object.keys(first))
    out[key] = median(figs.map((f) => (f as Record<string, number>)[key] as number));
  return out as T;
}

interface Config {
  mode: Mode;
  size: number;
  window: number;
}
const label = (c: Config) => `${c.mode}${c.window === WINDOW ? "" : ` w${c.window}`}`;
const configs: Config[] = [
  ...SIZES.flatMap((size) => MODES.map((mode) => ({ mode, size, window: WINDOW }))),
  { mode: "send", size: 4096, window: SMALL_WINDOW },
  { mode: "send_zc", size: 4096, window: SMALL_WINDOW },
];

console.log(
  `tcp-zc bench: one loopback TCP connection, sender (io_uring) on CPU 0, receiver on CPU 1, window ${WINDOW}; ${runs} interleaved rounds (medians)`,
);
console.log(
  "snd/rcv = sender/receiver thread user+sys, all = whole process, box = all CPUs' busy time (/proc/stat); copied = zero-copy notifications reporting a copy",
);
const samples = new Map<Config, StreamFig[]>(configs.map((c) => [c, []]));
for (let r = 0; r < runs; r++) {
  // rotate the order each round so that drift in the machine's speed hits every mode alike
  for (let i = 0; i < configs.length; i++) {
    const c = configs[(i + r) % configs.length] as Config;
    const out = run<StreamOut>([
      "stream",
      c.mode,
      String(c.size),
      String(bytesFor(c.mode, c.size, c.window)),
      String(c.window),
    ]);
    samples.get(c)?.push(streamFig(out));
  }
}
const med = new Map<Config, StreamFig>(configs.map((c) => [c, medianFig(samples.get(c) ?? [])]));

const results: Result[] = [];
const ratios: Record<string, number> = {};
const sizeName = (s: number) => (s >= 1024 ? `${s / 1024} KiB` : `${s} B`);
for (const size of [...SIZES]) {
  const rows = configs.filter((c) => c.size === size);
  const base = med.get(rows.find((c) => c.mode === "send" && c.window === WINDOW) as Config);
  if (!base) continue;
  console.log(
    `\n${sizeName(size).padEnd(12)}      MB/s  snd ns/send  snd ns/KiB  rcv ns/KiB  all ns/KiB  box ns/KiB  copied  MB/s vs send  snd cpu/KiB vs send`,
  );
  for (const c of rows) {
    const m = med.get(c) as StreamFig;
    const name = `${label(c)} ${sizeName(size)}`;
    console.log(
      `${label(c).padEnd(12)} ${fmt(m.mbps, 0).padStart(9)} ${fmt(m.cpuPerSend, 0).padStart(12)} ${fmt(m.cpuPerKiB, 0).padStart(11)} ${fmt(m.rcvPerKiB, 0).padStart(11)} ${fmt(m.procPerKiB, 0).padStart(11)} ${fmt(m.machinePerKiB, 0).padStart(11)} ${Number.isNaN(m.copied) ? "     -" : `${fmt(m.copied * 100, 0).padStart(5)}%`} ${fmt(m.mbps / base.mbps, 2).padStart(13)}x ${fmt(m.cpuPerKiB / base.cpuPerKiB, 2).padStart(19)}x`,
    );
    results.push(
      { name, value: m.mbps, unit: "MB/s" },
      { name: `${name} sender cpu/send`, value: m.cpuPerSend, unit: "sender cpu ns/send" },
      { name: `${name} sender cpu/KiB`, value: m.cpuPerKiB, unit: "sender cpu ns/KiB" },
      { name: `${name} receiver cpu/KiB`, value: m.rcvPerKiB, unit: "receiver cpu ns/KiB" },
      { name: `${name} process cpu/KiB`, value: m.procPerKiB, unit: "process cpu ns/KiB" },
      { name: `${name} machine cpu/KiB`, value: m.machinePerKiB, unit: "all-CPU busy ns/KiB" },
    );
    if (!Number.isNaN(m.copied))
      results.push({ name: `${name} copied`, value: m.copied, unit: "fraction of notifications" });
    if (c.mode !== "send" && c.window === WINDOW) {
      ratios[`${c.mode} / send MB/s ${sizeName(size)}`] = m.mbps / base.mbps;
      ratios[`${c.mode} / send sender cpu per KiB ${sizeName(size)}`] =
        m.cpuPerKiB / base.cpuPerKiB;
      ratios[`${c.mode} / send process cpu per KiB ${sizeName(size)}`] =
        m.procPerKiB / base.procPerKiB;
    }
  }
}
{
  const w8 = (mode: Mode) =>
    med.get(configs.find((c) => c.mode === mode && c.window === SMALL_WINDOW) as Config);
  const zc = w8("send_zc");
  const plain = w8("send");
  if (zc && plain) ratios["send_zc / send MB/s 4 KiB window 8"] = zc.mbps / plain.mbps;
}

// request/response: the server's CPU per round trip, plain fd against fixed file
const rrSamples = { plain: [] as RrOut[], fixed: [] as RrOut[] };
for (let r = 0; r < rrRuns; r++) {
  const order = r % 2 === 0 ? (["plain", "fixed"] as const) : (["fixed", "plain"] as const);
  for (const mode of order) rrSamples[mode].push(run<RrOut>(["rr", mode, String(RR_TRIPS)]));
}
const rrFig = (list: RrOut[]) =>
  medianFig(
    list.map((o) => ({
      rtps: (o.round_trips / o.wall_ns) * 1e9,
      server: o.server_cpu_ns / o.round_trips,
      client: o.client_cpu_ns / o.round_trips,
    })),
  );
const rrPlain = rrFig(rrSamples.plain);
const rrFixed = rrFig(rrSamples.fixed);
console.log(
  `\nrr 64 B ping-pong (${RR_TRIPS} round trips x ${rrRuns})  round trips/s  server ns/rt  server ns/op  client ns/rt  server cpu vs plain`,
);
for (const [mode, m] of [
  ["plain fd", rrPlain],
  ["fixed file", rrFixed],
] as const) {
  console.log(
    `${mode.padEnd(37)} ${fmt(m.rtps, 0).padStart(13)} ${fmt(m.server, 0).padStart(13)} ${fmt(m.server / 2, 0).padStart(13)} ${fmt(m.client, 0).padStart(13)} ${fmt(m.server / rrPlain.server, 3).padStart(19)}x`,
  );
  const key = mode === "plain fd" ? "rr plain" : "rr fixed";
  results.push(
    { name: `${key} 64 B`, value: m.rtps, unit: "round trips/s" },
    { name: `${key} 64 B server cpu`, value: m.server, unit: "server cpu ns/round trip" },
    { name: `${key} 64 B client cpu`, value: m.client, unit: "client cpu ns/round trip" },
  );
}
ratios["rr fixed / plain server cpu per round trip 64 B"] = rrFixed.server / rrPlain.server;
ratios["rr fixed / plain round trips/s 64 B"] = rrFixed.rtps / rrPlain.rtps;

const wins = (mode: Mode, what: string) =>
  SIZES.filter((s) => (ratios[`${mode} / send ${what} ${sizeName(s)}`] ?? 2) < 0.95).map(sizeName);
const list = (xs: string[]) => (xs.length ? xs.join(", ") : "no size");
console.log(
  `\nsend_zc cuts CPU per KiB by >5% (sender thread) at: ${list(wins("send_zc", "sender cpu per KiB"))}; (whole process) at: ${list(wins("send_zc", "process cpu per KiB"))}`,
);
console.log(
  `fixed file cuts CPU per KiB by >5% (sender thread) at: ${list(wins("fixed", "sender cpu per KiB"))}; rr server CPU per round trip fixed / plain: ${fmt(ratios["rr fixed / plain server cpu per round trip 64 B"] ?? 0, 3)}x`,
);
finish("tcp-zc", results, ratios);
