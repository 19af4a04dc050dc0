/**
 * A user's program in the fresh project of test/dist/install.test.ts: 2 workers of the echo
 * example's tasks share a port on the backend given as argv[2]; 100 datagrams are sent and
 * counted back; prints {"backend","echoed","intact","stopped"} as JSON.
 */
import { Controller } from "bun-sansio";
// copied next to this file by the test (examples/udp-echo-worker.ts)
// @ts-expect-error: it is not here in the repository
import echo, { type EchoReport } from "./udp-echo-worker.ts";

const backend = process.argv[2] as "uring" | "epoll";
const controller = new Controller({ maxWorkers: 2 });
const reports: EchoReport[] = [];
controller.on((e) => {
  if (e.kind === "message") reports.push(e.data as EchoReport);
  else if (e.kind === "worker-died") {
    console.error(`worker ${e.worker} died: ${e.error.name}: ${e.error.message}`);
    process.exit(1);
  }
});

async function listening(n: number): Promise<number> {
  for (let i = 0; i < 500 && reports.filter((r) => r.event === "listening").length < n; i++) {
    await Bun.sleep(10);
  }
  const r = reports.find((r) => r.event === "listening");
  if (r?.event !== "listening") throw new Error(`not listening: ${JSON.stringify(reports)}`);
  return r.port;
}

await controller.addWorker({ module: echo, config: { host: "127.0.0.1", port: 0 }, backend });
const port = await listening(1);
await controller.addWorker({ module: echo, config: { host: "127.0.0.1", port }, backend });
await listening(2);
let echoed = 0;
let intact = 0;
const client = await Bun.udpSocket({
  socket: {
    data(_s, data) {
      echoed++;
      if (new TextDecoder().decode(data).startsWith("datagram ")) intact++;
    },
  },
});
for (let i = 0; i < 100; i++) client.send(`datagram ${i}`, port, "127.0.0.1");
for (let i = 0; i < 500 && echoed < 100; i++) await Bun.sleep(10);
client.close();
const { stopped } = await controller.shutdown();
console.log(JSON.stringify({ backend, echoed, intact, stopped }));
