/** The main thread's side of the runtime. */
export type { LedgerRelease } from "../sys/ledger.ts";
export { Controller, type ControllerSendResult } from "./controller.ts";
export type { ControllerEvent, ControllerListener, WorkerEnd } from "./events.ts";
export type { AddWorkerOptions, ControllerOptions } from "./options.ts";
export type { ShutdownReport, WorkerState, WorkerStats } from "./record.ts";
export { CallError, SpawnError } from "./tasks.ts";
