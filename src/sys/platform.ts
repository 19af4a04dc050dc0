/**
 * Which prebuilt native shim fits this process: Linux on x86-64 or arm64, with glibc or musl.
 * Shared by the loader (`native.ts`) and the shim's build (`native/build.ts`).
 */
import { readFileSync } from "node:fs";

/** The targets a prebuilt shim exists for (`bun run build:prebuilt`). */
export const TARGETS = [
  "linux-x64-gnu",
  "linux-arm64-gnu",
  "linux-x64-musl",
  "linux-arm64-musl",
] as const;

/** A prebuilt target's name: `linux-<arch>-<gnu|musl>`. */
export type Target = (typeof TARGETS)[number];

/** The C library this process runs on. */
export type Libc = "glibc" | "musl";

/**
 * The C library of this process: glibc when the runtime reports its version (Node's
 * `process.report`), musl when a musl loader is mapped; glibc otherwise.
 */
export function hostLibc(): Libc {
  const report = (
    process as { report?: { getReport?: () => { header?: { glibcVersionRuntime?: string } } } }
  ).report?.getReport?.();
  if (report?.header?.glibcVersionRuntime !== undefined) return "glibc";
  try {
    if (/ld-musl|libc\.musl/.test(readFileSync("/proc/self/maps", "utf8"))) return "musl";
  } catch {
    // no /proc: keep the default
  }
  return "glibc";
}

/** The target of this process, or a sentence saying why there is none (another OS, another CPU). */
export function hostTarget(): Target | string {
  return targetOf(
    process.platform,
    process.arch,
    process.platform === "linux" ? hostLibc() : "glibc",
  );
}

/** The target of a system, or a sentence saying why there is none. */
export function targetOf(platform: string, arch: string, libc: Libc): Target | string {
  if (platform !== "linux") return `bun-sansio needs Linux (io_uring, epoll); this is ${platform}`;
  if (arch !== "x64" && arch !== "arm64") {
    return `bun-sansio runs on x64 and arm64 Linux; this is ${arch}`;
  }
  return `linux-${arch}-${libc === "musl" ? "musl" : "gnu"}`;
}

/** Whether `value` names a target. */
export function isTarget(value: string): value is Target {
  return (TARGETS as readonly string[]).includes(value);
}
