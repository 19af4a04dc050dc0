/** A network namespace for the tun-ping example's tests (root and `ip` needed). */
import { join } from "node:path";

const repo = join(import.meta.dir, "..", "..");

/** The counters tun-ping prints in its stats lines. */
export type Counters = Record<string, number> & { perWorker: number[] };

/** A network namespace of its own with examples/tun-ping.ts (or its binary) running in it. */
export class Namespace {
  static #count = 0;
  readonly name = `siot${process.pid}x${Namespace.#count++}`;
  proc: Bun.Subprocess<"ignore", "pipe", "pipe"> | undefined;
  output = "";
  /** Settles once the program's stdout has ended and all of it is in `output`. */
  drained: Promise<void> = Promise.resolve();

  constructor() {
    const r = Bun.spawnSync(["ip", "netns", "add", this.name]);
    if (!r.success) throw new Error(`ip netns add failed: ${r.stderr}`);
  }

  /** Runs a command inside the namespace and returns its output. */
  run(...cmd: string[]): { ok: boolean; out: string } {
    const r = Bun.spawnSync(["ip", "netns", "exec", this.name, ...cmd], { timeout: 30_000 });
    return { ok: r.success, out: r.stdout.toString() + r.stderr.toString() };
  }

  /** Starts the example with `args` and waits for its "ready" line. */
  start(...args: string[]): Promise<string> {
    return this.startCommand([process.execPath, join(repo, "examples", "tun-ping.ts")], args);
  }

  /** Starts `command` (the example, run some way) with `args`; waits for its "ready" line. */
  async startCommand(command: readonly string[], args: readonly string[]): Promise<string> {
    this.proc = Bun.spawn(["ip", "netns", "exec", this.name, ...command, ...args], {
      stdout: "pipe",
      stderr: "pipe",
    });
    const reader = this.proc.stdout.getReader();
    const decoder = new TextDecoder();
    const deadline = Date.now() + 20_000;
    while (!this.output.includes("ready") && Date.now() < deadline) {
      const { value, done } = await reader.read();
      if (done) break;
      this.output += decoder.decode(value);
    }
    this.drained = (async () => {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        this.output += decoder.decode(value);
      }
    })();
    if (!this.output.includes("ready")) {
      throw new Error(
        `no ready line: ${this.output} ${await new Response(this.proc.stderr).text()}`,
      );
    }
    return this.output;
  }

  /** Sends SIGTERM, waits for the exit, and returns the code, stderr and the last counters. */
  async stop(): Promise<{ code: number; stderr: string; counters: Counters }> {
    const proc = this.proc as Bun.Subprocess<"ignore", "pipe", "pipe">;
    this.proc = undefined;
    proc.kill("SIGTERM");
    const code = await proc.exited;
    const stderr = await new Response(proc.stderr).text();
    await this.drained;
    const lines = this.output.split("\n").filter((l) => l.startsWith("stats "));
    const counters = JSON.parse((lines.at(-1) ?? "stats {}").slice(6)) as Counters;
    return { code, stderr, counters };
  }

  remove(): void {
    this.proc?.kill("SIGKILL");
    Bun.spawnSync(["ip", "netns", "del", this.name]);
  }
}
