/** A worker module that defines two workers: `addWorker` must name the export to run. */
import { defineWorker } from "../../../src/index.ts";
import { LabWorker } from "./lab.ts";

export const first = defineWorker((index) => new LabWorker(index));
export const second = defineWorker((index) => new LabWorker(index));
