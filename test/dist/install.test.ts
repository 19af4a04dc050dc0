/**
 * What a user gets from `bun add bun-sansio`: the project and its four platform packages are
 * packed (`bun pm pack`), the platform packages served by a registry on 127.0.0.1 that this test
 * runs (Bun picks an optional dependency by `os`, `cpu` and `libc` only from a registry), and the
 * tarball added to a fresh project with lifecycle scripts disabled and no C compiler on PATH.
 * Then a program there imports `bun-sansio`, starts 2 workers and echoes datagrams, on io_uring
 * and on epoll; and without the platform package it fails with the loader's advice.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { hostTarget, TARGETS } from "../../src/sys/platform.ts";

const repo = join(import.meta.dir, "..", "..");
const missing = TARGETS.filter((t) => !existsSync(join(repo, "packages", t, "libsansio.so")));
const why =
  missing.length > 0 ? `no prebuilt shims for ${missing.join(", ")} (bun run build:prebuilt)` : "";
if (why !== "" && process.env.CI === "true") throw new Error(`CI=true but ${why}`);
if (why !== "") console.warn(`skipping the install test: ${why}`);

const VERSION = (await Bun.file(join(repo, "package.json")).json()).version as string;
let dir = "";
let registry: ReturnType<typeof Bun.serve> | undefined;
/** A PATH holding `bun` and nothing else: no compiler, no other tools. */
let bareEnv: Record<string, string> = {};

/**
 * Runs `args` in `cwd` with the bare environment; its success and output. Asynchronously: the
 * registry it may talk to runs in this process.
 */
async function run(args: string[], cwd: string) {
  const p = Bun.spawn(args, { cwd, env: bareEnv, stdout: "pipe", stderr: "pipe" });
  const timer = setTimeout(() => p.kill(), 120_000);
  const [out, err, code] = await Promise.all([
    new Response(p.stdout).text(),
    new Response(p.stderr).text(),
    p.exited,
  ]);
  clearTimeout(timer);
  return { ok: code === 0, out, err };
}

/** Packs the package in `from` into `dir`; returns the tarball's path. */
function pack(from: string): string {
  const r = Bun.spawnSync(
    [process.execPath, "pm", "pack", "--destination", join(dir, "tarballs"), "--quiet"],
    {
      cwd: from,
      stdout: "pipe",
      stderr: "pipe",
    },
  );
  if (!r.success) throw new Error(`bun pm pack in ${from}: ${r.stderr}`);
  return r.stdout.toString().trim().split("\n").at(-1) as string;
}

/** The registry's answer for package `name`: its one version, with os/cpu/libc and the tarball. */
async function metadata(name: string, base: string): Promise<object | undefined> {
  const target = name.replace("@bun-sansio/", "");
  if (!(TARGETS as readonly string[]).includes(target)) return undefined;
  const manifest = await Bun.file(join(repo, "packages", target, "package.json")).json();
  const file = join(dir, "tarballs", `bun-sansio-${target}-${VERSION}.tgz`);
  const bytes = new Uint8Array(await Bun.file(file).arrayBuffer());
  const sha512 = new Bun.CryptoHasher("sha512").update(bytes).digest("base64");
  const sha1 = new Bun.CryptoHasher("sha1").update(bytes).digest("hex");
  return {
    name,
    "dist-tags": { latest: VERSION },
    versions: {
      [VERSION]: {
        ...manifest,
        dist: {
          tarball: `${base}/tarballs/${target}.tgz`,
          integrity: `sha512-${sha512}`,
          shasum: sha1,
        },
      },
    },
  };
}

beforeAll(async () => {
  if (why !== "") return;
  dir = mkdtempSync(join(tmpdir(), "sansio-install-"));
  mkdirSync(join(dir, "tarballs"));
  mkdirSync(join(dir, "bin"));
  symlinkSync(process.execPath, join(dir, "bin", "bun"));
  bareEnv = {
    PATH: join(dir, "bin"),
    HOME: dir,
    BUN_INSTALL_CACHE_DIR: join(dir, "cache"),
    TMPDIR: dir,
  };
  pack(repo);
  for (const t of TARGETS) pack(join(repo, "packages", t));
  registry = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      const url = new URL(req.url);
      const tarball = /^\/tarballs\/([a-z0-9-]+)\.tgz$/.exec(url.pathname);
      if (tarball !== null) {
        return new Response(
          Bun.file(join(dir, "tarballs", `bun-sansio-${tarball[1]}-${VERSION}.tgz`)),
        );
      }
      const body = await metadata(decodeURIComponent(url.pathname.slice(1)), url.origin);
      return body === undefined ? new Response("not found", { status: 404 }) : Response.json(body);
    },
  });
  // the user's project
  const app = join(dir, "app");
  mkdirSync(app);
  writeFileSync(
    join(app, "package.json"),
    JSON.stringify({ name: "app", type: "module", private: true }),
  );
  writeFileSync(
    join(app, "bunfig.toml"),
    `[install.scopes]\n"@bun-sansio" = "http://127.0.0.1:${registry.port}/"\n`,
  );
  cpSync(join(import.meta.dir, "scripts", "app-echo.ts"), join(app, "echo.ts"));
  cpSync(join(repo, "examples", "udp-echo-worker.ts"), join(app, "udp-echo-worker.ts"));
});

afterAll(() => {
  registry?.stop(true);
  if (dir !== "") rmSync(dir, { recursive: true, force: true });
});

describe("bun add bun-sansio", () => {
  test.skipIf(why !== "")(
    "installs with no compiler and no install scripts, picks this platform's shim, and runs workers on io_uring and epoll",
    async () => {
      const app = join(dir, "app");
      expect(Bun.which("cc", { PATH: bareEnv.PATH as string })).toBeNull();
      const tarball = join(dir, "tarballs", `bun-sansio-${VERSION}.tgz`);
      const added = await run(["bun", "add", "--ignore-scripts", tarball], app);
      expect(added.err).not.toContain("error");
      expect(added.ok).toBe(true);
      // only this platform's package, chosen by os, cpu and libc
      expect(readdirSync(join(app, "node_modules", "@bun-sansio"))).toEqual([hostTarget()]);
      for (const backend of ["uring", "epoll"]) {
        const r = await run(["bun", "echo.ts", backend], app);
        expect(r.err).toBe("");
        expect(JSON.parse(r.out)).toEqual({ backend, echoed: 100, intact: 100, stopped: [0, 1] });
      }
    },
    180_000,
  );

  test.skipIf(why !== "")(
    "without the platform package (optional dependencies left out), the error says what was tried and what to do",
    async () => {
      const app = join(dir, "app");
      const pkg = join(app, "node_modules", "@bun-sansio");
      rmSync(pkg, { recursive: true, force: true });
      const r = await run(["bun", "echo.ts", "epoll"], app);
      expect(r.ok).toBe(false);
      const target = hostTarget() as string;
      expect(r.err).toContain(`bun-sansio could not load its native shim for ${target}. Tried:`);
      expect(r.err).toContain("- the local build (bun run build:native) at ");
      expect(r.err).toContain(`Install the prebuilt shim: bun add @bun-sansio/${target}`);
      expect(r.err).toContain("Bun does not run a dependency's install scripts");
    },
    60_000,
  );
});
