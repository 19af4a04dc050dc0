/**
 * Grouped tasks: the worker that runs an application's tasks by kind, routes by task address,
 * gives each task its own sockets, timer, channels and calls (`defineTasks`, `GroupedWorker`).
 */
export { ADDRESS_LIMITS, TaskAddress } from "./address.ts";
export { type DefineTasksOptions, defineTasks, type StartTask } from "./define.ts";
export type { TaskKinds } from "./groups.ts";
export { Outbox } from "./outbox.ts";
export type { GroupedSpawn } from "./spawn.ts";
export type {
  AnyTask,
  AppTask,
  Sender,
  TaskContext,
  TaskFactory,
  TaskInput,
  TaskOutput,
} from "./task.ts";
export { GroupedWorker } from "./worker.ts";
