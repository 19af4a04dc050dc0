/**
 * The standalone binaries of `bun run build:bin`, copied alone into an empty directory and run
 * there with nothing else on PATH: the echo server with 2 workers driven by the compiled client
 * for 2 s (every datagram back intact, a clean shutdown), and the compiled tun-ping answering
 * ping in a network namespace.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { copyFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Namespace } from "../examples/tun-namespace.ts";

const repo = join(import.meta.dir, "..", "..");
const BINARIES = [
  "udp-echo-server",
  "udp-echo-client",
  "tcp-echo-server",
  "tcp-echo-client",
  "tun-ping",
];
const root = process.getuid?.() === 0;
const tools = ["ip", "ping"].filter((t) => Bun.which(t) === null);
const tunWhy = !root ? "needs root" : tools.length > 0 ? `needs ${tools.join(", ")}` : "";
if (tunWhy !== "" && process.env.CI === "true")
  throw new Error(`CI=true but the compiled tun-ping test ${tunWhy}`);

let dir = "";
/** Nothing on PATH: the binaries need no Bun, no compiler, no tools. */
const bare = { PATH: "/nonexistent" };

beforeAll(() => {
  const built = Bun.spawnSync([process.execPath, join(repo, "examples", "build-bin.ts")], {
    stdout: "pipe",
    stderr: "pipe",
  });
  if (!built.success) throw new Error(`build:bin failed: ${built.stderr}`);
  dir = mkdtempSync(join(tmpdir(), "sansio-bin-"));
  for (const name of BINARIES) copyFileSync(join(repo, "dist", "bin", name), join(dir, name));
}, 120_000);

afterAll(() => {
  if (dir !== "") rmSync(dir, { recursive: true, force: true });
});

let ns: Namespace | undefined;
afterEach(() => {
  ns?.remove();
  ns = undefined;
});

/** Reads `stream` into `sink.text` until it ends. */
async function collect(stream: ReadableStream<Uint8Array>, sink: { text: string }): Promise<void> {
  const decoder = new TextDecoder();
  for await (const chunk of stream) sink.text += decoder.decode(chunk);
}

/** What one run of a compiled echo server and its client printed. */
interface EchoRun {
  readonly client: string;
  readonly clientErr: string;
  readonly exitCode: number;
  readonly out: string;
  readonly err: string;
}

/**
 * Starts `./SERVER --port 0 --workers 2 --quiet` from the empty directory, runs `./CLIENT --port
 * PORT ...clientArgs` against it, then stops the server with SIGINT and waits for it to exit.
 */
async function echoRun(server: string, client: string, clientArgs: string[]): Promise<EchoRun> {
  const proc = Bun.spawn([`./${server}`, "--port", "0", "--workers", "2", "--quiet"], {
    cwd: dir,
    env: bare,
    stdout: "pipe",
    stderr: "pipe",
  });
  const out = { text: "" };
  const err = { text: "" };
  const reading = Promise.all([collect(proc.stdout, out), collect(proc.stderr, err)]);
  const deadline = Date.now() + 20_000;
  while (!out.text.includes("listening") && proc.exitCode === null && Date.now() < deadline)
    await Bun.sleep(20);
  const port = /listening 127\.0\.0\.1:(\d+) \(2 workers, (\w+) backend\)/.exec(out.text);
  if (port === null) {
    proc.kill();
    await reading;
    throw new Error(`${server} did not report listening: ${out.text} ${err.text}`);
  }
  const ran = Bun.spawnSync([`./${client}`, "--port", String(port[1]), ...clientArgs], {
    cwd: dir,
    env: bare,
    stdout: "pipe",
    stderr: "pipe",
    timeout: 30_000,
  });
  proc.kill("SIGINT");
  const exitCode = await proc.exited;
  await reading;
  return {
    client: ran.stdout.toString(),
    clientErr: ran.stderr.toString(),
    exitCode,
    out: out.text,
    err: err.text,
  };
}

describe("standalone binaries (bun run build:bin)", () => {
  test("the TCP echo server with 2 workers and its client, from an empty directory: every byte back, a clean stop", async () => {
    const run = await echoRun("tcp-echo-server", "tcp-echo-client", [
      ...["--seconds", "2", "--connections", "20"],
    ]);
    expect(run.clientErr).toBe("");
    expect(run.client).toContain("errors 0, corrupt 0");
    expect(run.client).toContain("result: ok");
    expect(run.exitCode).toBe(0);
    expect(run.err).toBe("");
    expect(run.out).toMatch(
      /stopped: 20 connections, [1-9]\d* bytes echoed, 0 ended by the peer or an error; workers stopped \[0,1\], terminated \[\], dead \[\]/,
    );
  }, 60_000);

  test("the echo server with 2 workers and the client, from an empty directory: every datagram back, a clean stop", async () => {
    const run = await echoRun("udp-echo-server", "udp-echo-client", ["--seconds", "2"]);
    expect(run.clientErr).toBe("");
    expect(run.client).toContain("result: ok");
    const sent = Number(/sent (\d+), echoed intact (\d+), lost 0 /.exec(run.client)?.[1]);
    expect(run.client).toContain(`echoed intact ${sent}, lost 0 (0.000%), late 0, corrupt 0`);
    expect(sent).toBeGreaterThan(1000);
    expect(run.exitCode).toBe(0);
    expect(run.err).toBe("");
    expect(run.out).toContain(
      `stopped: ${sent} datagrams echoed, 0 too large dropped; workers stopped [0,1], terminated [], dead []`,
    );
  }, 60_000);

  /** Runs test/dist/scripts/kinds/`name`.ts by bun, then compiled from the empty directory. */
  function bothWays(name: string): { bun: string; compiled: string } {
    const script = join(import.meta.dir, "scripts", "kinds", `${name}.ts`);
    const byBun = Bun.spawnSync([process.execPath, script], { stdout: "pipe", timeout: 30_000 });
    const built = Bun.spawnSync(
      [process.execPath, "build", "--compile", script, "--outfile", join(dir, name)],
      { stdout: "pipe", stderr: "pipe" },
    );
    if (!built.success) throw new Error(`bun build --compile ${script}: ${built.stderr}`);
    const compiled = Bun.spawnSync([`./${name}`], {
      cwd: dir,
      env: bare,
      stdout: "pipe",
      timeout: 30_000,
    });
    return { bun: byBun.stdout.toString().trim(), compiled: compiled.stdout.toString().trim() };
  }

  test("several worker kinds in one binary: each worker runs its own definition", () => {
    const expected = JSON.stringify({ said: ["b", "a", "b"], stopped: [0, 1, 2] });
    expect(bothWays("main")).toEqual({ bun: expected, compiled: expected });
  }, 60_000);

  test("a worker definition made inside a function is refused, saying why", () => {
    const refused =
      "refused: worker 0: this worker re-ran the main module to reach worker definition #0, and the main module's own code started instead: make worker definitions at the top level of modules the main module imports (statically), not inside functions or dynamic imports";
    expect(bothWays("late")).toEqual({ bun: refused, compiled: refused });
  }, 60_000);

  test.skipIf(tunWhy !== "")(
    "tun-ping in a network namespace answers ping, and removes its device on SIGTERM",
    async () => {
      ns = new Namespace();
      const ready = await ns.startCommand(
        [join(dir, "tun-ping")],
        ["--name", "cping0", "--addr", "10.78.0.1/24"],
      );
      expect(ready).toContain("ready");
      const ping = ns.run("ping", "-c", "3", "-i", "0.2", "-W", "2", "10.78.0.2");
      expect(ping.out).toContain("3 packets transmitted, 3 received");
      const { code, stderr, counters } = await ns.stop();
      expect(stderr).toBe("");
      expect(code).toBe(0);
      expect(counters["echo-reply"]).toBe(3);
      expect(ns.output).toContain("stopped: device cping0 removed");
    },
    60_000,
  );
});
