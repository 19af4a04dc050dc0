/**
 * TCP echo servers for bench/tcp-echo.ts and bench/tcp-idle.ts, the peers the runtime is compared
 * with, one per process:
 *   bun bench/servers/tcp-echo.ts bun-listen|node-net [PORT]
 * `bun-listen` is Bun.listen, writing back from the data handler and keeping what the socket did
 * not take until the drain handler; `node-net` is node:net's createServer, writing back from the
 * "data" event and pausing the socket until "drain" when write() says the buffer is full (what
 * socket.pipe(socket) does). Both listen on 127.0.0.1 (PORT 0, the default, picks one), set
 * TCP_NODELAY, print "listening 127.0.0.1:PORT" once bound and echo every byte until killed.
 */
import { createServer } from "node:net";

const kind = process.argv[2] ?? "bun-listen";
const port = Number(process.argv[3] ?? 0);

/** Per-connection state of the Bun.listen server: bytes not yet taken by the socket, in order. */
interface Pending {
  queue: Uint8Array[];
}

if (kind === "bun-listen") {
  const listener = Bun.listen<Pending>({
    hostname: "127.0.0.1",
    port,
    socket: {
      open(socket) {
        socket.data = { queue: [] };
        socket.setNoDelay(true);
      },
      data(socket, data) {
        const queue = socket.data.queue;
        if (queue.length > 0) {
          queue.push(new Uint8Array(data)); // keep the order: behind what is still waiting
          return;
        }
        const written = socket.write(data);
        // a copy (Buffer#slice would be a view): the rest must outlive this handler
        if (written >= 0 && written < data.length)
          queue.push(new Uint8Array(data.subarray(written)));
      },
      drain(socket) {
        const queue = socket.data.queue;
        while (queue.length > 0) {
          const head = queue[0] as Uint8Array;
          const written = socket.write(head);
          if (written < 0) return;
          if (written < head.length) {
            queue[0] = head.subarray(written);
            return;
          }
          queue.shift();
        }
      },
      error() {},
    },
  });
  console.log(`listening 127.0.0.1:${listener.port}`);
} else if (kind === "node-net") {
  const server = createServer({ noDelay: true }, (socket) => {
    socket.on("data", (data) => {
      if (!socket.write(data)) socket.pause();
    });
    socket.on("drain", () => socket.resume());
    socket.on("error", () => {}); // a client that went away (ECONNRESET) is not fatal
  });
  server.listen(port, "127.0.0.1", () => {
    const address = server.address();
    const bound = typeof address === "object" && address !== null ? address.port : port;
    console.log(`listening 127.0.0.1:${bound}`);
  });
} else {
  console.error(`unknown server kind ${kind}`);
  process.exit(2);
}
