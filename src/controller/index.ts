/** The main thread's side of the runtime. */
export {
  type AddWorkerOptions,
  Controller,
  type ControllerOptions,
  type ShutdownReport,
  type WorkerState,
  type WorkerStats,
} from "./controller.ts";
export type { ControllerEvent, ControllerListener } from "./events.ts";
