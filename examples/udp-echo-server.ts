/**
 * UDP echo server on the bun-sansio runtime: N workers share one port with SO_REUSEPORT and
 * send every datagram back to its sender unchanged.
 *
 *   bun examples/udp-echo-server.ts --port PORT [--workers N] [--backend auto|uring|epoll]
 *       [--host ADDR] [--max-size BYTES] [--buffers N] [--pin] [--quiet]
 *
 * Prints one line containing "listening" with the bound address once every worker is ready, then
 * one stats line per second (unless --quiet). SIGINT or SIGTERM shuts it down gracefully.
 * Datagrams larger than --max-size (default 65507, the largest IPv4 datagram) are dropped and
 * counted rather than echoed cut short. --buffers sets each worker's `recvBuffers` (default: the
 * backend's, about 2 MiB of receive memory whatever --max-size).
 */
import { parseArgs } from "node:util";
import { Controller, type ControllerEvent, recvBufferSizeFor } from "bun-sansio";
import { type Cli, cli, failureLine, stopOnSignals } from "./cli.ts";
import echoWorker, { type EchoConfig, type EchoReport } from "./udp-echo-worker.ts";

const arg: Cli = cli("udp-echo-server");

const { values } = parseArgs({
  options: {
    port: { type: "string" },
    workers: { type: "string", default: "1" },
    backend: { type: "string", default: "auto" },
    host: { type: "string", default: "127.0.0.1" },
    "max-size": { type: "string", default: "65507" },
    buffers: { type: "string" },
    pin: { type: "boolean", default: false },
    quiet: { type: "boolean", default: false },
  },
});
if (values.port === undefined) arg.fail("--port is required (0 picks a free port)");
const port = arg.number("port", values.port, 0, 65535);
const workers = arg.number("workers", values.workers, 1, 64);
const maxSize = arg.number("max-size", values["max-size"], 1, 65527);
const buffers =
  values.buffers === undefined ? undefined : arg.number("buffers", values.buffers, 1, 32768);
const backend = arg.backend(values.backend);

const controller = new Controller({ maxWorkers: workers });
const counters = new Map<number, { echoed: number; truncated: number }>();
const waiting = new Map<number, (report: EchoReport) => void>();

controller.on((e: ControllerEvent) => {
  if (e.kind === "message") {
    const report = e.data as EchoReport;
    if (report.event === "counters") counters.set(e.worker, report);
    else waiting.get(e.worker)?.(report);
    return;
  }
  const failure = failureLine(e);
  if (failure !== undefined) console.error(failure);
  if (e.kind === "worker-died") {
    waiting.get(e.worker)?.({ event: "listen-failed", code: "EDEAD", message: e.error.message });
  }
});

/** Starts worker `index` on `bindPort` and resolves with its report once its socket is open. */
async function start(index: number, bindPort: number): Promise<EchoReport> {
  const reported = new Promise<EchoReport>((resolve) => waiting.set(index, resolve));
  const config: EchoConfig = { host: values.host, port: bindPort };
  await controller.addWorker({
    module: echoWorker,
    config,
    backend,
    ...(buffers === undefined ? {} : { recvBuffers: buffers }),
    recvBufferSize: recvBufferSizeFor(maxSize), // the largest datagram echoed whole
    ...(values.pin ? { cpu: index % navigator.hardwareConcurrency } : {}),
  });
  return reported;
}

async function stop(code: number): Promise<never> {
  clearInterval(ticker);
  const report = await controller.shutdown({ timeoutMs: 3000 });
  const echoed = [...counters.values()].reduce((n, c) => n + c.echoed, 0);
  const truncated = [...counters.values()].reduce((n, c) => n + c.truncated, 0);
  console.log(
    `stopped: ${echoed} datagrams echoed, ${truncated} too large dropped; workers stopped [${report.stopped}], terminated [${report.terminated}], dead [${report.dead}]`,
  );
  process.exit(report.terminated.length > 0 || report.dead.length > 0 ? 1 : code);
}

let ticker: ReturnType<typeof setInterval> | undefined;
const stopOnce = stopOnSignals(stop);

try {
  const first = await start(0, port);
  if (first.event !== "listening")
    throw new Error(`cannot listen on ${values.host}:${port}: ${describe(first)}`);
  for (let i = 1; i < workers; i++) {
    const r = await start(i, first.port);
    if (r.event !== "listening")
      throw new Error(`worker ${i} cannot share the port: ${describe(r)}`);
  }
  const kind = controller.stats()[0]?.backend;
  console.log(`listening ${first.address} (${workers} workers, ${kind} backend)`);
} catch (e) {
  console.error(`udp-echo-server: ${e instanceof Error ? e.message : String(e)}`);
  await stopOnce(1);
}

function describe(r: EchoReport): string {
  return r.event === "listen-failed" ? `${r.code}: ${r.message}` : r.event;
}

if (!values.quiet) {
  ticker = setInterval(() => {
    const stats = controller.stats();
    const total = stats.reduce((n, s) => n + s.eventsInPerSec, 0);
    const each = stats
      .map(
        (s) =>
          `w${s.index} ${s.state} ${Math.round(s.eventsInPerSec)}/s ${s.loopUtilisation.toFixed(0)}% busy` +
          (s.bufferExhaustion > 0 ? ` ${s.bufferExhaustion} buffer exhaustions` : ""),
      )
      .join(" | ");
    console.log(`stats: ${Math.round(total)} events/s | ${each}`);
  }, 1000);
}
