/** What probe tasks (test/app/probe.ts) reported to a real controller, for the real-thread tests. */
import type { TaskAddress } from "../../src/index.ts";
import type { EventLog } from "../controller/log.ts";
import type { ProbeReport } from "./probe.ts";

/** The probe worker module. */
export const PROBES = new URL("./workers/probe-worker.ts", import.meta.url);

/** The reports of task `a` so far, in order. */
export function said(log: EventLog, a: TaskAddress): string[] {
  return log.events.flatMap((e) =>
    e.kind === "message" && e.from?.id === a.id ? [(e.data as unknown as ProbeReport)[1]] : [],
  );
}

/** Waits until task `a` has reported `what` (fails after the log's time limit, saying what). */
export async function reported(
  log: EventLog,
  a: TaskAddress,
  what: string | RegExp,
): Promise<void> {
  await log.until(`${a} to report ${what}`, () =>
    said(log, a).some((s) => (typeof what === "string" ? s === what : what.test(s))),
  );
}
