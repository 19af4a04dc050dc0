/**
 * The TCP echo example end to end on both backends: the server (2 workers on one port, grouped
 * tasks) and the client as separate processes, every byte checked, a clean stop on SIGINT.
 */
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { KINDS } from "../backend/harness.ts";

const examples = join(import.meta.dir, "..", "..", "examples");

describe.each(KINDS)("TCP echo example (%s)", (backend) => {
  test("64 B and 16 KiB requests over 20 connections come back intact; SIGINT stops it cleanly", async () => {
    const server = Bun.spawn(
      [process.execPath, join(examples, "tcp-echo-server.ts")].concat([
        "--port",
        "0",
        "--workers",
        "2",
        "--backend",
        backend,
        "--quiet",
      ]),
      { stdout: "pipe", stderr: "pipe" },
    );
    try {
      const reader = server.stdout.getReader();
      let out = "";
      while (!out.includes("\n")) {
        const { value, done } = await reader.read();
        if (done) break;
        out += new TextDecoder().decode(value);
      }
      const m = /listening 127\.0\.0\.1:(\d+) \(2 workers, (\w+) backend\)/.exec(out);
      expect(m, out).not.toBeNull();
      expect(m?.[2]).toBe(backend);
      for (const size of ["64", "16384"]) {
        const client = Bun.spawnSync(
          [process.execPath, join(examples, "tcp-echo-client.ts")].concat(
            ["--port", String(m?.[1]), "--seconds", "1.5", "--connections", "20"],
            ["--size", size, "--backend", backend],
          ),
          { stdout: "pipe", stderr: "pipe", timeout: 30_000 },
        );
        const report = client.stdout.toString();
        expect(report, client.stderr.toString()).toContain("result: ok");
        expect(report).toContain("errors 0, corrupt 0");
        expect(Number(/requests (\d+),/.exec(report)?.[1])).toBeGreaterThan(100);
      }
      server.kill("SIGINT");
      expect(await server.exited).toBe(0);
      let rest = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        rest += new TextDecoder().decode(value);
      }
      expect(rest).toMatch(/stopped: 40 connections, \d+ bytes echoed, 0 ended by the peer/);
      expect(rest).toContain("dead []");
    } finally {
      server.kill("SIGKILL");
    }
  }, 30_000);
});
