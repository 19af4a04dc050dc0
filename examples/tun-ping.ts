/**
 * TUN ping responder on the bun-sansio runtime: creates a TUN (or TAP) device whose kernel side
 * has `--addr`, and answers from userspace tasks the ICMP echo requests the kernel routes into it
 * for every other address of that subnet. With N workers the device has N queues, one per worker.
 *
 *   bun examples/tun-ping.ts --name NAME --addr 10.77.0.1/24 [--workers N] [--mode tun|tap]
 *       [--mtu BYTES] [--backend auto|uring|epoll] [--quiet]
 *
 * Needs CAP_NET_ADMIN (root). Prints one line containing "ready" once the device is up and every
 * worker has bound its queue, then a `stats {...}` JSON line each second when something changed
 * (unless --quiet). Malformed packets (bad version, bad length, bad checksum, truncated) are
 * dropped and counted, never answered. SIGINT or SIGTERM stops it and removes the device.
 */
import { parseArgs } from "node:util";
import {
  Controller,
  type ControllerEvent,
  recvBufferSizeFor,
  TunDevice,
  TunError,
} from "bun-sansio";
import { type Cli, cli, failureLine, stopOnSignals } from "./cli.ts";
import { parseSubnet } from "./ping-responder.ts";
import pingWorker, {
  type PingConfig,
  type PingCounters,
  type PingReport,
  zeroCounters,
} from "./tun-ping-worker.ts";

const arg: Cli = cli("tun-ping");

const { values } = parseArgs({
  options: {
    name: { type: "string" },
    addr: { type: "string" },
    workers: { type: "string", default: "1" },
    mode: { type: "string", default: "tun" },
    mtu: { type: "string", default: "1500" },
    backend: { type: "string", default: "auto" },
    quiet: { type: "boolean", default: false },
  },
});
if (values.name === undefined) arg.fail("--name is required (the interface name, like tun7)");
if (values.addr === undefined) arg.fail("--addr is required (the kernel side, like 10.77.0.1/24)");
const mode = values.mode;
if (mode !== "tun" && mode !== "tap") arg.fail(`--mode must be tun or tap, got ${mode}`);
const workers = arg.number("workers", values.workers, 1, 64);
const mtu = arg.number("mtu", values.mtu, 576, 65535);
const backend = arg.backend(values.backend);
let subnet: ReturnType<typeof parseSubnet>;
try {
  subnet = parseSubnet(values.addr);
} catch (e) {
  arg.fail((e as Error).message);
}

let device: TunDevice;
try {
  device = TunDevice.create({
    name: values.name,
    mode,
    queues: workers,
    address: values.addr,
    mtu,
  });
} catch (e) {
  console.error(`tun-ping: ${e instanceof TunError ? e.message : String(e)}`);
  process.exit(1);
}

const controller = new Controller({ maxWorkers: workers });
const counters = new Map<number, PingCounters>();
const waiting = new Map<number, (report: PingReport) => void>();

controller.on((e: ControllerEvent) => {
  if (e.kind === "message") {
    const report = e.data as PingReport;
    if (report.event === "counters") counters.set(e.worker, report.counters);
    else if (waiting.has(e.worker)) waiting.get(e.worker)?.(report);
    else if (report.event === "bind-failed") console.error(`worker ${e.worker}: ${report.message}`);
    return;
  }
  const failure = failureLine(e);
  if (failure !== undefined) console.error(failure);
  if (e.kind === "worker-died") {
    waiting.get(e.worker)?.({ event: "bind-failed", code: "EDEAD", message: e.error.message });
  }
});

/** Starts worker `index` on queue `index`; resolves with its report once it has bound the queue. */
async function start(index: number): Promise<PingReport> {
  const reported = new Promise<PingReport>((resolve) => waiting.set(index, resolve));
  const config: PingConfig = {
    fd: device.queues[index] as number,
    address: values.addr as string,
    mode: mode as "tun" | "tap",
  };
  // receive buffers that hold a whole packet (plus the Ethernet header in TAP mode)
  await controller.addWorker({
    module: pingWorker,
    config,
    backend,
    recvBufferSize: recvBufferSizeFor(mtu + 14),
  });
  const report = await reported;
  waiting.delete(index);
  return report;
}

/** All workers' counters added up, and each worker's replies. */
function totals(): { total: PingCounters; replies: number[] } {
  const total = zeroCounters();
  const replies: number[] = [];
  for (let w = 0; w < workers; w++) {
    const c = counters.get(w) ?? zeroCounters();
    for (const k of Object.keys(total) as (keyof PingCounters)[]) total[k] += c[k];
    replies.push(c["echo-reply"]);
  }
  return { total, replies };
}

let ticker: ReturnType<typeof setInterval> | undefined;

async function stop(code: number): Promise<never> {
  clearInterval(ticker);
  const report = await controller.shutdown({ timeoutMs: 3000 });
  device.close();
  const { total, replies } = totals();
  console.log(`stats ${JSON.stringify({ ...total, perWorker: replies })}`);
  console.log(
    `stopped: device ${device.name} removed; ${total["echo-reply"]} echo replies; workers stopped [${report.stopped}], terminated [${report.terminated}], dead [${report.dead}]`,
  );
  process.exit(report.terminated.length > 0 || report.dead.length > 0 ? 1 : code);
}

const stopOnce = stopOnSignals(stop);

try {
  for (let i = 0; i < workers; i++) {
    const r = await start(i);
    if (r.event === "bind-failed")
      throw new Error(`worker ${i} cannot use its queue: ${r.code}: ${r.message}`);
  }
  const first = subnet.network + 1 === subnet.self ? subnet.self + 1 : subnet.network + 1;
  const kind = controller.stats()[0]?.backend;
  console.log(
    `ready: ${mode.toUpperCase()} device ${device.name} (${values.addr}, MTU ${mtu}) answering pings to ${dotted(first)} and every other host of the subnet; ${workers} worker(s), ${kind} backend`,
  );
} catch (e) {
  console.error(`tun-ping: ${e instanceof Error ? e.message : String(e)}`);
  await stopOnce(1);
}

function dotted(n: number): string {
  return [n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff].join(".");
}

if (!values.quiet) {
  let last = "";
  ticker = setInterval(() => {
    const { total, replies } = totals();
    const line = JSON.stringify({ ...total, perWorker: replies });
    if (line !== last) console.log(`stats ${line}`);
    last = line;
  }, 1000);
}
