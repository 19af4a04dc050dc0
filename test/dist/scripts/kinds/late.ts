/**
 * A worker definition made inside a function, not at the top level of a module: refused with a
 * message that says so (by `bun`: it is no module's export; compiled: the re-run main module
 * reaches its own code first). Prints the outcome.
 */
import { Controller, defineTasks } from "../../../../src/index.ts";
import { Hello } from "./hello.ts";

const controller = new Controller({ maxWorkers: 1 });
const make = () => defineTasks({ hello: () => new Hello("late") });
try {
  await controller.addWorker({ module: make(), readyTimeoutMs: 5000 });
  console.log("started");
} catch (e) {
  console.log(`refused: ${e instanceof Error ? e.message : String(e)}`);
}
await controller.shutdown();
