/**
 * TCP conformance: one suite, run against both kernel backends with real sockets on loopback
 * (and a blackhole inside a network namespace for the connect timeout).
 */
import { afterAll, describe, expect, test } from "bun:test";
import { SocketAddr, type UringBackend } from "../../src/index.ts";
import { TcpRig } from "./tcp-rig.ts";

const CI = process.env.CI === "true";
const root = process.getuid?.() === 0;
if (CI && !root) throw new Error("CI=true: the TCP connect-timeout test needs root (ip netns)");

/** A network namespace reached over a veth pair whose replies are blackholed (root only). */
class Blackhole {
  readonly ns = `siotcp${process.pid}`;
  readonly host = `vsio${process.pid % 100000}a`;
  readonly peer = `vsio${process.pid % 100000}b`;
  readonly address = "10.231.77.2";

  constructor() {
    const run = (...cmd: string[]) => {
      const r = Bun.spawnSync(cmd);
      if (!r.success) throw new Error(`${cmd.join(" ")}: ${r.stderr}`);
    };
    run("ip", "netns", "add", this.ns);
    run("ip", "link", "add", this.host, "type", "veth", "peer", "name", this.peer);
    run("ip", "link", "set", this.peer, "netns", this.ns);
    run("ip", "addr", "add", "10.231.77.1/30", "dev", this.host);
    run("ip", "link", "set", this.host, "up");
    const inNs = (...cmd: string[]) => run("ip", "netns", "exec", this.ns, ...cmd);
    inNs("ip", "addr", "add", `${this.address}/30`, "dev", this.peer);
    inNs("ip", "link", "set", this.peer, "up");
    inNs("ip", "link", "set", "lo", "up");
    // the namespace gets the SYN but its answer (SYN-ACK or RST) is discarded
    inNs("ip", "route", "add", "blackhole", "10.231.77.1/32");
  }

  remove(): void {
    Bun.spawnSync(["ip", "link", "del", this.host]);
    Bun.spawnSync(["ip", "netns", "del", this.ns]);
  }
}

const blackhole = root ? new Blackhole() : undefined;
afterAll(() => blackhole?.remove());

for (const kind of ["uring", "epoll"] as const) {
  describe(`${kind} backend, TCP`, () => {
    test("a burst of 1,000 connections is accepted and every one served", () => {
      const rig = new TcpRig(kind);
      const server = rig.listen();
      const N = 1000;
      for (let i = 0; i < N; i++) rig.backend.act(0, { kind: "tcp-connect", conn: i, to: server });
      const connected = () => rig.events.filter((e) => e.kind === "tcp-connect-result").length;
      expect(rig.until(() => connected() === N, 20_000)).toBe(true);
      expect(rig.events.filter((e) => e.kind === "tcp-connect-result" && e.error)).toEqual([]);
      for (let i = 0; i < N; i++) {
        rig.expect.set(i, i);
        rig.write(i, 100, i);
      }
      const served = () => [...Array(N).keys()].every((i) => rig.conn(i).bytesIn === 100);
      expect(rig.until(served, 20_000)).toBe(true);
      expect([...Array(N).keys()].filter((i) => rig.conn(i).corrupt.length > 0)).toEqual([]);
      expect(rig.accepted().length).toBe(N);
      expect(new Set(rig.accepted()).size).toBe(N); // every accepted id is its own
      expect(rig.backend.stats().tcpAccepted).toBe(N);
      // the clients close; the echo closes each accepted connection at its FIN
      for (let i = 0; i < N; i++) rig.backend.act(0, { kind: "tcp-close", conn: i });
      expect(rig.until(() => rig.backend.stats().tcpConnections === 0, 20_000)).toBe(true);
      expect([...rig.conns.values()].filter((c) => c.closed !== "clean")).toEqual([]);
      rig.backend.close();
    });

    test("10 MiB each way through one connection, every byte checked", () => {
      const rig = new TcpRig(kind);
      const server = rig.listen();
      expect(rig.connect(1, server)?.error).toBeUndefined();
      const total = 10 * 2 ** 20;
      rig.expect.set(1, 7);
      const accepted = rig.accepted()[0] as number;
      rig.expect.set(accepted, 7);
      rig.write(1, total, 7);
      expect(rig.until(() => rig.conn(1).bytesIn === total, 60_000)).toBe(true);
      expect(rig.conn(accepted).bytesIn).toBe(total);
      expect(rig.conn(1).corrupt).toEqual([]);
      expect(rig.conn(accepted).corrupt).toEqual([]);
      expect(rig.conn(1).sendErrors).toEqual([]);
      expect(rig.conn(accepted).sendErrors).toEqual([]);
      const stats = rig.backend.stats();
      expect(stats.tcpBytesIn).toBe(2 * total);
      expect(stats.tcpBytesOut).toBe(2 * total);
      expect(stats.tcpQueuedBytes).toBe(0);
      rig.backend.close();
    });

    test("a slow reader: the queue crosses its high-water mark, stays under the cap, nothing silently lost", () => {
      const tcp = { highWater: 65536, lowWater: 16384, maxQueued: 1 << 20 };
      const rig = new TcpRig(kind, tcp);
      rig.echo = false;
      const server = rig.listen();
      expect(rig.connect(1, server)?.error).toBeUndefined();
      const accepted = rig.accepted()[0] as number;
      rig.backend.act(0, { kind: "tcp-pause", conn: 1 }); // the client reads nothing
      // the server pushes without looking at backpressure: 64 KiB at a time, 8 MiB in all
      let offered = 0;
      let refused = 0;
      for (let round = 0; round < 128; round++) {
        const before = rig.conn(accepted).sendErrors.length;
        rig.backend.act(0, { kind: "tcp-send", conn: accepted, data: new Uint8Array(65536) });
        rig.backend.poll(1);
        offered += 65536;
        if (rig.conn(accepted).sendErrors.length > before) refused += 65536;
        expect(rig.backend.stats().tcpQueuedBytes).toBeLessThanOrEqual(tcp.maxQueued);
      }
      rig.until(() => false, 300);
      const state = rig.conn(accepted);
      expect(state.blocked).toBe(true);
      expect(rig.events.some((e) => e.kind === "tcp-backpressure" && e.blocked)).toBe(true);
      expect(refused).toBeGreaterThan(0);
      expect(state.sendErrors.every((e) => e.code === "ENOBUFS")).toBe(true);
      expect(state.sendErrors[0]?.message).toContain("tcp-backpressure");
      // everything offered is either queued, taken by the kernel, or refused with an event
      const stats = rig.backend.stats();
      expect(stats.tcpQueuedBytes + stats.tcpBytesOut + refused).toBe(offered);
      expect(stats.tcpSendRefused).toBe(refused / 65536);
      // the reader wakes up: the queue drains below the low-water mark, and says so
      rig.backend.act(0, { kind: "tcp-resume", conn: 1 });
      expect(rig.until(() => !rig.conn(accepted).blocked)).toBe(true);
      expect(rig.until(() => rig.conn(1).bytesIn === offered - refused)).toBe(true);
      rig.backend.close();
    });

    test("a paused receive makes the remote writer block; resuming lets it finish", () => {
      const rig = new TcpRig(kind);
      rig.echo = false;
      const server = rig.listen();
      expect(rig.connect(1, server)?.error).toBeUndefined();
      const accepted = rig.accepted()[0] as number;
      rig.backend.act(0, { kind: "tcp-pause", conn: accepted });
      rig.until(() => false, 100);
      const total = 64 * 2 ** 20;
      rig.expect.set(accepted, 3);
      rig.write(1, total, 3);
      // the kernel's buffers fill (growing as they autotune), then the writer's own queue: it is
      // told to stop, and stays stopped once the buffers are at their largest
      let written = -1;
      let since = performance.now();
      const stalled = () => {
        const now = rig.conn(1).written;
        if (now !== written || !rig.conn(1).blocked) {
          written = now;
          since = performance.now();
        }
        return performance.now() - since > 1000;
      };
      expect(rig.until(stalled, 30_000)).toBe(true);
      expect(rig.conn(1).blocked).toBe(true);
      expect(rig.conn(accepted).bytesIn).toBe(0); // nothing delivered while paused
      expect(rig.conn(1).written).toBeLessThan(total);
      expect(rig.conn(1).sendErrors).toEqual([]);
      rig.backend.act(0, { kind: "tcp-resume", conn: accepted });
      expect(rig.until(() => rig.conn(accepted).bytesIn === total, 60_000)).toBe(true);
      expect(rig.conn(accepted).corrupt).toEqual([]);
      expect(rig.conn(1).blocked).toBe(false);
      rig.backend.close();
    });

    test("a peer's reset ends the connection with ECONNRESET; what was queued is counted unsent", () => {
      const rig = new TcpRig(kind);
      rig.echo = false;
      const server = rig.listen();
      expect(rig.connect(1, server)?.error).toBeUndefined();
      const accepted = rig.accepted()[0] as number;
      rig.backend.act(0, { kind: "tcp-send", conn: 1, data: new Uint8Array(100) });
      expect(rig.until(() => rig.conn(accepted).bytesIn === 100)).toBe(true);
      rig.backend.act(0, { kind: "tcp-abort", conn: accepted });
      expect(rig.until(() => rig.conn(accepted).closed !== undefined)).toBe(true);
      expect(rig.conn(accepted).closed).toBe("clean");
      expect(rig.until(() => rig.conn(1).closed !== undefined)).toBe(true);
      const closed = rig.conn(1).closed;
      expect(typeof closed === "object" ? closed.code : closed).toBe("ECONNRESET");
      // a send to a closed connection is refused, not lost
      rig.backend.act(0, { kind: "tcp-send", conn: 1, data: new Uint8Array(10) });
      rig.until(() => rig.conn(1).sendErrors.length > 0);
      expect(rig.conn(1).sendErrors[0]?.code).toBe("EBADF");
      expect(rig.backend.stats().tcpConnections).toBe(0);
      rig.backend.close();
    });

    test("half-close in both directions: FIN is an event, the other side still sends", () => {
      const rig = new TcpRig(kind);
      rig.echo = false;
      const server = rig.listen();
      expect(rig.connect(1, server)?.error).toBeUndefined();
      const accepted = rig.accepted()[0] as number;
      rig.expect.set(1, 2);
      // client → server, then the client's FIN
      rig.backend.act(0, { kind: "tcp-send", conn: 1, data: new Uint8Array([1, 2]) });
      rig.backend.act(0, { kind: "tcp-shutdown", conn: 1 });
      expect(rig.until(() => rig.conn(accepted).fin)).toBe(true);
      expect(rig.conn(accepted).bytesIn).toBe(2); // the data came before the FIN
      // a send after shutting down is refused
      rig.backend.act(0, { kind: "tcp-send", conn: 1, data: new Uint8Array(1) });
      expect(rig.until(() => rig.conn(1).sendErrors.length === 1)).toBe(true);
      expect(rig.conn(1).sendErrors[0]?.code).toBe("EPIPE");
      // the server still sends after the client's FIN, then shuts down too
      rig.write(accepted, 300_000, 2);
      expect(rig.until(() => rig.conn(1).bytesIn === 300_000)).toBe(true);
      expect(rig.conn(1).corrupt).toEqual([]);
      expect(rig.conn(1).fin).toBe(false);
      rig.backend.act(0, { kind: "tcp-shutdown", conn: accepted });
      expect(rig.until(() => rig.conn(1).fin)).toBe(true);
      for (const conn of [1, accepted]) rig.backend.act(0, { kind: "tcp-close", conn });
      expect(
        rig.until(
          () => rig.conn(1).closed !== undefined && rig.conn(accepted).closed !== undefined,
        ),
      ).toBe(true);
      expect(rig.conn(1).closed).toBe("clean");
      expect(rig.conn(accepted).closed).toBe("clean");
      rig.backend.close();
    });

    test("connect refused: ECONNREFUSED, and the id is free again", () => {
      const rig = new TcpRig(kind);
      const probe = new TcpRig(kind);
      const port = probe.listen().port;
      probe.backend.close(); // nobody listens there now
      const to = SocketAddr.parse("127.0.0.1", port);
      expect(rig.connect(1, to)?.error?.code).toBe("ECONNREFUSED");
      expect(rig.events.some((e) => e.kind === "tcp-closed")).toBe(false);
      rig.events.length = 0;
      const server = rig.listen();
      expect(rig.connect(1, server)?.error).toBeUndefined(); // the same id again
      rig.backend.close();
    });

    test.skipIf(!root && !CI)(
      "connect timeout against a blackhole: ETIMEDOUT after the timeout",
      () => {
        const rig = new TcpRig(kind);
        const to = SocketAddr.parse((blackhole as Blackhole).address, 9);
        const t0 = performance.now();
        const r = rig.connect(1, to, 300, 5000);
        const took = performance.now() - t0;
        expect(r?.error?.code).toBe("ETIMEDOUT");
        expect(r?.error?.message).toContain("300 ms");
        expect(took).toBeGreaterThanOrEqual(250);
        expect(rig.backend.stats().tcpConnections).toBe(0);
        rig.backend.close();
      },
    );

    test("receive buffers used up (16 stream buffers): receives park and recover, nothing lost", () => {
      const rig = new TcpRig(kind, { recvBuffers: 16, recvBufferSize: 4096 });
      const server = rig.listen();
      const N = 8;
      const total = 2 * 2 ** 20;
      for (let i = 0; i < N; i++) {
        expect(rig.connect(i, server)?.error).toBeUndefined();
        rig.expect.set(i, 10 + i);
        rig.write(i, total, 10 + i);
      }
      const done = () => [...Array(N).keys()].every((i) => rig.conn(i).bytesIn === total);
      expect(rig.until(done, 60_000)).toBe(true);
      expect([...Array(N).keys()].flatMap((i) => rig.conn(i).corrupt)).toEqual([]);
      if (kind === "uring") expect(rig.backend.stats().tcpRecvParked).toBeGreaterThan(0);
      rig.backend.close();
    });

    test("past maxConnections: accepts beyond it are reset and counted, a connect is refused naming the option, a close makes room", () => {
      const server = new TcpRig(kind, { maxConnections: 4 }); // the listener and 3 connections
      const client = new TcpRig(kind);
      client.echo = false;
      const addr = server.listen();
      /** Polls both rigs until `done()` (10 s at most). */
      const both = (done: () => boolean) => {
        const deadline = Date.now() + 10_000;
        while (!done() && Date.now() < deadline) {
          server.until(done, 2);
          client.until(done, 2);
        }
        return done();
      };
      for (let i = 0; i < 5; i++) client.backend.act(0, { kind: "tcp-connect", conn: i, to: addr });
      const results = () => client.events.filter((e) => e.kind === "tcp-connect-result");
      // the kernel completes every handshake; the backend takes 3 and resets the other 2
      expect(both(() => results().length === 5)).toBe(true);
      /** How the client's connection `i` ended: its connect failed, or it was closed (or not). */
      const ended = (i: number) => {
        const r = results().find((e) => e.kind === "tcp-connect-result" && e.conn === i);
        return (r?.kind === "tcp-connect-result" ? r.error : undefined) ?? client.conn(i).closed;
      };
      for (let i = 0; i < 5; i++) if (ended(i) === undefined) client.write(i, 10, i);
      const echoedOrReset = () =>
        [0, 1, 2, 3, 4].every((i) => client.conn(i).bytesIn === 10 || ended(i) !== undefined);
      expect(both(echoedOrReset)).toBe(true);
      // the reset comes right after the handshake: the connect itself may report it
      const reset = [0, 1, 2, 3, 4].filter((i) => ended(i) !== undefined);
      expect(reset.length).toBe(2);
      for (const i of reset) expect(ended(i)).toMatchObject({ code: "ECONNRESET" });
      expect(server.backend.stats()).toMatchObject({ tcpAccepted: 3, tcpAcceptRefused: 2 });
      // the server's own connect is refused with a reason that names the option
      const refused = server.connect(9, addr);
      expect(refused?.error?.code).toBe("EMFILE");
      expect(refused?.error?.message).toContain("tcp.maxConnections");
      // one client closes: the echo closes its side at the FIN, and a new connection fits
      const served = [0, 1, 2, 3, 4].filter((i) => !reset.includes(i));
      client.backend.act(0, { kind: "tcp-close", conn: served[0] as number });
      expect(both(() => server.backend.stats().tcpConnections === 2)).toBe(true);
      client.backend.act(0, { kind: "tcp-connect", conn: 5, to: addr });
      client.write(5, 10, 5);
      expect(both(() => client.conn(5).bytesIn === 10)).toBe(true);
      expect(server.backend.stats()).toMatchObject({ tcpAccepted: 4, tcpAcceptRefused: 2 });
      client.backend.close();
      server.backend.close();
    });

    test("a graceful close to a peer that never reads gives up after closeTimeoutMs: reset, ETIMEDOUT, unsent counted", () => {
      const server = new TcpRig(kind, {
        closeTimeoutMs: 300,
        maxQueued: 64 << 20,
        sendMemory: 64 << 20,
      });
      server.echo = false;
      const client = new TcpRig(kind);
      client.echo = false;
      const addr = server.listen();
      client.backend.act(0, { kind: "tcp-connect", conn: 0, to: addr });
      client.backend.act(0, { kind: "tcp-pause", conn: 0 }); // it never reads
      const both = (done: () => boolean, ms = 10_000) => {
        const deadline = Date.now() + ms;
        while (!done() && Date.now() < deadline) {
          server.until(done, 2);
          client.until(done, 2);
        }
        return done();
      };
      expect(both(() => server.accepted().length === 1)).toBe(true);
      const conn = server.accepted()[0] as number;
      // more than the kernel's socket buffers take (tens of MiB on loopback, where the receive
      // buffer grows to net.ipv4.tcp_rmem's 32 MiB): the rest stays queued in the runtime
      for (let i = 0; i < 48; i++)
        server.backend.act(0, { kind: "tcp-send", conn, data: new Uint8Array(1 << 20) });
      both(() => false, 300);
      expect(server.backend.stats().tcpQueuedBytes).toBeGreaterThan(0);
      const closeAt = performance.now();
      server.backend.act(0, { kind: "tcp-close", conn });
      expect(both(() => server.conn(conn).closed !== undefined, 5000)).toBe(true);
      const waited = performance.now() - closeAt;
      expect(waited, JSON.stringify(server.conn(conn).closed)).toBeGreaterThanOrEqual(290);
      expect(server.conn(conn).closed).toMatchObject({ code: "ETIMEDOUT" });
      expect((server.conn(conn).closed as { message: string }).message).toContain(
        "tcp.closeTimeoutMs",
      );
      const closed = server.events.find((e) => e.kind === "tcp-closed");
      expect(closed?.kind === "tcp-closed" && (closed.unsent ?? 0) > 0).toBe(true);
      expect(server.backend.stats()).toMatchObject({ tcpConnections: 0, tcpQueuedBytes: 0 });
      // paused before its connect completed, the client has read nothing; it sees the reset
      expect(client.conn(0).bytesIn).toBe(0);
      client.backend.act(0, { kind: "tcp-resume", conn: 0 });
      expect(both(() => client.conn(0).closed !== undefined, 5000)).toBe(true);
      client.backend.close();
      server.backend.close();
    });

    test("closing the backend resets every connection and closes every descriptor", () => {
      const rig = new TcpRig(kind);
      const server = rig.listen();
      for (let i = 0; i < 10; i++) expect(rig.connect(i, server)?.error).toBeUndefined();
      rig.backend.close();
      const peer = new TcpRig(kind);
      // the port is free again: a new listener can take it
      expect(peer.listen(1, "127.0.0.1", { port: server.port }).port).toBe(server.port);
      peer.backend.close();
    });
  });
}

describe("uring backend, TCP generations", () => {
  test("a completion for an older generation of a reused slot is ignored and counted", () => {
    const rig = new TcpRig("uring");
    rig.echo = false;
    const backend = rig.backend as UringBackend;
    const server = rig.listen();
    expect(rig.connect(1, server)?.error).toBeUndefined(); // slot 0: the connect
    const oldGen = backend.tcpGeneration(0);
    rig.backend.act(0, { kind: "tcp-abort", conn: 1 });
    expect(rig.until(() => rig.conn(1).closed !== undefined)).toBe(true);
    expect(rig.until(() => rig.backend.stats().tcpConnections === 0)).toBe(true);
    // slot 0 is reused by the next connection, one generation on
    expect(rig.connect(2, server)?.error).toBeUndefined();
    expect(backend.tcpGeneration(0)).not.toBe(oldGen);
    backend.injectStaleTcpCompletion(0, oldGen); // an "end of stream" for the old connection
    rig.until(() => rig.backend.stats().tcpStaleCompletions > 0, 2000);
    expect(rig.backend.stats().tcpStaleCompletions).toBe(1);
    rig.until(() => false, 100);
    // neither new connection (one of them took slot 0) took it for its own
    const accepted = rig.accepted()[1] as number;
    expect(rig.conn(2).fin).toBe(false);
    expect(rig.conn(accepted).fin).toBe(false);
    rig.backend.act(0, { kind: "tcp-send", conn: 2, data: new Uint8Array(5) });
    expect(rig.until(() => rig.conn(accepted).bytesIn === 5)).toBe(true);
    rig.backend.close();
  });
});
