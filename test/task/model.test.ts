import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { type Script, ScriptedTask } from "./scripted-task.ts";
import { TwoLevel } from "./two-level.ts";

/**
 * A deliberately naive reference for the two-level ordering: plain arrays of booleans scanned from
 * the start, tasks stored in plain arrays, no bitsets. It shares only ScriptedTask (the input) with
 * the code under test.
 */
class ModelGroup {
  slots: (ScriptedTask | null)[] = [];
  flags: boolean[] = [];
  failures: string[] = [];

  size(): number {
    return this.slots.filter((t) => t !== null).length;
  }

  add(task: ScriptedTask): number {
    let i = this.slots.indexOf(null);
    if (i === -1) {
      i = this.slots.length;
      this.slots.push(null);
      this.flags.push(false);
    }
    this.slots[i] = task;
    return i;
  }

  remove(i: number): void {
    if (!this.slots[i]) return;
    this.slots[i] = null;
    this.flags[i] = false;
    while (this.slots.length > 0 && this.slots[this.slots.length - 1] === null) {
      this.slots.pop();
      this.flags.pop();
    }
  }

  fail(g: number, i: number, phase: string, e: unknown): string {
    this.remove(i);
    return `g${g} error ${i} task ${i} threw in ${phase}: ${e instanceof Error ? `Error: ${e.message}` : String(e)}`;
  }

  everyTask(g: number, phase: "onTick" | "onShutdown", now: number): void {
    this.flags = this.flags.map(() => true);
    for (let i = 0; i < this.slots.length; i++) {
      const t = this.slots[i];
      if (!t) continue;
      try {
        if (phase === "onTick") t.onTick(now);
        else t.onShutdown();
      } catch (e) {
        this.failures.push(this.fail(g, i, phase, e));
      }
    }
  }

  event(g: number, i: number, payload: number, now: number): boolean {
    const t = this.slots[i];
    if (!t) return false;
    this.flags[i] = true;
    try {
      t.onEvent(now, payload);
    } catch (e) {
      this.failures.push(this.fail(g, i, "onEvent", e));
    }
    return true;
  }

  pop(g: number): string | undefined {
    const f = this.failures.shift();
    if (f !== undefined) return f;
    for (;;) {
      const i = this.flags.indexOf(true);
      if (i === -1) return undefined;
      const t = this.slots[i];
      if (!t) {
        this.flags[i] = false;
        continue;
      }
      let value: string | undefined;
      try {
        value = t.popOutput();
      } catch (e) {
        return this.fail(g, i, "popOutput", e);
      }
      if (value !== undefined) return `g${g} output ${i} ${value}`;
      this.flags[i] = false;
      if (t.isEmpty()) {
        this.remove(i);
        return `g${g} finished ${i} ${t.emptyEvent()}`;
      }
    }
  }
}

class Model {
  groups: ModelGroup[];
  flags: boolean[];
  armed: boolean[];

  constructor(n: number) {
    this.groups = Array.from({ length: n }, () => new ModelGroup());
    this.flags = Array.from({ length: n }, () => false);
    this.armed = Array.from({ length: n }, () => false);
  }

  pop(): string | undefined {
    for (;;) {
      const g = this.flags.indexOf(true);
      if (g === -1) return undefined;
      const group = this.groups[g] as ModelGroup;
      if (group.size() > 0) this.armed[g] = true;
      const out = group.pop(g);
      if (out !== undefined) return out;
      this.flags[g] = false;
      if (this.armed[g] && group.size() === 0) {
        this.armed[g] = false;
        return `g${g} empty`;
      }
    }
  }
}

type Op =
  | { op: "add"; g: number; script: Script }
  | { op: "remove"; g: number; i: number }
  | { op: "tick" }
  | { op: "event"; g: number; i: number; payload: number }
  | { op: "shutdown"; g: number }
  | { op: "pop"; n: number };

const GROUPS = 3;

const scriptArb: fc.Arbitrary<Script> = fc.record(
  {
    tickOutputs: fc.nat(2),
    throwOnEvent: fc.constant(13),
    throwOnTick: fc.boolean(),
    throwOnPop: fc.integer({ min: 1, max: 12 }),
  },
  { requiredKeys: [] },
);

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      op: fc.constant("add" as const),
      g: fc.nat(GROUPS - 1),
      script: scriptArb,
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant("remove" as const),
      g: fc.nat(GROUPS - 1),
      i: fc.nat(8),
    }),
  },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("tick" as const) }) },
  {
    weight: 5,
    arbitrary: fc.record({
      op: fc.constant("event" as const),
      g: fc.nat(GROUPS - 1),
      i: fc.integer({ min: -1, max: 9 }),
      payload: fc.constantFrom(0, 1, 2, 3, 5, 7, 13),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ op: fc.constant("shutdown" as const), g: fc.nat(GROUPS - 1) }),
  },
  {
    weight: 4,
    arbitrary: fc.record({ op: fc.constant("pop" as const), n: fc.integer({ min: 1, max: 20 }) }),
  },
);

describe("two-level ordering against a reference model", () => {
  test("random add/remove/tick/event/shutdown/pop sequences give identical outputs and empty events", () => {
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 120 }), (ops) => {
        const real = new TwoLevel(GROUPS);
        const model = new Model(GROUPS);
        let nextId = 0;
        let now = 0;
        const realOut: string[] = [];
        const modelOut: string[] = [];
        for (const op of ops) {
          now++;
          switch (op.op) {
            case "add": {
              const id = `t${nextId++}`;
              const a = real.group(op.g).add(new ScriptedTask(id, op.script));
              const b = (model.groups[op.g] as ModelGroup).add(new ScriptedTask(id, op.script));
              expect(a).toBe(b);
              break;
            }
            case "remove":
              real.group(op.g).remove(op.i);
              (model.groups[op.g] as ModelGroup).remove(op.i);
              break;
            case "tick":
              real.tick(now);
              model.groups.forEach((group, g) => {
                model.flags[g] = true;
                group.everyTask(g, "onTick", now);
              });
              break;
            case "event": {
              const a = real.event(now, op.g, op.i, op.payload);
              model.flags[op.g] = true;
              const b = (model.groups[op.g] as ModelGroup).event(op.g, op.i, op.payload, now);
              expect(a).toBe(b);
              break;
            }
            case "shutdown":
              real.shutdown(now, op.g);
              model.flags[op.g] = true;
              (model.groups[op.g] as ModelGroup).everyTask(op.g, "onShutdown", now);
              break;
            case "pop":
              for (let k = 0; k < op.n; k++) {
                const a = real.pop(now);
                const b = model.pop();
                if (a !== undefined) realOut.push(a);
                if (b !== undefined) modelOut.push(b);
                if (a === undefined || b === undefined) break;
              }
              break;
          }
          for (let g = 0; g < GROUPS; g++) {
            expect(real.group(g).size).toBe((model.groups[g] as ModelGroup).size());
            expect(real.group(g).slots).toBe((model.groups[g] as ModelGroup).slots.length);
          }
        }
        realOut.push(...real.drain(now));
        for (let o = model.pop(); o !== undefined; o = model.pop()) modelOut.push(o);
        expect(realOut).toEqual(modelOut);
      }),
      { numRuns: 1000 },
    );
  });
});
