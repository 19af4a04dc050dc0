/**
 * examples/tun-ping.ts end to end, each test in a network namespace it creates and removes:
 * ping through the device on both backends, malformed and random packets sent into the device
 * (dropped, counted, never answered, the worker keeps serving), TAP mode with ARP, and a
 * two-queue device with two workers. Needs root, `ip`, `ping` and a C compiler (CI has them all);
 * elsewhere the tests skip with the reason printed, and under CI=true a missing one fails.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { internetChecksum } from "../../examples/ping-responder.ts";
import { Namespace } from "./tun-namespace.ts";

const repo = join(import.meta.dir, "..", "..");
const root = process.getuid?.() === 0;
const tools = ["ip", "ping", "cc"].filter((t) => Bun.which(t) === null);
const why = !root ? "needs root" : tools.length > 0 ? `needs ${tools.join(", ")}` : "";
if (why !== "" && process.env.CI === "true")
  throw new Error(`CI=true but the TUN ping tests ${why}`);
if (why !== "") console.warn(`skipping TUN ping tests: ${why}`);

const inject = join(repo, "native", "build", "tools", "packet-inject");
if (why === "") {
  mkdirSync(join(repo, "native", "build", "tools"), { recursive: true });
  const cc = Bun.spawnSync([
    "cc",
    "-O2",
    "-o",
    inject,
    join(repo, "test", "tools", "packet-inject.c"),
  ]);
  if (!cc.success) throw new Error(`cannot build test/tools/packet-inject.c: ${cc.stderr}`);
}

let ns: Namespace | undefined;
afterEach(() => {
  ns?.remove();
  ns = undefined;
});

/** An ICMP echo request from 10.77.0.1 to `dst` with the given IP header checksum fix-ups. */
function echoRequest(dst: string): Uint8Array {
  const p = new Uint8Array(28 + 16);
  const v = new DataView(p.buffer);
  p[0] = 0x45;
  v.setUint16(2, p.length);
  p[8] = 64;
  p[9] = 1;
  p.set([10, 77, 0, 1], 12);
  p.set(dst.split(".").map(Number), 16);
  v.setUint16(10, internetChecksum(p, 0, 20));
  p[20] = 8;
  v.setUint16(24, 0x1234);
  v.setUint16(26, 1);
  p.fill(0xab, 28);
  v.setUint16(22, internetChecksum(p, 20, p.length));
  return p;
}

const hex = (p: Uint8Array) => Buffer.from(p).toString("hex");

function rxPackets(n: Namespace, device: string): number {
  return Number(n.run("cat", `/sys/class/net/${device}/statistics/rx_packets`).out.trim());
}

describe("examples/tun-ping.ts", () => {
  for (const backend of ["uring", "epoll"]) {
    test.skipIf(why !== "")(
      `ping through the device gets every reply (${backend}), and SIGTERM removes the device`,
      async () => {
        ns = new Namespace();
        const ready = await ns.start(
          "--name",
          "sping0",
          "--addr",
          "10.77.0.1/24",
          "--backend",
          backend,
        );
        expect(ready).toContain(`${backend} backend`);
        const ping = ns.run("ping", "-c", "5", "-i", "0.2", "-W", "2", "10.77.0.2");
        expect(ping.out).toContain("5 packets transmitted, 5 received");
        expect(ns.run("ping", "-c", "1", "-W", "2", "10.77.0.254").out).toContain("1 received");
        const { code, stderr, counters } = await ns.stop();
        expect(stderr).toBe("");
        expect(code).toBe(0);
        expect(counters["echo-reply"]).toBe(6);
        expect(ns.output).toContain("stopped: device sping0 removed");
        expect(ns.run("ip", "link", "show", "sping0").ok).toBe(false);
      },
      30_000,
    );
  }

  test.skipIf(why !== "")(
    "malformed and random packets are dropped and counted, never answered; the worker keeps serving",
    async () => {
      ns = new Namespace();
      await ns.start("--name", "sbad0", "--addr", "10.77.0.1/24");
      const good = echoRequest("10.77.0.9");
      const badVersion = good.slice();
      badVersion[0] = 0x55;
      const badLength = good.slice(); // says 200 bytes, has 44
      new DataView(badLength.buffer).setUint16(2, 200);
      badLength.set([0, 0], 10);
      new DataView(badLength.buffer).setUint16(10, internetChecksum(badLength, 0, 20));
      const badChecksum = good.slice();
      badChecksum[11] = (badChecksum[11] as number) ^ 0xff;
      const badIcmpChecksum = good.slice();
      badIcmpChecksum[23] = (badIcmpChecksum[23] as number) ^ 0x01;
      const truncated = good.slice(0, 12);
      const sent = [badVersion, badLength, badChecksum, badIcmpChecksum, truncated];
      const r = ns.run(inject, "sbad0", ...sent.flatMap((p) => [hex(p), hex(p)]));
      expect(r).toEqual({ ok: true, out: "" });
      // 300 random byte strings: whatever they are, nothing crashes and nothing is answered
      let seed = 12345;
      const random = () => {
        seed = (seed * 1103515245 + 12345) % 2 ** 31;
        return seed;
      };
      const junk = Array.from({ length: 300 }, () => {
        const p = Uint8Array.from({ length: 1 + (random() % 120) }, () => random() & 0xff);
        p[0] = ((p[0] as number) & 0x0f) | 0x40; // mostly "IPv4" with garbage after it
        return hex(p);
      });
      for (let i = 0; i < junk.length; i += 100) {
        expect(ns.run(inject, "sbad0", ...junk.slice(i, i + 100)).ok).toBe(true);
      }
      expect(ns.run(inject, "sbad0", hex(good)).ok).toBe(true);
      const ping = ns.run("ping", "-c", "3", "-i", "0.2", "-W", "2", "10.77.0.2");
      expect(ping.out).toContain("3 packets transmitted, 3 received");
      const written = rxPackets(ns, "sbad0"); // packets the worker wrote into the device
      const { code, stderr, counters } = await ns.stop();
      expect(stderr).toBe("");
      expect(code).toBe(0);
      expect(counters["bad-version"]).toBe(2);
      expect(counters["bad-length"]).toBeGreaterThanOrEqual(2);
      expect(counters["bad-checksum"]).toBeGreaterThanOrEqual(4);
      expect(counters.truncated).toBeGreaterThanOrEqual(2);
      // only the injected good request and the three pings were answered
      expect(counters["echo-reply"]).toBe(4);
      expect(written).toBe(4);
      expect(counters["write-errors"]).toBe(0);
    },
    60_000,
  );

  test.skipIf(why !== "")(
    "TAP mode: Ethernet frames, ARP requests for a neighbour answered by the task",
    async () => {
      ns = new Namespace();
      await ns.start("--name", "stap0", "--addr", "10.78.0.1/24", "--mode", "tap");
      const ping = ns.run("ping", "-c", "3", "-i", "0.2", "-W", "2", "10.78.0.2");
      expect(ping.out).toContain("3 packets transmitted, 3 received");
      expect(ns.run("ip", "neigh", "show", "10.78.0.2", "dev", "stap0").out).toContain(
        "lladdr 02:00:0a:4e:00:02",
      );
      const { code, counters } = await ns.stop();
      expect(code).toBe(0);
      expect(counters["arp-reply"]).toBeGreaterThanOrEqual(1);
      expect(counters["echo-reply"]).toBe(3);
    },
    30_000,
  );

  test.skipIf(why !== "")(
    "multi-queue: two workers, one queue each, both carry traffic",
    async () => {
      ns = new Namespace();
      const ready = await ns.start("--name", "smq0", "--addr", "10.77.0.1/24", "--workers", "2");
      expect(ready).toContain("2 worker(s)");
      expect(ns.run("ip", "-d", "link", "show", "smq0").out).toContain("multi_queue");
      // flows to different addresses hash to different queues
      const targets = Array.from({ length: 16 }, (_, i) => `10.77.0.${i + 2}`);
      const pings = targets.map((t) =>
        Bun.spawn(
          [
            "ip",
            "netns",
            "exec",
            (ns as Namespace).name,
            "ping",
            "-c",
            "2",
            "-i",
            "0.2",
            "-W",
            "2",
            t,
          ],
          {
            stdout: "pipe",
          },
        ),
      );
      const outs = await Promise.all(pings.map((p) => new Response(p.stdout).text()));
      for (const out of outs) expect(out).toContain("2 packets transmitted, 2 received");
      const { code, counters } = await ns.stop();
      expect(code).toBe(0);
      expect(counters.perWorker).toHaveLength(2);
      expect(counters.perWorker[0]).toBeGreaterThan(0);
      expect(counters.perWorker[1]).toBeGreaterThan(0);
      expect((counters.perWorker[0] as number) + (counters.perWorker[1] as number)).toBe(32);
    },
    30_000,
  );
});
