/**
 * For failures.test.ts, in a private network namespace: a lab worker creates a TUN device, then
 * calls process.exit(); the controller must close the device's queue (removing the device).
 * Prints one JSON line with what it saw.
 */
import { Controller, type ControllerEvent } from "../../../src/index.ts";

const LAB = new URL("../../worker/workers/lab.ts", import.meta.url);
const link = (name: string) => Bun.spawnSync(["ip", "link", "show", name]).success;
const controller = new Controller({ maxWorkers: 1 });
const events: ControllerEvent[] = [];
controller.on((e) => events.push(e));
const until = async (test: () => boolean) => {
  const deadline = Date.now() + 10_000;
  while (!test() && Date.now() < deadline) await Bun.sleep(5);
};
await controller.addWorker({ module: LAB });
controller.sendTo(0, { op: "make-tun", name: "owned0" });
await until(() => events.some((e) => e.kind === "message"));
const existed = link("owned0");
controller.sendTo(0, { op: "exit", code: 0 });
await until(() => events.some((e) => e.kind === "worker-died"));
const died = events.find((e) => e.kind === "worker-died");
console.log(JSON.stringify({ existed, gone: !link("owned0"), died }));
await controller.shutdown();
