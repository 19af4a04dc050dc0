/**
 * Builds the native shim (sockets.c: UDP sockets, threads, wake-ups; tcp.c: TCP sockets; uring.c:
 * io_uring; epoll.c: epoll; tun.c: TUN/TAP devices; ledger.c: what each worker thread opened; shim.h: what they
 * share) into one libsansio.so that needs only the C library at run time (liburing linked
 * statically). It first writes sansio_abi.h, the numbers the shim shares with TypeScript, from
 * src/sys/abi.ts.
 *
 *   bun run build:native      this machine's shim, with its C compiler ($CC, else cc), into
 *                             native/build/<target>/ (the loader's fallback; `bun install` in
 *                             this repository runs it)
 *   bun run build:prebuilt    the four prebuilt shims (x64 and arm64, glibc and musl), cross-built
 *                             with Debian's toolchains into packages/<target>/, each checked:
 *                             its machine, that it needs only the C library, and for glibc that
 *                             no symbol version is newer than GLIBC_2.17
 *   bun native/build.ts --prebuilt linux-arm64-musl ...   some of them
 */
import { copyFileSync, existsSync, mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { abiHeader } from "../src/sys/abi.ts";
import { hostTarget, isTarget, TARGETS, type Target } from "../src/sys/platform.ts";

const root = import.meta.dir;
const SOURCES = ["sockets.c", "tcp.c", "uring.c", "epoll.c", "tun.c", "ledger.c"].map((f) =>
  join(root, f),
);
const FLAGS = ["-O2", "-g", "-Wall", "-Wextra", "-Werror", "-fPIC", "-shared"];
/** Newest glibc symbol version a gnu prebuilt may need (the oldest arm64 glibc). */
const GLIBC_MAX = [2, 17];

/** How one prebuilt target is cross-built on Debian. */
export interface Toolchain {
  readonly cc: string;
  readonly liburing: string;
  /** Its `readelf -h` machine. */
  readonly machine: string;
  /** The only libraries it may need. */
  readonly needed: readonly string[];
  /** For musl: the GNU triplet whose kernel and liburing headers it borrows. */
  readonly muslHeaders?: string;
  /** Debian packages that provide the toolchain (arm64 ones need `dpkg --add-architecture arm64`). */
  readonly apt: readonly string[];
}

const X64_URING = "/usr/lib/x86_64-linux-gnu/liburing.a";
const ARM64_URING = "/usr/lib/aarch64-linux-gnu/liburing.a";
export const TOOLCHAINS: Record<Target, Toolchain> = {
  "linux-x64-gnu": {
    cc: "x86_64-linux-gnu-gcc",
    liburing: X64_URING,
    machine: "Advanced Micro Devices X86-64",
    needed: ["libc.so.6", "ld-linux-x86-64.so.2"],
    apt: ["gcc", "liburing-dev"],
  },
  "linux-arm64-gnu": {
    cc: "aarch64-linux-gnu-gcc",
    liburing: ARM64_URING,
    machine: "AArch64",
    needed: ["libc.so.6", "ld-linux-aarch64.so.1"],
    apt: ["gcc-aarch64-linux-gnu", "libc6-dev-arm64-cross", "liburing-dev:arm64"],
  },
  "linux-x64-musl": {
    cc: "musl-gcc",
    liburing: X64_URING,
    machine: "Advanced Micro Devices X86-64",
    needed: ["libc.so"],
    muslHeaders: "x86_64-linux-gnu",
    apt: ["musl-tools", "musl-dev", "liburing-dev"],
  },
  "linux-arm64-musl": {
    cc: "aarch64-linux-musl-gcc",
    liburing: ARM64_URING,
    machine: "AArch64",
    needed: ["libc.so"],
    muslHeaders: "aarch64-linux-gnu",
    apt: ["musl-dev:arm64", "gcc-aarch64-linux-gnu", "liburing-dev:arm64"],
  },
};

function fail(message: string): never {
  console.error(`build:native: ${message}`);
  process.exit(1);
}

/** Runs `args`; its output, or undefined when it could not run or failed. */
function run(args: readonly string[]): string | undefined {
  try {
    const r = Bun.spawnSync([...args], { stdout: "pipe", stderr: "inherit" });
    return r.success ? r.stdout.toString() : undefined;
  } catch {
    return undefined; // not installed: Bun throws "Executable not found in $PATH"
  }
}

/** Writes the ABI header for a build into `dir`. */
function writeAbi(dir: string): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "sansio_abi.h"), abiHeader());
}

/** Compiles the shim to `output`; fails with the compiler's own errors. */
function compile(cc: string, includes: readonly string[], liburing: string, output: string): void {
  const args = [
    cc,
    ...FLAGS,
    "-fvisibility=hidden",
    "-o",
    output,
    ...includes,
    ...SOURCES,
    liburing,
    "-Wl,--exclude-libs,ALL",
  ];
  const r = Bun.spawnSync(args, { stdout: "inherit", stderr: "inherit" });
  if (!r.success) fail(`the compiler failed: ${args.join(" ")}`);
}

/** This machine's shim with its own compiler, into native/build/<target>/. */
function buildLocal(): void {
  const target = hostTarget();
  if (!isTarget(target)) fail(target);
  const cc = process.env.CC ?? "cc";
  if (run([cc, "--version"]) === undefined) {
    fail(
      `no C compiler ("${cc}" could not run). Install one (Debian/Ubuntu: apt-get install gcc liburing-dev; Alpine: apk add build-base liburing-dev), or set CC`,
    );
  }
  // liburing.a from the compiler's search path, so that the shim does not need liburing.so
  const found = run([cc, "-print-file-name=liburing.a"])?.trim() ?? "";
  if (found === "" || found === "liburing.a") {
    fail(
      "liburing.a not found: install liburing 2.3 or newer (Debian/Ubuntu: apt-get install liburing-dev)",
    );
  }
  const outDir = join(root, "build", target);
  writeAbi(outDir);
  const output = join(outDir, "libsansio.so");
  compile(cc, [`-I${outDir}`], found, output);
  console.log(`build:native: built ${output}`);
}

/** The kernel's and liburing's headers for a musl build, without glibc's. */
function muslIncludes(triplet: string): string {
  const dir = join(root, "build", "musl-inc", triplet);
  mkdirSync(dir, { recursive: true });
  const links: [string, string][] = [
    ["linux", "/usr/include/linux"],
    ["asm-generic", "/usr/include/asm-generic"],
    ["asm", `/usr/include/${triplet}/asm`],
    ["liburing", "/usr/include/liburing"],
    ["liburing.h", "/usr/include/liburing.h"],
  ];
  for (const [name, to] of links) {
    if (!existsSync(join(dir, name))) symlinkSync(to, join(dir, name));
  }
  return dir;
}

/** Why `path` is not a shim fit for `t`, or undefined when it is. */
export function checkShim(path: string, t: Toolchain): string | undefined {
  const header = run(["readelf", "-h", path]);
  const dynamic = run(["readelf", "-d", path]);
  const versions = run(["readelf", "-V", path]);
  if (header === undefined || dynamic === undefined || versions === undefined) {
    return "readelf could not read it (binutils missing, or not an ELF file)";
  }
  const machine = /Machine:\s*(.+)/.exec(header)?.[1]?.trim();
  if (machine !== t.machine) return `its machine is ${machine}, not ${t.machine}`;
  const needed = [...dynamic.matchAll(/\(NEEDED\)\s+Shared library: \[(.+)\]/g)].map((m) => m[1]);
  const extra = needed.filter((n) => n !== undefined && !t.needed.includes(n));
  if (extra.length > 0) return `it needs ${extra.join(", ")} (only ${t.needed.join(", ")} may be)`;
  // the versions it needs (.gnu.version_r): numbered GLIBC_x.y at most 2.17, nothing else
  for (const m of versions.matchAll(/Name: (GLIBC_\S+)/g)) {
    const version = m[1] as string;
    const numbers = /^GLIBC_(\d+)\.(\d+)(\.\d+)?$/.exec(version);
    if (numbers === null) return `it needs ${version}, which not every glibc since 2.17 has`;
    const [major, minor] = [Number(numbers[1]), Number(numbers[2])];
    const [maxMajor, maxMinor] = GLIBC_MAX as [number, number];
    if (major > maxMajor || (major === maxMajor && minor > maxMinor)) {
      return `it needs ${version}, newer than GLIBC_${GLIBC_MAX.join(".")}`;
    }
  }
  return undefined;
}

/** Cross-builds and checks the prebuilt shims of `targets` into packages/<target>/. */
function buildPrebuilt(targets: readonly Target[]): void {
  for (const target of targets) {
    const t = TOOLCHAINS[target];
    if (run([t.cc, "--version"]) === undefined || !existsSync(t.liburing)) {
      fail(
        `${target}: ${t.cc} or ${t.liburing} is missing. On Debian: dpkg --add-architecture arm64 && apt-get update && apt-get install ${t.apt.join(" ")}`,
      );
    }
    const abiDir = join(root, "build", `prebuilt-${target}`);
    writeAbi(abiDir);
    const includes = [`-I${abiDir}`];
    if (t.muslHeaders !== undefined) includes.push("-idirafter", muslIncludes(t.muslHeaders));
    const output = join(root, "..", "packages", target, "libsansio.so");
    compile(t.cc, includes, t.liburing, output);
    const problem = checkShim(output, t);
    if (problem !== undefined) fail(`${target}: ${output} is not fit to ship: ${problem}`);
    copyFileSync(join(root, "..", "LICENSE"), join(root, "..", "packages", target, "LICENSE"));
    console.log(`build:prebuilt: built and checked ${output}`);
  }
}

/** The command line: no arguments, or `--prebuilt [target...]`. */
function main(args: readonly string[]): void {
  if (args[0] === "--prebuilt") {
    const asked = args.slice(1);
    for (const a of asked)
      if (!isTarget(a)) fail(`no target ${a} (targets: ${TARGETS.join(", ")})`);
    buildPrebuilt(asked.length === 0 ? TARGETS : (asked as Target[]));
  } else if (args.length === 0) {
    buildLocal();
  } else {
    fail(`unknown arguments ${args.join(" ")} (none, or --prebuilt [target...])`);
  }
}

// imported (the tests take `TOOLCHAINS` and `checkShim`), it builds nothing
if (import.meta.main) main(process.argv.slice(2));
