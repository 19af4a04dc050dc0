import { expect, test } from "bun:test";

test("the task demo runs and prints outputs in two-level switcher order", async () => {
  const proc = Bun.spawn([process.execPath, "examples/task-demo.ts"], {
    cwd: `${import.meta.dir}/../..`,
    stdout: "pipe",
    stderr: "pipe",
  });
  const [out, err, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  expect(err).toBe("");
  expect(code).toBe(0);
  const lines = out.split("\n").map((l) => l.trim());
  const at = (line: string) => {
    const i = lines.indexOf(line);
    expect(i, `missing line: ${line}`).toBeGreaterThanOrEqual(0);
    return i;
  };
  // tick: group 0 tasks in slot order, then group 1
  expect(at("[sessions] task 0 output   alice: keepalive @0ms")).toBeLessThan(
    at("[sessions] task 2 output   carol: keepalive @0ms"),
  );
  expect(at("[sessions] task 2 output   carol: keepalive @0ms")).toBeLessThan(
    at("[meters  ] task 0 output   rx-meter: 0 packets @0ms"),
  );
  // the event drained bob only, both of his outputs back to back
  const hello = at("[sessions] task 1 output   bob: HELLO!");
  expect(lines[hello + 1]).toBe("[sessions] task 1 output   bob: (that one was loud)");
  expect(lines[hello + 2]).toStartWith("event for rx-meter");
  expect(at("[meters  ] task 0 output   rx-meter: 42 packets @10ms")).toBeGreaterThan(hello);
  // shutdown: each group's empty event exactly once, after its tasks finished
  expect(lines.filter((l) => l === "[sessions] group is empty")).toHaveLength(1);
  expect(lines.filter((l) => l === "[meters  ] group is empty")).toHaveLength(1);
  expect(at("[sessions] task 2 finished carol: closed")).toBeLessThan(
    at("[sessions] group is empty"),
  );
  expect(lines).toContain("done: 0 tasks left, worker empty = true");
});
