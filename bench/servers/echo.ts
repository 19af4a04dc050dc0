/**
 * UDP echo servers for bench/udp-echo.ts, one per process:
 *   bun bench/servers/echo.ts uring|epoll|bun-udp|node-dgram [PORT]
 * Each prints "listening PORT" once bound and echoes every datagram until killed.
 */
import { createSocket } from "node:dgram";
import { createBackend, SocketAddr } from "../../src/index.ts";

const kind = process.argv[2] ?? "uring";
const port = Number(process.argv[3] ?? 0);

if (kind === "uring" || kind === "epoll") {
  // the bare backend: echo each datagram from inside the sink (zero-copy), one poll per loop
  const backend = createBackend(kind, {
    recvBuffers: 4096,
    onEvent: (_owner, e) => {
      if (e.kind === "udp-packet")
        backend.act(0, { kind: "udp-send", socket: 1, to: e.from, data: e.data });
      else if (e.kind === "udp-listen-result") {
        if (e.error) throw new Error(`listen failed: ${e.error.code}`);
        console.log(`listening ${e.local?.port}`);
      }
    },
  });
  backend.act(0, { kind: "udp-listen", socket: 1, bind: SocketAddr.parse("127.0.0.1", port) });
  for (;;) backend.poll(1000);
} else if (kind === "bun-udp") {
  // Bun.udpSocket, replies batched with sendMany and flushed once per event-loop turn
  const batch: (Uint8Array | number | string)[] = [];
  let scheduled = false;
  const socket = await Bun.udpSocket({
    hostname: "127.0.0.1",
    port,
    socket: {
      // a load generator that went away makes the kernel report ECONNREFUSED: not fatal
      error() {},
      data(s, data, rport, raddr) {
        batch.push(data, rport, raddr);
        if (!scheduled) {
          scheduled = true;
          setImmediate(() => {
            scheduled = false;
            s.sendMany(batch as (Uint8Array | number | string)[]);
            batch.length = 0;
          });
        }
      },
    },
  });
  console.log(`listening ${socket.port}`);
} else if (kind === "node-dgram") {
  const socket = createSocket("udp4");
  // a client that went away makes the kernel report ECONNREFUSED on the next receive: not fatal
  socket.on("error", () => {});
  socket.on("message", (msg, rinfo) => socket.send(msg, rinfo.port, rinfo.address));
  socket.bind(port, "127.0.0.1", () => console.log(`listening ${socket.address().port}`));
} else {
  console.error(`unknown server kind ${kind}`);
  process.exit(2);
}
