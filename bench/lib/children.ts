/**
 * The processes a benchmark starts, tracked so that none outlives it: each is stopped by its PID
 * when it is done with, on SIGINT or SIGTERM (then the benchmark exits with 130), and, as a last
 * resort, killed when the benchmark exits for any other reason (an uncaught error included).
 */

/** What is needed of a started process (a `Bun.spawn` subprocess fits). */
export interface Child {
  readonly pid: number;
  readonly exitCode: number | null;
  readonly exited: Promise<number>;
  kill(signal?: number | NodeJS.Signals): void;
}

/** How a process ended when it was stopped. */
export interface Stopped {
  /** Its exit code, or `null` if a signal ended it. */
  code: number | null;
  /** True if it did not exit within the grace period and was killed with SIGKILL. */
  killed: boolean;
}

const live = new Set<Child>();
let installed = false;

/** Starts tracking `child` (until it exits) and returns it. */
export function track<C extends Child>(child: C): C {
  live.add(child);
  void child.exited.then(() => live.delete(child));
  if (!installed) {
    installed = true;
    for (const signal of ["SIGINT", "SIGTERM"] as const) {
      process.on(signal, () => {
        console.error(`\n${signal}: stopping ${live.size} child process(es)`);
        void stopAll(2000).then(() => process.exit(130));
      });
    }
    process.on("exit", () => {
      for (const c of live) c.kill("SIGKILL");
    });
  }
  return child;
}

/**
 * Sends `signal` to `child` and waits up to `graceMs` for it to exit, then kills it with
 * SIGKILL. Does nothing to a process that has already exited.
 */
export async function stop(
  child: Child,
  graceMs: number,
  signal: NodeJS.Signals = "SIGINT",
): Promise<Stopped> {
  if (child.exitCode !== null) return { code: child.exitCode, killed: false };
  child.kill(signal);
  const exited = await within(child.exited, graceMs).then(
    () => true,
    () => false,
  );
  if (!exited) child.kill("SIGKILL");
  await child.exited;
  return { code: child.exitCode, killed: !exited };
}

/** Stops every tracked process (SIGTERM, then SIGKILL after `graceMs`). */
export async function stopAll(graceMs: number): Promise<void> {
  await Promise.all([...live].map((c) => stop(c, graceMs, "SIGTERM")));
}

/** `promise`, or a rejection naming `what` if it has not settled within `ms`. */
export function within<T>(promise: Promise<T>, ms: number, what = "the operation"): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
