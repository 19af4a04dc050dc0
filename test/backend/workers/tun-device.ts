/**
 * TUN/TAP device scenarios for tun-device.test.ts, run in a private network namespace (and, for
 * some, without CAP_NET_ADMIN or without /dev/net/tun). Prints one JSON line per step.
 */
import { TunDevice, TunError } from "../../../src/index.ts";

function ip(...args: string[]): string {
  return Bun.spawnSync(["ip", ...args]).stdout.toString();
}

function attempt(step: string, run: () => unknown): void {
  try {
    console.log(JSON.stringify({ step, ok: run() ?? true }));
  } catch (e) {
    const error = e instanceof TunError ? { code: e.code, message: e.message } : String(e);
    console.log(JSON.stringify({ step, error }));
  }
}

const scenario = process.argv[2];
if (scenario === "lifecycle") {
  let dev: TunDevice | undefined;
  attempt("create", () => {
    dev = TunDevice.create({ name: "sio0", address: "10.77.0.1/24", mtu: 1400 });
    return { name: dev.name, queues: dev.queues.length };
  });
  attempt("kernel view", () =>
    ip("-o", "addr", "show", "dev", "sio0").includes("inet 10.77.0.1/24"),
  );
  attempt("mtu and up", () =>
    /mtu 1400 .*state (UNKNOWN|UP)|UP.*mtu 1400/.test(ip("-o", "link", "show", "sio0")),
  );
  attempt("same name again", () => TunDevice.create({ name: "sio0" }));
  attempt("down", () => {
    dev?.setUp(false);
    return !ip("-o", "link", "show", "sio0").includes(",UP");
  });
  attempt("close", () => {
    dev?.close();
    return ip("-o", "link", "show", "sio0").trim() === "";
  });
  attempt("multi-queue tap", () => {
    const tap = TunDevice.create({ name: "siotap%d", mode: "tap", queues: 3 });
    const shown = ip("-d", "-o", "link", "show", tap.name);
    tap.close();
    return {
      name: tap.name,
      queues: tap.queues.length,
      tap: shown.includes("tap"),
      multi: shown.includes("multi_queue"),
    };
  });
  attempt("name taken by another kind", () => TunDevice.create({ name: "lo" }));
} else {
  attempt("create", () => TunDevice.create({ name: "sio0" }).name);
}
