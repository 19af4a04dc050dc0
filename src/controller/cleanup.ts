/**
 * Cleaning up after a worker's thread has ended: closing what it left open and freeing its native
 * memory through the ledger (nothing to do after a graceful stop, which is checked).
 */
import type { ErrorInfo } from "../runtime/protocol.ts";
import { errorInfo } from "../runtime/protocol.ts";
import { type LedgerRelease, releaseLedger } from "../sys/ledger.ts";
import type { WorkerRecord } from "./record.ts";

/** How often the release of a worker whose thread lingers is tried again. */
const LINGER_RETRY_MS = 100;

/**
 * Releases what worker `w` left and keeps the figures in `w.released`. Never rejects: a failure
 * is reported through `report` (so a shutdown waiting for the worker never hangs on it). A
 * thread that outlives its worker has its io_uring instances released once it has gone; a worker
 * that stopped gracefully with fds still open is reported (`WorkerLeak`).
 */
export async function releaseWorker(
  w: WorkerRecord,
  report: (error: ErrorInfo) => void,
): Promise<LedgerRelease> {
  let released: LedgerRelease;
  try {
    released = await releaseLedger(w.ledgerOwner);
  } catch (e) {
    report(errorInfo(e));
    released = { fds: 0, bytes: 0, threadGone: false, socketsLingering: 0 };
  }
  w.released = released;
  if (!released.threadGone) {
    report({
      name: "WorkerThreadLingers",
      message: `the thread had not gone 2 s after the worker ended: its fds were closed; its io_uring instances (${released.bytes} bytes, their ring fds and the sockets their requests hold) are released once it has gone`,
    });
    releaseLater(w);
  } else if (w.state === "stopped" && released.fds > 0) {
    report({
      name: "WorkerLeak",
      message: `the worker stopped with ${released.fds} fds still open (its inner did not close them): the controller closed them`,
    });
  }
  return released;
}

/** Retries the release of a worker whose thread outlived it, until the thread has gone. */
function releaseLater(w: WorkerRecord): void {
  const timer = setInterval(() => {
    void releaseLedger(w.ledgerOwner, 0).then((later) => {
      if (!later.threadGone) return;
      clearInterval(timer);
      const before = w.released as LedgerRelease;
      w.released = {
        fds: before.fds + later.fds,
        bytes: later.bytes,
        threadGone: true,
        socketsLingering: later.socketsLingering,
      };
    });
  }, LINGER_RETRY_MS);
  timer.unref();
}

/** Longest the shutdown waits for threads it terminated to exit. */
const TERMINATE_WAIT_MS = 5000;

/**
 * Waits up to `timeoutMs` for every worker to exit; then terminates (`terminate`) those still
 * running and waits a little longer for them (a thread stuck in a system call that ignores
 * signals must not hold the shutdown forever). Returns the indices of those it terminated.
 */
export async function awaitExits(
  workers: readonly WorkerRecord[],
  timeoutMs: number,
  terminate: (w: WorkerRecord) => void,
): Promise<number[]> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), timeoutMs);
  });
  const all = Promise.all(workers.map((s) => s.exited));
  const outcome = await Promise.race([all, timedOut]);
  clearTimeout(timer);
  const terminated: number[] = [];
  if (outcome !== "timeout") return terminated;
  for (const w of workers) {
    if (w.closed) continue;
    if (w.state !== "stopped" && w.state !== "dead") terminated.push(w.index);
    terminate(w);
  }
  await Promise.race([all, Bun.sleep(TERMINATE_WAIT_MS)]);
  return terminated;
}
