/**
 * TUN packet I/O through both backends (and io_uring with one read per packet), in a private
 * network namespace per run: kernel to device and back (zero-copy), a checked burst both ways,
 * truncation, refused writes, bad binds, unbind and re-bind, the device's drops in kernelDrops,
 * and a device deleted under a bound queue. Needs root (CI runs as root); elsewhere it skips with
 * the reason printed, and under CI=true a missing prerequisite fails.
 */
import { describe, expect, test } from "bun:test";
import { probeUring } from "../../src/index.ts";

const root = process.getuid?.() === 0;
const tools = ["unshare", "ip"].filter((t) => Bun.which(t) === null);
const why = !root ? "needs root" : tools.length > 0 ? `needs ${tools.join(", ")}` : "";
if (why !== "" && process.env.CI === "true")
  throw new Error(`CI=true but the TUN I/O tests ${why}`);
if (why !== "") console.warn(`skipping TUN I/O tests: ${why}`);

function scenario(...args: string[]): Record<string, unknown> {
  const script = `${import.meta.dir}/workers/tun-io.ts`;
  const r = Bun.spawnSync(["unshare", "--net", process.execPath, script, ...args], {
    stderr: "pipe",
    timeout: 60_000,
  });
  expect(r.stderr.toString()).toBe("");
  const lines = r.stdout.toString().trim().split("\n");
  return Object.fromEntries(
    lines.map((l) => {
      const s = JSON.parse(l) as { step: string; ok: unknown };
      return [s.step, s.ok];
    }),
  );
}

const RUNS: [string, string[], boolean | null][] = [
  ["uring (multishot read where the kernel has it)", ["uring"], probeUring().multishotRead],
  ["uring (one read per packet)", ["uring", "single"], false],
  ["epoll", ["epoll"], null],
];

describe.each(RUNS)("TUN I/O: %s", (_label, args, multishot) => {
  test.skipIf(why !== "")("packets both ways, errors as events", () => {
    const s = scenario(...args);
    expect(s.bind).toEqual({ kind: "tun-bind-result", device: 1 });
    expect(s["multishot read"]).toBe(multishot);
    expect(s["kernel to device"]).toEqual({
      size: 33,
      truncated: false,
      src: "10.99.0.1",
      dst: "10.99.0.2",
      payload: "hello",
    });
    expect(s["device to kernel, zero-copy"]).toEqual({
      from: "10.99.0.2:9999",
      payload: "echo me",
      zeroCopy: 1,
    });
    expect(s["written packet"]).toEqual({ from: "10.99.0.3:7", payload: "crafted" });
    expect(s.burst).toEqual({
      toDevice: 300,
      toDeviceIntact: true,
      fromDevice: 300,
      fromDeviceIntact: true,
    });
    // 3000 B of UDP payload through a 2048 B receive buffer: cut, flagged, real size from the header
    expect(s.truncated).toEqual({ size: 3028, length: 2048, truncated: true });
    expect(s["send errors"]).toEqual(["1:EMSGSIZE", "42:EBADF", "1:EINVAL"]);
    expect(s["bind errors"]).toEqual(["1:EEXIST", "2:EEXIST", "3:ENOTTY", "4:EBADF", "5:EBADF"]);
    expect(s.unbind).toEqual({ event: { kind: "tun-unbound", device: 1 }, sockets: 1 });
    expect(s["bound again"]).toEqual({ device: 6 });
    expect(s["kernel drops"]).toEqual({ before: 0, counted: true, accounted: true });
    expect(s["device deleted"]).toEqual({ code: "EBADFD", sockets: 1 });
    expect(s.stats).toEqual({ sendErrors: 3, truncated: 1 });
  });
});
