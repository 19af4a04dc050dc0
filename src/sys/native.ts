/**
 * Finds and loads the native shim (libsansio.so). Loading happens once per thread, on first use;
 * every backend shares the same bindings. Where it looks, in order:
 * 1. `SANSIO_NATIVE`, when set: that file and nothing else;
 * 2. a local build, `native/build/<target>/libsansio.so`, when there is one: it exists only if
 *    someone ran `bun run build:native` (asked for it; in this repository, `bun install` does);
 * 3. the prebuilt package for this platform (`@bun-sansio/linux-<x64|arm64>-<gnu|musl>`, an
 *    optional dependency `bun add` installs; `bun build --compile` embeds its file).
 * A shim is taken only if it loads and was built for this version's ABI (`sio_abi_hash`).
 */
import { dlopen } from "bun:ffi";
import { existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { threadId } from "node:worker_threads";
import { abiHash } from "./abi.ts";
import { hostLibc, hostTarget, isTarget, type Libc, type Target } from "./platform.ts";
import { symbols } from "./symbols.ts";

/** The shim's functions, as bound by bun:ffi. */
export type Native = ReturnType<typeof dlopen<typeof symbols>>["symbols"];

/** The shim could not be found or loaded; the message says what was tried and what to do. */
export class NativeLoadError extends Error {
  override readonly name = "NativeLoadError";
}

/** The path of the prebuilt shim package for `target`, if it is installed. */
function prebuilt(target: Target): string | undefined {
  // literal names, so that `bun build --compile` embeds the one installed
  try {
    switch (target) {
      case "linux-x64-gnu":
        return require("@bun-sansio/linux-x64-gnu").default;
      case "linux-arm64-gnu":
        return require("@bun-sansio/linux-arm64-gnu").default;
      case "linux-x64-musl":
        return require("@bun-sansio/linux-x64-musl").default;
      case "linux-arm64-musl":
        return require("@bun-sansio/linux-arm64-musl").default;
    }
  } catch {
    return undefined; // not installed (another platform's, or optional dependencies left out)
  }
}

/** Where `bun run build:native` puts this machine's shim. */
export function localBuildPath(target: string): string {
  return join(import.meta.dir, "..", "..", "native", "build", target, "libsansio.so");
}

/** One place a shim was looked for: where, and what it was. */
interface Candidate {
  readonly what: string;
  readonly path: string;
}

/** Where the shim is looked for, in order (see the module comment). */
function nativeCandidates(): Candidate[] {
  const chosen = process.env.SANSIO_NATIVE;
  if (chosen !== undefined && chosen !== "") return [{ what: "SANSIO_NATIVE", path: chosen }];
  const target = hostTarget();
  if (!isTarget(target)) return [];
  const out: Candidate[] = [
    { what: "the local build (bun run build:native)", path: localBuildPath(target) },
  ];
  const package_ = prebuilt(target);
  if (package_ !== undefined) {
    out.push({ what: `the prebuilt @bun-sansio/${target}`, path: package_ });
  }
  return out;
}

let loaded: Native | undefined;

/** The loaded shim. Throws NativeLoadError saying what was tried and what to do. */
export function native(): Native {
  if (loaded !== undefined) return loaded;
  const target = hostTarget();
  if (!isTarget(target)) throw new NativeLoadError(`${target}.`);
  const tried: string[] = [];
  for (const c of nativeCandidates()) {
    const outcome = open(c.path);
    if (typeof outcome !== "string") {
      loaded = outcome;
      return loaded;
    }
    tried.push(`${c.what} at ${c.path}: ${outcome}`);
  }
  throw new NativeLoadError(
    [
      `bun-sansio could not load its native shim for ${target}. Tried:`,
      ...tried.map((t) => `- ${t}`),
      advice(target),
    ].join("\n"),
  );
}

/** What to do when no shim loads on `target`. */
function advice(target: Target): string {
  if (process.env.SANSIO_NATIVE) {
    return "SANSIO_NATIVE names the shim to load: point it at a libsansio.so built for this machine, or unset it to use the prebuilt one.";
  }
  return [
    `Install the prebuilt shim: bun add @bun-sansio/${target} (bun add bun-sansio installs it as an optional dependency, unless optional dependencies are left out).`,
    "Or build one from source: bun run build:native in the bun-sansio package (needs a C compiler and liburing 2.3+: apt-get install gcc liburing-dev); Bun does not run a dependency's install scripts, so run it yourself.",
    "Or set SANSIO_NATIVE to the path of a libsansio.so.",
  ].join("\n");
}

/** The shim at `path` bound and checked, or why not. */
function open(path: string): Native | string {
  if (!existsSync(path)) return "no such file";
  let lib: Native;
  try {
    lib = dlopen(path, symbols).symbols;
  } catch (e) {
    try {
      // embedded in a compiled binary, and Bun could not extract it ($TMPDIR not writable)
      if (!path.startsWith("/$bunfs/")) throw e;
      lib = dlopen(extracted(path), symbols).symbols;
    } catch (e2) {
      return explainLoadFailure(e2 instanceof Error ? e2.message : String(e2), path, hostLibc());
    }
  }
  const built = lib.sio_abi_hash();
  if (built !== abiHash()) {
    return `built for another version of bun-sansio (ABI ${hex(built)}, this one is ${hex(abiHash())}): reinstall it, or rebuild with bun run build:native`;
  }
  return lib;
}

/** A file embedded in a compiled binary, written to a cache directory for dlopen. */
function extracted(path: string): string {
  const bytes = readFileSync(path);
  const dir = join(
    process.env.XDG_CACHE_HOME ?? join(process.env.HOME ?? tmpdir(), ".cache"),
    "bun-sansio",
  );
  const out = join(dir, `${Bun.hash(bytes).toString(16)}-${basename(path)}`);
  if (existsSync(out) && statSync(out).size === bytes.length) return out;
  // written aside and renamed: another thread may be loading the same file right now
  mkdirSync(dir, { recursive: true });
  const aside = `${out}.${process.pid}.${threadId}.tmp`;
  writeFileSync(aside, bytes, { mode: 0o700 });
  renameSync(aside, out);
  return out;
}

/** ELF machine numbers of the CPUs there are prebuilt shims for. */
const MACHINES: Record<number, string> = { 62: "x64", 183: "arm64" };

/** The CPU the ELF file at `path` is for ("x64", "arm64", another name), if it can be read. */
function elfCpu(path: string): string | undefined {
  try {
    const head = readFileSync(path).subarray(0, 20);
    if (head[0] !== 0x7f || head[1] !== 0x45 || head[2] !== 0x4c || head[3] !== 0x46)
      return undefined;
    const machine = (head[18] as number) | ((head[19] as number) << 8);
    return MACHINES[machine] ?? `ELF machine ${machine}`;
  } catch {
    return undefined;
  }
}

/**
 * Why the shim at `path` did not load, from dlopen's `message`, on a system with C library
 * `libc`: another CPU's, another C library's, or (otherwise) the message itself.
 */
export function explainLoadFailure(message: string, path: string, libc: Libc): string {
  const cpu = elfCpu(path);
  if (cpu !== undefined && cpu !== process.arch) {
    return `it was built for ${cpu} and this is ${process.arch}; the shim for this machine is @bun-sansio/linux-${process.arch}-${libc === "musl" ? "musl" : "gnu"}`;
  }
  if (libc === "musl" && /ld-linux|libc\.so\.6|GLIBC_/.test(message)) {
    return `it was built for glibc and this system uses musl (${message}); the musl build is @bun-sansio/linux-${process.arch}-musl`;
  }
  if (libc === "glibc" && /libc\.so: (invalid ELF header|cannot open)|ld-musl/.test(message)) {
    return `it was built for musl and this system uses glibc (${message}); the glibc build is @bun-sansio/linux-${process.arch}-gnu`;
  }
  const missing = /Symbol "(sio_\w+)" not found/.exec(message)?.[1];
  if (missing !== undefined) {
    return `it has no ${missing}: it was built for another version of bun-sansio; reinstall it, or rebuild with bun run build:native`;
  }
  return `it failed to load (${message})`;
}

function hex(n: number): string {
  return `0x${(n >>> 0).toString(16)}`;
}
