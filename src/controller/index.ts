/** The main thread's side of the runtime. */
export type { LedgerRelease } from "../sys/ledger.ts";
export {
  type AddWorkerOptions,
  Controller,
  type ControllerOptions,
  type ControllerSendResult,
  type ShutdownReport,
  type WorkerState,
  type WorkerStats,
} from "./controller.ts";
export type { ControllerEvent, ControllerListener, WorkerEnd } from "./events.ts";
