/**
 * TCP echo server on the bun-sansio runtime: N workers each listen on one port with SO_REUSEPORT
 * (the kernel spreads connections over them) and send every byte back in order.
 *
 *   bun examples/tcp-echo-server.ts --port PORT [--workers N] [--backend auto|uring|epoll]
 *       [--host ADDR] [--pin] [--quiet]
 *
 * Prints one line containing "listening" with the bound address once every worker is ready, then
 * one stats line per second (unless --quiet). SIGINT or SIGTERM shuts it down gracefully: the
 * listeners close, and every connection is closed once what it sent is echoed.
 */
import { parseArgs } from "node:util";
import { type Cli, cli } from "./cli.ts";
import { serveEcho } from "./echo-server.ts";
import echoWorker, { type TcpEchoCounters } from "./tcp-echo-worker.ts";

const arg: Cli = cli("tcp-echo-server");

const { values } = parseArgs({
  options: {
    port: { type: "string" },
    workers: { type: "string", default: "1" },
    backend: { type: "string", default: "auto" },
    host: { type: "string", default: "127.0.0.1" },
    pin: { type: "boolean", default: false },
    quiet: { type: "boolean", default: false },
  },
});
if (values.port === undefined) arg.fail("--port is required (0 picks a free port)");

await serveEcho<TcpEchoCounters>({
  program: "tcp-echo-server",
  module: echoWorker,
  host: values.host,
  port: arg.number("port", values.port, 0, 65535),
  workers: arg.number("workers", values.workers, 1, 64),
  options: { backend: arg.backend(values.backend) },
  pin: values.pin,
  quiet: values.quiet,
  statsLine: (stats, counters) =>
    stats
      .map((s) => {
        const c = counters.get(s.index);
        return `w${s.index} ${s.state} ${Math.round(s.eventsInPerSec)} events/s ${s.loopUtilisation.toFixed(0)}% busy, ${c?.open ?? 0} open, ${c?.accepted ?? 0} accepted`;
      })
      .join(" | "),
  summary: (counters) => {
    const sum = (key: "accepted" | "bytes" | "resets") => counters.reduce((n, c) => n + c[key], 0);
    return `${sum("accepted")} connections, ${sum("bytes")} bytes echoed, ${sum("resets")} ended by the peer or an error`;
  },
});
