/** Controllers of lab workers for the runtime tests, shut down after each test whatever happens. */
import { afterEach } from "bun:test";
import {
  type AddWorkerOptions,
  Controller,
  type ControllerOptions,
  type WorkerStats,
} from "../../src/index.ts";
import type { Command, LabSpawn } from "../worker/workers/lab.ts";
import { EventLog } from "./log.ts";

/** The lab worker module. */
export const LAB = new URL("../worker/workers/lab.ts", import.meta.url);
const live: Controller[] = [];

afterEach(async () => {
  for (const c of live.splice(0)) await c.shutdown({ timeoutMs: 2000 });
});

/** Registers a controller made by a test so that it is shut down after the test. */
export function track(controller: Controller): Controller {
  live.push(controller);
  return controller;
}

/** Options of `lab`: the controller's, and those of every worker. */
export interface LabOptions {
  readonly maxWorkers?: number;
  readonly controller?: Omit<ControllerOptions, "maxWorkers">;
  readonly worker?: Partial<AddWorkerOptions>;
}

/** A controller with `workers` lab workers (ticks and stats every 50 ms unless told otherwise). */
export async function lab(workers: number, options: LabOptions = {}) {
  const controller = track(
    new Controller({ maxWorkers: options.maxWorkers ?? workers, ...options.controller }),
  );
  const log = new EventLog(controller);
  for (let i = 0; i < workers; i++) {
    await controller.addWorker({ module: LAB, tickMs: 50, statsMs: 50, ...options.worker });
  }
  const send = (worker: number, command: Command) => controller.sendTo(worker, command);
  const spawn = (config: LabSpawn) => controller.spawn(config);
  return { controller, log, send, spawn };
}

/** Waits until `controller.stats()` passes `test`; fails after 10 s saying what it waited for. */
export async function statsUntil(
  controller: Controller,
  what: string,
  test: (s: WorkerStats[]) => boolean,
): Promise<WorkerStats[]> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const s = controller.stats();
    if (test(s)) return s;
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}: ${JSON.stringify(s)}`);
    await Bun.sleep(5);
  }
}
