/**
 * TCP echo client: N connections, each sending a request of SIZE bytes and waiting for all of it
 * to come back before the next (closed loop), every byte checked. Runs on one bun-sansio backend
 * in the main thread. When the time is up, each connection closes gracefully once its last echo is
 * in, so the server sees FIN and no reset.
 *
 *   bun examples/tcp-echo-client.ts --port PORT [--host ADDR] [--connections N] [--size BYTES]
 *       [--seconds S] [--backend auto|uring|epoll]
 *
 * Prints requests/s, latency p50/p99 and the errors, then "result: ok" (exit 0) when every
 * request came back intact, or "result: FAILED" (exit 1).
 */
import { parseArgs } from "node:util";
import { createBackend, type NetEvent, SocketAddr } from "bun-sansio";
import { type Cli, cli } from "./cli.ts";

const arg: Cli = cli("tcp-echo-client");
const { values } = parseArgs({
  options: {
    port: { type: "string" },
    host: { type: "string", default: "127.0.0.1" },
    connections: { type: "string", default: "50" },
    size: { type: "string", default: "64" },
    seconds: { type: "string", default: "5" },
    backend: { type: "string", default: "auto" },
  },
});
if (values.port === undefined) arg.fail("--port is required");
const to = SocketAddr.parse(values.host, arg.number("port", values.port, 1, 65535));
const connections = arg.number("connections", values.connections, 1, 10000);
const size = arg.number("size", values.size, 1, 16 << 20);
const seconds = arg.number("seconds", values.seconds, 0.1, 3600, false);

/** One connection's request under way. */
interface Client {
  /** The request's first byte value (each request differs). */
  seed: number;
  got: number;
  sentAt: number;
  connected: boolean;
}

const clients: Client[] = [];
const latencies: number[] = [];
let requests = 0;
let corrupt = 0;
const errors: string[] = [];
let running = true;
/** Connections closed, or that never opened. */
let closed = 0;

function request(conn: number, c: Client): void {
  c.seed = (c.seed + 1) & 0xff;
  c.got = 0;
  const data = new Uint8Array(size);
  for (let i = 0; i < size; i++) data[i] = (c.seed + i) & 0xff;
  c.sentAt = performance.now();
  backend.act(0, { kind: "tcp-send", conn, data });
}

function onEvent(e: NetEvent): void {
  if (!("conn" in e)) return;
  const c = clients[e.conn];
  if (c === undefined) return;
  switch (e.kind) {
    case "tcp-connect-result":
      if (e.error !== undefined) {
        errors.push(`connect ${e.conn}: ${e.error.code}: ${e.error.message}`);
        closed++; // it never opened
      } else {
        c.connected = true;
        request(e.conn, c);
      }
      return;
    case "tcp-data":
      for (let i = 0; i < e.data.length; i++) {
        if (e.data[i] !== ((c.seed + c.got + i) & 0xff)) {
          corrupt++;
          break;
        }
      }
      c.got += e.data.length;
      if (c.got > size) errors.push(`connection ${e.conn}: more bytes than were sent`);
      if (c.got === size) {
        requests++;
        latencies.push(performance.now() - c.sentAt);
        if (running) request(e.conn, c);
        else backend.act(0, { kind: "tcp-close", conn: e.conn }); // its last echo is in
      }
      return;
    case "tcp-closed":
      if (running || e.error !== undefined)
        errors.push(`connection ${e.conn}: ${e.kind} ${JSON.stringify(e)}`);
      c.connected = false;
      closed++;
      return;
    case "tcp-fin":
    case "tcp-send-error":
      if (running) errors.push(`connection ${e.conn}: ${e.kind} ${JSON.stringify(e)}`);
      return;
  }
}

const backend = createBackend(arg.backend(values.backend), { onEvent: (_o, e) => onEvent(e) });
for (let i = 0; i < connections; i++) {
  clients.push({ seed: i, got: 0, sentAt: 0, connected: false });
  backend.act(0, { kind: "tcp-connect", conn: i, to, timeoutMs: 5000 });
}
const start = performance.now();
const end = start + seconds * 1000;
while (performance.now() < end && errors.length < 100) backend.poll(10);
running = false;
const elapsed = (performance.now() - start) / 1000;
// each connection closes once its last echo is in (closing with the echo unread would reset it)
for (let i = 0; i < connections; i++) {
  const c = clients[i];
  if (c?.connected && c.got === size) backend.act(0, { kind: "tcp-close", conn: i });
}
const closing = performance.now() + 5000;
while (closed < connections && performance.now() < closing) backend.poll(10);
if (closed < connections) errors.push(`${connections - closed} connections not closed within 5 s`);
backend.close();

latencies.sort((a, b) => a - b);
const at = (q: number) =>
  latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0;
const ok = errors.length === 0 && corrupt === 0 && requests > 0;
console.log(
  `${connections} connections, ${size} B requests, ${elapsed.toFixed(1)} s, ${backend.kind} backend`,
);
console.log(
  `requests ${requests}, ${Math.round(requests / elapsed)} requests/s, latency p50 ${Math.round(at(0.5) * 1000)} µs, p99 ${Math.round(at(0.99) * 1000)} µs`,
);
console.log(`errors ${errors.length}, corrupt ${corrupt}`);
for (const e of errors.slice(0, 5)) console.log(`  ${e}`);
console.log(`result: ${ok ? "ok" : "FAILED"}`);
process.exit(ok ? 0 : 1);
