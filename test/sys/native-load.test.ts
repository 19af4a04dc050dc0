/**
 * Every way loading the native shim can fail says what was tried and what to do: a missing
 * file, another CPU's shim, another C library's (both ways), a shim built for another ABI, an
 * unsupported platform, and a source build without a C compiler. (No prebuilt and no local
 * build at all: test/dist/install.test.ts.) Loads run in subprocesses: a process loads its
 * shim once.
 */
import { describe, expect, test } from "bun:test";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TOOLCHAINS } from "../../native/build.ts";
import { explainLoadFailure, localBuildPath } from "../../src/sys/native.ts";
import { hostTarget, targetOf } from "../../src/sys/platform.ts";

const repo = join(import.meta.dir, "..", "..");
const host = hostTarget() as string;
const prebuilt = (t: string) => join(repo, "packages", t, "libsansio.so");
/** The CPU that is not this one, among those with prebuilt shims. */
const otherCpu = process.arch === "x64" ? "arm64" : "x64";
const other = [`linux-${otherCpu}-gnu`, "linux-x64-musl"].filter((t) => !existsSync(prebuilt(t)));
const why = other.length > 0 ? `no prebuilt ${other.join(", ")} (bun run build:prebuilt)` : "";
if (why !== "" && process.env.CI === "true") throw new Error(`CI=true but ${why}`);

/** The error `native()` throws in a fresh process with `SANSIO_NATIVE` = `path`. */
function loadError(path: string): string {
  const r = Bun.spawnSync(
    [
      process.execPath,
      "-e",
      `import { native } from "${join(repo, "src", "sys", "native.ts")}";
       try { native(); console.log("loaded"); } catch (e) { console.log(String(e)); }`,
    ],
    { env: { ...process.env, SANSIO_NATIVE: path }, stdout: "pipe", stderr: "pipe" },
  );
  return r.stdout.toString().trim();
}

describe("loading the native shim", () => {
  test("SANSIO_NATIVE naming no file: said, with what SANSIO_NATIVE is for", () => {
    const message = loadError("/nonexistent/libsansio.so");
    expect(message).toBe(
      [
        `NativeLoadError: bun-sansio could not load its native shim for ${host}. Tried:`,
        "- SANSIO_NATIVE at /nonexistent/libsansio.so: no such file",
        "SANSIO_NATIVE names the shim to load: point it at a libsansio.so built for this machine, or unset it to use the prebuilt one.",
      ].join("\n"),
    );
  });

  test.skipIf(why !== "")("another CPU's shim: said, with the one to install", () => {
    expect(loadError(prebuilt(`linux-${otherCpu}-gnu`))).toContain(
      `: it was built for ${otherCpu} and this is ${process.arch}; the shim for this machine is @bun-sansio/${host}`,
    );
  });

  test.skipIf(why !== "")(
    "a musl shim on a glibc system: said, with the glibc build's name",
    () => {
      expect(loadError(prebuilt("linux-x64-musl"))).toContain(
        "it was built for musl and this system uses glibc (",
      );
      expect(loadError(prebuilt("linux-x64-musl"))).toContain(
        "the glibc build is @bun-sansio/linux-x64-gnu",
      );
    },
  );

  test.skipIf(why !== "")(
    "a glibc shim on a musl system: said, from what a musl process's dlopen says",
    () => {
      // a musl program that loads the glibc shim, for musl's real message
      const tool = join(repo, "native", "build", "tools", "shim-load-musl");
      mkdirSync(join(repo, "native", "build", "tools"), { recursive: true });
      const cc = TOOLCHAINS["linux-x64-musl"].cc;
      const built = Bun.spawnSync([
        cc,
        "-O2",
        "-o",
        tool,
        join(repo, "test", "tools", "shim-load.c"),
      ]);
      expect(built.success).toBe(true);
      const gnu = prebuilt("linux-x64-gnu");
      const r = Bun.spawnSync([tool, gnu], { stderr: "pipe" });
      const message = r.stderr
        .toString()
        .trim()
        .replace(/^dlopen: /, "");
      expect(message).toContain("ld-linux-x86-64.so.2");
      expect(explainLoadFailure(message, gnu, "musl")).toBe(
        `it was built for glibc and this system uses musl (${message}); the musl build is @bun-sansio/linux-x64-musl`,
      );
    },
  );

  test("a shim built for another version's ABI: refused, with what to do", () => {
    // this machine's shim, rebuilt from a header whose numbers changed
    const dir = mkdtempSync(join(tmpdir(), "sansio-abi-"));
    try {
      const header = readFileSync(join(localBuildPath(host), "..", "sansio_abi.h"), "utf8");
      writeFileSync(
        join(dir, "sansio_abi.h"),
        header.replace(/SIO_ABI_HASH 0x[0-9a-f]+u/, "SIO_ABI_HASH 0x1u"),
      );
      const liburing = Bun.spawnSync(["cc", "-print-file-name=liburing.a"])
        .stdout.toString()
        .trim();
      const sources = ["sockets.c", "tcp.c", "uring.c", "epoll.c", "tun.c", "ledger.c"].map((f) =>
        join(repo, "native", f),
      );
      const out = join(dir, "libsansio.so");
      const cc = Bun.spawnSync(
        ["cc", "-O1", "-fPIC", "-shared", `-I${dir}`, "-o", out, ...sources, liburing],
        {
          stderr: "pipe",
        },
      );
      expect(cc.stderr.toString()).toBe("");
      expect(loadError(out)).toContain(
        `: built for another version of bun-sansio (ABI 0x1, this one is 0x`,
      );
      expect(loadError(out)).toContain("): reinstall it, or rebuild with bun run build:native");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  test("a shim from before the ABI hash (or any library without the shim's functions): said", () => {
    const dir = mkdtempSync(join(tmpdir(), "sansio-old-"));
    try {
      writeFileSync(join(dir, "old.c"), "int sio_close(int fd) { return fd; }\n");
      const out = join(dir, "libsansio.so");
      const cc = Bun.spawnSync(["cc", "-shared", "-fPIC", "-o", out, join(dir, "old.c")]);
      expect(cc.success).toBe(true);
      expect(loadError(out)).toContain(
        `- SANSIO_NATIVE at ${out}: it has no sio_abi_hash: it was built for another version of bun-sansio; reinstall it, or rebuild with bun run build:native`,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("an unsupported platform is named", () => {
    expect(targetOf("darwin", "arm64", "glibc")).toBe(
      "bun-sansio needs Linux (io_uring, epoll); this is darwin",
    );
    expect(targetOf("linux", "riscv64", "glibc")).toBe(
      "bun-sansio runs on x64 and arm64 Linux; this is riscv64",
    );
    expect(targetOf("linux", "arm64", "musl")).toBe("linux-arm64-musl");
  });

  test("building from source with no C compiler: one line that says what to install, not a stack trace", () => {
    const dir = mkdtempSync(join(tmpdir(), "sansio-nocc-"));
    try {
      mkdirSync(join(dir, "bin"));
      symlinkSync(process.execPath, join(dir, "bin", "bun"));
      const r = Bun.spawnSync(["bun", join(repo, "native", "build.ts")], {
        env: { PATH: join(dir, "bin"), HOME: dir },
        stdout: "pipe",
        stderr: "pipe",
      });
      expect(r.exitCode).toBe(1);
      expect(r.stderr.toString()).toBe(
        'build:native: no C compiler ("cc" could not run). Install one (Debian/Ubuntu: apt-get install gcc liburing-dev; Alpine: apk add build-base liburing-dev), or set CC\n',
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
