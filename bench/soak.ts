/**
 * Soak test of the UDP echo server (issue 11): `examples/udp-echo-server.ts --workers 2` on each
 * backend in turn, under steady random-size load for a long time, watching its memory and fds.
 *
 *   bun bench/soak.ts [--quick] [--backend uring|epoll] [--seconds S] [--rate R] [--window W]
 *       [--seed N]
 *
 * Load: the C generator bench/ref/udp_soak.c (8 sockets to 127.0.0.1) sends R datagrams/s
 * (default 10,000, about a third of what this 2-core VM echoes with this mix) with at most W in
 * flight (default 64), for S seconds (600, or 30 with --quick). Sizes come from a seeded PRNG
 * (the seed is printed; --seed repeats a run's sizes): 70% 16–200 B, 25% 201–1,472 B, 5%
 * 1,473–65,507 B, uniform within each class. Every echo is checked whole (size, a header with the
 * sequence number, every byte of a PRNG pattern derived from it, the socket it came back on);
 * a datagram not echoed within 1 s is lost. At the end sent = echoed + lost; late, duplicate and
 * corrupt echoes are counted apart. Losses are split by where the kernel dropped them (the
 * server's sockets, from /proc/net/udp; the generator's, from SO_MEMINFO), and the server's own
 * count of echoes (its last line) is reported next to the generator's.
 *
 * Samples every 10 s (2 s with --quick): the server's RSS (VmRSS, the whole process) and open
 * fds, and the echo rate over the interval. Drift: mean RSS over the last minute against the
 * first minute after a 60 s warm-up (--quick: a 6 s warm-up, then the first third of the rest
 * against the last third). Targets: drift < 5%, 0 corrupt, every datagram accounted for.
 */
import { join } from "node:path";
import { parseArgs } from "node:util";
import { type Child, type Stopped, stop, track, within } from "./lib/children.ts";
import { LineReader } from "./lib/lines.ts";
import { buildRef } from "./lib/ref-build.ts";
import { finish, fmt, quick, type Result } from "./lib/report.ts";
import { processFds, processRssKiB, udpSocketDrops } from "./lib/server-run.ts";
import {
  type Drift,
  drift,
  driftWindows,
  type LoadCounters,
  lossSplit,
  type Sample,
  unaccounted,
} from "./lib/soak-stats.ts";

const BACKENDS = ["uring", "epoll"] as const;
type Backend = (typeof BACKENDS)[number];

const { values } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    backend: { type: "string" },
    seconds: { type: "string" },
    rate: { type: "string", default: "10000" },
    window: { type: "string", default: "64" },
    seed: { type: "string" },
  },
});

/** `text` as a number within [min, max] (an integer unless `integer` is false), or throws. */
function numberArg(name: string, text: string, min: number, max: number, integer = true): number {
  const n = Number(text);
  if ((integer && !Number.isInteger(n)) || !(n >= min && n <= max))
    throw new Error(`--${name} must be ${min}..${max}, got ${text}`);
  return n;
}

if (values.backend !== undefined && !BACKENDS.some((b) => b === values.backend))
  throw new Error(`--backend must be uring or epoll, got ${values.backend}`);
const backends = BACKENDS.filter((b) => values.backend === undefined || b === values.backend);
const seconds = numberArg("seconds", values.seconds ?? (quick ? "30" : "600"), 10, 86_400, false);
const interval = quick ? 2 : 10;
const rate = numberArg("rate", values.rate, 1, 1_000_000, false);
const window = numberArg("window", values.window, 1, 4096);
const randomSeed = crypto.getRandomValues(new Uint32Array(1))[0] as number;
const seed = numberArg("seed", values.seed ?? String(randomSeed), 0, 2 ** 32 - 1);
const windows = driftWindows(seconds);

const here = import.meta.dir;
const buildDir = buildRef(["udp_soak"]);

/** The server process's state at one moment. */
interface Snapshot {
  rssKiB: number;
  fds: number;
  /** Datagrams the kernel has dropped at its sockets so far. */
  serverDrops: number;
}

/** The state of server `pid` listening on `port`; throws if the server is gone. */
function snapshot(pid: number, port: number): Snapshot {
  try {
    return { rssKiB: processRssKiB(pid), fds: processFds(pid), serverDrops: udpSocketDrops(port) };
  } catch (e) {
    throw new Error(`the server (pid ${pid}) died during the run`, { cause: e });
  }
}

/** What one backend's run measured. */
interface Run {
  backend: Backend;
  /** Before any load. */
  idle: Snapshot;
  samples: Sample[];
  /** The load generator's totals. */
  total: LoadCounters;
  /** After the load (the datagrams in flight answered or lost), before the server stops. */
  after: Snapshot;
  drift: Drift;
  /** Datagrams the server says it echoed, from its last line (NaN if it did not say). */
  serverEchoed: number;
  serverStop: Stopped;
}

const WIDTHS = [7, 9, 5, 10, 10, 7, 5, 5, 8, 9, 9];

/** One line of the sample table. */
function row(cols: readonly (string | number)[]): string {
  return cols.map((c, i) => String(c).padStart(WIDTHS[i] ?? 8)).join(" ");
}

/** Starts the server on `backend`; resolves with it and its port once it listens. */
async function startServer(
  backend: Backend,
): Promise<{ proc: Child; out: LineReader; port: number }> {
  const proc = track(
    Bun.spawn(
      [
        process.execPath,
        join(here, "..", "examples", "udp-echo-server.ts"),
        ...["--port", "0", "--workers", "2", "--backend", backend, "--quiet"],
      ],
      { stdout: "pipe", stderr: "inherit" },
    ),
  );
  const out = new LineReader(proc.stdout);
  const line = await within(out.until("listening "), 20_000, "the server's start").catch(
    async (e: unknown) => {
      await stop(proc, 5000);
      throw e;
    },
  );
  const port = Number(/listening \S*:(\d+)/.exec(line ?? "")?.[1]);
  if (!(port > 0)) {
    await stop(proc, 5000);
    throw new Error(`the ${backend} server did not start (said: ${line ?? "nothing"})`);
  }
  return { proc, out, port };
}

/** Runs the load against the server `pid` on `port`, sampling it at every progress line. */
async function drive(
  pid: number,
  port: number,
): Promise<{ samples: Sample[]; total: LoadCounters }> {
  const args = [port, seconds, rate, window, seed, interval].map(String);
  const load = track(
    Bun.spawn([join(buildDir, "udp_soak"), ...args], { stdout: "pipe", stderr: "inherit" }),
  );
  const samples: Sample[] = [];
  let total: LoadCounters | undefined;
  let prev = { t: 0, echoed: 0 };
  const lines = new LineReader(load.stdout);
  const read = async () => {
    for (let line = await lines.next(); line !== undefined; line = await lines.next()) {
      const c = JSON.parse(line) as LoadCounters;
      const now = snapshot(pid, port);
      const perSec = (c.echoed - prev.echoed) / Math.max(1e-3, c.t - prev.t);
      prev = c;
      if (c.final === 1) total = c;
      else samples.push({ t: Math.round(c.t / interval) * interval, ...now, load: c });
      const label = c.final === 1 ? "end" : fmt(c.t, 1);
      const { sent, lost, late, duplicate, corrupt, rx_drops } = c;
      const rss = fmt(now.rssKiB / 1024, 1);
      const rest = [lost, late, duplicate, corrupt, now.serverDrops, rx_drops];
      console.log(row([label, rss, now.fds, sent, fmt(perSec, 0), ...rest]));
    }
  };
  try {
    // the generator stops itself 1 s after the load; the margin covers a stalled machine
    await within(read(), (seconds + 30) * 1000, "the load generator");
  } finally {
    await stop(load, 1000, "SIGTERM");
  }
  if (total === undefined)
    throw new Error(`the load generator exited (${load.exitCode}) without totals`);
  return { samples, total };
}

/** One backend's soak run; the server is stopped whatever happens. */
async function soak(backend: Backend): Promise<Run> {
  const { proc, out, port } = await startServer(backend);
  // the rest of what it prints (its last line counts the datagrams it echoed)
  const rest = (async () => {
    const lines: string[] = [];
    for (let line = await out.next(); line !== undefined; line = await out.next()) lines.push(line);
    return lines;
  })();
  let serverStop: Stopped | undefined;
  try {
    const idle = snapshot(proc.pid, port);
    console.log(
      `\n${backend}: server pid ${proc.pid} on 127.0.0.1:${port}, idle ${fmt(idle.rssKiB / 1024, 1)} MiB RSS, ${idle.fds} fds`,
    );
    const head = ["t s", "rss MiB", "fds", "sent", "echoes/s", "lost", "late", "dup", "corrupt"];
    console.log(row([...head, "srv drop", "gen drop"]));
    const { samples, total } = await drive(proc.pid, port);
    const after = snapshot(proc.pid, port);
    serverStop = await stop(proc, 5000, "SIGINT");
    const said = (await within(rest, 2000, "the server's output")).join("\n");
    const serverEchoed = Number(/stopped: (\d+) datagrams echoed/.exec(said)?.[1] ?? Number.NaN);
    const d = drift(samples, windows);
    return { backend, idle, samples, total, after, drift: d, serverEchoed, serverStop };
  } finally {
    serverStop ??= await stop(proc, 5000, "SIGINT");
  }
}

console.log(
  `soak bench: examples/udp-echo-server.ts --workers 2, ${seconds} s per backend at ${fmt(rate, 0)} datagrams/s (at most ${window} in flight), seed ${seed}`,
);
console.log(
  `sizes: 70% 16-200 B, 25% 201-1472 B, 5% 1473-65507 B; samples every ${interval} s; drift: mean RSS in (${fmt(windows.first[0])}, ${fmt(windows.first[1])}] s vs (${fmt(windows.last[0])}, ${fmt(windows.last[1])}] s of load`,
);

const runs: Run[] = [];
for (const backend of backends) runs.push(await soak(backend));

const results: Result[] = [];
const ratios: Record<string, number> = {};
const ok = (met: boolean) => (met ? "met" : "NOT met");
for (const r of runs) {
  const { backend: b, drift: d, total: t } = r;
  const split = lossSplit(t, r.after.serverDrops - r.idle.serverDrops);
  const meanRate = t.echoed / seconds;
  const mib = (kib: number) => fmt(kib / 1024, 1);
  console.log(
    `\n${b}: RSS idle ${mib(r.idle.rssKiB)} MiB, first window ${fmt(d.firstMiB)} MiB, last window ${fmt(d.lastMiB)} MiB (drift ${fmt(d.pct, 2)}%; ${d.counts[0]} and ${d.counts[1]} samples), after the load ${mib(r.after.rssKiB)} MiB; fds ${r.idle.fds} idle, ${d.fdsFirst} first, ${d.fdsLast} last, ${r.after.fds} after`,
  );
  console.log(
    `${b}: sent ${t.sent}, echoed ${t.echoed}, lost ${t.lost} (${fmt((100 * t.lost) / Math.max(1, t.sent), 3)}%; ${t.late} came back late), duplicate ${t.duplicate}, corrupt ${t.corrupt}, unaccounted ${unaccounted(t)}; mean ${fmt(meanRate, 0)} echoes/s`,
  );
  console.log(
    `${b}: never came back ${split.gone}: dropped at the server's sockets ${split.atServerSocket}, at the generator's ${split.atGeneratorSocket}, elsewhere ${split.elsewhere}; the server says it echoed ${r.serverEchoed}; it ${r.serverStop.killed ? "had to be KILLED" : `exited with ${r.serverStop.code}`}${t.send_errors + t.recv_errors > 0 ? `; generator socket errors: ${t.send_errors} send, ${t.recv_errors} receive` : ""}`,
  );
  console.log(
    `targets (${b}): drift < 5%: ${ok(d.pct < 5)}; corrupt 0: ${ok(t.corrupt === 0)}; every datagram accounted for: ${ok(unaccounted(t) === 0 && t.inflight === 0)}`,
  );
  results.push(
    { name: `${b} rss idle`, value: r.idle.rssKiB / 1024, unit: "MiB" },
    { name: `${b} rss first`, value: d.firstMiB, unit: "MiB" },
    { name: `${b} rss last`, value: d.lastMiB, unit: "MiB" },
    { name: `${b} rss drift`, value: d.pct, unit: "%" },
    { name: `${b} rss after load`, value: r.after.rssKiB / 1024, unit: "MiB" },
    { name: `${b} fds first`, value: d.fdsFirst, unit: "fds" },
    { name: `${b} fds last`, value: d.fdsLast, unit: "fds" },
    { name: `${b} sent`, value: t.sent, unit: "datagrams" },
    { name: `${b} echoed`, value: t.echoed, unit: "datagrams" },
    { name: `${b} lost`, value: t.lost, unit: "datagrams" },
    { name: `${b} late`, value: t.late, unit: "datagrams" },
    { name: `${b} duplicate`, value: t.duplicate, unit: "datagrams" },
    { name: `${b} corrupt`, value: t.corrupt, unit: "datagrams" },
    { name: `${b} unaccounted`, value: unaccounted(t), unit: "datagrams" },
    { name: `${b} dropped at server sockets`, value: split.atServerSocket, unit: "datagrams" },
    {
      name: `${b} dropped at generator sockets`,
      value: split.atGeneratorSocket,
      unit: "datagrams",
    },
    { name: `${b} lost elsewhere`, value: split.elsewhere, unit: "datagrams" },
    { name: `${b} server echoed`, value: r.serverEchoed, unit: "datagrams" },
    { name: `${b} mean rate`, value: meanRate, unit: "echoes/s" },
  );
  ratios[`${b}_drift`] = d.pct;
}
const uring = runs.find((r) => r.backend === "uring");
const epoll = runs.find((r) => r.backend === "epoll");
if (uring !== undefined && epoll !== undefined)
  ratios.uring_rss_vs_epoll = uring.drift.lastMiB / epoll.drift.lastMiB;
finish("soak", results, ratios);
