/**
 * Loads the shim through the loader (SANSIO_NATIVE or the prebuilt), opens a UDP socket on the
 * epoll backend and echoes one datagram; prints {"arch","echoed","abi"} as JSON. Run by
 * test/dist/prebuilt.test.ts under qemu with Bun's arm64 build.
 */
import { createBackend, SocketAddr } from "../../../src/index.ts";
import { abiHash } from "../../../src/sys/abi.ts";
import { native } from "../../../src/sys/native.ts";

let port = 0;
let echoed = "";
const backend = createBackend("epoll", {
  onEvent: (_owner, e) => {
    if (e.kind === "udp-listen-result") port = e.local?.port ?? -1;
    else if (e.kind === "udp-packet") {
      echoed = new TextDecoder().decode(e.data);
      backend.act(0, { kind: "udp-send", socket: 0, to: e.from, data: e.data });
    }
  },
});
backend.act(0, { kind: "udp-listen", socket: 0, bind: SocketAddr.parse("127.0.0.1", 0) });
const deadline = Date.now() + 20_000;
while (port === 0 && Date.now() < deadline) backend.poll(10);
let back = "";
const client = await Bun.udpSocket({
  socket: {
    data(_s, data) {
      back = new TextDecoder().decode(data);
    },
  },
});
client.send("ping", port, "127.0.0.1");
while ((echoed === "" || back === "") && Date.now() < deadline) {
  backend.poll(10);
  await Bun.sleep(1);
}
client.close();
backend.close();
console.log(
  JSON.stringify({ arch: process.arch, echoed: back, abi: native().sio_abi_hash() === abiHash() }),
);
