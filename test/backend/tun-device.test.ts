/**
 * TUN/TAP devices, in a private network namespace per run (`unshare --net`): create, configure,
 * multi-queue TAP, destroy, and the readable errors. Needs root (CI runs as root); elsewhere the
 * namespace tests skip with the reason printed, and under CI=true a missing prerequisite fails.
 */
import { describe, expect, test } from "bun:test";
import { TunDevice, TunError } from "../../src/index.ts";

const root = process.getuid?.() === 0;
const tools = ["unshare", "ip", "setpriv"].filter((t) => Bun.which(t) === null);
const why = !root ? "needs root" : tools.length > 0 ? `needs ${tools.join(", ")}` : "";
if (why !== "" && process.env.CI === "true") throw new Error(`CI=true but the TUN tests ${why}`);
if (why !== "") console.warn(`skipping TUN device namespace tests: ${why}`);

type Step = { step: string; ok?: unknown; error?: { code: string; message: string } };

function scenario(name: string, wrap: string[] = []): Record<string, Step> {
  const script = `${import.meta.dir}/workers/tun-device.ts`;
  const r = Bun.spawnSync([...wrap, "unshare", "--net", process.execPath, script, name], {
    stderr: "pipe",
  });
  expect(r.stderr.toString()).toBe("");
  const steps = r.stdout
    .toString()
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as Step);
  return Object.fromEntries(steps.map((s) => [s.step, s]));
}

describe("TUN/TAP devices", () => {
  test("bad names and addresses are refused before touching the kernel", () => {
    for (const name of ["", "a".repeat(16), "with space", "a/b", "a:b", ".."]) {
      expect(() => TunDevice.create({ name })).toThrow(TunError);
      expect(() => TunDevice.create({ name })).toThrow("invalid interface name");
    }
    expect(() => TunDevice.create({ name: "ok0", address: "10.0.0.300/24" })).toThrow(
      "invalid IPv4 address/prefix",
    );
    expect(() => TunDevice.create({ name: "ok0", address: "10.0.0.1" })).toThrow(TunError);
    expect(() => TunDevice.create({ name: "ok0", queues: 0 })).toThrow(RangeError);
  });

  test.skipIf(why !== "")("create, configure, bring down, destroy; multi-queue TAP", () => {
    const s = scenario("lifecycle");
    expect(s.create?.ok).toEqual({ name: "sio0", queues: 1 });
    expect(s["kernel view"]?.ok).toBe(true);
    expect(s["mtu and up"]?.ok).toBe(true);
    expect(s["same name again"]?.error).toEqual({
      code: "EBUSY",
      message: "device name sio0 is already in use",
    });
    expect(s.down?.ok).toBe(true);
    expect(s.close?.ok).toBe(true); // gone from the kernel once its queue is closed
    expect(s["multi-queue tap"]?.ok).toEqual({
      name: "siotap0",
      queues: 3,
      tap: true,
      multi: true,
    });
    expect(s["name taken by another kind"]?.error?.code).toBe("EINVAL");
    expect(s["name taken by another kind"]?.error?.message).toContain("another kind");
  });

  test.skipIf(why !== "")("without CAP_NET_ADMIN the error says so", () => {
    const s = scenario("create", ["setpriv", "--bounding-set=-net_admin", "--inh-caps=-net_admin"]);
    expect(s.create?.error?.code).toBe("EPERM");
    expect(s.create?.error?.message).toContain("needs CAP_NET_ADMIN");
  });

  test.skipIf(why !== "")("without /dev/net/tun the error says what to do", () => {
    const s = scenario("create", [
      "unshare",
      "--mount",
      "sh",
      "-c",
      'mount -t tmpfs none /dev/net && exec "$@"',
      "sh",
    ]);
    expect(s.create?.error?.code).toBe("ENOENT");
    expect(s.create?.error?.message).toContain("no /dev/net/tun here: load the tun module");
  });
});
