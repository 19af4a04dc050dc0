/**
 * Runs every WebRTC fuzz target (test/webrtc/fuzz-targets/*.ts, each exporting `targets`) at
 * full count: 1,000,000 inputs in all by default, shared out over the targets.
 *
 *   bun test/webrtc/fuzz-all.ts [--count N] [--seed S]
 *
 * Prints one line per target (inputs, accepted, refusals by reason) and exits 1 if any input
 * made a parser throw.
 */
import { join } from "node:path";
import { parseArgs } from "node:util";
import { type FuzzTarget, runFuzz } from "./fuzz.ts";

const { values } = parseArgs({
  options: {
    count: { type: "string", default: "1000000" },
    seed: { type: "string", default: "1" },
  },
});
const total = Number(values.count);
const seed = Number(values.seed);
const dir = join(import.meta.dir, "fuzz-targets");
const targets: FuzzTarget[] = [];
for (const file of [...new Bun.Glob("*.ts").scanSync(dir)].sort()) {
  const mod = (await import(join(dir, file))) as { targets: readonly FuzzTarget[] };
  targets.push(...mod.targets);
}
if (targets.length === 0) throw new Error(`no fuzz targets in ${dir}`);
const each = Math.ceil(total / targets.length);
let failed = false;
for (const target of targets) {
  const started = performance.now();
  try {
    const r = runFuzz(target, each, seed);
    const secs = ((performance.now() - started) / 1000).toFixed(1);
    console.log(
      `${r.target}: ${r.count} inputs in ${secs} s, ${r.accepted} accepted, refused ${JSON.stringify(r.rejected)}`,
    );
  } catch (e) {
    failed = true;
    console.log(`${target.name}: FAILED ${e instanceof Error ? e.message : String(e)}`);
  }
}
console.log(
  failed ? "result: FAILED" : `result: ok (${each * targets.length} inputs, seed ${seed})`,
);
process.exit(failed ? 1 : 0);
