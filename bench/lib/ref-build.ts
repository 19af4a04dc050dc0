/** Builds the C programs in bench/ref that the benchmarks run (into bench/ref/build, git-ignored). */
import { mkdirSync } from "node:fs";
import { join } from "node:path";

const refDir = join(import.meta.dir, "..", "ref");

/**
 * Compiles bench/ref/NAME.c with the system C compiler (`cc -O2`) for every name, and returns
 * the directory the programs are in (run them as `join(dir, NAME)`). Throws if one fails.
 */
export function buildRef(names: readonly string[]): string {
  const buildDir = join(refDir, "build");
  mkdirSync(buildDir, { recursive: true });
  for (const name of names) {
    const r = Bun.spawnSync(["cc", "-O2", "-o", join(buildDir, name), join(refDir, `${name}.c`)], {
      stderr: "inherit",
    });
    if (!r.success)
      throw new Error(`could not build bench/ref/${name}.c (is a C compiler installed?)`);
  }
  return buildDir;
}
