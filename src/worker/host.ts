/**
 * The worker thread's side of the runtime: `defineWorker` marks a module as a worker module and,
 * inside a Bun Worker, runs the worker loop on this thread until shutdown. A worker started at
 * its module (a URL, or a definition's module) waits for the init message and runs the
 * definition its export names. In a compiled binary, where modules are not files, a worker
 * re-runs the main module with its init in `workerData`, and takes the thread over inside
 * `defineWorker` when it reaches its definition (by its place in the order the modules ran), so
 * the main module's own code does not run.
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
  /** The module that called `defineWorker` (undefined in a compiled binary, where none is a file). */
  readonly file: string | undefined;
  /** Its place among the definitions this thread made, in the order the modules ran. */
  readonly ordinal: number;
}

/** How a worker for a definition starts: at its module, by export name; or at the main module. */
export type WorkerPlan =
  | { readonly url: string; readonly exportName: string }
  | { readonly ordinal: number };

/** What a worker re-running the main module finds in `workerData`: which definition, its init. */
interface DefinitionStart {
  readonly ordinal: number;
  readonly init: WorkerInit;
}

/** The `workerData` key of a `DefinitionStart`. */
const WORKER_DATA_KEY = "bun-sansio";

/** The directory of this package's sources, whose frames `callerFile` skips. */
const OURS = import.meta.dir.slice(0, import.meta.dir.lastIndexOf("/") + 1);

/** The file of the first caller outside this package's sources, if it is a file. */
function callerFile(): string | undefined {
  const previous = Error.prepareStackTrace;
  Error.prepareStackTrace = (_error, frames) => frames;
  const frames = new Error().stack as unknown as readonly { getFileName(): string | null }[];
  Error.prepareStackTrace = previous;
  for (const frame of frames) {
    const file = frame.getFileName()?.replace(/^file:\/\//, "");
    if (file === undefined) continue; // native code
    if (file.startsWith("/$bunfs/")) return undefined;
    if (!file.startsWith(OURS) && existsSync(file)) return file;
  }
  return undefined;
}

/**
 * How to start a worker for `definition`: at the module that exports it (checked: it must be
 * one of the module's exports), or, in a compiled binary where modules are not files (or for a
 * definition made in the main module), at the main module, which the worker re-runs until
 * `defineWorker` reaches the definition.
 */
export async function workerPlan(definition: WorkerDefinition<never>): Promise<WorkerPlan> {
  const file = definition.file;
  // compiled, or made in the main module (still running: importing it would wait for itself)
  if (file === undefined || file === Bun.main || Bun.main.startsWith("/$bunfs/")) {
    return { ordinal: definition.ordinal };
  }
  const module = (await import(file)) as Record<string, unknown>;
  const exportName = Object.keys(module).find((name) => module[name] === definition);
  if (exportName === undefined) {
    throw new TypeError(
      `the worker definition made in ${file} is not one of its exports: export it (export default defineTasks(...)), or give addWorker the URL of the module that exports it`,
    );
  }
  return { url: file, exportName };
}

/** The `workerData` of a worker that re-runs the main module up to definition `ordinal`. */
export function definitionStart(ordinal: number, init: WorkerInit): object {
  const start: DefinitionStart = { ordinal, init };
  return { [WORKER_DATA_KEY]: start };
}

/** The definition start of this thread, when it is a worker re-running the main module. */
function startedDefinition(): DefinitionStart | undefined {
  if (Bun.isMainThread) return undefined;
  return (workerData as Record<string, DefinitionStart | undefined> | null)?.[WORKER_DATA_KEY];
}

/**
 * Throws in a worker that re-ran the main module past every definition without reaching its own
 * (the controller calls it: a worker must not start a controller of its own).
 */
export function refuseRerunPastDefinitions(): void {
  const started = startedDefinition();
  if (started === undefined) return;
  throw new Error(
    `this worker re-ran the main module to reach worker definition #${started.ordinal}, and the main module's own code started instead: make worker definitions at the top level of modules the main module imports (statically), not inside functions or dynamic imports`,
  );
}

/** True when `value` was made by `defineWorker`. */
export function isWorkerDefinition(value: unknown): value is WorkerDefinition {
  return typeof value === "object" && value !== null && DEFINITION in value;
}

const defined: WorkerDefinition[] = [];
let listening = false;

/**
 * Declares a worker module: `export default defineWorker((index, config) => new MyInner(...))`.
 * Give the definition (imported) or the module's URL to `Controller.addWorker`. Imported on the
 * main thread it only returns the definition; inside a Bun Worker started by a controller it
 * also runs that worker. In a compiled binary the worker takes the thread over right here, when
 * the main module's imports reach this definition: what the factory uses must be defined above
 * this call.
 */
export function defineWorker<Config = Structured>(
  factory: WorkerFactory<Config>,
): WorkerDefinition<Config> {
  const definition: WorkerDefinition<Config> = {
    [DEFINITION]: true,
    factory,
    file: callerFile(),
    ordinal: defined.length,
  };
  defined.push(definition as unknown as WorkerDefinition);
  const started = startedDefinition();
  if (started !== undefined) {
    // re-running the main module: this definition, or one that comes later
    if (started.ordinal === definition.ordinal) {
      run(definition as unknown as WorkerDefinition, started.init);
    }
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
    // reported and ended as a factory that throws is: by `run`
    definition = {
      [DEFINITION]: true,
      factory: () => {
        throw e;
      },
      file: undefined,
      ordinal: -1,
    };
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
              ...(init.tcp === undefined ? {} : { tcp: init.tcp }),
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
