/**
 * The worker thread's side of the runtime: `defineWorker` marks a module as a worker module and,
 * inside a Bun Worker, runs the worker loop on this thread until shutdown. A worker started from
 * a definition (`addWorker({ module: definition })`) finds its init in `workerData` and takes
 * the thread over from inside `defineWorker`, synchronously: it may be a re-run of the
 * application's main module (in a compiled binary, where worker modules are not files), whose
 * own code then never runs. A worker started from a module URL waits for the init message.
 */
import { heapSize } from "bun:jsc";
import { existsSync } from "node:fs";
import { workerData } from "node:worker_threads";
import type { EventSink } from "../backend/backend.ts";
import { wakeBackend } from "../backend/backend.ts";
import { createBackend } from "../backend/index.ts";
import { withPayloadGuard } from "../backend/payload-guard.ts";
import { withPcap } from "../backend/pcap.ts";
import type { Structured } from "../bus/codec.ts";
import { BusEndpoint } from "../bus/endpoint.ts";
import {
  CONTROLLER_ENDPOINT,
  endpointOf,
  errorInfo,
  type FromWorker,
  isWorkerInit,
  Roster,
  sendControl,
  type WorkerInit,
} from "../runtime/protocol.ts";
import { StatsWriter } from "../runtime/stats.ts";
import { bindThreadToLedger } from "../sys/ledger.ts";
import { pinThread, threadCpuMs } from "../sys/thread.ts";
import type { WorkerFactory } from "./inner.ts";
import { WorkerLoop } from "./loop.ts";

const DEFINITION = Symbol.for("bun-sansio.worker-definition");

/** A worker module's default export, made by `defineWorker`. */
export interface WorkerDefinition<Config = Structured> {
  readonly [DEFINITION]: true;
  /** Builds the inner of one worker. */
  readonly factory: WorkerFactory<Config>;
  /**
   * Where `defineWorker` was called ("file:line:column"), the same in every thread that loads
   * the module: the controller starts a worker at this file (or, in a compiled binary, at the
   * main module) and the worker knows its definition by it.
   */
  readonly site: string;
}

/** What a worker started from a definition finds in `workerData`. */
interface DefinitionStart {
  readonly site: string;
  readonly init: WorkerInit;
}

/** The `workerData` key of a `DefinitionStart`. */
export const WORKER_DATA_KEY = "bun-sansio";

/** The call site of the function that called `defineWorker` (outside this package's src). */
function callSite(): string {
  const ours = import.meta.dir.slice(0, import.meta.dir.lastIndexOf("/"));
  for (const line of (new Error().stack ?? "").split("\n").slice(1)) {
    const m = /((?:file:\/\/)?\/[^():]+):(\d+):(\d+)\)?$/.exec(line.trim());
    if (m === null) continue;
    const file = (m[1] as string).replace(/^file:\/\//, "");
    if (file.startsWith(`${ours}/`)) continue;
    return `${file}:${m[2]}:${m[3]}`;
  }
  return "unknown";
}

/**
 * The file a worker for `definition` starts at: its module's, or (in a compiled binary, where
 * modules are bundled into the executable) the main module, re-run up to the definition.
 */
export function workerEntry(definition: WorkerDefinition<never>): string {
  const file = definition.site.replace(/:\d+:\d+$/, "");
  return file.startsWith("/$bunfs/") || !existsSync(file) ? Bun.main : file;
}

/** The `workerData` of a worker started from `definition` with `init`. */
export function definitionStart(definition: WorkerDefinition<never>, init: WorkerInit): object {
  const start: DefinitionStart = { site: definition.site, init };
  return { [WORKER_DATA_KEY]: start };
}

/** True when `value` was made by `defineWorker`. */
export function isWorkerDefinition(value: unknown): value is WorkerDefinition {
  return typeof value === "object" && value !== null && DEFINITION in value;
}

const defined: WorkerDefinition[] = [];
let listening = false;

/**
 * Declares a worker module: `export default defineWorker((index, config) => new MyInner(...))`.
 * Pass the module's URL to `Controller.addWorker`. Imported on the main thread it only returns
 * the definition; inside a Bun Worker started by a controller it also runs that worker.
 */
export function defineWorker<Config = Structured>(
  factory: WorkerFactory<Config>,
): WorkerDefinition<Config> {
  const definition: WorkerDefinition<Config> = { [DEFINITION]: true, factory, site: callSite() };
  defined.push(definition as unknown as WorkerDefinition);
  const started = (workerData as Record<string, DefinitionStart | undefined> | null)?.[
    WORKER_DATA_KEY
  ];
  if (!Bun.isMainThread && started !== undefined) {
    // started from a definition: this one, or another that comes later in the module graph
    if (started.site === definition.site)
      run(definition as unknown as WorkerDefinition, started.init);
    return definition;
  }
  if (!Bun.isMainThread && !listening) {
    listening = true;
    const onMessage = (event: MessageEvent): void => {
      if (!isWorkerInit(event.data)) return;
      globalThis.removeEventListener("message", onMessage);
      void start(event.data);
    };
    globalThis.addEventListener("message", onMessage);
  }
  return definition;
}

/** The definition this thread should run: the only one defined, or the named export. */
async function find(init: WorkerInit): Promise<WorkerDefinition> {
  if (defined.length === 1) return defined[0] as WorkerDefinition;
  const module = (await import(init.moduleUrl)) as Record<string, unknown>;
  const value = module[init.exportName];
  if (!isWorkerDefinition(value)) {
    throw new TypeError(
      `${init.moduleUrl} defines several workers and its export "${init.exportName}" is not one of them`,
    );
  }
  return value;
}

/** Starts a worker from a module URL: finds its definition, then runs it. */
async function start(init: WorkerInit): Promise<void> {
  let definition: WorkerDefinition;
  try {
    definition = await find(init);
  } catch (e) {
    const endpoint = new BusEndpoint(init.layout, endpointOf(init.index), {
      maxQueuedBytes: init.maxQueuedBytes,
    });
    sendControl(endpoint, CONTROLLER_ENDPOINT, { op: "fatal", error: errorInfo(e) });
    endpoint.flush();
    process.exit(1);
  }
  run(definition, init);
}

/** Runs the worker loop of `definition` on this thread until it ends; then the thread exits. */
function run(definition: WorkerDefinition, init: WorkerInit): never {
  // from here on, every fd this thread opens through the shim is on the controller's record
  bindThreadToLedger(init.ledgerOwner);
  const endpoint = new BusEndpoint(init.layout, endpointOf(init.index), {
    externalWake: wakeBackend,
    onFault: (fault) => send({ op: "error", error: errorInfo(fault.error) }),
    maxQueuedBytes: init.maxQueuedBytes,
  });
  const send = (message: FromWorker): void => sendControl(endpoint, CONTROLLER_ENDPOINT, message);
  let loop: WorkerLoop | undefined;
  let code = 0;
  try {
    if (init.cpu !== undefined) pinThread(init.cpu);
    const inner = definition.factory(init.index, init.config, {
      maxMessageBytes: endpoint.maxMessageBytes,
    });
    const clock = (): number => performance.timeOrigin + performance.now() - init.epoch;
    loop = new WorkerLoop({
      index: init.index,
      inner,
      endpoint,
      roster: new Roster(init.roster),
      stats: new StatsWriter(init.stats),
      tickMs: init.tickMs,
      statsMs: init.statsMs,
      clock,
      cpuTime: threadCpuMs,
      heapBytes: heapSize,
      maxHeapBytes: init.maxHeapBytes,
      backend: (onEvent) => {
        const make = (sink: EventSink) =>
          createBackend(
            init.backend,
            {
              onEvent: sink,
              ...(init.recvBuffers === undefined ? {} : { recvBuffers: init.recvBuffers }),
              ...(init.recvBufferSize === undefined ? {} : { recvBufferSize: init.recvBufferSize }),
            },
            (line) => send({ op: "error", error: { name: "BackendFallback", message: line } }),
          );
        const recorded = init.pcap === undefined ? make : withPcap(make, init.pcap);
        return (init.checkPayloads ? withPayloadGuard(recorded) : recorded)(onEvent);
      },
    });
    endpoint.setWakeHandle(loop.backend.wakeHandle);
    send({ op: "ready", backend: loop.backend.kind });
    loop.run();
    loop.close();
    loop = undefined;
    send({ op: "stopped" });
  } catch (e) {
    code = 1;
    send({ op: "fatal", error: errorInfo(e) });
    try {
      loop?.publishStats(); // the counters as they were at the end
      loop?.close();
    } catch {
      // the worker is exiting anyway; the controller already has the first error, and it
      // closes whatever this thread left open (the ledger)
    }
  }
  endpoint.setWakeHandle(undefined);
  // deliver the last reports; the controller drains its rings continuously (what waits for a
  // hung peer would never leave: only the controller's queue is waited for)
  const deadline = Date.now() + 2000;
  for (;;) {
    endpoint.flush();
    if (endpoint.queuedBytes(CONTROLLER_ENDPOINT) === 0 || Date.now() >= deadline) break;
    Bun.sleepSync(1);
  }
  process.exit(code);
}
