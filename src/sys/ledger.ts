/**
 * The ledger of what each worker thread opened through the native shim (native/ledger.c): every
 * socket, epoll fd, eventfd, TUN/TAP queue and io_uring instance, recorded as it is opened and
 * forgotten as it is closed. File descriptors belong to the process, so when a worker ends
 * without closing them (`process.exit()` inside it, `terminate()`, a crash), the controller
 * releases what its owner still holds.
 */
import { readFileSync } from "node:fs";
import { native } from "./native.ts";

/** What `releaseLedger` closed and freed. */
export interface LedgerRelease {
  /** File descriptors closed (an io_uring instance counts its ring fd and its eventfd). */
  readonly fds: number;
  /**
   * Native memory unmapped (receive buffers, send buffers, rings); when `threadGone` is false, the
   * memory its io_uring instances still hold instead (freed by a later call, once it has gone).
   */
  readonly bytes: number;
  /** False when the thread had not gone away in time: its io_uring memory was left in place. */
  readonly threadGone: boolean;
  /**
   * Sockets the kernel still held (for an io_uring request being torn down) when the wait for
   * them ended: 0 means every socket of the worker is gone, out of any SO_REUSEPORT group.
   */
  readonly socketsLingering: number;
}

/** Most sockets whose end `releaseLedger` waits for. */
const MAX_WAITED_SOCKETS = 4096;
const SOCKET_TABLES = ["udp", "udp6", "tcp", "tcp6", "raw", "raw6"].map(
  (t) => `/proc/self/net/${t}`,
);

/** How many of `inodes` are still sockets of this process's network namespace. */
function socketsAlive(inodes: ReadonlySet<number>): number {
  let alive = 0;
  for (const table of SOCKET_TABLES) {
    let text: string;
    try {
      text = readFileSync(table, "utf8");
    } catch {
      continue; // no such protocol here
    }
    for (const line of text.split("\n").slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields.length > 9 && inodes.has(Number(fields[9]))) alive++;
    }
  }
  return alive;
}

/** A new owner id for one worker thread, unique in this process. */
export function newLedgerOwner(): number {
  return native().sio_ledger_new_owner();
}

/** Records what the calling thread opens from now on under `owner` (called by the worker host). */
export function bindThreadToLedger(owner: number): void {
  native().sio_ledger_bind(owner);
}

/**
 * Once the thread of `owner` has ended: waits (up to `waitMs`) for its OS thread to be gone, then
 * closes every fd it still holds and frees its io_uring instances (whose teardown cancels the
 * requests the thread left), then waits (up to `waitMs` again) until the kernel has let go of its
 * sockets, so that a SO_REUSEPORT group no longer hands flows to them. If the thread lingers, the
 * fds are closed anyway and the io_uring memory is left mapped (`threadGone` false) rather than
 * freed under a kernel that may still write into it.
 */
export async function releaseLedger(owner: number, waitMs = 2000): Promise<LedgerRelease> {
  const n = native();
  let deadline = performance.now() + waitMs;
  while (n.sio_ledger_thread_alive(owner) === 1 && performance.now() < deadline) {
    await Bun.sleep(1);
  }
  const threadGone = n.sio_ledger_thread_alive(owner) === 0;
  const out = new Float64Array(3 + MAX_WAITED_SOCKETS);
  n.sio_ledger_release(owner, threadGone ? 1 : 0, out, MAX_WAITED_SOCKETS);
  const waited = Math.min(out[2] as number, MAX_WAITED_SOCKETS);
  const inodes = new Set(Array.from(out.subarray(3, 3 + waited)));
  let lingering = inodes.size === 0 ? 0 : socketsAlive(inodes);
  deadline = performance.now() + waitMs;
  // while the rings are kept, their requests keep the sockets: no point in waiting for them
  while (threadGone && lingering > 0 && performance.now() < deadline) {
    await Bun.sleep(2);
    lingering = socketsAlive(inodes);
  }
  return {
    fds: out[0] as number,
    bytes: out[1] as number,
    threadGone,
    socketsLingering: lingering,
  };
}
