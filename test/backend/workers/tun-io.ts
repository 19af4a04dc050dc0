/**
 * TUN I/O scenario for tun-io.test.ts, run in a private network namespace (`unshare --net`) with
 * one backend: `bun tun-io.ts uring|epoll [single]` ("single": io_uring with one read per packet
 * instead of a multishot read). A UDP socket of the same backend talks to the device through the
 * kernel, so the whole exchange runs in one synchronous poll loop. Prints one JSON line per step.
 */
import { openSync } from "node:fs";
import { internetChecksum } from "../../../examples/ping-responder.ts";
import { type NetEvent, SocketAddr, TunDevice, UringBackend } from "../../../src/index.ts";
import { Harness } from "../harness.ts";

type TunPacket = Extract<NetEvent, { kind: "tun-packet" }>;

const kind = process.argv[2] === "epoll" ? "epoll" : "uring";
const single = process.argv[3] === "single";
const DEVICE = 1;

function step(name: string, result: unknown): void {
  console.log(JSON.stringify({ step: name, ok: result }));
}

/** An IPv4/UDP packet (UDP checksum 0: none) from `src`:`sport` to `dst`:`dport`. */
function udpPacket(src: string, sport: number, dst: string, dport: number, payload: Uint8Array) {
  const p = new Uint8Array(28 + payload.length);
  const v = new DataView(p.buffer);
  p[0] = 0x45;
  v.setUint16(2, p.length);
  p[8] = 64;
  p[9] = 17;
  p.set(src.split(".").map(Number), 12);
  p.set(dst.split(".").map(Number), 16);
  v.setUint16(10, internetChecksum(p, 0, 20));
  v.setUint16(20, sport);
  v.setUint16(22, dport);
  v.setUint16(24, 8 + payload.length);
  p.set(payload, 28);
  return p;
}

/** True for an IPv4/UDP packet to `port` (the kernel also sends IPv6 chatter on the link). */
function udpTo(p: TunPacket, port: number): boolean {
  return (
    p.data[0] === 0x45 && p.data[9] === 17 && ((p.data[22] ?? 0) << 8) + (p.data[23] ?? 0) === port
  );
}

const dev = TunDevice.create({ name: "sio0", address: "10.99.0.1/24", mtu: 4000 });
const h = new Harness(kind, { recvBufferSize: 2048, multishotRead: !single });
const b = h.backend;
const text = new TextEncoder();
const last = <K extends NetEvent["kind"]>(k: K) =>
  h.events.findLast((e): e is Extract<NetEvent, { kind: K }> => e.kind === k);
const tunPackets = () => h.events.filter((e): e is TunPacket => e.kind === "tun-packet");

b.act(0, { kind: "tun-bind", device: DEVICE, fd: dev.queues[0] as number });
h.until(() => last("tun-bind-result") !== undefined);
step("bind", last("tun-bind-result"));
step("multishot read", b instanceof UringBackend ? b.multishotRead : null);
const local = h.listen(0, "10.99.0.1", 0);

// the kernel routes a datagram for 10.99.0.2 into the device
b.act(0, {
  kind: "udp-send",
  socket: 0,
  to: SocketAddr.parse("10.99.0.2", 9999),
  data: text.encode("hello"),
});
h.until(() => tunPackets().some((p) => udpTo(p, 9999)));
const seen = tunPackets().find((p) => udpTo(p, 9999));
step("kernel to device", {
  size: seen?.size,
  truncated: seen?.truncated,
  src: seen?.data.subarray(12, 16).join("."),
  dst: seen?.data.subarray(16, 20).join("."),
  payload: new TextDecoder().decode(seen?.data.subarray(28)),
});

// the same packet written back from its receive buffer with addresses and ports swapped (the
// checksums stay valid): zero-copy, and the kernel delivers it to the socket
const zeroCopyBefore = b.stats().zeroCopySends;
h.onTunPacket = (p) => {
  if (!udpTo(p, 9999)) return;
  for (const [x, y, n] of [
    [12, 16, 4],
    [20, 22, 2],
  ] as const) {
    for (let i = 0; i < n; i++) {
      const t = p.data[x + i] as number;
      p.data[x + i] = p.data[y + i] as number;
      p.data[y + i] = t;
    }
  }
  b.act(0, { kind: "tun-send", device: DEVICE, data: p.data });
};
b.act(0, {
  kind: "udp-send",
  socket: 0,
  to: SocketAddr.parse("10.99.0.2", 9999),
  data: text.encode("echo me"),
});
h.until(() => h.packets(0).length >= 1);
h.onTunPacket = undefined;
step("device to kernel, zero-copy", {
  from: h.packets(0)[0]?.from.toString(),
  payload: new TextDecoder().decode(h.packets(0)[0]?.data),
  zeroCopy: b.stats().zeroCopySends - zeroCopyBefore,
});

// a packet built here (copied into a send slot)
b.act(0, {
  kind: "tun-send",
  device: DEVICE,
  data: udpPacket("10.99.0.3", 7, "10.99.0.1", local.port, text.encode("crafted")),
});
h.until(() => h.packets(0).length >= 2);
step("written packet", {
  from: h.packets(0)[1]?.from.toString(),
  payload: new TextDecoder().decode(h.packets(0)[1]?.data),
});

// a burst in both directions, every payload checked
const BURST = 300;
const before = tunPackets().length;
for (let i = 0; i < BURST; i++) {
  b.act(0, {
    kind: "udp-send",
    socket: 0,
    to: SocketAddr.parse("10.99.0.2", 5000),
    data: new Uint8Array(Uint32Array.of((i * 2654435761) >>> 0).buffer),
  });
  b.act(0, {
    kind: "tun-send",
    device: DEVICE,
    data: udpPacket(
      "10.99.0.4",
      5000,
      "10.99.0.1",
      local.port,
      new Uint8Array(Uint32Array.of(i).buffer),
    ),
  });
  if (i % 50 === 49) b.poll(0);
}
h.until(() => tunPackets().length - before >= BURST && h.packets(0).length >= 2 + BURST);
const inbound = tunPackets()
  .slice(before)
  .filter((p) => udpTo(p, 5000));
const outbound = h.packets(0).slice(2);
step("burst", {
  toDevice: inbound.length,
  toDeviceIntact: inbound.every(
    (p, i) =>
      new DataView(p.data.buffer, p.data.byteOffset).getUint32(28, true) === (i * 2654435761) >>> 0,
  ),
  fromDevice: outbound.length,
  fromDeviceIntact: outbound.every(
    (p, i) => new DataView(p.data.buffer, p.data.byteOffset).getUint32(0, true) === i,
  ),
});

// a packet larger than the receive buffer is delivered cut and flagged
b.act(0, {
  kind: "udp-send",
  socket: 0,
  to: SocketAddr.parse("10.99.0.2", 7777),
  data: new Uint8Array(3000),
});
h.until(() => tunPackets().some((p) => udpTo(p, 7777)));
const big = tunPackets().find((p) => udpTo(p, 7777));
step("truncated", { size: big?.size, length: big?.data.length, truncated: big?.truncated });

// writes the kernel refuses, and bad binds
b.act(0, { kind: "tun-send", device: DEVICE, data: new Uint8Array(20) }); // IP version 0
b.act(0, { kind: "tun-send", device: DEVICE, data: new Uint8Array(0) });
b.act(0, { kind: "tun-send", device: 42, data: new Uint8Array(20) });
h.until(() => h.events.filter((e) => e.kind === "tun-send-error").length >= 3);
step(
  "send errors",
  h.events.filter((e) => e.kind === "tun-send-error").map((e) => `${e.device}:${e.error.code}`),
);
const notTun = openSync("/dev/null", "r");
for (const [device, fd] of [
  [DEVICE, 123],
  [2, dev.queues[0] as number],
  [3, notTun],
  [4, 9999],
  [5, -1],
]) {
  b.act(0, { kind: "tun-bind", device: device as number, fd: fd as number });
}
h.until(() => h.events.filter((e) => e.kind === "tun-bind-result").length >= 6);
step(
  "bind errors",
  h.events
    .filter((e) => e.kind === "tun-bind-result")
    .slice(1)
    .map((e) => `${e.device}:${e.error?.code}`),
);

// unbind gives the fd back: still open, and it can be bound again
b.act(0, { kind: "tun-unbind", device: DEVICE });
h.until(() => last("tun-unbound") !== undefined);
step("unbind", { event: last("tun-unbound"), sockets: b.stats().sockets });
b.act(0, { kind: "tun-bind", device: 6, fd: dev.queues[0] as number });
h.until(() => last("tun-bind-result")?.device === 6);
b.act(0, {
  kind: "udp-send",
  socket: 0,
  to: SocketAddr.parse("10.99.0.2", 6666),
  data: text.encode("again"),
});
h.until(() => tunPackets().some((p) => udpTo(p, 6666)));
step("bound again", { device: tunPackets().find((p) => udpTo(p, 6666))?.device });

// a flood into the device from another backend's socket while this one does not poll: the
// packets the device's queue had no room for are the device's tx_dropped, in kernelDrops
const dropsBefore = b.stats().kernelDrops;
const flooder = new Harness(kind);
flooder.listen(0, "10.99.0.1", 0);
const FLOOD = 6000;
for (let i = 0; i < FLOOD; i++) {
  flooder.backend.act(0, {
    kind: "udp-send",
    socket: 0,
    to: SocketAddr.parse("10.99.0.2", 4444),
    data: new Uint8Array(1400),
  });
  if (i % 64 === 63) flooder.backend.poll(0);
}
flooder.until(() => flooder.backend.stats().packetsOut === FLOOD);
flooder.backend.close();
let flooded = 0;
h.onTunPacket = (p) => {
  if (udpTo(p, 4444)) flooded++;
};
for (let idle = 0; idle < 5; ) {
  idle = b.poll(20) === 0 ? idle + 1 : 0;
  h.events.length = 0;
}
h.onTunPacket = undefined;
const drops = b.stats().kernelDrops;
step("kernel drops", {
  before: dropsBefore,
  counted: drops > 0,
  accounted: flooded + drops >= FLOOD && drops <= FLOOD, // every packet read or counted once
});

// deleting the device under a bound queue ends the binding with an error
Bun.spawnSync(["ip", "link", "del", "sio0"]);
h.until(() => last("tun-unbound")?.device === 6);
step("device deleted", { code: last("tun-unbound")?.error?.code, sockets: b.stats().sockets });

b.close();
dev.close();
step("stats", { sendErrors: b.stats().sendErrors, truncated: b.stats().truncated });
