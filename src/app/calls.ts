/**
 * Calls (RPC) of a grouped worker's tasks: the calls its tasks made and wait for (with their
 * time-outs in the worker's deadline heap), and the calls its tasks were given and owe an answer.
 */
import type { Structured } from "../bus/codec.ts";
import { TaskAddress } from "./address.ts";
import type { Deadlines } from "./deadlines.ts";
import type { TaskRecord } from "./record.ts";
import type { TaskInput } from "./task.ts";

/** Hands a reply input to a task. */
export type Deliver = (record: TaskRecord, input: TaskInput) => void;

interface Pending {
  readonly caller: TaskRecord;
  readonly tag: number;
  readonly worker: number;
  readonly target: string;
  readonly timeoutMs: number;
}

/** A call a task owes an answer: from worker `worker` (-1: the controller), its id there. */
export interface Owed {
  readonly worker: number;
  readonly id: number;
}

/**
 * Contract: every call a task makes gets exactly one reply input: the answer, or a failure
 * (time-out, target gone, its worker gone). An answer after that is dropped and counted (`late`).
 * Every call a task is given is answered exactly once: by the task, or by the runtime when the
 * task ends without answering.
 */
export class Calls {
  /** Answers dropped because their call had already failed (timed out, or its caller ended). */
  late = 0;
  readonly #deadlines: Deadlines;
  readonly #pending = new Map<number, Pending>();
  readonly #owed = new Map<number, Owed & { readonly record: TaskRecord }>();
  #nextCall = 0;
  #nextHandle = 0;

  /** Calls whose time-outs go into `deadlines` (as keys `-(call + 1)`). */
  constructor(deadlines: Deadlines) {
    this.#deadlines = deadlines;
  }

  /** Registers a call of `caller` to task `target` on `worker`; returns its id. */
  start(
    now: number,
    caller: TaskRecord,
    tag: number,
    worker: number,
    target: string,
    timeoutMs: number,
  ): number {
    if (!(timeoutMs > 0)) {
      throw new RangeError(`${caller.name}: a call needs a time-out > 0 ms, not ${timeoutMs}`);
    }
    const call = this.#nextCall;
    this.#nextCall = (this.#nextCall + 1) % Number.MAX_SAFE_INTEGER;
    this.#pending.set(call, { caller, tag, worker, target, timeoutMs });
    this.#deadlines.add(now + timeoutMs, -(call + 1));
    return call;
  }

  /**
   * The answer to call `call` arrived from worker `from` (`ok`: `data` is the answer, else the
   * error text); one from another worker than the call went to is dropped and counted as late.
   */
  settle(call: number, from: number, ok: boolean, data: Structured, deliver: Deliver): void {
    const p = this.#pending.get(call);
    if (p === undefined || p.worker !== from) {
      this.late++;
      return;
    }
    this.#pending.delete(call);
    if (!p.caller.alive) {
      this.late++;
      return;
    }
    deliver(
      p.caller,
      ok
        ? { kind: "reply", tag: p.tag, ok: true, data }
        : { kind: "reply", tag: p.tag, ok: false, error: String(data) },
    );
  }

  /** Call `call`'s time-out came: it fails, unless it was answered. */
  expire(call: number, deliver: Deliver): void {
    const p = this.#pending.get(call);
    if (p === undefined) return;
    this.#pending.delete(call);
    if (!p.caller.alive) return;
    const error = `call to ${p.target} timed out after ${p.timeoutMs} ms`;
    deliver(p.caller, { kind: "reply", tag: p.tag, ok: false, error });
  }

  /** Worker `worker` is gone: its calls fail now. */
  peerDown(worker: number, deliver: Deliver): void {
    for (const [call, p] of this.#pending) {
      if (p.worker !== worker) continue;
      this.#pending.delete(call);
      if (!p.caller.alive) continue;
      const error = `call to ${p.target} failed: worker ${worker} is gone`;
      deliver(p.caller, { kind: "reply", tag: p.tag, ok: false, error });
    }
  }

  /** Task `record` is given call `id` from `worker`; returns the handle it answers with. */
  owe(record: TaskRecord, worker: number, id: number): number {
    const handle = this.#nextHandle;
    this.#nextHandle = (this.#nextHandle + 1) % Number.MAX_SAFE_INTEGER;
    this.#owed.set(handle, { record, worker, id });
    record.owed.add(handle);
    return handle;
  }

  /** Task `record` answers `handle`: where the answer goes, or undefined if it owes no such call. */
  answer(record: TaskRecord, handle: number): Owed | undefined {
    const owed = this.#owed.get(handle);
    if (owed === undefined || owed.record !== record) return undefined;
    this.#owed.delete(handle);
    record.owed.delete(handle);
    return owed;
  }

  /** Task `record` ended: the calls it owes (the runtime answers them with an error). */
  forget(record: TaskRecord): Owed[] {
    const out: Owed[] = [];
    for (const handle of record.owed) {
      const owed = this.#owed.get(handle);
      this.#owed.delete(handle);
      if (owed !== undefined) out.push(owed);
    }
    record.owed.clear();
    return out;
  }
}

/** Why a call to task `id` fails: it has ended. */
export function gone(id: number): string {
  let name: string;
  try {
    name = TaskAddress.of(id).toString();
  } catch {
    name = String(id);
  }
  return `no task ${name}: it has ended`;
}
