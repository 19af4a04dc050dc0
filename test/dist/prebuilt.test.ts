/**
 * The four prebuilt shims (`bun run build:prebuilt`, packages/<target>/libsansio.so): each for
 * its machine, needing only its C library, glibc builds at GLIBC_2.17 at most; and each loaded
 * and called where this machine can: the host's by Bun through the loader, the musl builds by a
 * small C program linked with musl, the arm64 builds under qemu-user (the glibc one by Bun's own
 * arm64 build when SANSIO_ARM64_BUN names it; .ci/run fetches it). qemu-user has no io_uring, so
 * arm64 runs check the epoll path only.
 */
import { describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { checkShim, TOOLCHAINS } from "../../native/build.ts";
import { abiHash } from "../../src/sys/abi.ts";
import { TARGETS, type Target } from "../../src/sys/platform.ts";

const repo = join(import.meta.dir, "..", "..");
const shim = (t: Target) => join(repo, "packages", t, "libsansio.so");
const missing = TARGETS.filter((t) => !existsSync(shim(t)));
const why =
  missing.length > 0 ? `no prebuilt shims for ${missing.join(", ")} (bun run build:prebuilt)` : "";
if (why !== "" && process.env.CI === "true") throw new Error(`CI=true but ${why}`);
if (why !== "") console.warn(`skipping prebuilt shim tests: ${why}`);

const qemu = Bun.which("qemu-aarch64-static") ?? Bun.which("qemu-aarch64");
const arm64Bun = process.env.SANSIO_ARM64_BUN;
if (process.env.CI === "true" && (qemu === null || arm64Bun === undefined || !existsSync(arm64Bun)))
  throw new Error(
    "CI=true but qemu-aarch64-static or SANSIO_ARM64_BUN (Bun's arm64 build) is missing",
  );

/** Builds test/tools/shim-load.c with `cc` for the target's C library and CPU. */
function shimLoader(t: Target): string {
  const out = join(repo, "native", "build", "tools", `shim-load-${t}`);
  mkdirSync(join(repo, "native", "build", "tools"), { recursive: true });
  const cc = TOOLCHAINS[t].cc;
  const r = Bun.spawnSync(
    [cc, "-O2", "-o", out, join(repo, "test", "tools", "shim-load.c"), "-ldl"],
    {
      stderr: "pipe",
    },
  );
  if (!r.success) throw new Error(`${cc} shim-load.c: ${r.stderr}`);
  return out;
}

describe("the prebuilt shims", () => {
  for (const t of TARGETS) {
    test.skipIf(why !== "")(
      `${t}: its machine, only its C library, old enough glibc symbols`,
      () => {
        expect(checkShim(shim(t), TOOLCHAINS[t])).toBeUndefined();
      },
    );

    test.skipIf(why !== "" || (t.includes("arm64") && qemu === null))(
      `${t}: loads and answers (a C program on its C library${t.includes("arm64") ? ", under qemu" : ""})`,
      () => {
        const loader = shimLoader(t);
        const run = t.includes("arm64") ? [qemu as string, loader] : [loader];
        const r = Bun.spawnSync([...run, shim(t)], {
          stdout: "pipe",
          stderr: "pipe",
          timeout: 30_000,
        });
        expect(r.stderr.toString()).toBe("");
        expect(JSON.parse(r.stdout.toString())).toEqual({ abi: abiHash(), epoll: true, fds: 1 });
      },
      30_000,
    );
  }

  // built with this machine's cc: an x86-64 Debian's
  test.skipIf(process.arch !== "x64")(
    "the check refuses a library that needs a glibc symbol newer than 2.17, or another machine's",
    () => {
      const dir = join(repo, "native", "build", "tools");
      mkdirSync(dir, { recursive: true });
      const source = join(dir, "new-glibc.c");
      // fstat is GLIBC_2.33 in a build against this Debian's glibc
      writeFileSync(
        source,
        "#include <sys/stat.h>\nint f(int fd) { struct stat s; return fstat(fd, &s); }\n",
      );
      const out = join(dir, "new-glibc.so");
      expect(Bun.spawnSync(["cc", "-shared", "-fPIC", "-o", out, source]).success).toBe(true);
      expect(checkShim(out, TOOLCHAINS["linux-x64-gnu"])).toBe(
        "it needs GLIBC_2.33, newer than GLIBC_2.17",
      );
      expect(checkShim(out, TOOLCHAINS["linux-arm64-gnu"])).toBe(
        "its machine is Advanced Micro Devices X86-64, not AArch64",
      );
    },
  );

  test.skipIf(why !== "" || qemu === null || arm64Bun === undefined)(
    "linux-arm64-gnu: Bun's arm64 build loads it through the loader, under qemu, and echoes a datagram on epoll",
    () => {
      const r = Bun.spawnSync(
        [qemu as string, arm64Bun as string, join(import.meta.dir, "scripts", "epoll-echo.ts")],
        {
          env: { ...process.env, SANSIO_NATIVE: shim("linux-arm64-gnu") },
          stdout: "pipe",
          stderr: "pipe",
          timeout: 60_000,
        },
      );
      expect(r.stderr.toString()).toBe("");
      expect(JSON.parse(r.stdout.toString())).toEqual({ arch: "arm64", echoed: "ping", abi: true });
    },
    90_000,
  );
});
