/**
 * A task kind for the grouped-worker tests, driven by messages: it does what each command says
 * and tells its driver (the controller, or the task that sent the command) what happened.
 */
import {
  type AppTask,
  type NetEvent,
  Outbox,
  SocketAddr,
  type Structured,
  TaskAddress,
  type TaskContext,
  type TaskInput,
  type TaskOutput,
} from "../../src/index.ts";

/** Commands a probe takes as "message" inputs. */
export type ProbeCommand =
  | { op: "listen"; socket: number; port: number }
  | { op: "unlisten"; socket: number }
  | { op: "send"; socket: number; port: number; text: string }
  | { op: "timer"; inMs: number }
  | { op: "subscribe"; channel: number }
  | { op: "unsubscribe"; channel: number }
  | { op: "publish"; channel: number; text: string }
  | { op: "tell"; to: number; text: string }
  | { op: "call"; to: number; text: string; timeoutMs: number; tag: number }
  | { op: "spawn"; config: Structured; kind?: string; tag?: number }
  | { op: "finish" }
  | { op: "throw" }
  /** Answer calls after this many ms (0: at once; -1: never; -2: with a value the bus refuses). */
  | { op: "answer-after"; ms: number }
  /** Call `to` `count` times, `window` calls in flight; reports "calls: ok/failed/wrong". */
  | { op: "call-many"; to: number; count: number; window: number }
  /** From now on, publish each received datagram's text on the channel it names (a number). */
  | { op: "publish-packets" }
  /** Send task `to` these bytes (a Uint8Array message), or publish them on `channel`. */
  | { op: "tell-bytes"; to: number; bytes: number[] }
  | { op: "publish-bytes"; channel: number; bytes: number[] }
  /** At shutdown, spawn a probe with tag 99 and end only once told how that went. */
  | { op: "spawn-at-shutdown" }
  /** Keep the worker busy (no progress) for `ms`. */
  | { op: "block"; ms: number }
  /** Keep the next packet's payload view (a misuse) and its source address. */
  | { op: "keep" }
  /** Send the kept view (a misuse: its buffer is reused) to the kept source, from `socket`. */
  | { op: "send-kept"; socket: number }
  /** Send task `to` a message the bus codec cannot carry (a function, behind a cast). */
  | { op: "tell-unencodable"; to: number }
  /** Sends task `to` the sequence 0..count-1 (`sequenceValue`), `chunk` a millisecond. */
  | { op: "tell-many"; to: number; count: number; chunk: number }
  /** Counts the sequence values it is sent from now on instead of reporting them. */
  | { op: "count" }
  /** Reports "counted N, wrong W" (W: values not the next of the sequence). */
  | { op: "report-count" }
  /** Listen on TCP: every connection accepted is echoed back; accepts, FINs and closes reported. */
  | { op: "tcp-listen"; listener: number; port: number }
  /** End the worker's thread at once (process.exit in a worker), everything still open. */
  | { op: "exit"; code: number };

/** The i-th value of a "tell-many" sequence: a number, an object or bytes, in turn. */
export function sequenceValue(i: number): Structured {
  if (i % 3 === 0) return i;
  if (i % 3 === 1) return { i };
  return new Uint8Array(new Uint32Array([i]).buffer);
}

/** The index a sequence value holds. */
function indexOf(v: Structured): number {
  if (typeof v === "number") return v;
  if (v instanceof Uint8Array)
    return v.length === 4 ? (new Uint32Array(v.slice().buffer)[0] as number) : -1;
  const i = (v as { i?: unknown } | null)?.i;
  return typeof i === "number" ? i : -1;
}

/** A "call-many" under way. */
interface ManyCalls {
  readonly to: TaskAddress;
  readonly count: number;
  next: number;
  ok: number;
  failed: number;
  wrong: number;
}

/** Whether `v` is a probe command (an object with an `op`). */
function isCommand(v: Structured): boolean {
  return typeof v === "object" && v !== null && !(v instanceof Uint8Array) && "op" in v;
}

/** What a probe reports: `[its address id, what]`. */
export type ProbeReport = readonly [number, string];

/** A probe task; see the module comment. */
export class Probe implements AppTask {
  readonly #out = new Outbox<TaskOutput>();
  readonly #id: number;
  readonly #pendingAnswers: { call: number; data: Structured; at: number }[] = [];
  #answerAfter = 0;
  #keep = false;
  #publishPackets = false;
  #spawnAtShutdown = false;
  #many: ManyCalls | undefined;
  #tellMany: { to: TaskAddress; count: number; chunk: number; next: number } | undefined;
  #counting = false;
  #counted = 0;
  #wrong = 0;
  #kept: { data: Uint8Array; from: SocketAddr } | undefined;
  #done = false;

  constructor(
    config: Structured,
    readonly context: TaskContext,
  ) {
    this.#id = context.address.id;
    this.#report(`born ${JSON.stringify(config ?? null)}`);
  }

  onEvent(now: number, input: TaskInput): void {
    switch (input.kind) {
      case "message":
        if (this.#counting && !isCommand(input.data)) {
          const expected = sequenceValue(this.#counted++);
          if (indexOf(input.data) !== this.#counted - 1 || typeof input.data !== typeof expected)
            this.#wrong++;
        } else if (input.from === null) this.#command(now, input.data as ProbeCommand);
        else this.#report(`message from ${input.from}: ${show(input.data)}`);
        return;
      case "net": {
        const e = input.event;
        if (e.kind === "udp-packet") {
          if (this.#keep) this.#kept = { data: e.data, from: e.from };
          if (this.#publishPackets) {
            const text = new TextDecoder().decode(e.data);
            this.#out.push({ kind: "publish", channel: Number(text), data: text });
            return;
          }
          this.#keep = false;
          this.#report(`packet on ${e.socket}: ${new TextDecoder().decode(e.data)}`);
        } else if (e.kind === "udp-listen-result") {
          this.#report(`listen ${e.socket}: ${e.error?.code ?? `ok ${e.local?.port}`}`);
        } else if (e.kind === "udp-closed") {
          this.#report(`closed ${e.socket}${e.error ? `: ${e.error.code}` : ""}`);
        } else if (e.kind.startsWith("tcp-")) this.#tcp(e);
        else this.#report(`net ${e.kind}`);
        return;
      }
      case "channel":
        this.#report(`channel ${input.channel} from ${input.from}: ${show(input.data)}`);
        return;
      case "call":
        if (this.#answerAfter === 0) {
          this.#out.push({ kind: "reply", call: input.call, data: `re: ${String(input.data)}` });
        } else if (this.#answerAfter === -2) {
          const data = { when: new Date(0) } as unknown as Structured;
          this.#out.push({ kind: "reply", call: input.call, data });
        } else if (this.#answerAfter > 0) {
          const at = now + this.#answerAfter;
          this.#pendingAnswers.push({ call: input.call, data: input.data, at });
          this.#out.push({ kind: "timer", at });
        }
        return;
      case "reply":
        if (this.#many !== undefined && input.tag >= 1_000_000) {
          this.#manyReply(input.tag - 1_000_000, input.ok ? input.data : undefined);
          return;
        }
        this.#report(
          input.ok
            ? `reply ${input.tag}: ${String(input.data)}`
            : `failed ${input.tag}: ${input.error}`,
        );
        return;
      case "spawned":
        this.#report(
          input.ok
            ? `spawned ${input.tag}: ${input.address}`
            : `spawn ${input.tag} failed: ${input.error}`,
        );
        if (this.#spawnAtShutdown && input.tag === 99) this.#done = true;
        return;
      case "timer": {
        if (this.#tellMany !== undefined) {
          this.#tellChunk(now);
          return;
        }
        this.#report(`timer ${input.at}`);
        for (const p of this.#pendingAnswers.splice(0)) {
          this.#out.push({ kind: "reply", call: p.call, data: `late re: ${String(p.data)}` });
        }
        return;
      }
    }
  }

  #command(now: number, c: ProbeCommand): void {
    const out = this.#out;
    switch (c.op) {
      case "listen":
        out.push({
          kind: "net",
          action: {
            kind: "udp-listen",
            socket: c.socket,
            bind: SocketAddr.parse("127.0.0.1", c.port),
          },
        });
        return;
      case "unlisten":
        out.push({ kind: "net", action: { kind: "udp-unlisten", socket: c.socket } });
        return;
      case "send":
        out.push({
          kind: "net",
          action: {
            kind: "udp-send",
            socket: c.socket,
            to: SocketAddr.parse("127.0.0.1", c.port),
            data: new TextEncoder().encode(c.text),
          },
        });
        return;
      case "timer":
        out.push({ kind: "timer", at: now + c.inMs });
        return;
      case "subscribe":
      case "unsubscribe":
        out.push({ kind: c.op, channel: c.channel });
        return;
      case "publish":
        out.push({ kind: "publish", channel: c.channel, data: c.text });
        return;
      case "tell":
        out.push({ kind: "send", to: TaskAddress.of(c.to), data: c.text });
        return;
      case "call":
        out.push({
          kind: "call",
          to: TaskAddress.of(c.to),
          data: c.text,
          tag: c.tag,
          timeoutMs: c.timeoutMs,
        });
        return;
      case "spawn":
        out.push({
          kind: "spawn",
          task: c.kind ?? "probe",
          config: c.config,
          ...(c.tag === undefined ? {} : { tag: c.tag }),
        });
        return;
      case "finish":
        this.#done = true;
        return;
      case "throw":
        throw new Error(`probe ${this.context.address} was told to throw`);
      case "answer-after":
        this.#answerAfter = c.ms;
        return;
      case "keep":
        this.#keep = true;
        return;
      case "publish-packets":
        this.#publishPackets = true;
        return;
      case "spawn-at-shutdown":
        this.#spawnAtShutdown = true;
        return;
      case "tell-bytes":
        out.push({ kind: "send", to: TaskAddress.of(c.to), data: new Uint8Array(c.bytes) });
        return;
      case "publish-bytes":
        out.push({ kind: "publish", channel: c.channel, data: new Uint8Array(c.bytes) });
        return;
      case "block": {
        const until = performance.now() + c.ms;
        while (performance.now() < until) {
          // busy, as a task stuck in a loop would be
        }
        this.#report("unblocked");
        return;
      }
      case "call-many": {
        const to = TaskAddress.of(c.to);
        this.#many = { to, next: 0, count: c.count, ok: 0, failed: 0, wrong: 0 };
        for (let i = 0; i < Math.min(c.window, c.count); i++) this.#callNext();
        return;
      }
      case "send-kept": {
        const kept = this.#kept;
        if (kept === undefined) throw new Error("nothing kept");
        this.#report(`kept from ${kept.from}`);
        out.push({
          kind: "net",
          action: { kind: "udp-send", socket: c.socket, to: kept.from, data: kept.data },
        });
        return;
      }
      case "tell-unencodable":
        out.push({
          kind: "send",
          to: TaskAddress.of(c.to),
          data: { f: () => 1 } as unknown as Structured,
        });
        return;
      case "tell-many":
        this.#tellMany = { to: TaskAddress.of(c.to), count: c.count, chunk: c.chunk, next: 0 };
        this.#tellChunk(now);
        return;
      case "count":
        this.#counting = true;
        return;
      case "report-count":
        this.#report(`counted ${this.#counted}, wrong ${this.#wrong}`);
        return;
      case "tcp-listen":
        out.push({
          kind: "net",
          action: {
            kind: "tcp-listen",
            listener: c.listener,
            bind: SocketAddr.parse("127.0.0.1", c.port),
          },
        });
        return;
      case "exit":
        process.exit(c.code);
    }
  }

  /** A TCP event: data is echoed (a copy: the view is the runtime's), the rest reported. */
  #tcp(e: NetEvent): void {
    switch (e.kind) {
      case "tcp-listen-result":
        this.#report(`tcp-listen ${e.listener}: ${e.error?.code ?? `ok ${e.local?.port}`}`);
        return;
      case "tcp-accept":
        this.#report(`accept on ${e.listener}`);
        return;
      case "tcp-data":
        this.#out.push({
          kind: "net",
          action: { kind: "tcp-send", conn: e.conn, data: e.data.slice() },
        });
        return;
      case "tcp-closed":
        this.#report(`tcp-closed${e.error ? `: ${e.error.code}` : ""}`);
        return;
      default:
        this.#report(`net ${e.kind}`);
    }
  }

  /** The next chunk of a "tell-many"; a timer for the one after, or "told N" at the end. */
  #tellChunk(now: number): void {
    const t = this.#tellMany;
    if (t === undefined) return;
    const until = Math.min(t.count, t.next + t.chunk);
    while (t.next < until)
      this.#out.push({ kind: "send", to: t.to, data: sequenceValue(t.next++) });
    if (t.next < t.count) this.#out.push({ kind: "timer", at: now + 1 });
    else {
      this.#tellMany = undefined;
      this.#report(`told ${t.count}`);
    }
  }

  #callNext(): void {
    const m = this.#many;
    if (m === undefined || m.next >= m.count) return;
    const i = m.next++;
    this.#out.push({ kind: "call", to: m.to, data: i, tag: 1_000_000 + i, timeoutMs: 30_000 });
  }

  #manyReply(i: number, data: Structured): void {
    const m = this.#many as ManyCalls;
    if (data === undefined) m.failed++;
    else if (data === `re: ${i}`) m.ok++;
    else m.wrong++;
    if (m.ok + m.failed + m.wrong === m.count) {
      this.#report(`calls: ${m.ok}/${m.failed}/${m.wrong}`);
      this.#many = undefined;
    } else this.#callNext();
  }

  onShutdown(): void {
    this.#report("bye");
    if (this.#spawnAtShutdown)
      this.#out.push({ kind: "spawn", task: "probe", config: null, tag: 99 });
    else this.#done = true;
  }

  popOutput(): TaskOutput | undefined {
    return this.#out.shift();
  }

  isEmpty(): boolean {
    return this.#done && this.#out.length === 0;
  }

  #report(what: string): void {
    this.#out.push({ kind: "controller", data: [this.#id, what] });
  }
}

/** A message as a probe reports it (bytes as "bytes[1,2,3]"). */
function show(data: Structured): string {
  return data instanceof Uint8Array ? `bytes[${data.join(",")}]` : String(data);
}

/** The kinds of the probe worker: probes, and a second kind to show the two-level order. */
export const PROBE_KINDS = {
  probe: (config: Structured, context: TaskContext) => new Probe(config, context),
  other: (config: Structured, context: TaskContext) => new Probe(config, context),
};
