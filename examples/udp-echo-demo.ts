/**
 * The README's main command: starts the UDP echo server (2 workers sharing a port), runs the
 * echo client against it for a few seconds, stops the server with SIGINT, and shows both
 * programs' output. Exits non-zero if anything did not work.
 *
 *   bun examples/udp-echo-demo.ts [--seconds 5] [--workers 2] [--backend auto|uring|epoll]
 */
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: {
    seconds: { type: "string", default: "5" },
    workers: { type: "string", default: "2" },
    backend: { type: "string", default: "auto" },
  },
});
const here = import.meta.dir;

/** Prints each line of `stream` with `prefix`, and calls `onLine` with it. */
async function relay(
  stream: ReadableStream<Uint8Array>,
  prefix: string,
  onLine: (line: string) => void = () => {},
): Promise<void> {
  const decoder = new TextDecoder();
  let pending = "";
  for await (const chunk of stream) {
    pending += decoder.decode(chunk, { stream: true });
    for (let nl = pending.indexOf("\n"); nl >= 0; nl = pending.indexOf("\n")) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      console.log(`${prefix} ${line}`);
      onLine(line);
    }
  }
  if (pending !== "") console.log(`${prefix} ${pending}`);
}

const server = Bun.spawn(
  [
    process.execPath,
    `${here}/udp-echo-server.ts`,
    "--port",
    "0",
    "--workers",
    values.workers,
    "--backend",
    values.backend,
  ],
  { stdout: "pipe", stderr: "inherit" },
);
let port = 0;
const ready = new Promise<number>((resolve) => {
  void relay(server.stdout, "[server]", (line) => {
    const m = / listening .*:(\d+) /.exec(` ${line} `);
    if (m) resolve(Number(m[1]));
  });
});
const started = await Promise.race([
  ready,
  server.exited.then(() => 0),
  Bun.sleep(15_000).then(() => 0),
]);
if (started === 0) {
  console.error("demo: the server did not start");
  server.kill();
  process.exit(1);
}
port = started;

const client = Bun.spawn(
  [
    process.execPath,
    `${here}/udp-echo-client.ts`,
    "--port",
    String(port),
    "--seconds",
    values.seconds,
  ],
  { stdout: "pipe", stderr: "inherit" },
);
await relay(client.stdout, "[client]");
const clientCode = await client.exited;

server.kill("SIGINT");
const serverCode = await server.exited;
const ok = clientCode === 0 && serverCode === 0;
console.log(
  ok
    ? "demo: ok (every datagram came back intact; the server shut down cleanly)"
    : `demo: FAILED (client exit ${clientCode}, server exit ${serverCode})`,
);
process.exit(ok ? 0 : 1);
