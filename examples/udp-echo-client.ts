/**
 * UDP echo load client on the bun-sansio runtime: keeps a window of datagrams in flight against
 * an echo server, validates every echoed payload, and prints packets/s, loss and latency.
 *
 *   bun examples/udp-echo-client.ts --port PORT --seconds S [--host ADDR] [--size BYTES]
 *       [--window W] [--sockets N] [--backend auto|uring|epoll]
 *
 * Exits 0 when every echo was intact and most came back, 1 otherwise. SIGINT or SIGTERM ends the
 * run early and still prints the result.
 */
import { parseArgs } from "node:util";
import { Controller, recvBufferSizeFor } from "bun-sansio";
import { type Cli, cli } from "./cli.ts";
import loadWorker, { type LoadConfig, type LoadResult } from "./udp-echo-client-worker.ts";

const arg: Cli = cli("udp-echo-client");

const { values } = parseArgs({
  options: {
    port: { type: "string" },
    host: { type: "string", default: "127.0.0.1" },
    seconds: { type: "string", default: "5" },
    size: { type: "string", default: "64" },
    window: { type: "string", default: "64" },
    sockets: { type: "string", default: "8" },
    backend: { type: "string", default: "auto" },
  },
});
if (values.port === undefined) arg.fail("--port is required");
const backend = arg.backend(values.backend);
const config: LoadConfig = {
  host: values.host,
  port: arg.number("port", values.port, 1, 65535),
  seconds: arg.number("seconds", values.seconds, 0.1, 3600, false),
  size: arg.number("size", values.size, 16, 65507),
  window: arg.number("window", values.window, 1, 100_000),
  sockets: arg.number("sockets", values.sockets, 1, 1024),
  lossTimeoutMs: 1000,
};

const controller = new Controller({ maxWorkers: 1 });
const result = new Promise<LoadResult>((resolve, reject) => {
  controller.on((e) => {
    if (e.kind === "message" && (e.data as LoadResult).event === "result")
      resolve(e.data as LoadResult);
    else if (e.kind === "worker-died") reject(new Error(e.error.message));
  });
});
await controller.addWorker({
  module: loadWorker,
  config,
  tickMs: 20,
  backend,
  recvBufferSize: recvBufferSizeFor(config.size),
});
// Ctrl-C ends the run early: the worker stops sending and still reports what it measured
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => void controller.shutdown());
}
let r: LoadResult;
try {
  r = await result;
} catch (e) {
  arg.fail(`the load worker died: ${e instanceof Error ? e.message : String(e)}`);
}
await controller.shutdown();

const pps = r.seconds > 0 ? r.received / r.seconds : 0;
const lossPct = r.sent > 0 ? (100 * r.lost) / r.sent : 0;
console.log(
  `${config.size} B datagrams, window ${config.window}, ${config.sockets} sockets, ${r.seconds.toFixed(1)} s`,
);
console.log(
  `sent ${r.sent}, echoed intact ${r.received}, lost ${r.lost} (${lossPct.toFixed(3)}%), late ${r.late}, corrupt ${r.bad}`,
);
console.log(`throughput ${Math.round(pps)} packets/s, latency p50 ${r.p50} µs, p99 ${r.p99} µs`);
if (r.error !== null) console.log(`error: ${r.error}`);
const ok = r.error === null && r.bad === 0 && r.received > 0 && lossPct < 1;
console.log(ok ? "result: ok" : "result: FAILED");
process.exit(ok ? 0 : 1);
