/**
 * A route that refuses GSO sends (here: a loopback whose MTU is below the segment size, inside a
 * network namespace made for the test) must not lose datagrams: the io_uring backend resends them
 * one by one and stops using GSO on that socket. Needs root (CI runs as root); skipped elsewhere
 * with the reason printed, and a failure under CI=true.
 */
import { afterAll, expect, test } from "bun:test";

const ns = `sansio-gso-${process.pid}`;
const root = process.getuid?.() === 0;
const why = root ? "" : "needs root to create a network namespace";
if (!root && process.env.CI === "true") throw new Error(`CI=true but this test ${why}`);
if (!root) console.warn(`skipping gso-fallback.test.ts: ${why}`);

function ip(...args: string[]): void {
  const r = Bun.spawnSync(["ip", ...args], { stderr: "pipe" });
  if (!r.success) throw new Error(`ip ${args.join(" ")}: ${r.stderr.toString().trim()}`);
}

afterAll(() => {
  if (root) Bun.spawnSync(["ip", "netns", "del", ns]);
});

test.skipIf(!root)("a GSO send refused by the route is resent datagram by datagram", () => {
  ip("netns", "add", ns);
  ip("netns", "exec", ns, "ip", "link", "set", "lo", "mtu", "600", "up");
  const run = Bun.spawnSync(
    ["ip", "netns", "exec", ns, process.execPath, `${import.meta.dir}/workers/gso-route.ts`],
    { stderr: "pipe" },
  );
  expect(run.stderr.toString()).toBe("");
  const out = JSON.parse(run.stdout.toString()) as {
    got: { size: number; first: number }[];
    stats: { gsoSends: number; gsoFallbacks: number; sendErrors: number; packetsOut: number };
  };
  // all 20 arrive whole (fragmented by IP on the small MTU), in order, none lost
  expect(out.got).toEqual(Array.from({ length: 20 }, (_, i) => ({ size: 1000, first: i })));
  expect(out.stats.gsoFallbacks).toBe(1); // the first run was refused and resent...
  expect(out.stats.gsoSends).toBe(0); // ...and no GSO send was tried on that socket again
  expect(out.stats.sendErrors).toBe(0);
  expect(out.stats.packetsOut).toBe(20);
});
