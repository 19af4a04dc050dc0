/**
 * Command-line helpers shared by the examples: arguments checked with readable errors (exit 2),
 * signals, and the lines printed for failures.
 */
import type { BackendKind, ControllerEvent } from "bun-sansio";

/** Argument checks for one program; every failure prints "PROGRAM: message" and exits with 2. */
export interface Cli {
  /** Prints the message and exits with 2. */
  fail(message: string): never;
  /** `text` as a number from `min` to `max` (an integer unless `integer` is false). */
  number(name: string, text: string, min: number, max: number, integer?: boolean): number;
  /** `text` as a backend kind: auto, uring or epoll. */
  backend(text: string): BackendKind;
}

/** The argument checks of `program`. */
export function cli(program: string): Cli {
  const fail = (message: string): never => {
    console.error(`${program}: ${message}`);
    process.exit(2);
  };
  return {
    fail,
    number(name, text, min, max, integer = true) {
      const n = Number(text);
      if ((integer && !Number.isInteger(n)) || !(n >= min && n <= max)) {
        fail(`--${name} must be ${min}..${max}, got ${text}`);
      }
      return n;
    },
    backend(text) {
      if (text !== "auto" && text !== "uring" && text !== "epoll") {
        fail(`--backend must be auto, uring or epoll, got ${text}`);
      }
      return text as BackendKind;
    },
  };
}

/**
 * Stops the program once: `stop(0)` on the first SIGINT or SIGTERM, or `stop(code)` through the
 * returned function (later calls and signals do nothing).
 */
export function stopOnSignals(
  stop: (code: number) => Promise<never>,
): (code: number) => Promise<void> {
  let stopping = false;
  const once = async (code: number): Promise<void> => {
    if (stopping) return;
    stopping = true;
    await stop(code);
  };
  for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => void once(0));
  return once;
}

/**
 * The line an example prints for a controller event about a failure (a worker that died, stalled
 * or recovered, a task or worker error), or undefined for other events.
 */
export function failureLine(e: ControllerEvent): string | undefined {
  switch (e.kind) {
    case "worker-died": {
      const how = e.endedBy === "exit" ? `exited with code ${e.exitCode}` : e.endedBy;
      return `worker ${e.worker} died (${how}): ${e.error.name}: ${e.error.message}; released ${e.released.fds} fds`;
    }
    case "worker-stalled":
      return `worker ${e.worker} stalled: no progress for ${e.stalledForMs} ms; not routed to until it recovers`;
    case "worker-recovered":
      return `worker ${e.worker} recovered after ${e.stalledForMs} ms`;
    case "task-error":
    case "worker-error":
      return `worker ${e.worker}: ${e.error.name}: ${e.error.message}`;
    default:
      return undefined;
  }
}
