/**
 * Shared plumbing for the scripts in bench/: argument parsing, wall and CPU timing, the printed
 * table, and the final machine-readable JSON line required by docs/design.md (Performance rules).
 */

/** One measured figure. */
export interface Result {
  name: string;
  value: number;
  unit: string;
}

/** True when the script was started with `--quick` (the whole run must stay under 30 s). */
export const quick: boolean = process.argv.includes("--quick");

/** Wall and CPU time of one measured run, in nanoseconds per operation. */
export interface Timing {
  wallNsPerOp: number;
  cpuNsPerOp: number;
  opsPerSec: number;
}

/** Runs `body(ops)` once and divides its wall and process CPU time by `ops`. */
export function time(ops: number, body: (ops: number) => void): Timing {
  const cpu0 = process.cpuUsage();
  const t0 = Bun.nanoseconds();
  body(ops);
  const wall = Bun.nanoseconds() - t0;
  const cpu = process.cpuUsage(cpu0);
  const cpuNs = (cpu.user + cpu.system) * 1000;
  return { wallNsPerOp: wall / ops, cpuNsPerOp: cpuNs / ops, opsPerSec: (ops * 1e9) / wall };
}

/**
 * Times every body `runs` times, interleaved (A B C A B C ...) after one warm-up round, so that
 * JIT state and machine noise affect all of them alike; returns each body's median by wall time.
 */
export function interleavedMedians(
  runs: number,
  ops: number,
  bodies: readonly ((ops: number) => void)[],
): Timing[] {
  for (const body of bodies) time(Math.max(1, Math.floor(ops / 2)), body);
  const all: Timing[][] = bodies.map(() => []);
  for (let r = 0; r < runs; r++) {
    bodies.forEach((body, b) => {
      all[b]?.push(time(ops, body));
    });
  }
  return all.map((timings) => {
    timings.sort((a, b) => a.wallNsPerOp - b.wallNsPerOp);
    return timings[Math.floor(timings.length / 2)] as Timing;
  });
}

/** Formats a number with a fixed number of significant decimals for the table. */
export function fmt(n: number, digits = 1): string {
  return n.toLocaleString("en-US", {
    maximumFractionDigits: digits,
    minimumFractionDigits: digits,
  });
}

/** Prints the final JSON line: `{"bench", "results", "ratios"}`. */
export function finish(bench: string, results: Result[], ratios: Record<string, number>): void {
  const round = (n: number) => Math.round(n * 1000) / 1000;
  console.log(
    JSON.stringify({
      bench,
      results: results.map((r) => ({ ...r, value: round(r.value) })),
      ratios: Object.fromEntries(Object.entries(ratios).map(([k, v]) => [k, round(v)])),
    }),
  );
}

/** The `q` quantile (0..1) of `sorted` (ascending), by nearest rank; 0 for an empty list. */
export function percentile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
}
