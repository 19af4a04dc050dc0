/**
 * Builds the native shim (sockets.c: UDP sockets, threads, wake-ups; uring.c: io_uring; epoll.c:
 * epoll; tun.c: TUN/TAP devices; ledger.c: what each worker thread opened; shim.h: what they
 * share) into native/build/<platform>-<arch>/libsansio.so with the system C compiler, linking
 * liburing statically so the result needs only libc at run time. It first writes sansio_abi.h,
 * the numbers the shim shares with TypeScript, from src/sys/abi.ts.
 *
 *   bun run build:native        (also run by `bun install` in this repository)
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { abiHeader } from "../src/sys/abi.ts";

const root = import.meta.dir;
const target = `${process.platform}-${process.arch}`;
const outDir = join(root, "build", target);
const output = join(outDir, "libsansio.so");
const cc = process.env.CC ?? "cc";

function fail(message: string): never {
  console.error(`build:native: ${message}`);
  process.exit(1);
}

if (process.platform !== "linux")
  fail(`bun-sansio needs Linux (io_uring, epoll); this is ${process.platform}`);

const which = Bun.spawnSync([cc, "--version"], { stdout: "ignore", stderr: "ignore" });
if (!which.success) {
  fail(`no C compiler ("${cc}"). Install one, e.g. apt-get install gcc liburing-dev`);
}

// liburing.a from the compiler's search path, so that the shim does not depend on liburing.so
const found = Bun.spawnSync([cc, "-print-file-name=liburing.a"]).stdout.toString().trim();
if (found === "" || found === "liburing.a") {
  fail(
    "liburing.a not found: install liburing 2.3 or newer (Debian/Ubuntu: apt-get install liburing-dev)",
  );
}

mkdirSync(outDir, { recursive: true });
// the numbers the shim shares with TypeScript, from their one source (src/sys/abi.ts)
writeFileSync(join(outDir, "sansio_abi.h"), abiHeader());
const args = [
  cc,
  "-O2",
  "-g",
  "-Wall",
  "-Wextra",
  "-Werror",
  "-fPIC",
  "-shared",
  "-fvisibility=hidden",
  "-o",
  output,
  `-I${outDir}`,
  ...["sockets.c", "uring.c", "epoll.c", "tun.c", "ledger.c"].map((file) => join(root, file)),
  found,
  "-Wl,--exclude-libs,ALL",
];
const result = Bun.spawnSync(args, { stdout: "inherit", stderr: "inherit" });
if (!result.success) fail(`compiler failed: ${args.join(" ")}`);
console.log(`build:native: built ${output}`);
