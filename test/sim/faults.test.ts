/**
 * Fault injection middleware: each fault shows up as documented (an event, a drop, a counter),
 * counted, drawn from its seed; over the simulated backend and over the kernel's.
 */
import { describe, expect, test } from "bun:test";
import {
  FaultBackend,
  type FaultCounts,
  type FaultOptions,
  type NetEvent,
  SimNetwork,
  type SocketAddr,
  withFaults,
} from "../../src/index.ts";
import { Harness, KINDS } from "../backend/harness.ts";

/** A harness on a simulated machine with `faults` around its backend, sockets 1 and 2 open. */
function faulty(faults: Omit<FaultOptions, "clock">, seed = 1) {
  const network = new SimNetwork(seed);
  const host = network.addHost("a", ["10.0.0.1"]);
  const h = new Harness({ network, host }, {}, (make) =>
    withFaults(make, { clock: network.clock, ...faults }),
  );
  const server = h.listen(1);
  h.listen(2);
  return { network, host, h, server };
}

function counts(h: Harness): FaultCounts {
  if (!(h.backend instanceof FaultBackend)) throw new Error("no fault middleware");
  return h.backend.faults();
}

function send(h: Harness, to: SocketAddr, count: number, size = 40): void {
  for (let seq = 0; seq < count; seq++) {
    const data = new Uint8Array(size).fill(seq);
    h.backend.act(0, { kind: "udp-send", socket: 2, to, data });
  }
}

/** Polls five times: on one simulated machine, all that was sent has arrived by then. */
function settle(h: Harness): void {
  h.until(() => false, 5);
}

/** What a fresh one counts. */
const none = counts(faulty({ seed: 1 }).h);

describe("fault injection", () => {
  test("received datagrams: dropped vanish; exhausted count as receive-buffer exhaustion and kernel drops; delayed arrive delayMs later; truncated arrive cut and flagged", () => {
    const dropped = faulty({ seed: 1, drop: 1 });
    send(dropped.h, dropped.server, 10);
    settle(dropped.h);
    expect(dropped.h.packets(1)).toEqual([]);
    expect(counts(dropped.h)).toEqual({ ...none, dropped: 10 });

    const exhausted = faulty({ seed: 1, exhaust: 1 });
    send(exhausted.h, exhausted.server, 10);
    settle(exhausted.h);
    expect(exhausted.h.packets(1)).toEqual([]);
    expect(counts(exhausted.h)).toEqual({ ...none, exhausted: 10 });
    expect(exhausted.h.backend.stats()).toMatchObject({ bufferExhaustion: 10, kernelDrops: 10 });

    const delayed = faulty({ seed: 1, delay: 1, delayMs: 30 });
    send(delayed.h, delayed.server, 10);
    expect(delayed.h.backend.poll(0)).toBe(0); // sent and received here, but held
    expect(delayed.h.backend.nextDeadline?.()).toBe(30);
    expect(delayed.h.until(() => delayed.h.packets(1).length === 10)).toBe(true);
    expect(delayed.network.now).toBe(30);
    expect(delayed.h.packets(1).map((p) => p.data[0])).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(counts(delayed.h)).toEqual({ ...none, delayed: 10 });

    const truncated = faulty({ seed: 1, truncate: 1 });
    send(truncated.h, truncated.server, 10);
    truncated.h.until(() => truncated.h.packets(1).length === 10);
    expect(truncated.h.packets(1).map((p) => [p.data.length, p.size, p.truncated])).toEqual(
      Array.from({ length: 10 }, () => [20, 40, true]),
    );
    expect(counts(truncated.h)).toEqual({ ...none, truncated: 10 });
    expect(truncated.h.backend.stats()).toMatchObject({ truncated: 10, eventsIn: 12 });
  });

  test("sends: refusals (EAGAIN) and failures (failCode) come back as send-error events at the next poll, per datagram; the rest still go", () => {
    const { h, server } = faulty({
      seed: 3,
      refuse: 0.3,
      fail: 0.3,
      failCode: "EHOSTUNREACH",
    });
    send(h, server, 20);
    h.backend.act(0, {
      kind: "udp-send-many",
      socket: 2,
      to: [server, server, server],
      data: new Uint8Array(8),
    });
    h.backend.act(0, {
      kind: "udp-send-batch",
      packets: Array.from({ length: 10 }, () => ({
        socket: 2,
        to: server,
        data: new Uint8Array(8),
      })),
    });
    settle(h);
    const { refused, failed } = counts(h);
    const errors = h.events.filter((e) => e.kind === "udp-send-error");
    expect(refused).toBeGreaterThan(0);
    expect(failed).toBeGreaterThan(0);
    expect(errors.map((e) => e.error.code).sort()).toEqual([
      ...Array.from({ length: refused }, () => "EAGAIN"),
      ...Array.from({ length: failed }, () => "EHOSTUNREACH"),
    ]);
    expect(errors.find((e) => e.error.code === "EAGAIN")?.error.message).toBe(
      "resource temporarily unavailable",
    );
    expect(h.packets(1).length).toBe(33 - refused - failed);
    expect(h.backend.stats().sendErrors).toBe(refused + failed);

    // a write into a TUN device the same way
    const refusing = faulty({ seed: 1, refuse: 1 });
    const tun = refusing.host.addTun({ name: "tun0", address: "10.9.0.1/24" });
    refusing.h.backend.act(0, { kind: "tun-bind", device: 1, fd: tun.queues[0] as number });
    refusing.h.backend.act(0, { kind: "tun-send", device: 1, data: new Uint8Array(20) });
    refusing.h.until(() => refusing.h.events.some((e) => e.kind === "tun-send-error"));
    expect(refusing.h.events.find((e) => e.kind === "tun-send-error")).toMatchObject({
      device: 1,
      error: { code: "EAGAIN" },
    });
  });

  test("mixed faults follow the seed: each datagram delivered (perhaps late or cut), dropped or exhausted, once; the same seed repeats it", () => {
    const run = (seed: number) => {
      const { h, server } = faulty({ seed, drop: 0.1, exhaust: 0.1, delay: 0.1, truncate: 0.1 });
      send(h, server, 400);
      settle(h);
      return { h, got: h.packets(1).map((p) => `${p.data[0]}${p.truncated ? "/cut" : ""}`) };
    };
    const { h, got } = run(11);
    const c = counts(h);
    expect(got.length + c.dropped + c.exhausted).toBe(400);
    expect(got.filter((g) => g.endsWith("/cut")).length).toBe(c.truncated);
    expect(Object.values(c).filter((n) => n > 0).length).toBe(4);
    expect(run(11).got).toEqual(got);
    expect(run(12).got).not.toEqual(got);
  });

  test("probabilities are checked", () => {
    expect(() => faulty({ seed: 1, drop: 0.6, truncate: 0.6 })).toThrow(RangeError);
    expect(() => faulty({ seed: 1, refuse: -0.1 })).toThrow(RangeError);
  });
});

describe.each(KINDS)("fault injection around the %s backend", (kind) => {
  test("truncation, delays and failed sends on loopback", () => {
    const h = new Harness(kind, {}, (make) =>
      withFaults(make, {
        seed: 5,
        clock: () => performance.now(),
        truncate: 0.5,
        delay: 0.5,
        delayMs: 5,
        fail: 0.5,
      }),
    );
    const server = h.listen(1);
    h.listen(2);
    send(h, server, 40);
    const { failed } = counts(h);
    expect(h.until(() => h.packets(1).length === 40 - failed)).toBe(true);
    const c = counts(h);
    expect([c.truncated > 0, c.delayed > 0, failed > 0]).toEqual([true, true, true]);
    expect(h.packets(1).filter((p) => p.truncated).length).toBe(c.truncated);
    const errors = h.events.filter(
      (e): e is Extract<NetEvent, { kind: "udp-send-error" }> => e.kind === "udp-send-error",
    );
    expect(errors.map((e) => e.error.code)).toEqual(
      Array.from({ length: failed }, () => "ENETUNREACH"),
    );
    h.backend.close();
  });
});
