/**
 * UDP echo server on the bun-sansio runtime: N workers share one port with SO_REUSEPORT and
 * send every datagram back to its sender unchanged.
 *
 *   bun examples/udp-echo-server.ts --port PORT [--workers N] [--backend auto|uring|epoll]
 *       [--host ADDR] [--max-size BYTES] [--buffers N] [--pin] [--quiet]
 *
 * Prints one line containing "listening" with the bound address once every worker is ready, then
 * one stats line per second (unless --quiet). SIGINT or SIGTERM shuts it down gracefully.
 * Datagrams larger than --max-size (default 65507, the largest IPv4 datagram) are dropped and
 * counted rather than echoed cut short. --buffers sets each worker's `recvBuffers` (default: the
 * backend's, about 2 MiB of receive memory whatever --max-size).
 */
import { parseArgs } from "node:util";
import { recvBufferSizeFor } from "bun-sansio";
import { type Cli, cli } from "./cli.ts";
import { serveEcho } from "./echo-server.ts";
import echoWorker, { type EchoCounters } from "./udp-echo-worker.ts";

const arg: Cli = cli("udp-echo-server");

const { values } = parseArgs({
  options: {
    port: { type: "string" },
    workers: { type: "string", default: "1" },
    backend: { type: "string", default: "auto" },
    host: { type: "string", default: "127.0.0.1" },
    "max-size": { type: "string", default: "65507" },
    buffers: { type: "string" },
    pin: { type: "boolean", default: false },
    quiet: { type: "boolean", default: false },
  },
});
if (values.port === undefined) arg.fail("--port is required (0 picks a free port)");
const maxSize = arg.number("max-size", values["max-size"], 1, 65527);

await serveEcho<EchoCounters>({
  program: "udp-echo-server",
  module: echoWorker,
  host: values.host,
  port: arg.number("port", values.port, 0, 65535),
  workers: arg.number("workers", values.workers, 1, 64),
  options: {
    backend: arg.backend(values.backend),
    ...(values.buffers === undefined
      ? {}
      : { recvBuffers: arg.number("buffers", values.buffers, 1, 32768) }),
    recvBufferSize: recvBufferSizeFor(maxSize), // the largest datagram echoed whole
  },
  pin: values.pin,
  quiet: values.quiet,
  statsLine: (stats) => {
    const total = stats.reduce((n, s) => n + s.eventsInPerSec, 0);
    const each = stats
      .map(
        (s) =>
          `w${s.index} ${s.state} ${Math.round(s.eventsInPerSec)}/s ${s.loopUtilisation.toFixed(0)}% busy` +
          (s.bufferExhaustion > 0 ? ` ${s.bufferExhaustion} buffer exhaustions` : ""),
      )
      .join(" | ");
    return `${Math.round(total)} events/s | ${each}`;
  },
  summary: (counters) => {
    const sum = (key: "echoed" | "truncated") => counters.reduce((n, c) => n + c[key], 0);
    return `${sum("echoed")} datagrams echoed, ${sum("truncated")} too large dropped`;
  },
});
