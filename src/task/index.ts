/**
 * The pure sans-IO core: tasks, groups of tasks and the two-level output ordering.
 * No Bun API, no clock, no I/O: safe to use and test anywhere.
 */
export { TaskSwitcherBranch } from "./branch.ts";
export { type GroupOutput, TaskGroup } from "./group.ts";
export { TaskSwitcher } from "./switcher.ts";
export {
  type OutputOf,
  type SwitcherChild,
  type Task,
  TaskFailure,
  type TaskPhase,
} from "./task.ts";
