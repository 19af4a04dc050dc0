/** The probe task kinds as a worker module (test/app/probe.ts). */
import { defineTasks } from "../../../src/index.ts";
import { PROBE_KINDS } from "../probe.ts";

export default defineTasks(PROBE_KINDS);
