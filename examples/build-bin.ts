/**
 * Builds the examples as standalone executables: dist/bin/udp-echo-server, udp-echo-client,
 * tcp-echo-server, tcp-echo-client and tun-ping, each one file holding Bun, the example, its worker module and the native shim, that
 * runs from any directory on a Linux machine of the same kind (CPU and C library) with nothing
 * else installed.
 *
 *   bun run build:bin
 *
 * The same works for an application of your own: `bun build --compile app.ts --outfile app`,
 * when it passes its worker definitions (not URLs) to `addWorker` (see the README). The shim
 * embedded is this platform's prebuilt package (`bun run build:prebuilt` makes it here).
 */
import { existsSync, mkdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { hostTarget, isTarget } from "../src/sys/platform.ts";

const root = join(import.meta.dir, "..");
const BINARIES = [
  "udp-echo-server",
  "udp-echo-client",
  "tcp-echo-server",
  "tcp-echo-client",
  "tun-ping",
];

function fail(message: string): never {
  console.error(`build:bin: ${message}`);
  process.exit(1);
}

const target = hostTarget();
if (!isTarget(target)) fail(target);
// the shim goes in through this platform's package (its import of the file is what embeds it)
const shim = join(root, "packages", target, "libsansio.so");
if (!existsSync(shim)) {
  const built = Bun.spawnSync(["bun", join(root, "native", "build.ts"), "--prebuilt", target], {
    stdout: "inherit",
    stderr: "inherit",
  });
  if (!built.success) fail(`could not build ${shim} (see above)`);
}
const outDir = join(root, "dist", "bin");
mkdirSync(outDir, { recursive: true });
for (const name of BINARIES) {
  const outfile = join(outDir, name);
  const r = Bun.spawnSync(
    ["bun", "build", "--compile", join(root, "examples", `${name}.ts`), "--outfile", outfile],
    { stdout: "pipe", stderr: "inherit" },
  );
  if (!r.success) fail(`bun build --compile examples/${name}.ts failed (see above)`);
  console.log(`build:bin: ${outfile} (${(statSync(outfile).size / 2 ** 20).toFixed(1)} MiB)`);
}
