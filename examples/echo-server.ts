/**
 * What the UDP and TCP echo servers share: start N workers of one echo module on one port (the
 * first picks it, the rest share it with SO_REUSEPORT), print "listening ADDR (N workers, KIND
 * backend)", a stats line per second unless quiet, and on SIGINT/SIGTERM (or a failed start) shut
 * the workers down, print the summary and exit (1 if a worker had to be terminated or had died).
 */
import {
  type AddWorkerOptions,
  Controller,
  type ControllerEvent,
  type WorkerDefinition,
  type WorkerStats,
} from "bun-sansio";
import { failureLine, stopOnSignals } from "./cli.ts";

/** The host and port an echo worker listens on. */
export interface EchoWorkerConfig {
  readonly host: string;
  readonly port: number;
}

/** What an echo task reports to the controller: its socket's state, then counters every tick. */
export type EchoServerReport<Counters> =
  | { readonly event: "listening"; readonly address: string; readonly port: number }
  | { readonly event: "listen-failed"; readonly code: string; readonly message: string }
  | ({ readonly event: "counters" } & Counters);

/** How to run one echo server. */
export interface EchoServerSpec<Counters> {
  /** The program's name, the prefix of its error lines. */
  readonly program: string;
  readonly module: WorkerDefinition<EchoWorkerConfig>;
  readonly host: string;
  /** The port to bind; 0 picks a free one. */
  readonly port: number;
  readonly workers: number;
  /** Options for every worker beyond module, config and CPU (backend, buffers, TCP options). */
  readonly options: Omit<AddWorkerOptions<EchoWorkerConfig>, "module" | "config" | "cpu">;
  /** Pin worker i to CPU i modulo the CPU count. */
  readonly pin: boolean;
  readonly quiet: boolean;
  /** The stats line's text for one second, from every worker's stats and latest counters. */
  statsLine(stats: readonly WorkerStats[], counters: ReadonlyMap<number, Counters>): string;
  /** The text after "stopped: ", from every worker's last counters. */
  summary(counters: readonly Counters[]): string;
}

/** Runs the echo server `spec` describes until a signal stops it; see the module comment. */
export async function serveEcho<Counters>(spec: EchoServerSpec<Counters>): Promise<void> {
  type Report = EchoServerReport<Counters>;
  const controller = new Controller({ maxWorkers: spec.workers });
  const counters = new Map<number, Counters>();
  const waiting = new Map<number, (report: Report) => void>();
  let ticker: ReturnType<typeof setInterval> | undefined;

  controller.on((e: ControllerEvent) => {
    if (e.kind === "message") {
      const report = e.data as Report;
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

  /** Starts worker `index` on `port` and resolves with its report once its socket is open. */
  const start = async (index: number, port: number): Promise<Report> => {
    const reported = new Promise<Report>((resolve) => waiting.set(index, resolve));
    await controller.addWorker({
      ...spec.options,
      module: spec.module,
      config: { host: spec.host, port },
      ...(spec.pin ? { cpu: index % navigator.hardwareConcurrency } : {}),
    });
    return reported;
  };
  const describe = (r: Report): string =>
    r.event === "listen-failed" ? `${r.code}: ${r.message}` : r.event;

  const stopOnce = stopOnSignals(async (code: number): Promise<never> => {
    clearInterval(ticker);
    const report = await controller.shutdown({ timeoutMs: 3000 });
    console.log(
      `stopped: ${spec.summary([...counters.values()])}; workers stopped [${report.stopped}], terminated [${report.terminated}], dead [${report.dead}]`,
    );
    process.exit(report.terminated.length > 0 || report.dead.length > 0 ? 1 : code);
  });

  try {
    const first = await start(0, spec.port);
    if (first.event !== "listening")
      throw new Error(`cannot listen on ${spec.host}:${spec.port}: ${describe(first)}`);
    for (let i = 1; i < spec.workers; i++) {
      const r = await start(i, first.port);
      if (r.event !== "listening")
        throw new Error(`worker ${i} cannot share the port: ${describe(r)}`);
    }
    const kind = controller.stats()[0]?.backend;
    console.log(`listening ${first.address} (${spec.workers} workers, ${kind} backend)`);
  } catch (e) {
    console.error(`${spec.program}: ${e instanceof Error ? e.message : String(e)}`);
    await stopOnce(1);
    return;
  }
  if (!spec.quiet) {
    ticker = setInterval(
      () => console.log(`stats: ${spec.statsLine(controller.stats(), counters)}`),
      1000,
    );
  }
}
