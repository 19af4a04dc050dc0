/**
 * The grouped worker's TCP id routing (`NetRoutes`) against a model: tasks listen, connect, send,
 * close and end at random while a model backend accepts, delivers, resets and completes closes
 * in any order. Every event must reach the task that owns the id, as that task's id; no action
 * may reach the backend for an id it has closed; a connection accepted for an ended task is
 * reset; once every task has ended and the backend has answered, no id is left.
 */
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { NetRoutes } from "../../src/app/net-routes.ts";
import { TaskRecord } from "../../src/app/record.ts";
import { type NetAction, type NetEvent, SocketAddr, TaskAddress } from "../../src/index.ts";

const ADDR = SocketAddr.parse("127.0.0.1", 4000);
const TASKS = 3;

type Phase = "opening" | "open" | "closing";

/** What a task believes it has, by its own ids: for connections, the backend's id too. */
interface TaskModel {
  readonly record: TaskRecord;
  readonly listeners: Map<number, Phase>;
  readonly conns: Map<number, { phase: Phase; global: number }>;
}

/** The backend as the routes see it: worker-wide ids, their owners and phases. */
class ModelBackend {
  readonly listeners = new Map<number, { owner: number; phase: Phase }>();
  readonly conns = new Map<number, { owner: number; phase: Phase }>();
  /** Events made while an action was carried out, delivered after it (as the real backends do). */
  readonly queued: NetEvent[] = [];
  nextAccepted = -1;
  /** Accept events for listeners whose task had ended at the time (each must be reset). */
  abortsOwed = 0;

  act(owner: number, a: NetAction): void {
    switch (a.kind) {
      case "tcp-listen":
        expect(this.listeners.has(a.listener)).toBe(false);
        // a listen is answered at once; odd ids fail, to exercise the failed-open path
        if (a.listener % 5 === 4) {
          this.listeners.set(a.listener, { owner, phase: "opening" });
          this.queued.push({
            kind: "tcp-listen-result",
            listener: a.listener,
            error: { code: "EADDRINUSE", message: "in use" },
          });
        } else {
          this.listeners.set(a.listener, { owner, phase: "open" });
          this.queued.push({ kind: "tcp-listen-result", listener: a.listener, local: ADDR });
        }
        return;
      case "tcp-unlisten": {
        const l = this.listeners.get(a.listener);
        // the routes never unlisten twice or an id the backend does not have
        expect(l?.phase === "open" || l?.phase === "opening").toBe(true);
        (l as { phase: Phase }).phase = "closing";
        return;
      }
      case "tcp-connect":
        expect(this.conns.has(a.conn)).toBe(false);
        this.conns.set(a.conn, { owner, phase: "opening" });
        return;
      case "tcp-close":
      case "tcp-abort": {
        const c = this.conns.get(a.conn);
        expect(c, `${a.kind} ${a.conn}: the backend has no such connection`).toBeDefined();
        // closing twice is harmless (the backend ignores it) but must not make a second tcp-closed
        if (c !== undefined) c.phase = "closing";
        return;
      }
      default: {
        if (!("conn" in a)) throw new Error(`unexpected ${a.kind}`);
        const c = this.conns.get(a.conn);
        expect(c, `${a.kind} ${a.conn}: the backend has no such connection`).toBeDefined();
        if (c?.phase === "closing" && a.kind === "tcp-send")
          this.queued.push({
            kind: "tcp-send-error",
            conn: a.conn,
            error: { code: "EPIPE", message: "closing" },
          });
      }
    }
  }

  /** The `pick`-th thing the backend could report now (of `kind`), or undefined. */
  spontaneous(kind: number, pick: number, alive: (owner: number) => boolean): NetEvent | undefined {
    const nth = <T>(items: T[]): T | undefined =>
      items.length === 0 ? undefined : items[pick % items.length];
    switch (kind) {
      case 0: {
        // a connection comes in on an open listener
        const l = nth([...this.listeners].filter(([, v]) => v.phase === "open"));
        if (l === undefined) return undefined;
        const conn = this.nextAccepted--;
        this.conns.set(conn, { owner: l[1].owner, phase: "open" });
        if (!alive(l[1].owner)) this.abortsOwed++;
        return { kind: "tcp-accept", listener: l[0], conn, peer: ADDR, local: ADDR };
      }
      case 1: {
        // a connect completes, either way
        const c = nth([...this.conns].filter(([, v]) => v.phase === "opening"));
        if (c === undefined) return undefined;
        if (pick % 2 === 0) {
          c[1].phase = "open";
          return { kind: "tcp-connect-result", conn: c[0], local: ADDR, peer: ADDR };
        }
        this.conns.delete(c[0]);
        const error = { code: "ECONNREFUSED", message: "refused" };
        return { kind: "tcp-connect-result", conn: c[0], error };
      }
      case 2: {
        // data, a FIN or backpressure on an open connection
        const c = nth([...this.conns].filter(([, v]) => v.phase === "open"));
        if (c === undefined) return undefined;
        return pick % 3 === 0
          ? { kind: "tcp-fin", conn: c[0] }
          : pick % 3 === 1
            ? { kind: "tcp-data", conn: c[0], data: Uint8Array.of(c[0] & 0xff) }
            : { kind: "tcp-backpressure", conn: c[0], blocked: true };
      }
      case 3: {
        // the peer resets an open connection
        const c = nth([...this.conns].filter(([, v]) => v.phase === "open"));
        if (c === undefined) return undefined;
        this.conns.delete(c[0]);
        const error = { code: "ECONNRESET", message: "reset" };
        return { kind: "tcp-closed", conn: c[0], error };
      }
      default: {
        // a close or unlisten that was asked for completes
        const c = nth([...this.conns].filter(([, v]) => v.phase === "closing"));
        if (c !== undefined && pick % 2 === 0) {
          this.conns.delete(c[0]);
          return { kind: "tcp-closed", conn: c[0] };
        }
        const l = nth([...this.listeners].filter(([, v]) => v.phase === "closing"));
        if (l === undefined) return undefined;
        this.listeners.delete(l[0]);
        return { kind: "tcp-unlistened", listener: l[0] };
      }
    }
  }
}

/** One run of the model over `steps` ([what, which task or event, which id]). */
function run(steps: readonly (readonly [number, number, number])[]): void {
  const backend = new ModelBackend();
  const models: TaskModel[] = [];
  const routes = new NetRoutes((r, event) => deliver(r, event, true));
  for (let i = 0; i < TASKS; i++) {
    const record = new TaskRecord(new TaskAddress(0, 0, i, 1), "probe");
    models.push({ record, listeners: new Map(), conns: new Map() });
  }
  const modelOf = (r: TaskRecord) => models.find((m) => m.record === r) as TaskModel;
  const alive = (owner: number) =>
    models.some((m) => m.record.address.id === owner && m.record.alive);
  let aborts = 0;

  /** An event reaches task `r`: it must be about an id the task holds, under the task's id. */
  function deliver(r: TaskRecord, e: NetEvent, refusal: boolean): void {
    expect(r.alive).toBe(true);
    const m = modelOf(r);
    if ("listener" in e) {
      if (e.kind === "tcp-accept") {
        expect(m.listeners.get(e.listener)).toBe("open");
        expect(m.conns.has(e.conn)).toBe(false);
        m.conns.set(e.conn, { phase: "open", global: e.conn });
        return;
      }
      if (refusal) return; // about an id the task does not hold, or holds already
      expect(m.listeners.has(e.listener)).toBe(true);
      if (e.kind === "tcp-unlistened" || e.error !== undefined) m.listeners.delete(e.listener);
      else m.listeners.set(e.listener, "open");
      return;
    }
    if (!("conn" in e)) throw new Error(`unexpected ${e.kind}`);
    if (refusal) return;
    const c = m.conns.get(e.conn);
    expect(
      c,
      `${e.kind} for ${r.name}'s connection ${e.conn}, which it does not hold`,
    ).toBeDefined();
    if (e.kind === "tcp-data") expect(e.data[0]).toBe((c as { global: number }).global & 0xff);
    if (e.kind === "tcp-closed" || (e.kind === "tcp-connect-result" && e.error !== undefined))
      m.conns.delete(e.conn);
    else if (e.kind === "tcp-connect-result") (c as { phase: Phase }).phase = "open";
  }

  function inbound(e: NetEvent): void {
    const routed = routes.inbound(e);
    if (routed !== undefined) deliver(routed.record, routed.event, false);
    for (const f of routes.followUps.splice(0)) {
      if (f.action.kind === "tcp-abort") aborts++;
      send(f.owner, f.action);
    }
  }

  /** An action on its way to the backend, then what the backend made of it. */
  function send(owner: number, a: NetAction): void {
    backend.act(owner, a);
    for (const e of backend.queued.splice(0)) inbound(e);
  }

  function act(m: TaskModel, a: NetAction): void {
    const out = routes.outbound(m.record, a);
    if (out === undefined) return;
    if (a.kind === "tcp-listen") m.listeners.set(a.listener, "opening");
    if (a.kind === "tcp-connect" && "conn" in out)
      m.conns.set(a.conn, { phase: "opening", global: out.conn });
    if ((a.kind === "tcp-close" || a.kind === "tcp-abort") && m.conns.has(a.conn))
      (m.conns.get(a.conn) as { phase: Phase }).phase = "closing";
    send(m.record.address.id, out);
  }

  function end(m: TaskModel): void {
    if (!m.record.alive) return;
    m.record.alive = false;
    for (const a of routes.release(m.record)) send(m.record.address.id, a);
  }

  for (const [what, who, id] of steps) {
    const m = models[who % TASKS] as TaskModel;
    const known = [...m.conns.keys()];
    const conn = known.length > 0 && id < 6 ? (known[id % known.length] as number) : id;
    if (what >= 8) {
      const e = backend.spontaneous(what - 8, id * 7 + who, alive);
      if (e !== undefined) inbound(e);
      continue;
    }
    if (!m.record.alive) continue;
    switch (what) {
      case 0:
        act(m, { kind: "tcp-listen", listener: id % 3, bind: ADDR });
        break;
      case 1:
        act(m, { kind: "tcp-unlisten", listener: id % 3 });
        break;
      case 2:
        act(m, { kind: "tcp-connect", conn: id % 4, to: ADDR });
        break;
      case 3:
        act(m, { kind: "tcp-send", conn, data: Uint8Array.of(1) });
        break;
      case 4:
        act(m, { kind: "tcp-close", conn });
        break;
      case 5:
        act(m, { kind: "tcp-abort", conn });
        break;
      case 6:
        act(m, { kind: id % 2 === 0 ? "tcp-pause" : "tcp-shutdown", conn });
        break;
      default:
        end(m);
    }
  }

  // every task ends; the backend finishes what is under way (connects either way, closes)
  for (const m of models) end(m);
  for (let guard = 0; guard < 10_000; guard++) {
    let e: NetEvent | undefined;
    for (const [kind, pick] of [
      [1, guard],
      [4, 0],
      [4, 1],
    ] as const)
      e ??= backend.spontaneous(kind, pick, alive);
    if (e === undefined) break;
    inbound(e);
  }
  expect(backend.listeners.size).toBe(0);
  expect(backend.conns.size).toBe(0);
  expect(routes.isEmpty()).toBe(true);
  expect(aborts).toBe(backend.abortsOwed);
}

const step = fc.tuple(fc.nat(12), fc.nat(TASKS - 1), fc.nat(7));

describe("TCP ids in the grouped worker (NetRoutes)", () => {
  test("model: events reach their owner by its own id, nothing reaches the backend for an id it has closed, ended tasks leave nothing", () => {
    fc.assert(
      fc.property(fc.array(step, { maxLength: 300 }), (steps) => run(steps)),
      { numRuns: 400, seed: 15 },
    );
  });

  test("a connection accepted for a task that has ended is reset, its events swallowed and counted", () => {
    const events: NetEvent[] = [];
    const routes = new NetRoutes((_r, e) => events.push(e));
    const r = new TaskRecord(new TaskAddress(0, 0, 0, 1), "probe");
    const listen = routes.outbound(r, { kind: "tcp-listen", listener: 0, bind: ADDR });
    expect(listen).toMatchObject({ kind: "tcp-listen", listener: 0 });
    expect(routes.inbound({ kind: "tcp-listen-result", listener: 0, local: ADDR })?.record).toBe(r);
    r.alive = false;
    expect(routes.release(r)).toEqual([{ kind: "tcp-unlisten", listener: 0 }]);
    // the kernel had already accepted one before the unlisten was carried out
    const accept: NetEvent = { kind: "tcp-accept", listener: 0, conn: -7, peer: ADDR, local: ADDR };
    expect(routes.inbound(accept)).toBeUndefined();
    expect(routes.followUps.splice(0)).toEqual([
      { owner: r.address.id, action: { kind: "tcp-abort", conn: -7 } },
    ]);
    expect(routes.inbound({ kind: "tcp-data", conn: -7, data: Uint8Array.of(1) })).toBeUndefined();
    expect(routes.inbound({ kind: "tcp-closed", conn: -7 })).toBeUndefined();
    expect(routes.inbound({ kind: "tcp-unlistened", listener: 0 })).toBeUndefined();
    expect(routes.isEmpty()).toBe(true);
    expect(routes.staleDrops).toBe(2); // the accept and the data
    expect(events).toEqual([]);
  });

  test("a task that ends closes its connections gracefully (not twice) and its listeners", () => {
    const routes = new NetRoutes(() => {});
    const r = new TaskRecord(new TaskAddress(0, 0, 0, 1), "probe");
    routes.outbound(r, { kind: "tcp-listen", listener: 2, bind: ADDR });
    routes.outbound(r, { kind: "tcp-connect", conn: 0, to: ADDR });
    routes.outbound(r, { kind: "tcp-connect", conn: 1, to: ADDR });
    routes.inbound({ kind: "tcp-accept", listener: 0, conn: -1, peer: ADDR, local: ADDR });
    routes.outbound(r, { kind: "tcp-close", conn: 1 });
    r.alive = false;
    expect(routes.release(r)).toEqual([
      { kind: "tcp-unlisten", listener: 0 },
      { kind: "tcp-close", conn: 0 },
      { kind: "tcp-close", conn: -1 },
    ]);
  });
});
