/**
 * Running out of a limit gets an error that names the limit and how to raise it, and `"auto"`
 * falls back to epoll only for what epoll does without (io_uring missing, disabled, or unable to
 * lock memory), saying so once. Each case runs a child process under the lowered limit (prlimit;
 * the memlock case also drops root with setpriv, since root ignores RLIMIT_MEMLOCK). Needs root
 * and util-linux; elsewhere it skips with the reason, and under CI=true that is a failure.
 */
import { describe, expect, test } from "bun:test";

const root = process.getuid?.() === 0;
const tools = ["prlimit", "setpriv"].filter((t) => Bun.which(t) === null);
const why = !root ? "needs root" : tools.length > 0 ? `needs ${tools.join(", ")}` : "";
if (why !== "" && process.env.CI === "true") throw new Error(`CI=true but the limit tests ${why}`);
if (why !== "") console.warn(`skipping resource-limit tests: ${why}`);

const SCRIPT = `${import.meta.dir}/workers/limits.ts`;

function run(prefix: string[], ...scenario: string[]): Record<string, Record<string, unknown>> {
  const r = Bun.spawnSync([...prefix, process.execPath, SCRIPT, ...scenario], {
    stderr: "pipe",
    timeout: 30_000,
  });
  expect(r.stderr.toString()).toBe("");
  const steps = r.stdout
    .toString()
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l));
  return Object.fromEntries(steps.map((s: { step: string }) => [s.step, s]));
}

describe("resource limits", () => {
  test.skipIf(why !== "")(
    "out of file descriptors: named, with `ulimit -n`, and no fallback to epoll",
    () => {
      const steps = run(["prlimit", "--nofile=256:256"], "fds");
      for (const step of ["auto", "epoll"]) {
        expect(steps[step]).toMatchObject({ error: "ResourceLimitError", logged: [] });
        expect(steps[step]?.message).toMatch(
          /EMFILE: too many open files in this process \(limit 256\)/,
        );
        expect(steps[step]?.message).toContain("ulimit -n");
        expect(steps[step]?.message).not.toContain("io_uring is not usable");
      }
      expect(steps.listen?.event).toMatchObject({
        kind: "udp-listen-result",
        error: { code: "EMFILE" },
      });
      expect(JSON.stringify(steps.listen?.event)).toContain("ulimit -n");
    },
  );

  for (const kind of ["uring", "epoll"]) {
    test.skipIf(why !== "")(
      `${kind}: out of descriptors, accepting parks, retries now and then (no spin), and resumes once descriptors are back`,
      () => {
        const { "tcp-fds": r } = run(["prlimit", "--nofile=256:256"], "tcp-fds", kind);
        expect(r).toMatchObject({
          connected: 2,
          acceptedWhileOut: 0,
          accepted: 2,
          delivered: true,
        });
        // retried every 100 ms or so while out: a handful of times in half a second, not thousands
        expect(r?.parkedWhileOut as number).toBeGreaterThanOrEqual(2);
        expect(r?.parkedWhileOut as number).toBeLessThanOrEqual(12);
        // the poll slept between retries: it did not return at once again and again
        expect(r?.polls as number).toBeLessThanOrEqual(40);
      },
    );
  }

  test.skipIf(why !== "")(
    "io_uring unable to lock its memory: names `ulimit -l`; auto falls back once, saying so",
    () => {
      const nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"];
      const steps = run(["prlimit", "--memlock=65536:65536", ...nobody], "memlock");
      expect(steps.auto).toMatchObject({ ok: "epoll" });
      const logged = steps.auto?.logged as string[];
      expect(logged).toHaveLength(1);
      expect(logged[0]).toContain("io_uring could not lock memory for its rings (ENOMEM)");
      expect(logged[0]).toContain("ulimit -l");
      expect(logged[0]).toContain("using the epoll backend");
      expect(logged[0]).not.toContain("recvBuffer");
      expect(logged[0]).not.toMatch(/use backend: "auto"/);
      expect(steps["auto again"]).toMatchObject({ ok: "epoll", logged: [] }); // said once
      expect(steps.uring).toMatchObject({ error: "UringUnavailableError" });
      expect(steps.uring?.message).toContain("ulimit -l");
      expect(steps.uring?.message).toContain('use backend: "epoll"');
    },
  );
});
