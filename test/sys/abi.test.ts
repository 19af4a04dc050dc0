/**
 * The shim's ABI has one source, src/sys/abi.ts: the built header must be the one it generates,
 * the C sources must not define those numbers themselves, and C code whose structs disagree with
 * it must not compile.
 */
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { abiHash, abiHeader, Cmd } from "../../src/sys/abi.ts";
import { localBuildPath, native } from "../../src/sys/native.ts";
import { hostTarget } from "../../src/sys/platform.ts";

const NATIVE = join(import.meta.dir, "..", "..", "native");
const cc = process.env.CC ?? "cc";
const compiler = Bun.which(cc) !== null;
if (!compiler && process.env.CI === "true") throw new Error(`CI=true but no C compiler (${cc})`);
if (!compiler) console.warn(`skipping the ABI compile checks: no C compiler (${cc})`);

/** Compiles native/uring.c (syntax and static assertions only) against `header`. */
function compileUring(header: string): { ok: boolean; errors: string } {
  const dir = join(tmpdir(), `sansio-abi-${process.pid}-${Math.random().toString(36).slice(2)}`);
  Bun.spawnSync(["mkdir", "-p", dir]);
  writeFileSync(join(dir, "sansio_abi.h"), header);
  const r = Bun.spawnSync(
    [cc, "-fsyntax-only", "-Wall", "-Werror", `-I${dir}`, join(NATIVE, "uring.c")],
    { stderr: "pipe" },
  );
  Bun.spawnSync(["rm", "-rf", dir]);
  return { ok: r.success, errors: r.stderr.toString() };
}

describe("the shim's ABI", () => {
  test("the shim was built from the ABI as it is now (else: bun run build:native)", () => {
    const built = readFileSync(join(localBuildPath(hostTarget()), "..", "sansio_abi.h"), "utf8");
    expect(built).toBe(abiHeader());
    // and the shim the loader takes says so itself
    expect(native().sio_abi_hash()).toBe(abiHash());
  });

  test("no C source defines an ABI number itself", () => {
    for (const file of readdirSync(NATIVE).filter((f) => /\.[ch]$/.test(f))) {
      const text = readFileSync(join(NATIVE, file), "utf8");
      expect(text).not.toMatch(/#define\s+SIO_(OP|CMD|CQE|INFO|PROBE|EPOLL)_/);
      expect(text).not.toMatch(/SIO_OP_\w+\s*=/);
    }
  });

  test.skipIf(!compiler)("C structs that disagree with the ABI do not compile", () => {
    expect(compileUring(abiHeader())).toMatchObject({ ok: true });
    const moved = abiHeader().replace(
      `#define SIO_CMD_DST ${Cmd.DST}`,
      `#define SIO_CMD_DST ${Cmd.DST + 4}`,
    );
    const r = compileUring(moved);
    expect(r.ok).toBe(false);
    expect(r.errors).toContain("sio_cmd_t.dst");
  });
});
