/**
 * TCP echo server on the bun-sansio runtime: N workers each listen on one port with SO_REUSEPORT
 * (the kernel spreads connections over them) and send every byte back in order.
 *
 *   bun examples/tcp-echo-server.ts --port PORT [--workers N] [--backend auto|uring|epoll]
 *       [--host ADDR] [--pin] [--quiet]
 *
 * Prints one line containing "listening" with the bound address once every worker is ready, then
 * one stats line per second (unless --quiet). SIGINT or SIGTERM shuts it down gracefully: the
 * listeners close, and every connection is closed once what it sent is echoed.
 */
import { parseArgs } from "node:util";
import { Controller, type ControllerEvent } from "bun-sansio";
import { type Cli, cli, failureLine, stopOnSignals } from "./cli.ts";
import echoWorker, {
  type TcpEchoConfig as EchoConfig,
  type TcpEchoReport as EchoReport,
} from "./tcp-echo-worker.ts";

const arg: Cli = cli("tcp-echo-server");

const { values } = parseArgs({
  options: {
    port: { type: "string" },
    workers: { type: "string", default: "1" },
    backend: { type: "string", default: "auto" },
    host: { type: "string", default: "127.0.0.1" },
    pin: { type: "boolean", default: false },
    quiet: { type: "boolean", default: false },
  },
});
if (values.port === undefined) arg.fail("--port is required (0 picks a free port)");
const port = arg.number("port", values.port, 0, 65535);
const workers = arg.number("workers", values.workers, 1, 64);
const backend = arg.backend(values.backend);

const controller = new Controller({ maxWorkers: workers });
const counters = new Map<number, Extract<EchoReport, { event: "counters" }>>();
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
    ...(values.pin ? { cpu: index % navigator.hardwareConcurrency } : {}),
  });
  return reported;
}

async function stop(code: number): Promise<never> {
  clearInterval(ticker);
  const report = await controller.shutdown({ timeoutMs: 3000 });
  const sum = (key: "accepted" | "bytes" | "resets") =>
    [...counters.values()].reduce((n, c) => n + c[key], 0);
  console.log(
    `stopped: ${sum("accepted")} connections, ${sum("bytes")} bytes echoed, ${sum("resets")} ended by the peer or an error; workers stopped [${report.stopped}], terminated [${report.terminated}], dead [${report.dead}]`,
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
  console.error(`tcp-echo-server: ${e instanceof Error ? e.message : String(e)}`);
  await stopOnce(1);
}

function describe(r: EchoReport): string {
  return r.event === "listen-failed" ? `${r.code}: ${r.message}` : r.event;
}

if (!values.quiet) {
  ticker = setInterval(() => {
    const stats = controller.stats();
    const each = stats
      .map((s) => {
        const c = counters.get(s.index);
        return `w${s.index} ${s.state} ${Math.round(s.eventsInPerSec)} events/s ${s.loopUtilisation.toFixed(0)}% busy, ${c?.open ?? 0} open, ${c?.accepted ?? 0} accepted`;
      })
      .join(" | ");
    console.log(`stats: ${each}`);
  }, 1000);
}
