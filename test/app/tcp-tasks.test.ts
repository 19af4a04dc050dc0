/**
 * TCP in grouped tasks under the real controller, on both backends, with real peers on
 * loopback: what the runtime does with a task's listener and connections when the task ends,
 * and when its whole worker dies.
 */
import { describe, expect, test } from "bun:test";
import type { Socket } from "bun";
import {
  type Controller,
  type ControllerEvent,
  openFileDescriptors,
  type TaskAddress,
} from "../../src/index.ts";
import { lab, statsUntil } from "../controller/lab.ts";
import type { EventLog } from "../controller/log.ts";
import { PROBES, reported, said } from "./reports.ts";

type Died = Extract<ControllerEvent, { kind: "worker-died" }>;

/** A loopback client: what it has read, and how its connection ended ("end", "close", "error X"). */
interface Peer {
  readonly socket: Socket;
  read(): string;
  readonly ended: Promise<string>;
}

async function connect(port: number): Promise<Peer> {
  let got = "";
  let end: (how: string) => void = () => {};
  const ended = new Promise<string>((resolve) => {
    end = resolve;
  });
  const socket = await Bun.connect({
    hostname: "127.0.0.1",
    port,
    socket: {
      data(_s, data) {
        got += data.toString();
      },
      end() {
        end("end");
      },
      close() {
        end("close");
      },
      error(_s, e) {
        end(`error ${(e as NodeJS.ErrnoException).code}`);
      },
    },
  });
  return { socket, read: () => got, ended };
}

/** Waits until `peer` has read `text` (2 s at most). */
async function readUntil(peer: Peer, text: string): Promise<void> {
  const deadline = Date.now() + 2000;
  while (!peer.read().includes(text) && Date.now() < deadline) await Bun.sleep(5);
  expect(peer.read()).toContain(text);
}

/** How a connect to `port` goes: "connected" or the error code. */
async function tryConnect(port: number): Promise<string> {
  try {
    const s = await Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {} } });
    s.end();
    return "connected";
  } catch (e) {
    return String((e as NodeJS.ErrnoException).code);
  }
}

/** Waits (2 s at most) until a connect to `port` is no longer accepted: its listener has closed. */
async function refusedSoon(port: number): Promise<string> {
  const deadline = Date.now() + 2000;
  for (;;) {
    const how = await tryConnect(port);
    if (how !== "connected" || Date.now() > deadline) return how;
    await Bun.sleep(10);
  }
}

/** Settles the open-fd count (the runtime closes in the background). */
async function fdsBecome(n: number): Promise<number> {
  const deadline = Date.now() + 3000;
  while (openFileDescriptors() !== n && Date.now() < deadline) await Bun.sleep(10);
  return openFileDescriptors();
}

/** Spawns a probe task listening on a free port; returns its address and the port. */
async function listeningProbe(
  controller: Controller,
  log: EventLog,
): Promise<{ a: TaskAddress; port: number }> {
  const a = await controller.spawnTask("probe");
  controller.sendToTask(a, { op: "tcp-listen", listener: 0, port: 0 });
  await reported(log, a, /^tcp-listen 0: ok \d+$/);
  const line = said(log, a).find((s) => s.startsWith("tcp-listen")) ?? "";
  return { a, port: Number(/ok (\d+)/.exec(line)?.[1]) };
}

for (const backend of ["uring", "epoll"] as const) {
  describe(`${backend}: TCP in grouped tasks`, () => {
    test("a task that ends with connections open: each is closed gracefully after what was echoed, its listener closes, no fd is left", async () => {
      const { controller, log } = await lab(1, { worker: { module: PROBES, backend } });
      const before = openFileDescriptors();
      const { a, port } = await listeningProbe(controller, log);
      const peers = [await connect(port), await connect(port)];
      await log.until(
        "2 accepts",
        () => said(log, a).filter((s) => s === "accept on 0").length === 2,
      );
      for (const [i, p] of peers.entries()) p.socket.write(`hello ${i}`);
      await Promise.all(peers.map((p, i) => readUntil(p, `hello ${i}`)));
      controller.sendToTask(a, { op: "finish" });
      // the peers read end of stream (a FIN, not a reset) and nothing more
      expect(await Promise.all(peers.map((p) => p.ended))).toEqual(["end", "end"]);
      expect(peers.map((p) => p.read())).toEqual(["hello 0", "hello 1"]);
      for (const p of peers) p.socket.end();
      expect(await refusedSoon(port)).toBe("ECONNREFUSED");
      expect(await fdsBecome(before)).toBe(before);
      const [stats] = await statsUntil(controller, "the task gone", (s) => s[0]?.tasks === 0);
      // the worker's TCP counters, as the controller reads them
      expect(stats?.tcp).toMatchObject({ tcpAccepted: 2, tcpConnections: 0, tcpQueuedBytes: 0 });
      expect(stats?.tcp.tcpBytesOut).toBe("hello 0".length * 2);
    });

    test("a task that throws with a connection open: the runtime closes it and the listener; the worker serves on", async () => {
      const { controller, log } = await lab(1, { worker: { module: PROBES, backend } });
      const before = openFileDescriptors();
      const { a, port } = await listeningProbe(controller, log);
      const peer = await connect(port);
      await reported(log, a, "accept on 0");
      controller.sendToTask(a, { op: "throw" });
      await log.until("the task error", () => log.events.some((e) => e.kind === "task-error"));
      expect(await peer.ended).toBe("end");
      peer.socket.end();
      expect(await refusedSoon(port)).toBe("ECONNREFUSED");
      expect(await fdsBecome(before)).toBe(before);
      // a new task can listen on the same port at once
      const b = await controller.spawnTask("probe");
      controller.sendToTask(b, { op: "tcp-listen", listener: 0, port });
      await reported(log, b, `tcp-listen 0: ok ${port}`);
    });

    test("a worker that dies with a listener and connections open: the peers see them end, the port is free, every fd is released", async () => {
      const { controller, log } = await lab(2, { worker: { module: PROBES, backend } });
      const { a, port } = await listeningProbe(controller, log);
      const peers = await Promise.all([1, 2, 3].map(() => connect(port)));
      await log.until(
        "3 accepts",
        () => said(log, a).filter((s) => s === "accept on 0").length === 3,
      );
      controller.sendToTask(a, { op: "exit", code: 7 });
      await log.until("death", () => log.events.some((e) => e.kind === "worker-died"));
      const died = log.events.find((e) => e.kind === "worker-died") as Died;
      expect(died).toMatchObject({ worker: a.worker, endedBy: "exit", exitCode: 7 });
      // the listener, 3 connections, and the backend's own descriptors
      expect(died.released.fds).toBeGreaterThanOrEqual(4 + 2);
      const ends = await Promise.all(peers.map((p) => p.ended));
      for (const how of ends) expect(["end", "close", "error ECONNRESET"]).toContain(how);
      expect(await refusedSoon(port)).toBe("ECONNREFUSED");
      // the port can be listened on again, by the worker that is left
      const b = await controller.spawnTask("probe");
      expect(b.worker).not.toBe(a.worker);
      controller.sendToTask(b, { op: "tcp-listen", listener: 0, port });
      await reported(log, b, `tcp-listen 0: ok ${port}`);
    });
  });
}
