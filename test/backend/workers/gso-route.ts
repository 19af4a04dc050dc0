/**
 * Run inside a network namespace whose loopback MTU is smaller than a GSO segment (see
 * gso-fallback.test.ts): sends a run of 1000-byte datagrams to one peer on the io_uring backend
 * and prints, as JSON, what arrived and the backend's counters.
 */
import { Harness } from "../harness.ts";

const h = new Harness("uring");
h.listen(1);
const peer = h.listen(2);
for (let round = 0; round < 2; round++) {
  for (let i = 0; i < 10; i++) {
    const data = new Uint8Array(1000).fill(round * 10 + i);
    h.backend.act(0, { kind: "udp-send", socket: 1, to: peer, data });
  }
  h.until(() => h.packets(2).length === (round + 1) * 10, 200);
}
const got = h.packets(2).map((p) => ({ size: p.data.length, first: p.data[0] }));
console.log(JSON.stringify({ got, stats: h.backend.stats() }));
h.backend.close();
