/**
 * Cost of one event + full pop cycle through a two-level switcher (2 groups; the measured group
 * holds 1, 100 or 10,000 tasks), beside a flat-array baseline that finds the flagged task by
 * scanning an array of flags, as a naive scheduler would.
 *
 *   bun bench/task.ts [--quick]
 *
 * Target (issue 2): 10,000 tasks cost at most 1.5x the 1-task figure.
 */
import { type Task, TaskGroup, TaskSwitcher, TaskSwitcherBranch } from "../src/index.ts";
import { finish, fmt, interleavedMedians, quick, type Result, type Timing } from "./lib/report.ts";

/** Queues one output per event: the smallest task that still exercises the whole cycle. */
class Reply implements Task<number, number> {
  #pending = -1;
  onTick(): void {}
  onEvent(_now: number, input: number): void {
    this.#pending = input;
  }
  onShutdown(): void {}
  popOutput(): number | undefined {
    const out = this.#pending;
    if (out < 0) return undefined;
    this.#pending = -1;
    return out;
  }
  isEmpty(): boolean {
    return false;
  }
  emptyEvent(): number {
    return -1;
  }
}

/** The next event target: a stride coprime with the task count spreads events over all tasks. */
function next(index: number, tasks: number): number {
  return (index + 7919) % tasks;
}

function twoLevel(tasks: number): (ops: number) => void {
  const switcher = new TaskSwitcher(2);
  const other = new TaskSwitcherBranch(new TaskGroup<number, number, Reply>(), 0);
  const measured = new TaskSwitcherBranch(new TaskGroup<number, number, Reply>(), 1);
  other.child.add(new Reply());
  for (let i = 0; i < tasks; i++) measured.child.add(new Reply());
  const branches = [other, measured];
  let sink = 0;
  let index = 0;
  return (ops) => {
    for (let k = 0; k < ops; k++) {
      index = next(index, tasks);
      measured.input(switcher).onEvent(k, index, k);
      for (let g = switcher.current(); g !== undefined; g = switcher.current()) {
        const out = branches[g]?.popOutput(k, switcher);
        if (out !== undefined && out.kind === "output") sink += out.value;
      }
    }
    if (sink === -1) console.log("unreachable");
  };
}

function flatScan(tasks: number): (ops: number) => void {
  const all: Reply[] = [];
  for (let i = 0; i < tasks; i++) all.push(new Reply());
  const flags = new Uint8Array(tasks);
  let sink = 0;
  let index = 0;
  return (ops) => {
    for (let k = 0; k < ops; k++) {
      index = next(index, tasks);
      (all[index] as Reply).onEvent(k, k);
      flags[index] = 1;
      for (;;) {
        const current = flags.indexOf(1);
        if (current < 0) break;
        const out = (all[current] as Reply).popOutput();
        if (out === undefined) flags[current] = 0;
        else sink += out;
      }
    }
    if (sink === -1) console.log("unreachable");
  };
}

const sizes = [1, 100, 10_000];
const ops = quick ? 500_000 : 2_000_000;
const runs = quick ? 3 : 7;
const results: Result[] = [];
const sansio = new Map<number, Timing>();
const flat = new Map<number, Timing>();

console.log(
  `task bench: one event + full pop cycle, median of ${runs} interleaved runs x ${ops} ops`,
);
console.log("tasks     two-level ns/op  cpu ns/op   flat-scan ns/op  cpu ns/op   two-level/flat");
const timings = interleavedMedians(runs, ops, [
  ...sizes.map((n) => twoLevel(n)),
  ...sizes.map((n) => flatScan(n)),
]);
sizes.forEach((n, i) => {
  const a = timings[i] as Timing;
  const b = timings[i + sizes.length] as Timing;
  sansio.set(n, a);
  flat.set(n, b);
  console.log(
    `${String(n).padEnd(9)} ${fmt(a.wallNsPerOp).padStart(15)} ${fmt(a.cpuNsPerOp).padStart(10)} ${fmt(b.wallNsPerOp).padStart(17)} ${fmt(b.cpuNsPerOp).padStart(10)} ${fmt(a.wallNsPerOp / b.wallNsPerOp, 2).padStart(16)}`,
  );
  results.push(
    { name: `two-level ${n} tasks`, value: a.wallNsPerOp, unit: "ns/op" },
    { name: `two-level ${n} tasks cpu`, value: a.cpuNsPerOp, unit: "cpu ns/op" },
    { name: `flat-scan ${n} tasks`, value: b.wallNsPerOp, unit: "ns/op" },
    { name: `flat-scan ${n} tasks cpu`, value: b.cpuNsPerOp, unit: "cpu ns/op" },
  );
});

const one = (sansio.get(1) as Timing).wallNsPerOp;
const big = (sansio.get(10_000) as Timing).wallNsPerOp;
const ratios: Record<string, number> = { "two-level 10000 / two-level 1": big / one };
for (const n of sizes) {
  ratios[`two-level / flat-scan at ${n}`] =
    (sansio.get(n) as Timing).wallNsPerOp / (flat.get(n) as Timing).wallNsPerOp;
}
console.log(
  `10,000 tasks cost ${fmt(big / one, 2)}x the 1-task figure (target <= 1.5x): ${big / one <= 1.5 ? "met" : "NOT met"}`,
);
finish("task", results, ratios);
