/** A worker module whose factory throws: starting it must fail with that error. */
import { defineWorker } from "../../../src/index.ts";

export default defineWorker(() => {
  throw new Error("bad config: no port");
});
