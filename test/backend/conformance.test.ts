/**
 * One conformance suite, run against both backends with real sockets on loopback, and against
 * the simulated backend on a simulated machine's loopback (all but the cross-thread wake-up).
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import {
  MAX_UDP_PAYLOAD,
  openFileDescriptors,
  probeUring,
  recvBufferSizeFor,
  SocketAddr,
  UringBackend,
} from "../../src/index.ts";
import { Harness, KINDS } from "./harness.ts";

if (process.env.CI === "true" && !probeUring().available) {
  throw new Error(`CI=true but io_uring is unavailable here: ${probeUring().error}`);
}

/** io_uring runs packed (where the kernel can) and with one datagram per buffer. */
const MODES = { uring: [true, false], epoll: [false], sim: [false] } as const;

function payload(size: number, seed: number): Uint8Array {
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i++) out[i] = (seed + i * 131) & 0xff;
  return out;
}

/**
 * In place of the cross-thread wake-up test for the simulated backend: it has no wake-up handle,
 * and a poll with nothing due returns at once on its virtual clock.
 */
function noWakeUp(name: string): void {
  test(`${name}: not for the simulated backend, which has no wake-up handle`, () => {
    const h = new Harness("sim");
    expect(h.backend.wakeHandle).toBe(-1);
    expect(h.backend.poll(1000)).toBe(0);
  });
}

for (const kind of [...KINDS, "sim"] as const) {
  describe(`${kind} backend`, () => {
    test("echo between two sockets, IPv4 and IPv6, port 0 resolved to the real port", () => {
      for (const host of ["127.0.0.1", "::1"]) {
        const h = new Harness(kind);
        const server = h.listen(1, host);
        const client = h.listen(2, host);
        expect(server.port).toBeGreaterThan(0);
        expect(server.address).toBe(host);
        expect(server.family).toBe(host === "::1" ? 6 : 4);
        h.onPacket = (p) => {
          if (p.socket === 1)
            h.backend.act(0, { kind: "udp-send", socket: 1, to: p.from, data: p.data });
        };
        const msg = payload(100, 7);
        h.backend.act(0, { kind: "udp-send", socket: 2, to: server, data: msg });
        expect(h.until(() => h.packets(2).length === 1)).toBe(true);
        const echoed = h.packets(2)[0];
        expect(echoed?.data).toEqual(msg);
        expect(echoed?.from.toString()).toBe(server.toString());
        expect(h.packets(1)[0]?.from.port).toBe(client.port);
        expect(h.backend.stats().zeroCopySends).toBe(1); // the echo sent the receive buffer itself
        h.backend.close();
      }
    });

    test("SO_REUSEPORT lets two sockets share a port; both receive", () => {
      const h = new Harness(kind);
      const first = h.listen(1, "127.0.0.1", 0, true);
      const second = h.listen(2, "127.0.0.1", first.port, true);
      expect(second.port).toBe(first.port);
      h.listen(3);
      // the kernel spreads by source address: many client ports reach both sockets
      for (let port = 0; port < 64; port++) {
        h.backend.act(0, {
          kind: "udp-listen",
          socket: 100 + port,
          bind: SocketAddr.parse("127.0.0.1", 0),
        });
      }
      h.backend.poll(0);
      for (let port = 0; port < 64; port++) {
        h.backend.act(0, {
          kind: "udp-send",
          socket: 100 + port,
          to: first,
          data: payload(8, port),
        });
      }
      expect(h.until(() => h.packets(1).length + h.packets(2).length === 64)).toBe(true);
      expect(h.packets(1).length).toBeGreaterThan(0);
      expect(h.packets(2).length).toBeGreaterThan(0);
      h.backend.close();
    });

    test("EADDRINUSE arrives as a result event; a taken socket id is refused too", () => {
      const h = new Harness(kind);
      const taken = h.listen(1);
      h.backend.act(0, { kind: "udp-listen", socket: 2, bind: taken });
      h.backend.act(0, { kind: "udp-listen", socket: 1, bind: SocketAddr.parse("127.0.0.1", 0) });
      h.until(() => h.events.filter((e) => e.kind === "udp-listen-result").length === 3);
      const results = h.events.filter((e) => e.kind === "udp-listen-result");
      expect(results[1]).toMatchObject({
        socket: 2,
        error: { code: "EADDRINUSE", message: "address already in use" },
      });
      expect(results[2]).toMatchObject({ socket: 1, error: { code: "EEXIST" } });
      h.backend.close();
    });

    test("datagrams of 0, 1, 1472 and 65507 bytes; truncation is reported, never silent", () => {
      for (const [recvBufferSize, packedBuffers] of [2048, 65600].flatMap((size) =>
        MODES[kind].map((packed) => [size, packed] as const),
      )) {
        const h = new Harness(kind, { recvBufferSize, recvBuffers: 64, packedBuffers });
        const server = h.listen(1);
        h.listen(2);
        const sizes = [0, 1, 1472, 65507];
        for (const size of sizes)
          h.backend.act(0, { kind: "udp-send", socket: 2, to: server, data: payload(size, size) });
        expect(h.until(() => h.packets(1).length === sizes.length)).toBe(true);
        const got = h.packets(1);
        for (const [i, size] of sizes.entries()) {
          const p = got[i];
          expect(p?.size).toBe(size);
          const fits = size + 44 <= recvBufferSize;
          expect(p?.truncated).toBe(!fits);
          // whatever arrived is the datagram's own first bytes
          expect(p?.data).toEqual(payload(size, size).subarray(0, p?.data.length));
          if (fits) expect(p?.data.length).toBe(size);
        }
        expect(h.backend.stats().truncated).toBe(recvBufferSize === 2048 ? 1 : 0);
        h.backend.close();
      }
    });

    test("receive buffers for 65,507 B: bursts mixing 64 B and 65,507 B datagrams all arrive whole and intact, in order", () => {
      for (const packedBuffers of MODES[kind]) {
        const h = new Harness(kind, {
          recvBufferSize: recvBufferSizeFor(MAX_UDP_PAYLOAD),
          packedBuffers,
        });
        const server = h.listen(1);
        h.listen(2);
        for (let round = 0; round < 30; round++) {
          // 2 of the largest and 8 small ones of varied sizes (~150 kB: what a socket holds)
          const sent = Array.from({ length: 10 }, (_, i) => {
            const seq = round * 10 + i;
            return payload(i % 5 === 2 ? MAX_UDP_PAYLOAD : 64 + (seq % 7) * 13, seq);
          });
          for (const data of sent)
            h.backend.act(0, { kind: "udp-send", socket: 2, to: server, data });
          expect(h.until(() => h.packets(1).length === sent.length)).toBe(true);
          const got = h.packets(1);
          expect(got.map((p) => [p.size, p.truncated])).toEqual(sent.map((d) => [d.length, false]));
          expect(got.map((p) => p.data)).toEqual(sent);
          h.events.length = 0;
        }
        expect(h.backend.stats().kernelDrops).toBe(0);
        expect(h.backend.stats().truncated).toBe(0);
        h.backend.close();
      }
    });

    test("the event refilled for each datagram says where each one came from, read inside the handler, many times round its reused objects", () => {
      for (const host of ["127.0.0.1", "::1"]) {
        for (const packedBuffers of MODES[kind]) {
          const h = new Harness(kind, { recvBuffers: 16, packedBuffers });
          const server = h.listen(1, host);
          // 7 senders (127.0.0.1 to .7 on IPv4): each reused object sees them all in turn
          const senders = Array.from({ length: 7 }, (_, i) =>
            h.listen(10 + i, host === "::1" ? host : `127.0.0.${1 + i}`),
          );
          const wrong: string[] = [];
          let seen = 0;
          h.onPacket = (p) => {
            // each payload names its sender: the event's source must say the same
            const sender = senders[p.data[0] as number] as SocketAddr;
            if (p.from.toString() !== sender.toString() || p.size !== p.data.length)
              wrong.push(`${p.from} for ${sender}`);
            seen++;
          };
          for (let round = 0; round < 40; round++) {
            senders.forEach((_, i) => {
              const data = payload(8 + ((round + i) % 50), round);
              data[0] = i;
              h.backend.act(0, { kind: "udp-send", socket: 10 + i, to: server, data });
            });
            h.until(() => seen === (round + 1) * senders.length);
            h.events.length = 0;
          }
          expect(seen).toBe(280);
          expect(wrong).toEqual([]);
          h.backend.close();
        }
      }
    });

    test("a burst of 100,000 packets: none corrupted or duplicated, every loss accounted for", () => {
      const h = new Harness(kind, { recvBuffers: 4096 });
      const server = h.listen(1);
      h.listen(2);
      const total = 100_000;
      const seen = new Uint8Array(total);
      let corrupted = 0;
      let duplicates = 0;
      let received = 0;
      h.onPacket = (p) => {
        const v = new DataView(p.data.buffer, p.data.byteOffset, p.data.byteLength);
        const seq = v.getUint32(0, true);
        if (Bun.hash.crc32(p.data.subarray(8)) !== v.getUint32(4, true) || seq >= total)
          corrupted++;
        else if (seen[seq] === 1) duplicates++;
        else seen[seq] = 1;
        received++;
      };
      // keep only counters, not 100,000 copied events
      const keep = h.events;
      const before = udpDrops();
      for (let seq = 0; seq < total; seq++) {
        const data = payload(8 + (seq % 200), seq);
        const v = new DataView(data.buffer);
        v.setUint32(0, seq, true);
        v.setUint32(4, Bun.hash.crc32(data.subarray(8)), true);
        h.backend.act(0, { kind: "udp-send", socket: 2, to: server, data });
        if (seq % 256 === 255) {
          h.backend.poll(0);
          keep.length = 0;
        }
      }
      let idle = 0;
      while (idle < 5) {
        idle = h.backend.poll(50) === 0 ? idle + 1 : 0;
        keep.length = 0;
      }
      const kernelDrops = udpDrops() - before;
      const lost = total - received;
      console.log(
        `${kind}: ${received} of ${total} received, ${lost} lost, kernel counted ${kernelDrops} drops, ${h.backend.stats().bufferExhaustion} buffer exhaustions`,
      );
      expect(corrupted).toBe(0);
      expect(duplicates).toBe(0);
      expect(h.backend.stats().sendErrors).toBe(0);
      // a loss is never silent: the kernel's UDP drop counters account for every missing packet
      expect(lost).toBeLessThanOrEqual(kernelDrops);
      expect(received).toBeGreaterThan(0);
      h.backend.close();
    });

    test("kernelDrops: none while nothing overflows; a socket flooded while its backend does not poll counts each datagram it lost, and keeps them once closed", () => {
      const server = new Harness(kind);
      const client = new Harness(kind);
      const to = server.listen(1);
      client.listen(1);
      let received = 0;
      server.onPacket = () => received++;
      const send = (count: number) => {
        const sent = client.backend.stats().packetsOut + count;
        for (let i = 0; i < count; i++) {
          client.backend.act(0, { kind: "udp-send", socket: 1, to, data: payload(1000, i) });
          if (i % 64 === 63) client.backend.poll(0);
        }
        expect(client.until(() => client.backend.stats().packetsOut >= sent)).toBe(true);
      };
      const drain = () => {
        let idle = 0;
        while (idle < 5) {
          idle = server.backend.poll(20) === 0 ? idle + 1 : 0;
          server.events.length = 0;
        }
      };
      send(20);
      drain();
      expect(received).toBe(20);
      expect(server.backend.stats().kernelDrops).toBe(0);
      // 20 MB while the server does not poll: far more than its socket and receive buffers hold
      const total = 20_000;
      send(total);
      drain();
      const drops = server.backend.stats().kernelDrops;
      expect(drops).toBeGreaterThan(0);
      expect(received - 20 + drops).toBe(total); // each datagram arrived or was counted
      expect(client.backend.stats().sendErrors).toBe(0);
      server.backend.act(0, { kind: "udp-unlisten", socket: 1 });
      server.until(() => server.events.some((e) => e.kind === "udp-closed"));
      expect(server.backend.stats().kernelDrops).toBe(drops);
      server.backend.close();
      client.backend.close();
    });

    test("more operations per poll than the submission queue holds: every echo intact, once", () => {
      // 8 entries: sends, re-arms and buffer returns overflow the command array while
      // completions are being handled
      const h = new Harness(kind, { entries: 8, recvBuffers: 1024 });
      const server = h.listen(1);
      h.listen(2);
      h.onPacket = (p) => {
        if (p.socket === 1)
          h.backend.act(0, { kind: "udp-send", socket: 1, to: p.from, data: p.data });
      };
      const total = 500;
      const before = udpDrops();
      const message = (seq: number) => {
        const data = payload(32, seq);
        new DataView(data.buffer).setUint32(0, seq, true);
        return data;
      };
      for (let seq = 0; seq < total; seq++) {
        h.backend.act(0, { kind: "udp-send", socket: 2, to: server, data: message(seq) });
      }
      let idle = 0;
      while (idle < 5) idle = h.backend.poll(20) === 0 ? idle + 1 : 0;
      const echoes = h.packets(2);
      const seqs = echoes.map((p) => new DataView(p.data.buffer).getUint32(0, true));
      expect(new Set(seqs).size).toBe(seqs.length); // nothing twice
      for (const [i, p] of echoes.entries()) expect(p.data).toEqual(message(seqs[i] as number));
      // never silent: whatever did not come back was dropped by the kernel and counted there
      expect(total - echoes.length).toBeLessThanOrEqual(udpDrops() - before);
      expect(echoes.length).toBeGreaterThan(0);
      expect(h.backend.stats().sendErrors).toBe(0);
      h.backend.close();
      expect(h.backend.stats().buffersOutstanding).toBe(0);
    });

    test("a burst to one peer arrives datagram by datagram, sizes and order kept", () => {
      for (const host of ["127.0.0.1", "::1"]) {
        const h = new Harness(kind);
        const sender = h.listen(1, host);
        const a = h.listen(2, host);
        const b = h.listen(3, host);
        // runs of equal sizes to a; a shorter datagram, a new peer and a new size end a run
        const plan: [SocketAddr, number][] = [
          ...Array.from({ length: 70 }, (): [SocketAddr, number] => [a, 100]),
          [a, 40],
          [a, 100],
          [b, 100],
          [a, 100],
          [a, 1472],
          [a, 1472],
          [a, 1473], // larger than one Ethernet datagram: never coalesced
          [a, 0],
          [a, 7],
        ];
        const sent = plan.map(([to, size], i) => {
          const data = payload(size, i);
          if (size >= 4) new DataView(data.buffer).setUint32(0, i, true);
          h.backend.act(0, { kind: "udp-send", socket: 1, to, data });
          return { to, data };
        });
        const expectA = sent.filter((x) => x.to === a).map((x) => x.data);
        const expectB = sent.filter((x) => x.to === b).map((x) => x.data);
        expect(
          h.until(() => h.packets(2).length === expectA.length && h.packets(3).length === 1),
        ).toBe(true);
        expect(h.packets(2).map((p) => p.data)).toEqual(expectA);
        expect(h.packets(3).map((p) => p.data)).toEqual(expectB);
        expect(h.packets(2).every((p) => p.from.toString() === sender.toString())).toBe(true);
        const stats = h.backend.stats();
        expect(stats.packetsOut).toBe(plan.length);
        expect(stats.sendErrors).toBe(0);
        // io_uring sends runs to one peer as GSO sends: 64 + 6 + 40 | 100 | 100 | 100, 1472 x2 ...
        if (kind === "uring") expect(stats.gsoSends).toBe(3);
        else expect(stats.gsoSends).toBe(0);
        h.backend.close();
      }
    });

    // a simulated backend has no thread to wake: its time moves only when it polls
    const wakeTest = kind === "sim" ? noWakeUp : test;
    wakeTest("a parked backend is woken from another Worker", async () => {
      const h = new Harness(kind);
      h.listen(1);
      const worker = new Worker(new URL("./workers/waker.ts", import.meta.url).href);
      const woke = new Promise((resolve) => {
        worker.onmessage = resolve;
      });
      worker.postMessage({ handle: h.backend.wakeHandle, delayMs: 100 });
      // parked for up to 30 s: only the wake-up ends this early
      const events = h.backend.poll(30_000);
      await woke;
      const closed = new Promise((resolve) => worker.addEventListener("close", resolve));
      worker.terminate();
      await closed; // its thread's descriptors are gone before the next test counts them
      expect(events).toBe(0);
      expect(h.backend.stats().wakeups).toBe(1);
      h.backend.close();
    });

    test("unlisten reports udp-closed; sends on a closed or unknown socket are reported", () => {
      const h = new Harness(kind);
      const server = h.listen(1);
      h.backend.act(0, { kind: "udp-unlisten", socket: 1 });
      h.backend.act(0, { kind: "udp-send", socket: 1, to: server, data: payload(4, 1) });
      h.backend.act(0, { kind: "udp-send", socket: 99, to: server, data: payload(4, 1) });
      h.until(() => h.events.some((e) => e.kind === "udp-closed"));
      expect(h.events).toContainEqual({ kind: "udp-closed", socket: 1 });
      expect(h.events.filter((e) => e.kind === "udp-send-error").map((e) => e.socket)).toEqual([
        1, 99,
      ]);
      expect(h.backend.stats().sockets).toBe(0);
      // a datagram larger than UDP allows is refused with EMSGSIZE, never truncated or thrown
      const client = h.listen(2);
      h.backend.act(0, { kind: "udp-send", socket: 2, to: client, data: new Uint8Array(65508) });
      h.until(() => h.events.filter((e) => e.kind === "udp-send-error").length === 3);
      expect(h.events.filter((e) => e.kind === "udp-send-error")[2]).toMatchObject({
        socket: 2,
        error: { code: "EMSGSIZE" },
      });
      h.backend.close();
    });

    test("close with operations in flight gives back every file descriptor and buffer", () => {
      const fds = openFileDescriptors();
      const h = new Harness(kind, { recvBuffers: 64 });
      const server = h.listen(1);
      h.listen(2);
      h.listen(3, "::1");
      // receives armed, a burst sent, some of it received and echoed, the rest still in flight
      h.onPacket = (p) =>
        h.backend.act(0, { kind: "udp-send", socket: 1, to: p.from, data: p.data });
      for (let i = 0; i < 2000; i++)
        h.backend.act(0, { kind: "udp-send", socket: 2, to: server, data: payload(64, i) });
      h.backend.poll(0);
      for (let i = 0; i < 500; i++)
        h.backend.act(0, { kind: "udp-send", socket: 2, to: server, data: payload(1200, i) });
      h.backend.close();
      const stats = h.backend.stats();
      expect(stats.sockets).toBe(0);
      expect(stats.buffersOutstanding).toBe(0);
      expect(openFileDescriptors()).toBe(fds);
    });
  });
}

describe("io_uring receive memory", () => {
  const make = (options: {
    recvBuffers?: number;
    recvBufferSize?: number;
    packedBuffers?: boolean;
  }) => new UringBackend({ onEvent: () => {}, ...options });

  test("packed where the kernel has it; about 2 MiB by default whatever the buffer size; recvBuffers scales it", () => {
    const b = make({});
    expect(b.packedBuffers).toBe(probeUring().packedBuffers);
    b.close();
    const MiB = 1024 * 1024;
    for (const packedBuffers of [true, false]) {
      for (const recvBufferSize of [2048, recvBufferSizeFor(MAX_UDP_PAYLOAD)]) {
        const d = make({ recvBufferSize, packedBuffers });
        expect(d.recvMemory).toBeGreaterThanOrEqual(2 * MiB);
        expect(d.recvMemory).toBeLessThanOrEqual(2 * MiB + 4 * recvBufferSize);
        d.close();
      }
      const more = make({ recvBuffers: 4096, packedBuffers });
      expect(more.recvMemory).toBe(8 * MiB);
      more.close();
    }
    expect(() => make({ recvBuffers: 1000 })).toThrow(RangeError);
  });
});

/** The kernel's UDP receive errors (all sockets; they include buffer overflows), IPv4 + IPv6. */
function udpDrops(): number {
  let drops = 0;
  const snmp = readFileSync("/proc/net/snmp", "utf8");
  const lines = snmp.split("\n").filter((l) => l.startsWith("Udp:"));
  const [names, values] = [lines[0]?.split(/\s+/) ?? [], lines[1]?.split(/\s+/) ?? []];
  drops += Number(values[names.indexOf("InErrors")] ?? 0);
  const snmp6 = readFileSync("/proc/net/snmp6", "utf8");
  for (const line of snmp6.split("\n")) {
    const [key, value] = line.split(/\s+/);
    if (key === "Udp6InErrors") drops += Number(value);
  }
  return drops;
}
