/**
 * The simulated network and `SimBackend` beyond the conformance suite (which runs on it too):
 * the virtual clock, links (latency, MTU, seeded faults), routes and their errors, the lifetime
 * rule enforced, and TUN devices.
 */
import { describe, expect, test } from "bun:test";
import {
  decodeUdpPacket,
  encodeUdpPacket,
  type NetEvent,
  SimBackend,
  SimNetwork,
  SocketAddr,
} from "../../src/index.ts";
import { Harness } from "../backend/harness.ts";

/** Two hosts, a (10.0.0.1) and b (10.0.0.2), linked as told, with a harness on each. */
function pair(seed: number, link: Parameters<SimNetwork["link"]>[2] = {}) {
  const network = new SimNetwork(seed);
  const a = network.addHost("a", ["10.0.0.1"]);
  const b = network.addHost("b", ["10.0.0.2"]);
  network.link(a, b, link);
  return { network, a: new Harness({ network, host: a }), b: new Harness({ network, host: b }) };
}

/** A datagram saying `seq` and checking itself: seq, CRC-32 of the rest, a pattern. */
function numbered(seq: number, size: number): Uint8Array {
  const data = new Uint8Array(size);
  for (let i = 8; i < size; i++) data[i] = (seq * 7 + i) & 0xff;
  const v = new DataView(data.buffer);
  v.setUint32(0, seq, true);
  v.setUint32(4, Bun.hash.crc32(data.subarray(8)), true);
  return data;
}

function intact(data: Uint8Array): boolean {
  const v = new DataView(data.buffer, data.byteOffset, data.byteLength);
  return Bun.hash.crc32(data.subarray(8)) === v.getUint32(4, true);
}

describe("the virtual clock and links", () => {
  test("a datagram arrives one latency later; poll moves the clock to it instead of sleeping, and to its timeout when nothing comes", () => {
    const { network, a, b } = pair(1, { latencyMs: 25 });
    const server = b.listen(1, "10.0.0.2", 4000);
    const client = a.listen(1, "0.0.0.0");
    expect(client.port).toBe(32768); // the first ephemeral port
    a.backend.act(0, { kind: "udp-send", socket: 1, to: server, data: numbered(1, 64) });
    a.backend.poll(0);
    expect(network.now).toBe(0);
    expect(b.backend.poll(1000)).toBe(1);
    expect(network.now).toBe(25);
    // a wildcard socket sends from its host's address over a link
    expect(b.packets(1)[0]?.from.toString()).toBe("10.0.0.1:32768");
    expect(b.backend.poll(-1)).toBe(0); // nothing on its way: nothing can come
    expect(network.now).toBe(25);
    expect(b.backend.poll(100)).toBe(0);
    expect(network.now).toBe(125);
  });

  test("a datagram larger than the MTU travels as fragments, each lost on its own", () => {
    const { network, a, b } = pair(2, { mtu: 576, loss: 0.2 });
    const server = b.listen(1, "10.0.0.2", 4000);
    a.listen(1, "0.0.0.0");
    a.listen(2, "0.0.0.0");
    for (let i = 0; i < 400; i++) {
      a.backend.act(0, { kind: "udp-send", socket: 1, to: server, data: numbered(i, 100) });
      a.backend.act(0, { kind: "udp-send", socket: 2, to: server, data: numbered(i, 1400) });
      a.backend.poll(0); // sent now
      b.backend.poll(5); // arrived 1 ms later, or lost
    }
    const small = b.packets(1).filter((p) => p.data.length === 100).length;
    const large = b.packets(1).filter((p) => p.data.length === 1400).length;
    // one packet against three fragments (1408 B of UDP in 552 B pieces): 80% against about 51%
    expect(small).toBeGreaterThan(large);
    expect(small + large + network.stats().lost).toBe(800);
    expect(b.packets(1).every((p) => intact(p.data))).toBe(true);
  });

  test("duplication, reordering and corruption are drawn from the seed: counted, traced, repeated exactly by the same seed", () => {
    const run = (seed: number) => {
      const { network, a, b } = pair(seed, {
        latencyMs: 5,
        duplicate: 0.1,
        reorder: 0.2,
        reorderMs: 20,
        corrupt: 0.05,
      });
      const trace: string[] = [];
      network.onTrace = (line) => trace.push(line);
      const server = b.listen(1, "10.0.0.2", 4000);
      a.listen(1, "0.0.0.0");
      for (let seq = 0; seq < 200; seq++) {
        a.backend.act(0, { kind: "udp-send", socket: 1, to: server, data: numbered(seq, 64) });
        a.backend.poll(1); // one datagram a millisecond
      }
      b.until(() => network.nextArrival() === Infinity);
      const got = b.packets(1);
      return { network, trace, got, seqs: got.map((p) => (intact(p.data) ? p.data[0] : -1)) };
    };
    const first = run(7);
    const { duplicated, reordered, corrupted, lost } = first.network.stats();
    expect([duplicated > 0, reordered > 0, corrupted > 0, lost]).toEqual([true, true, true, 0]);
    expect(first.got.length).toBe(200 + duplicated);
    // every corrupted datagram arrives (once or twice) and fails its check
    expect(first.seqs.filter((s) => s === -1).length).toBeGreaterThanOrEqual(corrupted);
    const inOrder = first.seqs.filter((s) => s !== -1) as number[];
    expect(inOrder.some((s, i) => i > 0 && s < (inOrder[i - 1] as number))).toBe(true);
    for (const what of ["duplicated", "held back", "corrupted (bit"])
      expect(first.trace.filter((l) => l.includes(what)).length).toBeGreaterThan(0);
    const again = run(7);
    expect(again.trace).toEqual(first.trace);
    expect(again.seqs).toEqual(first.seqs);
    expect(run(8).trace).not.toEqual(first.trace);
  });

  test("errors from routes and addresses: EADDRNOTAVAIL, EINVAL from loopback, ENETUNREACH without a link, EAFNOSUPPORT; a closed port's datagrams are counted", () => {
    const network = new SimNetwork(3);
    const a = network.addHost("a", ["10.0.0.1", "fd00::1"]);
    network.addHost("far", ["10.0.0.9"]);
    const h = new Harness({ network, host: a });
    h.backend.act(0, { kind: "udp-listen", socket: 1, bind: SocketAddr.parse("10.0.0.7", 0) });
    const sock = h.listen(2, "10.0.0.1");
    h.listen(3, "fd00::1");
    h.listen(4, "127.0.0.1");
    h.backend.act(0, {
      kind: "udp-send",
      socket: 4,
      to: SocketAddr.parse("10.0.0.9", 9),
      data: new Uint8Array(4),
    });
    for (const to of ["10.0.0.9", "::1"])
      h.backend.act(0, {
        kind: "udp-send",
        socket: 2,
        to: SocketAddr.parse(to, 9),
        data: new Uint8Array(4),
      });
    h.backend.act(0, {
      kind: "udp-send",
      socket: 2,
      to: SocketAddr.parse("10.0.0.1", 9),
      data: new Uint8Array(4),
    });
    h.backend.act(0, {
      kind: "udp-send",
      socket: 3,
      to: SocketAddr.parse("fd00::1", 9),
      data: new Uint8Array(4),
    });
    h.until(() => h.events.filter((e) => e.kind === "udp-send-error").length === 3);
    expect(h.events.find((e) => e.kind === "udp-listen-result" && e.socket === 1)).toMatchObject({
      error: { code: "EADDRNOTAVAIL" },
    });
    expect(h.events.filter((e) => e.kind === "udp-send-error").map((e) => e.error.code)).toEqual([
      "EINVAL", // a loopback source cannot leave loopback
      "ENETUNREACH",
      "EAFNOSUPPORT",
    ]);
    expect(sock.toString()).toBe("10.0.0.1:32768");
    expect(network.stats().noListener).toBe(2);
    expect(h.backend.stats()).toMatchObject({ sendErrors: 3, packetsOut: 2 });
  });

  test("the lifetime rule is enforced: bytes kept past the handler read as 0xDD; the source is a value that stays correct", () => {
    const network = new SimNetwork(4);
    const host = network.addHost("a", ["10.0.0.1"]);
    const kept: { data: Uint8Array; from: SocketAddr; copy: Uint8Array }[] = [];
    const backend = new SimBackend(network, host, {
      onEvent: (_owner, e) => {
        if (e.kind === "udp-packet")
          kept.push({ data: e.data, from: e.from, copy: e.data.slice() });
      },
    });
    const to = SocketAddr.parse("127.0.0.1", 5000);
    backend.act(0, { kind: "udp-listen", socket: 1, bind: to });
    backend.act(0, { kind: "udp-send", socket: 1, to, data: new Uint8Array([1, 2, 3]) });
    backend.poll(0);
    expect(kept.map((k) => [k.copy, k.data, k.from.toString()])).toEqual([
      [new Uint8Array([1, 2, 3]), new Uint8Array([0xdd, 0xdd, 0xdd]), "127.0.0.1:5000"],
    ]);
    backend.close();
  });
});

describe("TUN devices", () => {
  const DEVICE = 1;

  test("packets both ways (zero-copy echo routed back in), truncation, refused writes, bad binds, unbind and re-bind, drops, a deleted device", () => {
    const network = new SimNetwork(5);
    const host = network.addHost("gw", ["192.168.1.1"]);
    const tun = host.addTun({ name: "tun0", address: "10.99.0.1/24", queueLength: 8 });
    const written: Uint8Array[] = [];
    tun.onWrite = (p) => written.push(p);
    const h = new Harness({ network, host }, { recvBufferSize: 2048 });
    const tunPackets = () =>
      h.events.filter(
        (e): e is Extract<NetEvent, { kind: "tun-packet" }> => e.kind === "tun-packet",
      );
    const errors = (kind: NetEvent["kind"]) =>
      h.events.flatMap((e) =>
        e.kind === kind && "error" in e && e.error !== undefined
          ? [`${"device" in e ? e.device : -1}:${e.error.code}`]
          : [],
      );
    h.backend.act(0, { kind: "tun-bind", device: DEVICE, fd: tun.queues[0] as number });
    const sock = h.listen(0, "0.0.0.0");
    expect(h.events[0]).toEqual({ kind: "tun-bind-result", device: DEVICE });

    // the host routes a datagram for the subnet into the device, from the device's address
    let echoed = false;
    h.onTunPacket = (p) => {
      if (echoed) return;
      echoed = true; // written back as it is: routed into the device again, without a copy
      h.backend.act(0, { kind: "tun-send", device: DEVICE, data: p.data });
    };
    const hello = new TextEncoder().encode("hello");
    h.backend.act(0, {
      kind: "udp-send",
      socket: 0,
      to: SocketAddr.parse("10.99.0.2", 9999),
      data: hello,
    });
    h.until(() => tunPackets().length === 2);
    const first = tunPackets()[0];
    expect(first).toMatchObject({ size: 33, truncated: false });
    expect(tunPackets()[1]?.data).toEqual(first?.data as Uint8Array);
    const d = decodeUdpPacket(first?.data as Uint8Array);
    expect(typeof d === "string" ? d : [`${d.from}`, `${d.to}`, d.payload]).toEqual([
      `10.99.0.1:${sock.port}`,
      "10.99.0.2:9999",
      hello,
    ]);
    expect(h.backend.stats().zeroCopySends).toBe(1);

    // a UDP packet written into the device reaches the local socket, with its source
    const crafted = encodeUdpPacket(
      SocketAddr.parse("10.99.0.3", 7),
      SocketAddr.parse("10.99.0.1", sock.port),
      new TextEncoder().encode("crafted"),
    );
    h.backend.act(0, { kind: "tun-send", device: DEVICE, data: crafted });
    h.until(() => h.packets(0).length === 1);
    expect(h.packets(0).map((p) => [`${p.from}`, new TextDecoder().decode(p.data)])).toEqual([
      ["10.99.0.3:7", "crafted"],
    ]);

    // larger than the receive buffer: cut, flagged, real size
    h.backend.act(0, {
      kind: "udp-send",
      socket: 0,
      to: SocketAddr.parse("10.99.0.2", 7777),
      data: new Uint8Array(3000),
    });
    h.until(() => tunPackets().length === 3);
    expect(tunPackets()[2]).toMatchObject({ size: 3028, truncated: true });
    expect(tunPackets()[2]?.data.length).toBe(2048);

    // refused writes; anything that is not UDP over IP is dropped by the host, counted
    const icmp = crafted.slice();
    icmp[9] = 1;
    for (const data of [new Uint8Array(20), new Uint8Array(0), icmp])
      h.backend.act(0, { kind: "tun-send", device: DEVICE, data });
    h.backend.act(0, { kind: "tun-send", device: 42, data: new Uint8Array(20) });
    h.until(() => errors("tun-send-error").length === 3);
    expect(errors("tun-send-error")).toEqual(["1:EINVAL", "1:EMSGSIZE", "42:EBADF"]);
    expect(network.stats().rejected).toBe(1);
    expect(written.length).toBe(3); // the echo, crafted and icmp: the refused ones never got there

    // bad binds
    const other = new Harness({ network, host });
    for (const [device, fd] of [
      [DEVICE, tun.queues[0]],
      [2, tun.queues[0]],
      [4, 9999],
      [5, -1],
    ] as const)
      h.backend.act(0, { kind: "tun-bind", device, fd: fd as number });
    other.backend.act(0, { kind: "tun-bind", device: 1, fd: tun.queues[0] as number });
    h.until(() => errors("tun-bind-result").length === 4);
    other.until(() => other.events.length === 1);
    expect(errors("tun-bind-result")).toEqual(["1:EEXIST", "2:EEXIST", "4:EBADF", "5:EBADF"]);
    expect(other.events[0]).toMatchObject({ error: { code: "EEXIST" } });

    // a full queue drops (the reader does not read while 20 packets are routed in)
    for (let i = 0; i < 20; i++)
      h.backend.act(0, {
        kind: "udp-send",
        socket: 0,
        to: SocketAddr.parse("10.99.0.2", 1000 + i),
        data: hello,
      });
    const before = tunPackets().length;
    h.until(() => tunPackets().length === before + 8);
    expect(h.backend.stats().kernelDrops).toBe(12);

    // unbind gives the queue back; it can be bound again; its drops stay counted
    h.backend.act(0, { kind: "tun-unbind", device: DEVICE });
    h.until(() => h.events.some((e) => e.kind === "tun-unbound"));
    expect(h.events.find((e) => e.kind === "tun-unbound")).toEqual({
      kind: "tun-unbound",
      device: DEVICE,
    });
    expect(h.backend.stats()).toMatchObject({ sockets: 1, kernelDrops: 12 });
    h.backend.act(0, { kind: "tun-bind", device: 6, fd: tun.queues[0] as number });
    h.until(() => h.events.some((e) => e.kind === "tun-bind-result" && e.device === 6));
    expect(h.events.at(-1)).toEqual({ kind: "tun-bind-result", device: 6 });

    // a device deleted under a bound queue ends the binding; its fds are gone
    tun.delete();
    h.until(() => h.events.filter((e) => e.kind === "tun-unbound").length === 2);
    expect(h.events.at(-1)).toMatchObject({
      kind: "tun-unbound",
      device: 6,
      error: { code: "EBADFD" },
    });
    h.backend.act(0, { kind: "tun-bind", device: 7, fd: tun.queues[0] as number });
    h.until(() => h.events.some((e) => e.kind === "tun-bind-result" && e.device === 7));
    expect(h.events.at(-1)).toMatchObject({ error: { code: "EBADF" } });
    expect(h.backend.stats()).toMatchObject({ sockets: 1, sendErrors: 3, truncated: 1 });
  });

  test("a gateway: datagrams from a linked host go into the device, spread over its queues by flow; replies written into it go back over the link", () => {
    const network = new SimNetwork(6);
    const gw = network.addHost("gw", ["192.168.1.1"]);
    const client = network.addHost("client", ["192.168.1.2"]);
    network.link(gw, client, { latencyMs: 3 });
    const tun = gw.addTun({ name: "tun0", address: "10.99.0.1/24", queues: 2 });
    const queues = tun.queues.map((fd) => {
      const h = new Harness({ network, host: gw });
      h.backend.act(0, { kind: "tun-bind", device: 1, fd });
      h.replyOnTun(1);
      return h;
    });
    const c = new Harness({ network, host: client });
    c.listen(1, "0.0.0.0");
    for (let i = 2; i < 22; i++)
      c.backend.act(0, {
        kind: "udp-send",
        socket: 1,
        to: SocketAddr.parse(`10.99.0.${i}`, 53),
        data: new Uint8Array([i]),
      });
    const settled = () => {
      for (const q of queues) q.backend.poll(0);
      return c.packets(1).length === 20;
    };
    expect(c.until(settled)).toBe(true);
    expect(
      c
        .packets(1)
        .map((p) => `${p.from}=${p.data[0]}`)
        .sort(),
    ).toEqual(Array.from({ length: 20 }, (_, k) => `10.99.0.${k + 2}:53=${k + 2}`).sort());
    const perQueue = queues.map((q) => q.events.filter((e) => e.kind === "tun-packet").length);
    expect(perQueue[0]).toBeGreaterThan(0);
    expect(perQueue[1]).toBeGreaterThan(0);
  });
});
