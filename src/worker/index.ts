/** The worker side of the runtime: the `WorkerInner` contract and `defineWorker`. */

export type { ErrorInfo } from "../runtime/protocol.ts";
export { defineWorker, isWorkerDefinition, type WorkerDefinition } from "./host.ts";
export type {
  BusControl,
  BusVia,
  WorkerBusLimits,
  WorkerFactory,
  WorkerInner,
  WorkerInput,
  WorkerOutput,
} from "./inner.ts";
export { HeapLimitError } from "./loop.ts";
