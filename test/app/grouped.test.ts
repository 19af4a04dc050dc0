/**
 * The grouped-task worker on simulated time: task-local socket ids, cleanup when a task ends,
 * stale addresses, deadlines, channels, calls between tasks and from the controller.
 */
import { describe, expect, test } from "bun:test";
import { Batches, readForController, WireReader } from "../../src/app/wire.ts";
import {
  GroupedWorker,
  SimHarness,
  SimNetwork,
  type Structured,
  TaskAddress,
} from "../../src/index.ts";
import type { FromTasks } from "../../src/worker/inner.ts";
import { PROBE_KINDS, type ProbeCommand, type ProbeReport } from "./probe.ts";

/** `workers` grouped probe workers on one simulated host. */
function probes(workers: number, options: { tickMs?: number; busLatencyMs?: number } = {}) {
  const network = new SimNetwork(3);
  const host = network.addHost("host");
  const h = new SimHarness(network, { busLatencyMs: options.busLatencyMs ?? 1 });
  const inners: GroupedWorker[] = [];
  for (let i = 0; i < workers; i++) {
    const inner = new GroupedWorker(i, PROBE_KINDS);
    inners.push(inner);
    h.add({ host, inner, tickMs: options.tickMs ?? 0 });
  }
  let ticket = 0;
  /** Spawns a task (`kind` on the least-loaded worker) and returns its address. */
  const spawn = (kind = "probe", config: Structured = null): TaskAddress => {
    const t = ticket++;
    const w = h.spawn({ task: kind, config, ticket: t });
    const spawned = h.fromTasks(w).find((m) => m.op === "spawned" && m.ticket === t) as
      | { address: number }
      | undefined;
    if (spawned === undefined) throw new Error(`spawn ${t} not answered`);
    return TaskAddress.of(spawned.address);
  };
  const tell = (to: TaskAddress, command: ProbeCommand) => {
    h.toTasks(to.worker, { op: "message", to: to.id, data: command as unknown as Structured });
  };
  /** What task `a` reported so far. */
  const said = (a: TaskAddress): string[] =>
    h
      .fromTasks(a.worker)
      .flatMap((m) =>
        m.op === "message" && (m.data as ProbeReport)[0] === a.id
          ? [(m.data as ProbeReport)[1]]
          : [],
      );
  const settle = (ms = 10) => h.run(network.now + ms);
  return { h, network, inners, spawn, tell, said, settle };
}

describe("the grouped worker", () => {
  test("two tasks both use socket 0: each gets its own events; a new task's constructor outputs come out at once", () => {
    const { spawn, tell, said, settle } = probes(1);
    const a = spawn("probe", "first");
    const b = spawn("probe", "second");
    expect([a.toString(), b.toString()]).toEqual(["w0/g0/s0#1", "w0/g0/s1#1"]);
    expect([said(a), said(b)]).toEqual([['born "first"'], ['born "second"']]);
    tell(a, { op: "listen", socket: 0, port: 5000 });
    tell(b, { op: "listen", socket: 0, port: 5001 });
    tell(a, { op: "listen", socket: 0, port: 5002 });
    tell(a, { op: "send", socket: 0, port: 5001, text: "hi b" });
    tell(b, { op: "send", socket: 0, port: 5000, text: "hi a" });
    tell(b, { op: "send", socket: 7, port: 5000, text: "no such socket" });
    settle();
    // the runtime refuses an id in use at once: before the backend's answer to the first listen
    expect(said(a).slice(1)).toEqual([
      "listen 0: EEXIST",
      "listen 0: ok 5000",
      "packet on 0: hi a",
    ]);
    expect(said(b).slice(1)).toEqual([
      "net udp-send-error",
      "listen 0: ok 5001",
      "packet on 0: hi b",
    ]);
  });

  test("a task that fails is reported by kind and address; its socket is closed and its port free; its address is stale for good", () => {
    const { h, inners, spawn, tell, said, settle } = probes(1);
    const a = spawn();
    tell(a, { op: "listen", socket: 0, port: 5000 });
    tell(a, { op: "throw" });
    expect(h.reports(0)).toHaveLength(1);
    expect(h.reports(0)[0]).toMatchObject({ kind: "task-error", task: "probe w0/g0/s0#1" });
    settle();
    const b = spawn();
    expect(b.toString()).toBe("w0/g0/s0#2"); // the same slot, a new generation
    tell(b, { op: "listen", socket: 0, port: 5000 });
    settle();
    expect(said(b)).toContain("listen 0: ok 5000");
    const before = inners[0]?.counters().staleDrops;
    tell(a, { op: "send", socket: 0, port: 5000, text: "from the grave" });
    h.toTasks(0, { op: "call", call: 1, to: a.id, data: "?" });
    expect(inners[0]?.counters().staleDrops).toBe((before ?? 0) + 1);
    expect(h.fromTasks(0).at(-1)).toEqual({
      op: "reply",
      call: 1,
      ok: false,
      error: "no task w0/g0/s0#1: it has ended",
    });
    expect(said(b).some((s) => s.includes("grave"))).toBe(false);
    expect(inners[0]?.tasks()).toBe(1);
  });

  test("a finished task's sockets are closed by the runtime, and the worker can end", () => {
    const { h, network, inners, spawn, tell, settle } = probes(1);
    const a = spawn();
    tell(a, { op: "listen", socket: 3, port: 5000 });
    tell(a, { op: "finish" });
    expect(inners[0]?.tasks()).toBe(0);
    settle();
    const b = spawn();
    tell(b, { op: "listen", socket: 0, port: 5000 });
    settle();
    expect(h.trace.filter((l) => l.includes("-> udp-unlisten"))).toHaveLength(1);
    tell(b, { op: "finish" });
    expect(h.shutdown(network.now + 100)).toBe(true);
  });

  test("a deadline wakes its task with no tick; moving it later or clearing it is honoured", () => {
    const { h, network, spawn, tell, said } = probes(1);
    const a = spawn();
    tell(a, { op: "timer", inMs: 250 });
    h.run(1000);
    expect(said(a)).toContain("timer 250");
    expect(h.trace.filter((l) => l.includes(" deadline"))).toHaveLength(1);
    expect(h.trace.some((l) => / w\d tick$/.test(l))).toBe(false);
    expect(network.now).toBe(1000);
    tell(a, { op: "timer", inMs: 100 });
    tell(a, { op: "timer", inMs: 300 }); // moved later: fires once, at 1300
    h.run(2000);
    expect(said(a).filter((s) => s.startsWith("timer"))).toEqual(["timer 250", "timer 1300"]);
  });

  test("channels: the endpoint subscribes with the first local subscriber and leaves with the last; every subscriber hears each publish once", () => {
    const { h, spawn, tell, said, settle } = probes(2);
    const [a, b, c] = [spawn(), spawn(), spawn()]; // w0, w1, w0
    for (const t of [a, b, c]) tell(t as TaskAddress, { op: "subscribe", channel: 3 });
    settle();
    tell(b as TaskAddress, { op: "publish", channel: 3, text: "one" });
    settle();
    for (const t of [a, b, c]) {
      expect(said(t as TaskAddress).filter((s) => s.startsWith("channel"))).toEqual([
        `channel 3 from ${b}: one`,
      ]);
    }
    expect(h.trace.filter((l) => l.includes("w0 -> bus op=subscribe channel=3"))).toHaveLength(1);
    tell(a as TaskAddress, { op: "unsubscribe", channel: 3 });
    tell(c as TaskAddress, { op: "unsubscribe", channel: 3 });
    expect(h.trace.filter((l) => l.includes("w0 -> bus op=unsubscribe channel=3"))).toHaveLength(1);
    settle();
    tell(b as TaskAddress, { op: "publish", channel: 3, text: "two" });
    settle();
    expect(said(a as TaskAddress).some((s) => s.includes("two"))).toBe(false);
    expect(said(b as TaskAddress).at(-1)).toBe(`channel 3 from ${b}: two`);
  });

  test("calls across workers: answered, timed out (the late answer counted), to a task gone, to a worker gone", () => {
    const { h, inners, spawn, tell, said, settle } = probes(2);
    const a = spawn();
    const b = spawn();
    expect(b.worker).toBe(1);
    tell(a, { op: "call", to: b.id, text: "x", timeoutMs: 50, tag: 1 });
    settle();
    expect(said(a).at(-1)).toBe("reply 1: re: x");
    tell(b, { op: "answer-after", ms: 100 });
    tell(a, { op: "call", to: b.id, text: "slow", timeoutMs: 50, tag: 2 });
    settle(200);
    expect(said(a).at(-1)).toBe(`failed 2: call to ${b} timed out after 50 ms`);
    expect(inners[0]?.counters().lateReplies).toBe(1);
    const c = spawn("probe");
    tell(c, { op: "finish" });
    tell(a, { op: "call", to: c.id, text: "?", timeoutMs: 50, tag: 3 });
    settle();
    expect(said(a).at(-1)).toBe(`failed 3: no task ${c}: it has ended`);
    tell(b, { op: "answer-after", ms: -1 });
    tell(a, { op: "call", to: b.id, text: "never", timeoutMs: 5000, tag: 4 });
    settle();
    h.peerDown(1);
    expect(said(a).at(-1)).toBe(`failed 4: call to ${b} failed: worker 1 is gone`);
    tell(a, { op: "call", to: b.id, text: "after", timeoutMs: 5000, tag: 5 });
    expect(said(a).at(-1)).toBe("failed 5: worker 1 is gone");
  });

  test("an output the runtime refuses fails its task alone, with the reason; the worker serves on", () => {
    const { h, inners, spawn, tell, said } = probes(1);
    const a = spawn();
    const b = spawn();
    const c = spawn();
    tell(a, { op: "subscribe", channel: -1 });
    tell(c, { op: "subscribe", channel: 2 ** 27 });
    expect(
      h.reports(0).map((r) => [r.kind, r.kind === "task-error" ? r.task : "", String(r.error)]),
    ).toEqual([
      [
        "task-error",
        `probe ${a}`,
        `RangeError: probe ${a}: channel must be an integer from 0 to 134217727, not -1`,
      ],
      [
        "task-error",
        `probe ${c}`,
        `RangeError: probe ${c}: channel must be an integer from 0 to 134217727, not 134217728`,
      ],
    ]);
    expect(inners[0]?.tasks()).toBe(1);
    tell(b, { op: "tell", to: b.id, text: "still here" });
    expect(said(b).at(-1)).toBe(`message from ${b}: still here`);
  });

  test("a payload view kept past its drain and sent later fails the task that kept it, by name; its kept source address is still right", () => {
    const { h, spawn, tell, said, settle, inners } = probes(1);
    const a = spawn();
    const b = spawn();
    tell(a, { op: "listen", socket: 0, port: 5000 });
    tell(b, { op: "listen", socket: 3, port: 5001 });
    tell(a, { op: "keep" });
    settle();
    tell(b, { op: "send", socket: 3, port: 5000, text: "first" });
    settle();
    tell(b, { op: "send", socket: 3, port: 5000, text: "second" });
    settle();
    tell(a, { op: "send-kept", socket: 0 });
    settle();
    // the source kept with the first packet is a value: still b's port after the second
    expect(said(a).slice(-3)).toEqual([
      "packet on 0: first",
      "packet on 0: second",
      "kept from 127.0.0.1:5001",
    ]);
    expect(
      h.reports(0).map((r) => [r.kind === "task-error" ? r.task : r.kind, String(r.error)]),
    ).toEqual([
      [
        `probe ${a}`,
        `Error: probe ${a}: an output could not be sent: a view of a received packet's payload was sent after its handler returned, when its buffer is already reused: copy what you keep (data.slice())`,
      ],
    ]);
    expect(said(b).filter((s) => s.startsWith("packet"))).toEqual([]);
    expect(inners[0]?.tasks()).toBe(1);
  });

  test("a message the bus cannot carry fails the task that sent it, naming it and the path", () => {
    const { h, spawn, tell, said, settle } = probes(2);
    const a = spawn();
    const b = spawn();
    expect([a.worker, b.worker]).toEqual([0, 1]);
    tell(a, { op: "tell-unencodable", to: b.id });
    tell(a, { op: "tell", to: b.id, text: "never sent: a is gone" });
    settle();
    const reports = h.reports(0);
    expect(reports).toHaveLength(1);
    expect(reports[0]).toMatchObject({ kind: "task-error", task: `probe ${a}` });
    expect(String(reports[0]?.error)).toMatch(
      new RegExp(
        `^Error: probe ${a.toString().replace(/[#/]/g, "\\$&")}: an output could not be sent: .*function`,
      ),
    );
    expect(said(b)).toEqual(["born null"]);
  });

  test("bus messages that are not a grouped worker's are dropped and counted, never fatal", () => {
    const { spawn, tell, said, inners, network } = probes(1);
    const a = spawn();
    const inner = inners[0] as GroupedWorker;
    // records as another grouped worker would send them, then damaged
    const batches = new Batches<undefined>(1024, 4096);
    const record = (add: (b: Batches<undefined>) => unknown): Uint8Array => {
      add(batches);
      return (batches.take() as { bytes: Uint8Array }).bytes.slice();
    };
    const toA = record((b) => b.message(0, a.id, a.id, "hello", undefined));
    const nanIds = toA.slice();
    nanIds.fill(0xff, 2, 18);
    const failedReply = record((b) => b.reply(0, 1, false, "why", undefined));
    failedReply[11] = 1; // a failure whose reason is not text (a number kind byte)
    const hostile: Structured[] = [
      // what is not a record at all
      null,
      [],
      "m",
      { 0: "m" },
      ["m", a.id, -1, "bad sender"],
      new Uint8Array(0),
      new Uint8Array([0x4d, 1, 2]),
      // records cut short, or with an unknown entry, NaN ids, a bad reply
      toA.subarray(0, 10),
      toA.subarray(0, toA.length - 1),
      new Uint8Array([0x42, 0x99, ...toA.subarray(2)]),
      nanIds,
      failedReply,
      // well formed, but for no such task (address 0), or a publish sent direct
      record((b) => b.message(0, 0, a.id, 1, undefined)),
      batches.publish(a.id, "x").slice(),
    ];
    for (const data of hostile) {
      inner.onEvent(network.now, { kind: "bus", from: 1, via: "direct", channel: -1, data });
      expect(inner.popOutput(network.now)).toBeUndefined();
    }
    expect(inner.counters().staleDrops).toBe(hostile.length);
    // a good entry before the damage is delivered; the rest is dropped and counted once
    const damaged = new Uint8Array([...toA, 0x6d, 0, 0]);
    inner.onEvent(network.now, { kind: "bus", from: 1, via: "direct", channel: -1, data: damaged });
    const told: FromTasks[] = [];
    for (let o = inner.popOutput(network.now); o !== undefined; o = inner.popOutput(network.now)) {
      expect(o).toMatchObject({ kind: "bus", control: { op: "direct", worker: -1 } });
      const bytes = (o as { control: { data: Uint8Array } }).control.data;
      expect(readForController(new WireReader(), bytes, (m) => told.push(m))).toBe(true);
    }
    expect(inner.counters().staleDrops).toBe(hostile.length + 1);
    expect(told).toEqual([{ op: "message", from: a.id, data: [a.id, `message from ${a}: hello`] }]);
    // a spawn config whose kind is not a string, nor even printable
    inner.spawn(network.now, JSON.parse('{"task":{"toString":0}}'));
    expect(inner.popOutput(network.now)).toMatchObject({
      kind: "task-error",
      task: '{"toString":0}',
    });
    tell(a, { op: "tell", to: a.id, text: "still serving" });
    expect(said(a).at(-1)).toBe(`message from ${a}: still serving`);
  });

  test("an answer the bus cannot carry fails the task that gave it, and its caller is answered at once", () => {
    const { h, spawn, tell, settle } = probes(2);
    const a = spawn();
    const b = spawn();
    tell(b, { op: "answer-after", ms: -2 });
    h.toTasks(b.worker, { op: "call", call: 7, to: b.id, data: "?" });
    tell(a, { op: "call", to: b.id, text: "from a", timeoutMs: 1000, tag: 3 });
    settle();
    expect(h.fromTasks(b.worker).filter((m) => m.op === "reply")).toEqual([
      {
        op: "reply",
        call: 7,
        ok: false,
        error: expect.stringContaining(`probe ${b} could not send its answer: `),
      },
    ]);
    expect(h.reports(b.worker).map((r) => (r.kind === "task-error" ? r.task : r.kind))).toEqual([
      `probe ${b}`,
    ]);
    // a's call reached b after b had failed: it fails at once as a call to an ended task
    const aSaid = h
      .fromTasks(a.worker)
      .flatMap((m) => (m.op === "message" ? [(m.data as ProbeReport)[1]] : []));
    expect(aSaid.at(-1)).toBe(`failed 3: no task ${b}: it has ended`);
  });

  test("a task that ends owing an answer: the runtime answers for it", () => {
    const { h, spawn, tell } = probes(1);
    const a = spawn();
    tell(a, { op: "answer-after", ms: -1 });
    h.toTasks(0, { op: "call", call: 9, to: a.id, data: "?" });
    tell(a, { op: "finish" });
    expect(h.fromTasks(0).at(-1)).toEqual({
      op: "reply",
      call: 9,
      ok: false,
      error: `probe ${a} ended without answering`,
    });
  });

  test("a task spawns a task and learns its address (or why not); an unknown kind is refused with the kinds there are", () => {
    const { h, spawn, tell, settle, said } = probes(2);
    const a = spawn();
    tell(a, { op: "spawn", config: "child", tag: 5 });
    tell(a, { op: "spawn", config: "untold" });
    settle();
    const born = h.fromTasks(1).filter((m) => m.op === "message");
    const reports = born.map((m) => (m as unknown as { data: ProbeReport }).data);
    expect(reports.map((r) => r[1])).toEqual(['born "child"']);
    const child = TaskAddress.of((reports[0] as ProbeReport)[0]);
    expect(child.worker).toBe(1);
    tell(a, { op: "spawn", config: null, kind: "nope", tag: 6 });
    settle();
    expect(said(a).slice(1)).toEqual([
      `spawned 5: ${child}`,
      'spawn 6 failed: no task kind "nope" on this worker (kinds: probe, other)',
    ]);
    tell(child, { op: "tell", to: a.id, text: "hello parent" });
    settle();
    expect(said(a).at(-1)).toBe(`message from ${child}: hello parent`);
    const w = h.spawn({ task: "nope", config: null, ticket: 99 });
    expect(h.fromTasks(w).at(-1)).toEqual({
      op: "spawn-failed",
      ticket: 99,
      error: 'no task kind "nope" on this worker (kinds: probe, other)',
    });
  });

  test("a tagged spawn refused during shutdown is answered as the controller answers it", () => {
    const { h, spawn, tell, said, network } = probes(1);
    const a = spawn();
    tell(a, { op: "spawn-at-shutdown" });
    expect(h.shutdown(network.now + 100)).toBe(true);
    expect(said(a).slice(-2)).toEqual([
      "bye",
      "spawn 99 failed: spawn not placed: the controller is shutting down",
    ]);
  });

  test("bytes between workers travel without JSON and arrive as copies, with their sender; a publish of bytes too", () => {
    const { spawn, tell, said, settle } = probes(2);
    const a = spawn();
    const b = spawn();
    const c = spawn();
    expect([a.worker, b.worker, c.worker]).toEqual([0, 1, 0]);
    tell(b, { op: "subscribe", channel: 4 });
    tell(c, { op: "subscribe", channel: 4 });
    settle();
    tell(a, { op: "tell-bytes", to: b.id, bytes: [1, 2, 3] });
    tell(a, { op: "tell-bytes", to: c.id, bytes: [] }); // same worker: handed over as it is
    tell(a, { op: "publish-bytes", channel: 4, bytes: [9, 8] });
    settle();
    expect(said(b).slice(1)).toEqual([
      `message from ${a}: bytes[1,2,3]`,
      `channel 4 from ${a}: bytes[9,8]`,
    ]);
    expect(said(c).slice(1)).toEqual([
      `message from ${a}: bytes[]`,
      `channel 4 from ${a}: bytes[9,8]`,
    ]);
  });
});
