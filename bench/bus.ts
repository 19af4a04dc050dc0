/**
 * The bus against postMessage, main thread to one Bun Worker, in one run:
 * - throughput and CPU per message for 64 B and 1500 B payloads: the raw ring (with its doorbell:
 *   the consumer parks when empty), the BusEndpoint path, and postMessage with the same payload;
 * - one-way wake-up latency of a parked consumer (half a ping-pong round trip between two parked
 *   sides), p50 and p99, beside postMessage's;
 * - pub/sub fan-out to 4 subscriber Workers, beside posting the same payload to 4 Workers.
 *
 *   bun bench/bus.ts [--quick]
 *
 * Targets (issue 3): 64 B >= 15M msgs/s and >= 15x postMessage; 1500 B >= 5M msgs/s;
 * parked wake-up p50 <= 40 us.
 */
import {
  AtomicsDoorbell,
  BusEndpoint,
  createBusLayout,
  createRing,
  RingProducer,
} from "../src/index.ts";
import { finish, fmt, percentile, quick, type Result } from "./lib/report.ts";

const PEER = new URL("./lib/bus-peer.ts", import.meta.url).href;

interface Reply {
  ready?: boolean;
  done?: number;
  halves?: number[];
}

/** Starts a bench Worker on `job` and waits until it says it is ready. */
async function peer(
  job: Record<string, unknown>,
): Promise<{ worker: Worker; next: () => Promise<Reply> }> {
  const worker = new Worker(PEER);
  const queue: Reply[] = [];
  let wake: (() => void) | undefined;
  worker.onmessage = (e: MessageEvent<Reply>) => {
    queue.push(e.data);
    wake?.();
  };
  const next = async (): Promise<Reply> => {
    while (queue.length === 0) await new Promise<void>((r) => (wake = r));
    return queue.shift() as Reply;
  };
  worker.postMessage(job);
  await next();
  return { worker, next };
}

interface Rate {
  perSec: number;
  cpuNs: number;
}

/** Runs `produce` while the peer consumes; returns messages/s and process CPU ns per message. */
async function measure(
  count: number,
  produce: () => void,
  done: () => Promise<Reply>,
): Promise<Rate> {
  const cpu0 = process.cpuUsage();
  const t0 = Bun.nanoseconds();
  produce();
  await done();
  const wall = Bun.nanoseconds() - t0;
  const cpu = process.cpuUsage(cpu0);
  return { perSec: (count * 1e9) / wall, cpuNs: ((cpu.user + cpu.system) * 1000) / count };
}

/** `measure` against one peer, which is stopped afterwards. */
async function measureOnce(
  p: { worker: Worker; next: () => Promise<Reply> },
  count: number,
  produce: () => void,
): Promise<Rate> {
  const rate = await measure(count, produce, p.next);
  p.worker.terminate();
  return rate;
}

/** Pushes `count` messages in batches of 64, ending each batch with `flush`; retries when full. */
function inBatches(count: number, push: () => boolean, flush: () => void): void {
  for (let i = 0; i < count; ) {
    let batch = 0;
    while (batch < 64 && i < count && push()) {
      batch++;
      i++;
    }
    flush();
  }
}

async function ringRate(size: number, count: number): Promise<Rate> {
  const ring = createRing(1 << 20);
  const bellMemory = AtomicsDoorbell.create();
  const p = await peer({ mode: "ring", ring, bell: bellMemory, count });
  const producer = new RingProducer(ring);
  const bell = new AtomicsDoorbell(bellMemory);
  const payload = new Uint8Array(size).fill(1);
  return measureOnce(p, count, () =>
    inBatches(
      count,
      () => producer.tryPush(payload),
      () => {
        if (producer.publish()) bell.wake();
      },
    ),
  );
}

async function busRate(size: number, count: number): Promise<Rate> {
  const layout = createBusLayout({ endpoints: 2, ringBytes: 1 << 20 });
  const p = await peer({ mode: "bus", layout, self: 1, count });
  const bus = new BusEndpoint(layout, 0);
  const payload = new Uint8Array(size).fill(1);
  return measureOnce(p, count, () =>
    inBatches(
      count,
      () => bus.send(1, payload) === "sent",
      () => bus.flush(),
    ),
  );
}

async function postRate(size: number, count: number): Promise<Rate> {
  const p = await peer({ mode: "post", count });
  const payload = new Uint8Array(size).fill(1);
  return measureOnce(p, count, () => {
    for (let i = 0; i < count; i++) p.worker.postMessage(payload);
  });
}

/** Half round trips (us) between two Workers that both park (blocking) between messages. */
async function busWakeups(rounds: number): Promise<number[]> {
  const layout = createBusLayout({ endpoints: 2, ringBytes: 4096 });
  const echo = await peer({ mode: "echo", layout, self: 1, count: rounds });
  const ping = new Worker(PEER);
  const halves = await new Promise<number[]>((resolve) => {
    ping.onmessage = (e: MessageEvent<{ halves?: number[] }>) => {
      if (e.data.halves) resolve(e.data.halves);
    };
    ping.postMessage({ mode: "ping", layout, self: 0, count: rounds });
  });
  ping.terminate();
  echo.worker.terminate();
  return halves.sort((a, b) => a - b);
}

async function postWakeups(rounds: number): Promise<number[]> {
  const p = await peer({ mode: "post-echo", count: rounds });
  const msg = new Uint8Array(8);
  const halves: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const t0 = Bun.nanoseconds();
    p.worker.postMessage(msg);
    await p.next();
    halves.push((Bun.nanoseconds() - t0) / 2000);
  }
  p.worker.terminate();
  return halves.sort((a, b) => a - b);
}

async function fanOut(subscribers: number, count: number): Promise<Rate> {
  const layout = createBusLayout({ endpoints: subscribers + 1, ringBytes: 1 << 20 });
  const channel = 1;
  const peers = await Promise.all(
    Array.from({ length: subscribers }, (_, i) =>
      peer({ mode: "sub", layout, self: i + 1, count, channel }),
    ),
  );
  const bus = new BusEndpoint(layout, 0);
  while (bus.subscribers(channel).length < subscribers) {
    bus.poll(() => {});
    await Bun.sleep(1);
  }
  const payload = new Uint8Array(64).fill(1);
  const rate = await measure(
    count,
    () => {
      for (let i = 0; i < count; i += 64) {
        for (let k = 0; k < 64 && i + k < count; k++) bus.publish(channel, payload, { safe: true });
        bus.flush();
      }
      while (bus.flush() > 0);
    },
    async () => {
      for (const p of peers) await p.next();
      return {};
    },
  );
  for (const p of peers) p.worker.terminate();
  return rate;
}

async function postFanOut(subscribers: number, count: number): Promise<Rate> {
  const peers = await Promise.all(
    Array.from({ length: subscribers }, () => peer({ mode: "post", count })),
  );
  const payload = new Uint8Array(64).fill(1);
  const rate = await measure(
    count,
    () => {
      for (let i = 0; i < count; i++) for (const p of peers) p.worker.postMessage(payload);
    },
    async () => {
      for (const p of peers) await p.next();
      return {};
    },
  );
  for (const p of peers) p.worker.terminate();
  return rate;
}

/** Every run's throughput, per measured configuration, for the spread line. */
const spreads: number[][] = [];

/** Median by throughput of `runs` runs, after one discarded warm-up run (JIT tiers). */
async function median(runs: number, f: () => Promise<Rate>): Promise<Rate> {
  await f();
  const all: Rate[] = [];
  for (let r = 0; r < runs; r++) all.push(await f());
  spreads.push(all.map((a) => a.perSec));
  all.sort((a, b) => a.perSec - b.perSec);
  return all[Math.floor(all.length / 2)] as Rate;
}

const runs = quick ? 1 : 5;
const ringCount = quick ? 2_000_000 : 10_000_000;
const postCount = quick ? 200_000 : 1_000_000;
const results: Result[] = [];
const ratios: Record<string, number> = {};
/** Prints one configuration: median rate, CPU per message, and the spread of its runs. */
function line(name: string, r: Rate): void {
  const spread = spreads.at(-1) ?? [];
  const range = `${fmt(Math.min(...spread) / 1e6, 2)}-${fmt(Math.max(...spread) / 1e6, 2)}`;
  console.log(
    `${name.padEnd(36)} ${fmt(r.perSec / 1e6, 2).padStart(8)} M/s ${fmt(r.cpuNs).padStart(10)} cpu ns/msg   runs ${range} M/s`,
  );
}

console.log(
  `bus bench (${quick ? "quick" : "full"}): main thread -> Worker(s), median of ${runs} runs`,
);
for (const size of [64, 1500]) {
  const ring = await median(runs, () => ringRate(size, ringCount));
  line(`ring ${size} B`, ring);
  const bus = await median(runs, () => busRate(size, ringCount / 2));
  line(`bus endpoint ${size} B`, bus);
  const post = await median(runs, () => postRate(size, postCount));
  line(`postMessage ${size} B`, post);
  results.push(
    { name: `ring ${size} B`, value: ring.perSec, unit: "msgs/s" },
    { name: `ring ${size} B cpu`, value: ring.cpuNs, unit: "cpu ns/msg" },
    { name: `bus ${size} B`, value: bus.perSec, unit: "msgs/s" },
    { name: `bus ${size} B cpu`, value: bus.cpuNs, unit: "cpu ns/msg" },
    { name: `postMessage ${size} B`, value: post.perSec, unit: "msgs/s" },
    { name: `postMessage ${size} B cpu`, value: post.cpuNs, unit: "cpu ns/msg" },
  );
  ratios[`ring / postMessage ${size} B`] = ring.perSec / post.perSec;
  ratios[`bus / postMessage ${size} B`] = bus.perSec / post.perSec;
}

const rounds = quick ? 2_000 : 10_000;
const wake = await busWakeups(rounds);
const postWake = await postWakeups(rounds);
const [w50, w99, p50, p99] = [
  percentile(wake, 0.5),
  percentile(wake, 0.99),
  percentile(postWake, 0.5),
  percentile(postWake, 0.99),
];
console.log(
  `parked wake-up, Worker<->Worker, one way (half RTT)  p50 ${fmt(w50)} us  p99 ${fmt(w99)} us`,
);
console.log(
  `postMessage, main<->Worker, one way (half RTT)       p50 ${fmt(p50)} us  p99 ${fmt(p99)} us`,
);
results.push(
  { name: "bus parked wake-up p50", value: w50, unit: "us" },
  { name: "bus parked wake-up p99", value: w99, unit: "us" },
  { name: "postMessage one-way p50", value: p50, unit: "us" },
  { name: "postMessage one-way p99", value: p99, unit: "us" },
);
ratios["postMessage / bus wake-up p50"] = p50 / w50;

const fanCount = quick ? 200_000 : 1_000_000;
const fan = await median(runs, () => fanOut(4, fanCount));
line("pub/sub to 4 subscribers (publishes)", fan);
const postFan = await median(runs, () => postFanOut(4, fanCount / 5));
line("postMessage to 4 Workers (messages)", postFan);
results.push(
  { name: "pub/sub fan-out 4 publishes", value: fan.perSec, unit: "msgs/s" },
  { name: "pub/sub fan-out 4 cpu", value: fan.cpuNs, unit: "cpu ns/publish" },
  { name: "postMessage fan-out 4", value: postFan.perSec, unit: "msgs/s" },
  { name: "postMessage fan-out 4 cpu", value: postFan.cpuNs, unit: "cpu ns/msg" },
);
ratios["pub/sub / postMessage fan-out 4"] = fan.perSec / postFan.perSec;

const ring64 = results.find((r) => r.name === "ring 64 B")?.value ?? 0;
const ring1500 = results.find((r) => r.name === "ring 1500 B")?.value ?? 0;
console.log(
  `targets: 64 B >= 15M/s ${ring64 >= 15e6 ? "met" : "NOT met"}, >= 15x postMessage ${(ratios["ring / postMessage 64 B"] ?? 0) >= 15 ? "met" : "NOT met"}; 1500 B >= 5M/s ${ring1500 >= 5e6 ? "met" : "NOT met"}; wake-up p50 <= 40 us ${w50 <= 40 ? "met" : "NOT met"}`,
);
finish("bus", results, ratios);
process.exit(0);
