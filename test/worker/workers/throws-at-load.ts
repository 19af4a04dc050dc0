/** A worker module that defines a worker, then fails while it loads (an uncaught error). */
import { defineWorker } from "../../../src/index.ts";

export default defineWorker(() => {
  throw new Error("unreachable: the module fails first");
});

if (!Bun.isMainThread) throw new TypeError("module failed to load: boom");
