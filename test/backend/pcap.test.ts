/**
 * The pcap middleware: files written around the kernel's backends (composed with fault
 * injection) and around the simulated one (UDP over a TUN device, and TAP frames) are read back
 * by tcpdump with the expected packets and valid checksums. Without tcpdump these tests skip and
 * say why; under CI=true a missing tcpdump fails.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PcapBackend, SimNetwork, SocketAddr, withFaults, withPcap } from "../../src/index.ts";
import { Harness, KINDS } from "./harness.ts";

const tcpdump = Bun.which("tcpdump");
if (tcpdump === null && process.env.CI === "true")
  throw new Error("CI=true but tcpdump is missing (apt-get install tcpdump)");
if (tcpdump === null) console.warn("skipping the pcap tests: tcpdump is not installed");

const dir = mkdtempSync(join(tmpdir(), "sansio-pcap-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** What tcpdump prints for `file` with `args`, one line per packet (or per line with -v). */
function read(file: string, ...args: string[]): string[] {
  const r = Bun.spawnSync(["tcpdump", "-r", file, "-n", ...args], {
    stderr: "pipe",
    env: { ...process.env, TZ: "UTC" },
  });
  expect(r.exitCode).toBe(0);
  return r.stdout.toString().trim().split("\n");
}

function packetsOf(h: Harness): number {
  if (!(h.backend instanceof PcapBackend)) throw new Error("no pcap middleware");
  return h.backend.packets;
}

describe.each(KINDS)("pcap around the %s backend", (kind) => {
  test.skipIf(tcpdump === null)(
    "an echo on 127.0.0.1 through pcap(faults(backend)): every datagram sent and received, in tcpdump",
    () => {
      const file = join(dir, `${kind}.pcap`);
      const h = new Harness(kind, {}, (make) =>
        withPcap(
          withFaults(make, { seed: 2, clock: () => performance.now(), truncate: 0.3 }),
          file,
        ),
      );
      const server = h.listen(1);
      const client = h.listen(2);
      h.onPacket = (p) => {
        if (p.socket === 1)
          h.backend.act(0, { kind: "udp-send", socket: 1, to: p.from, data: p.data });
      };
      for (let i = 0; i < 10; i++)
        h.backend.act(0, {
          kind: "udp-send",
          socket: 2,
          to: server,
          data: new Uint8Array(40).fill(i),
        });
      expect(h.until(() => h.packets(2).length === 10)).toBe(true);
      const cut = h.events.filter((e) => e.kind === "udp-packet" && e.truncated).length;
      expect(cut).toBeGreaterThan(0);
      expect(packetsOf(h)).toBe(40); // sent, received, echoed, received again
      h.backend.close();
      const lines = read(file);
      expect(lines.length).toBe(40);
      const there = `127.0.0.1.${client.port} > 127.0.0.1.${server.port}: UDP`;
      const back = `127.0.0.1.${server.port} > 127.0.0.1.${client.port}: UDP`;
      expect(lines.filter((l) => l.includes(there)).length).toBe(20);
      expect(lines.filter((l) => l.includes(back)).length).toBe(20);
      // every record captured whole has a valid checksum; the cut ones are shown cut
      const verbose = read(file, "-vv").join("\n");
      expect(verbose.match(/udp sum ok/g)?.length).toBe(40 - cut);
      expect(verbose).not.toContain("bad udp cksum");
    },
  );
});

describe("pcap around the simulated backend", () => {
  test.skipIf(tcpdump === null)(
    "UDP into a TUN device and replies written back: socket and device sides both recorded, on the virtual clock",
    () => {
      const file = join(dir, "sim-tun.pcap");
      const network = new SimNetwork(1);
      const host = network.addHost("gw", ["192.168.1.1"]);
      const tun = host.addTun({ name: "tun0", address: "10.99.0.1/24" });
      const h = new Harness({ network, host }, {}, (make) =>
        withPcap(make, file, { clock: () => 1_700_000_000_000 + network.now }),
      );
      h.backend.act(0, { kind: "tun-bind", device: 1, fd: tun.queues[0] as number });
      const sock = h.listen(1, "0.0.0.0");
      h.replyOnTun(1);
      for (let i = 0; i < 3; i++)
        h.backend.act(0, {
          kind: "udp-send",
          socket: 1,
          to: SocketAddr.parse("10.99.0.2", 40000),
          data: new Uint8Array(12).fill(i),
        });
      expect(h.until(() => h.packets(1).length === 3)).toBe(true);
      h.backend.close();
      const lines = read(file);
      // a wildcard socket is recorded at 0.0.0.0: the backend does not know the source chosen
      const sent = `0.0.0.0.${sock.port} > 10.99.0.2.40000: UDP, length 12`;
      const received = `10.99.0.2.40000 > 0.0.0.0.${sock.port}: UDP, length 12`;
      const query = `10.99.0.1.${sock.port} > 10.99.0.2.40000: UDP, length 12`;
      const reply = `10.99.0.2.40000 > 10.99.0.1.${sock.port}: UDP, length 12`;
      // the socket's sends; each packet in the device and the reply written back; the replies
      expect(lines.map((l) => l.slice(l.indexOf(" IP ") + 4))).toEqual([
        ...[sent, sent, sent],
        ...[query, reply, query, reply, query, reply],
        ...[received, received, received],
      ]);
      expect(lines[0]?.startsWith("22:13:20.000000")).toBe(true); // 1.7e12 ms since the epoch, UTC
    },
  );

  test.skipIf(tcpdump === null)(
    'devices: "tap": an Ethernet file, frames as they are and UDP datagrams framed',
    () => {
      const file = join(dir, "sim-tap.pcap");
      const network = new SimNetwork(1);
      const host = network.addHost("a", ["10.0.0.1"]);
      const tap = host.addTun({ name: "tap0", address: "10.77.0.1/24" });
      const h = new Harness({ network, host }, {}, (make) =>
        withPcap(make, file, { devices: "tap" }),
      );
      h.backend.act(0, { kind: "tun-bind", device: 1, fd: tap.queues[0] as number });
      const to = h.listen(1);
      h.backend.act(0, { kind: "udp-send", socket: 1, to, data: new Uint8Array(5) });
      // an ARP request for 10.77.0.5 from 02:00:0a:4d:00:01, as the kernel would send into a TAP
      const arp = new Uint8Array(42);
      arp.set([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 10, 77, 0, 1, 0x08, 0x06]);
      arp.set([0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 10, 77, 0, 1, 10, 77, 0, 1], 14);
      arp.set([0, 0, 0, 0, 0, 0, 10, 77, 0, 5], 32);
      tap.inject(arp);
      expect(
        h.until(() => h.events.some((e) => e.kind === "tun-packet") && h.packets(1).length === 1),
      ).toBe(true);
      h.backend.close();
      const lines = read(file, "-e");
      expect(lines.length).toBe(3);
      expect(
        lines.filter(
          (l) =>
            l.includes(`ethertype IPv4 (0x0800)`) &&
            l.includes(`127.0.0.1.${to.port} > 127.0.0.1.${to.port}: UDP, length 5`),
        ).length,
      ).toBe(2);
      expect(
        lines.filter(
          (l) => l.includes("ARP") && l.includes("Request who-has 10.77.0.5 tell 10.77.0.1"),
        ).length,
      ).toBe(1);
    },
  );
});
