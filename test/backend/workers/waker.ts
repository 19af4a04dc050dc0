/** Worker for the wake-up test: waits, then wakes the backend whose handle it was given. */
import { wakeBackend } from "../../../src/index.ts";

declare const self: Worker;

self.onmessage = async (e: MessageEvent<{ handle: number; delayMs: number }>) => {
  await Bun.sleep(e.data.delayMs);
  wakeBackend(e.data.handle);
  self.postMessage("woke");
};
