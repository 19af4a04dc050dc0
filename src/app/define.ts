/** Declaring a worker module of grouped tasks. */
import type { Structured } from "../bus/codec.ts";
import { defineWorker, type WorkerDefinition } from "../worker/host.ts";
import type { TaskKinds } from "./groups.ts";
import { GroupedWorker } from "./worker.ts";

/** A task to start in every worker as it starts (`DefineTasksOptions.start`). */
export interface StartTask {
  readonly task: string;
  readonly config?: unknown;
}

/** Options of `defineTasks`. */
export interface DefineTasksOptions<Config = Structured> {
  /**
   * The tasks each worker starts with, from its index and the `config` of `addWorker` (a server
   * starts its listener task here, say). Their failures are task errors like any other.
   */
  readonly start?: (index: number, config: Config) => readonly StartTask[];
}

/**
 * Declares a worker module that runs tasks of the kinds given, by name: `export default
 * defineTasks({ session: (config, ctx) => new Session(config, ctx) })`. The controller starts
 * tasks with `spawnTask(kind, config)`, and tasks start tasks with a "spawn" output. The kinds'
 * order is the first level of the two-level pop order (docs/design.md).
 */
export function defineTasks<Config = Structured>(
  kinds: TaskKinds,
  options: DefineTasksOptions<Config> = {},
): WorkerDefinition<Config> {
  return defineWorker<Config>((index, config, bus) => {
    const worker = new GroupedWorker(index, kinds, bus ?? {});
    for (const t of options.start?.(index, config) ?? []) {
      worker.spawn(0, { task: t.task, config: (t.config ?? null) as Structured });
    }
    return worker;
  });
}
