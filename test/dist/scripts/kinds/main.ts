/**
 * Two worker definitions in two modules, started b, a, b: each worker must run its own (by
 * `bun` and as a compiled binary, where the workers re-run this module). Prints what each said.
 */
import { Controller } from "../../../../src/index.ts";
import a from "./worker-a.ts";
import b from "./worker-b.ts";

const controller = new Controller({ maxWorkers: 3 });
const said: string[] = ["", "", ""];
controller.on((e) => {
  if (e.kind === "message") said[e.worker] = String(e.data);
  else if (e.kind === "worker-died") console.error(`worker ${e.worker}: ${e.error.message}`);
});
for (const module of [b, a, b]) await controller.addWorker({ module });
for (let i = 0; i < 500 && said.includes(""); i++) await Bun.sleep(10);
const { stopped } = await controller.shutdown();
console.log(JSON.stringify({ said, stopped }));
