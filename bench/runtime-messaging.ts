/**
 * Messaging of the grouped-task runtime (Controller + defineTasks on 2 worker threads), beside
 * plain Bun Workers and postMessage measured in the same run:
 *   1. controller -> task: one-way messages/s (sendToTask with its back-pressure results; the task
 *      counts and reports a total, so nothing lost goes unseen), echo round trip p50/p99 one at a
 *      time, and echoes/s with a window of 64 in flight;
 *   2. task -> task across workers: messages/s (credit flow control: the receiver gives credits
 *      back every 1,024 messages), ping-pong round trip p50/p99;
 *   3. RPC: controller `call` calls/s with 64 in flight and sequential p50/p99; task -> task
 *      calls across workers ("call" output, "reply" output), calls/s with 64 in flight and
 *      sequential p50/p99;
 *   4. the peer: main thread -> Worker postMessage (the Worker counts), its ping-pong p50/p99 and
 *      echoes/s with 64 in flight; Worker -> Worker over a MessageChannel, messages/s and
 *      ping-pong p50/p99.
 * Throughput phases also give process CPU time per operation (every thread of the process).
 *
 *   bun bench/runtime-messaging.ts [--quick]
 *
 * Targets: task messaging >= 2x the seed's published 1,500,000 messages/s; RPC p50 <= 50 us.
 */
import { Controller, type Structured, type TaskAddress } from "../src/index.ts";
import { finish, fmt, percentile, quick, type Result } from "./lib/report.ts";
import { CREDIT } from "./servers/messaging-tasks.ts";

const TASKS = new URL("./servers/messaging-tasks.ts", import.meta.url);
const BUS_PEER = new URL("./lib/bus-peer.ts", import.meta.url).href;
const PAIR = new URL("./servers/post-pair.ts", import.meta.url).href;

/** The seed project's published task messaging figure, messages/s. */
const SEED_MSGS_PER_SEC = 1_500_000;
/** The RPC round-trip target, microseconds. */
const RPC_P50_TARGET_US = 50;
/**
 * Messages a flooding task may have sent ahead of its credits: what fits in one 256 KiB bus ring
 * (larger windows only fill the sending worker's local queue, which costs a copy per message).
 */
const FLOOD_WINDOW = 4 * CREDIT;
/** Round trips in flight in the pipelined phases. */
const WINDOW = 64;

const runs = quick ? 1 : 3;
const floodCount = quick ? 300_000 : 1_000_000;
const pipeCount = quick ? 50_000 : 200_000;
const rounds = quick ? 2_000 : 10_000;

/** Throughput of one run: operations/s and process CPU ns per operation. */
interface Rate {
  perSec: number;
  cpuNs: number;
}

/** Round-trip percentiles, microseconds. */
interface Latency {
  p50: number;
  p99: number;
}

/** Runs `body` (which does `ops` operations) once; wall and process CPU time per operation. */
async function measure(ops: number, body: () => Promise<void>): Promise<Rate> {
  const cpu0 = process.cpuUsage();
  const t0 = Bun.nanoseconds();
  await body();
  const wall = Bun.nanoseconds() - t0;
  const cpu = process.cpuUsage(cpu0);
  return { perSec: (ops * 1e9) / wall, cpuNs: ((cpu.user + cpu.system) * 1000) / ops };
}

/** Lets the event loop run (timers, I/O, the controller's pump) before going on. */
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function sortedLatency(rtts: number[]): Latency {
  rtts.sort((a, b) => a - b);
  return { p50: percentile(rtts, 0.5), p99: percentile(rtts, 0.99) };
}

// ---------------------------------------------------------------------------------------------
// the runtime

const controller = new Controller({ maxWorkers: 2 });
/** Task messages to the controller not taken by `handler`, for `next`. */
const inbox: Structured[] = [];
let wake: (() => void) | undefined;
/** Takes every task message while set (the echo phases, synchronously inside the pump). */
let handler: ((data: Structured) => void) | undefined;
const problems: string[] = [];
controller.on((e) => {
  switch (e.kind) {
    case "message":
      if (handler !== undefined) handler(e.data);
      else {
        inbox.push(e.data);
        wake?.();
      }
      return;
    case "task-error":
    case "worker-error":
      problems.push(`${e.kind} on worker ${e.worker}: ${e.error.name}: ${e.error.message}`);
      return;
    case "worker-died":
    case "worker-stalled":
      problems.push(`${e.kind}: worker ${e.worker}`);
      wake?.();
      return;
    default:
      return;
  }
});

/** The next task message to the controller (the reports). */
async function next(): Promise<Structured> {
  while (inbox.length === 0) {
    if (problems.length > 0) throw new Error(`runtime problem: ${problems.join("; ")}`);
    await new Promise<void>((resolve) => (wake = resolve));
  }
  return inbox.shift() as Structured;
}

/** Sends one message, waiting (event-loop turns) while its queue is capped. */
async function sendOne(to: TaskAddress, data: Structured): Promise<void> {
  for (;;) {
    const r = controller.sendToTask(to, data);
    if (r === "sent" || r === "queued") return;
    if (r !== "capped") throw new Error(`sendToTask to ${to}: ${r}`);
    await turn();
  }
}

/** What the controller's sends met while flooding. */
const pressure = { sent: 0, queued: 0, capped: 0 };

/**
 * Sends the numbers 0..n-1 to `to`: in the ring ("sent") it goes on at once; held in the
 * controller's queue because the ring is full ("queued") or refused because that queue is at
 * its cap ("capped", sent again) it gives the event loop a turn first, so the queue is flushed
 * as the worker makes room.
 */
async function sendNumbers(to: TaskAddress, n: number): Promise<void> {
  for (let i = 0; i < n; ) {
    const r = controller.sendToTask(to, i);
    if (r === "sent") {
      pressure.sent++;
      i++;
      continue;
    }
    if (r === "queued") {
      pressure.queued++;
      i++;
    } else if (r === "capped") pressure.capped++;
    else throw new Error(`sendToTask to ${to}: ${r}`);
    await turn();
  }
}

function expectReport(data: Structured, tag: string): readonly number[] {
  const a = data as unknown as readonly [string, ...number[]];
  if (!Array.isArray(a) || a[0] !== tag) {
    throw new Error(`expected a ${tag} report, got ${JSON.stringify(data)}`);
  }
  return a.slice(1) as number[];
}

async function controllerFlood(to: TaskAddress, n: number): Promise<Rate> {
  return measure(n, async () => {
    await sendNumbers(to, n);
    await sendOne(to, ["report"]);
    const [received, misordered] = expectReport(await next(), "count");
    if (received !== n || misordered !== 0) {
      throw new Error(
        `controller -> task: sent ${n}, received ${received}, misordered ${misordered}`,
      );
    }
  });
}

/** Echo round trips controller -> task -> controller, one at a time, in microseconds. */
function controllerPingPong(to: TaskAddress, n: number): Promise<Latency> {
  return new Promise((resolve, reject) => {
    const rtts: number[] = [];
    let t0 = 0;
    const send = (i: number) => {
      t0 = Bun.nanoseconds();
      const r = controller.sendToTask(to, ["e", i]);
      if (r !== "sent" && r !== "queued") reject(new Error(`sendToTask: ${r}`));
    };
    handler = () => {
      rtts.push((Bun.nanoseconds() - t0) / 1000);
      if (rtts.length < n) send(rtts.length);
      else {
        handler = undefined;
        resolve(sortedLatency(rtts));
      }
    };
    send(0);
  });
}

/** `n` echo round trips controller -> task -> controller, `window` in flight. */
function controllerEchoes(to: TaskAddress, n: number, window: number): Promise<Rate> {
  return measure(
    n,
    () =>
      new Promise((resolve, reject) => {
        let sent = 0;
        let back = 0;
        const send = () => {
          const r = controller.sendToTask(to, ["e", sent++]);
          if (r !== "sent" && r !== "queued") reject(new Error(`sendToTask: ${r}`));
        };
        handler = () => {
          back++;
          if (sent < n) send();
          else if (back === n) {
            handler = undefined;
            resolve();
          }
        };
        while (sent < Math.min(window, n)) send();
      }),
  );
}

/** `n` controller calls, `window` in flight; every answer is checked. */
function controllerCalls(to: TaskAddress, n: number, window: number): Promise<Rate> {
  return measure(
    n,
    () =>
      new Promise((resolve, reject) => {
        let issued = 0;
        let done = 0;
        const one = (): void => {
          const i = issued++;
          controller.call(to, i, { timeoutMs: 10_000 }).then((answer) => {
            if (answer !== i) {
              reject(new Error(`call ${i} answered ${JSON.stringify(answer)}`));
              return;
            }
            done++;
            if (issued < n) one();
            else if (done === n) resolve();
          }, reject);
        };
        while (issued < Math.min(window, n)) one();
      }),
  );
}

async function controllerCallLatency(to: TaskAddress, n: number): Promise<Latency> {
  const rtts: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = Bun.nanoseconds();
    const answer = await controller.call(to, i, { timeoutMs: 10_000 });
    rtts.push((Bun.nanoseconds() - t0) / 1000);
    if (answer !== i) throw new Error(`call ${i} answered ${JSON.stringify(answer)}`);
  }
  return sortedLatency(rtts);
}

/**
 * Task `from` sends `n` numbers to task `to` on the other worker (as `bytes`-byte Uint8Arrays
 * when `bytes` > 0: one raw bus record each, no JSON); `to` counts them.
 */
function taskFlood(from: TaskAddress, to: TaskAddress, n: number, bytes = 0): Promise<Rate> {
  return measure(n, async () => {
    await sendOne(from, ["blast", to.id, n, FLOOD_WINDOW, bytes]);
    const [received, misordered, expected] = expectReport(await next(), "flood");
    if (received !== n || misordered !== 0 || expected !== n) {
      throw new Error(`task -> task: sent ${n}, received ${received}, misordered ${misordered}`);
    }
  });
}

async function taskPingPong(from: TaskAddress, to: TaskAddress, n: number): Promise<Latency> {
  await sendOne(from, ["pingpong", to.id, n]);
  const [p50, p99, done] = expectReport(await next(), "rtt");
  if (done !== n) throw new Error(`task ping-pong: ${done} of ${n} rounds`);
  return { p50: p50 as number, p99: p99 as number };
}

interface TaskCalls {
  rate: Rate;
  latency: Latency;
}

async function taskCalls(
  from: TaskAddress,
  to: TaskAddress,
  n: number,
  window: number,
): Promise<TaskCalls> {
  let latency: Latency = { p50: 0, p99: 0 };
  const rate = await measure(n, async () => {
    await sendOne(from, ["calls", to.id, n, window]);
    const [ok, failed, p50, p99] = expectReport(await next(), "calls");
    if (ok !== n || failed !== 0) throw new Error(`task calls: ${ok} of ${n} ok, ${failed} failed`);
    latency = { p50: p50 as number, p99: p99 as number };
  });
  return { rate, latency };
}

// ---------------------------------------------------------------------------------------------
// the peer: plain Bun Workers and postMessage

interface Reply {
  ready?: boolean;
  done?: number;
  misordered?: number;
  p50?: number;
  p99?: number;
}

interface Peer {
  worker: Worker;
  next: () => Promise<Reply>;
}

/** Starts a Worker from `url` on `job` (handing it the ports `transfer`); waits until it is ready. */
async function peer(url: string, job: unknown, transfer: MessagePort[] = []): Promise<Peer> {
  const worker = new Worker(url);
  const queue: Reply[] = [];
  let wakePeer: (() => void) | undefined;
  worker.onmessage = (e: MessageEvent<Reply>) => {
    queue.push(e.data);
    wakePeer?.();
  };
  const nextReply = async (): Promise<Reply> => {
    while (queue.length === 0) await new Promise<void>((r) => (wakePeer = r));
    return queue.shift() as Reply;
  };
  worker.postMessage(job, transfer);
  await nextReply();
  return { worker, next: nextReply };
}

/** Main thread -> Worker, `n` numbers; the Worker counts them and says when it has them all. */
async function postFlood(n: number): Promise<Rate> {
  const p = await peer(BUS_PEER, { mode: "post", count: n });
  const rate = await measure(n, async () => {
    for (let i = 0; i < n; i++) p.worker.postMessage(i);
    const reply = await p.next();
    if (reply.done !== n) throw new Error(`postMessage: sent ${n}, received ${reply.done}`);
  });
  p.worker.terminate();
  return rate;
}

/** Main thread <-> echoing Worker round trips, one at a time. */
async function postPingPong(n: number): Promise<Latency> {
  const p = await peer(BUS_PEER, { mode: "post-echo", count: n });
  const rtts = await new Promise<number[]>((resolve) => {
    const out: number[] = [];
    let t0 = Bun.nanoseconds();
    p.worker.onmessage = () => {
      out.push((Bun.nanoseconds() - t0) / 1000);
      if (out.length === n) resolve(out);
      else {
        t0 = Bun.nanoseconds();
        p.worker.postMessage(out.length);
      }
    };
    p.worker.postMessage(0);
  });
  p.worker.terminate();
  return sortedLatency(rtts);
}

/** Main thread <-> echoing Worker, `n` round trips with `window` in flight. */
async function postEchoes(n: number, window: number): Promise<Rate> {
  const p = await peer(BUS_PEER, { mode: "post-echo", count: n });
  const rate = await measure(
    n,
    () =>
      new Promise<void>((resolve) => {
        let sent = 0;
        let back = 0;
        p.worker.onmessage = () => {
          back++;
          if (sent < n) p.worker.postMessage(sent++);
          else if (back === n) resolve();
        };
        while (sent < Math.min(window, n)) p.worker.postMessage(sent++);
      }),
  );
  p.worker.terminate();
  return rate;
}

/** Two Workers joined by a MessageChannel: `a` in mode `modeA`, `b` in mode `modeB`. */
async function pair(modeA: string, modeB: string, count: number): Promise<[Peer, Peer]> {
  const channel = new MessageChannel();
  const b = await peer(PAIR, { mode: modeB, port: channel.port2, count }, [channel.port2]);
  const a = await peer(PAIR, { mode: modeA, port: channel.port1, count }, [channel.port1]);
  return [a, b];
}

/** Worker -> Worker over a MessageChannel, `n` numbers counted by the receiver. */
async function pairFlood(n: number): Promise<Rate> {
  const [sender, receiver] = await pair("send", "recv", n);
  const rate = await measure(n, async () => {
    sender.worker.postMessage({ go: true });
    const reply = await receiver.next();
    if (reply.done !== n || reply.misordered !== 0) {
      throw new Error(
        `MessageChannel: sent ${n}, received ${reply.done} (${reply.misordered} misordered)`,
      );
    }
  });
  sender.worker.terminate();
  receiver.worker.terminate();
  return rate;
}

async function pairPingPong(n: number): Promise<Latency> {
  const [pinger, echo] = await pair("ping", "echo", n);
  pinger.worker.postMessage({ go: true });
  const reply = await pinger.next();
  pinger.worker.terminate();
  echo.worker.terminate();
  return { p50: reply.p50 ?? Number.NaN, p99: reply.p99 ?? Number.NaN };
}

// ---------------------------------------------------------------------------------------------
// the run

const results: Result[] = [];
const ratios: Record<string, number> = {};
const started = Bun.nanoseconds();

/**
 * Measures `f` (one run: operations/s and CPU per operation) `runs` times after one discarded
 * warm-up run (JIT tiers); prints and records the median by rate, with the spread of the runs.
 */
async function throughput(name: string, unit: string, f: () => Promise<Rate>): Promise<Rate> {
  await f();
  const all: Rate[] = [];
  for (let r = 0; r < runs; r++) all.push(await f());
  all.sort((x, y) => x.perSec - y.perSec);
  const m = all[Math.floor(all.length / 2)] as Rate;
  const range = `${fmt((all[0] as Rate).perSec / 1e6, 3)}-${fmt((all.at(-1) as Rate).perSec / 1e6, 3)}`;
  const op = unit.replace(/s\/s$/, "");
  console.log(
    `${name.padEnd(50)} ${fmt(m.perSec / 1e6, 3).padStart(7)} M ${unit.padEnd(13)} ${fmt(m.cpuNs, 0).padStart(6)} cpu ns/${op.padEnd(10)} runs ${range} M`,
  );
  results.push(
    { name, value: m.perSec, unit },
    { name: `${name} cpu`, value: m.cpuNs, unit: `cpu ns/${op}` },
  );
  return m;
}

/**
 * Measures `f` (one run: round-trip percentiles) `runs` times after one discarded warm-up run;
 * prints and records the run with the median p50, with the spread of the runs' p50.
 */
async function roundTrip(name: string, f: () => Promise<Latency>): Promise<Latency> {
  await f();
  const all: Latency[] = [];
  for (let r = 0; r < runs; r++) all.push(await f());
  all.sort((x, y) => x.p50 - y.p50);
  const m = all[Math.floor(all.length / 2)] as Latency;
  const range = `${fmt((all[0] as Latency).p50)}-${fmt((all.at(-1) as Latency).p50)}`;
  console.log(
    `${name.padEnd(50)} p50 ${fmt(m.p50).padStart(6)} us  p99 ${fmt(m.p99).padStart(6)} us   runs' p50 ${range} us`,
  );
  results.push(
    { name: `${name} p50`, value: m.p50, unit: "us" },
    { name: `${name} p99`, value: m.p99, unit: "us" },
  );
  return m;
}

console.log(
  `runtime-messaging bench (${quick ? "quick" : "full"}): Controller + 2 workers of grouped tasks, beside Bun Workers and postMessage; median of ${runs} run(s) after a warm-up (throughput: by rate; latency: by p50)`,
);
await controller.addWorker({ module: TASKS });
await controller.addWorker({ module: TASKS });
const a = await controller.spawnTask("bench");
const b = await controller.spawnTask("bench");
if (a.worker === b.worker) throw new Error(`both tasks were placed on worker ${a.worker}`);

console.log(`\n-- one way, ${fmt(floodCount, 0)} messages (the receiver counts; totals checked)`);
const ctlFlood = await throughput("controller -> task", "msgs/s", () =>
  controllerFlood(a, floodCount),
);
const taskFloodRate = await throughput("task -> task (across workers)", "msgs/s", () =>
  taskFlood(a, b, floodCount),
);
const taskBytesRate = await throughput(
  "task -> task, 16 B Uint8Array (raw records)",
  "msgs/s",
  () => taskFlood(a, b, floodCount, 16),
);
const postFloodRate = await throughput("postMessage main -> Worker", "msgs/s", () =>
  postFlood(floodCount),
);
const pairFloodRate = await throughput(
  "postMessage Worker -> Worker (MessageChannel)",
  "msgs/s",
  () => pairFlood(floodCount),
);
console.log(
  `controller sends while flooding: ${pressure.sent} sent, ${pressure.queued} queued (ring full), ${pressure.capped} capped (sent again)`,
);

console.log(`\n-- ${fmt(pipeCount, 0)} round trips, ${WINDOW} in flight`);
const ctlEchoes = await throughput("controller <-> task echo", "round trips/s", () =>
  controllerEchoes(a, pipeCount, WINDOW),
);
const ctlCalls = await throughput("controller call", "calls/s", () =>
  controllerCalls(a, pipeCount, WINDOW),
);
const taskCallRate = await throughput(
  "task -> task call (across workers)",
  "calls/s",
  async () => (await taskCalls(a, b, pipeCount, WINDOW)).rate,
);
const postEchoRate = await throughput("postMessage main <-> Worker echo", "round trips/s", () =>
  postEchoes(pipeCount, WINDOW),
);

console.log(`\n-- ${fmt(rounds, 0)} round trips, one at a time`);
const ctlRtt = await roundTrip("controller <-> task echo RTT", () => controllerPingPong(a, rounds));
const callRtt = await roundTrip("controller call RTT", () => controllerCallLatency(a, rounds));
const taskRtt = await roundTrip("task <-> task ping-pong RTT (across workers)", () =>
  taskPingPong(a, b, rounds),
);
const taskCallLatency = await roundTrip(
  "task -> task call RTT (across workers)",
  async () => (await taskCalls(a, b, rounds, 1)).latency,
);
const postRtt = await roundTrip("postMessage main <-> Worker RTT", () => postPingPong(rounds));
const pairRtt = await roundTrip("postMessage Worker <-> Worker RTT (MessageChannel)", () =>
  pairPingPong(rounds),
);

const report = await controller.shutdown({ timeoutMs: 5000 });
if (report.terminated.length > 0 || report.dead.length > 0) {
  problems.push(`shutdown: terminated ${report.terminated}, dead ${report.dead}`);
}

ratios["controller->task msgs/s / postMessage main->Worker"] =
  ctlFlood.perSec / postFloodRate.perSec;
ratios["task->task msgs/s / postMessage Worker->Worker"] =
  taskFloodRate.perSec / pairFloodRate.perSec;
ratios["task-msgs-vs-seed-1.5M"] = taskFloodRate.perSec / SEED_MSGS_PER_SEC;
ratios["task-bytes-msgs-vs-seed-1.5M"] = taskBytesRate.perSec / SEED_MSGS_PER_SEC;
ratios["controller-msgs-vs-seed-1.5M"] = ctlFlood.perSec / SEED_MSGS_PER_SEC;
ratios["controller->task cpu/msg / postMessage cpu/msg"] = ctlFlood.cpuNs / postFloodRate.cpuNs;
ratios["task->task cpu/msg / MessageChannel cpu/msg"] = taskFloodRate.cpuNs / pairFloodRate.cpuNs;
ratios["controller echo window 64 / postMessage echo window 64"] =
  ctlEchoes.perSec / postEchoRate.perSec;
ratios["controller calls/s window 64 / postMessage echo window 64"] =
  ctlCalls.perSec / postEchoRate.perSec;
ratios["task->task calls/s window 64 / postMessage echo window 64"] =
  taskCallRate.perSec / postEchoRate.perSec;
ratios["postMessage RTT p50 / controller echo RTT p50 (>1: ours faster)"] =
  postRtt.p50 / ctlRtt.p50;
ratios["postMessage RTT p99 / controller echo RTT p99 (>1: ours faster)"] =
  postRtt.p99 / ctlRtt.p99;
ratios["postMessage RTT p50 / controller call RTT p50 (>1: ours faster)"] =
  postRtt.p50 / callRtt.p50;
ratios["MessageChannel RTT p50 / task ping-pong RTT p50 (>1: ours faster)"] =
  pairRtt.p50 / taskRtt.p50;
ratios["MessageChannel RTT p99 / task ping-pong RTT p99 (>1: ours faster)"] =
  pairRtt.p99 / taskRtt.p99;
ratios["controller call p50 / 50 us target (<=1: met)"] = callRtt.p50 / RPC_P50_TARGET_US;
ratios["task call p50 / 50 us target (<=1: met)"] = taskCallLatency.p50 / RPC_P50_TARGET_US;

const seed = ratios["task-msgs-vs-seed-1.5M"] ?? 0;
const seedBytes = ratios["task-bytes-msgs-vs-seed-1.5M"] ?? 0;
console.log(
  `\ntargets: task -> task >= 2x the seed's 1.5M msgs/s: ${fmt(seed, 2)}x ${seed >= 2 ? "met" : "NOT met"} (16 B bytes: ${fmt(seedBytes, 2)}x ${seedBytes >= 2 ? "met" : "NOT met"}); controller call p50 <= ${RPC_P50_TARGET_US} us: ${fmt(callRtt.p50)} us ${callRtt.p50 <= RPC_P50_TARGET_US ? "met" : "NOT met"}; task call p50 <= ${RPC_P50_TARGET_US} us: ${fmt(taskCallLatency.p50)} us ${taskCallLatency.p50 <= RPC_P50_TARGET_US ? "met" : "NOT met"}`,
);
console.log(`whole run ${fmt((Bun.nanoseconds() - started) / 1e9)} s`);
if (problems.length > 0) {
  console.error(`problems:\n  ${problems.join("\n  ")}`);
  process.exitCode = 1;
}
finish("runtime-messaging", results, ratios);
