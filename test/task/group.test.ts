import { describe, expect, test } from "bun:test";
import { type GroupOutput, TaskFailure, TaskGroup } from "../../src/task/index.ts";
import { ScriptedTask } from "./scripted-task.ts";
import { render, TwoLevel } from "./two-level.ts";

function drain(group: TaskGroup<number, string, ScriptedTask>, now = 0): string[] {
  const outs: string[] = [];
  for (let o = group.popOutput(now); o !== undefined; o = group.popOutput(now))
    outs.push(render(0, o));
  return outs;
}

describe("TaskGroup slots", () => {
  test("add reuses the lowest free slot; remove shrinks trailing free slots", () => {
    const g = new TaskGroup<number, string, ScriptedTask>();
    expect([0, 1, 2, 3].map((i) => g.add(new ScriptedTask(`t${i}`)))).toEqual([0, 1, 2, 3]);
    g.remove(1);
    g.remove(2);
    expect(g.size).toBe(2);
    expect(g.slots).toBe(4);
    expect(g.add(new ScriptedTask("a"))).toBe(1);
    g.remove(3);
    expect(g.slots).toBe(2); // slot 2 was free, so 2 and 3 are released together
    expect(g.add(new ScriptedTask("b"))).toBe(2);
    expect(g.has(0) && g.has(1) && g.has(2)).toBe(true);
    expect(g.has(3)).toBe(false);
  });

  test("set at an index beyond the end leaves free slots that add fills lowest first", () => {
    const g = new TaskGroup<number, string, ScriptedTask>();
    expect(g.set(5, new ScriptedTask("five"))).toBeUndefined();
    expect(g.size).toBe(1);
    expect(g.add(new ScriptedTask("x"))).toBe(0);
    const old = g.get(5);
    expect(g.set(5, new ScriptedTask("new-five"))).toBe(old);
    expect(g.size).toBe(2);
    expect(() => g.set(-1, new ScriptedTask("bad"))).toThrow(RangeError);
    expect(() => g.set(0.5, new ScriptedTask("bad"))).toThrow(RangeError);
  });
});

describe("TaskGroup ordering", () => {
  test("an event flags one task; a tick drains every task in slot order", () => {
    const g = new TaskGroup<number, string, ScriptedTask>();
    for (let i = 0; i < 3; i++) g.add(new ScriptedTask(`t${i}`, { tickOutputs: 1 }));
    expect(g.onEvent(0, 2, 2)).toBe(true);
    expect(drain(g)).toEqual(["g0 output 2 t2:e2.0", "g0 output 2 t2:e2.1"]);
    g.onTick(7);
    expect(drain(g)).toEqual(["g0 output 0 t0:t7.0", "g0 output 1 t1:t7.0", "g0 output 2 t2:t7.0"]);
    expect(drain(g)).toEqual([]);
  });

  test("shutdown: every task says goodbye, is removed with its empty event, and the group empties", () => {
    const g = new TaskGroup<number, string, ScriptedTask>();
    g.add(new ScriptedTask("a"));
    g.add(new ScriptedTask("b"));
    g.onShutdown(1);
    expect(drain(g)).toEqual([
      "g0 output 0 a:bye",
      "g0 finished 0 a:empty",
      "g0 output 1 b:bye",
      "g0 finished 1 b:empty",
    ]);
    expect(g.isEmpty()).toBe(true);
    expect(g.slots).toBe(0);
  });
});

describe("two levels: groups under a switcher", () => {
  test("group 0 is drained completely before group 1; a tick visits both", () => {
    const w = new TwoLevel(2);
    w.group(0).add(new ScriptedTask("a", { tickOutputs: 2 }));
    w.group(1).add(new ScriptedTask("b", { tickOutputs: 1 }));
    w.group(1).add(new ScriptedTask("c", { tickOutputs: 1 }));
    w.tick(5);
    expect(w.drain(5)).toEqual([
      "g0 output 0 a:t5.0",
      "g0 output 0 a:t5.1",
      "g1 output 0 b:t5.0",
      "g1 output 1 c:t5.0",
    ]);
    expect(w.event(6, 1, 1, 3)).toBe(true);
    expect(w.drain(6)).toEqual(["g1 output 1 c:e3.0", "g1 output 1 c:e3.1", "g1 output 1 c:e3.2"]);
  });

  test("a group's empty event is reported exactly once, and again after it refills and empties", () => {
    const w = new TwoLevel(2);
    w.group(0).add(new ScriptedTask("a"));
    w.group(1).add(new ScriptedTask("keep"));
    w.shutdown(0, 0);
    expect(w.drain(0)).toEqual(["g0 output 0 a:bye", "g0 finished 0 a:empty", "g0 empty"]);
    w.tick(1);
    w.tick(2);
    expect(w.drain(2)).toEqual([]); // no second empty event while it stays empty
    w.group(0).add(new ScriptedTask("b"));
    w.tick(3);
    expect(w.drain(3)).toEqual([]);
    w.shutdown(4, 0);
    expect(w.drain(4)).toEqual(["g0 output 0 b:bye", "g0 finished 0 b:empty", "g0 empty"]);
  });

  test("a group that never had a task reports no empty event", () => {
    const w = new TwoLevel(3);
    w.tick(0);
    expect(w.drain(0)).toEqual([]);
  });
});

describe("hostile use", () => {
  test("events to removed, never-existing and nonsense indices return false and change nothing", () => {
    const g = new TaskGroup<number, string, ScriptedTask>();
    g.add(new ScriptedTask("a"));
    g.add(new ScriptedTask("b"));
    g.remove(1);
    for (const index of [1, 2, 10_000, -1, 0.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(g.onEvent(0, index, 3)).toBe(false);
    }
    expect(drain(g)).toEqual([]);
    expect(g.remove(1)).toBeUndefined();
    expect(g.remove(-3)).toBeUndefined();
    expect(g.size).toBe(1);
  });

  test("removing a task while its outputs are being popped loses no other task's output", () => {
    const g = new TaskGroup<number, string, ScriptedTask>();
    g.add(new ScriptedTask("a"));
    g.add(new ScriptedTask("b"));
    g.add(new ScriptedTask("c"));
    g.onEvent(0, 0, 3);
    g.onEvent(0, 1, 3);
    g.onEvent(0, 2, 2);
    expect(render(0, g.popOutput(0) as GroupOutput<string>)).toBe("g0 output 0 a:e3.0");
    g.remove(0); // mid-drain: a's remaining two outputs go with it
    g.remove(2); // c has not been reached yet: its outputs go too, b's stay
    expect(drain(g)).toEqual(["g0 output 1 b:e3.0", "g0 output 1 b:e3.1", "g0 output 1 b:e3.2"]);
    // a task added into a freed slot is not drained because of its predecessor's flag
    const fresh = new ScriptedTask("fresh", { tickOutputs: 1 });
    expect(g.add(fresh)).toBe(0);
    expect(drain(g)).toEqual([]);
  });

  test("10,000 tasks in one group: one event drains one task; a tick drains all in order", () => {
    const g = new TaskGroup<number, string, ScriptedTask>();
    for (let i = 0; i < 10_000; i++) g.add(new ScriptedTask(`t${i}`, { tickOutputs: 1 }));
    g.onEvent(0, 9_999, 1);
    expect(drain(g)).toEqual(["g0 output 9999 t9999:e1.0"]);
    g.onTick(1);
    const outs = drain(g);
    expect(outs.length).toBe(10_000);
    expect(outs[0]).toBe("g0 output 0 t0:t1.0");
    expect(outs[9_999]).toBe("g0 output 9999 t9999:t1.0");
    for (let i = 0; i < 10_000; i += 2) g.remove(i);
    expect(g.size).toBe(5_000);
    expect(g.add(new ScriptedTask("again"))).toBe(0);
    expect(g.add(new ScriptedTask("again2"))).toBe(2);
  });

  test("a task that throws in onEvent is removed and reported; others keep their outputs", () => {
    const g = new TaskGroup<number, string, ScriptedTask>();
    g.add(new ScriptedTask("a"));
    g.add(new ScriptedTask("bad", { throwOnEvent: 13 }));
    g.add(new ScriptedTask("c"));
    g.onEvent(0, 0, 2);
    g.onEvent(0, 1, 13);
    g.onEvent(0, 2, 1);
    const out = g.popOutput(0);
    expect(out?.kind).toBe("error");
    if (out?.kind !== "error") throw new Error("unreachable");
    expect(out.index).toBe(1);
    expect(out.error).toBeInstanceOf(TaskFailure);
    expect(out.error.phase).toBe("onEvent");
    expect(out.error.message).toBe("task 1 threw in onEvent: Error: bad refuses 13");
    expect(drain(g)).toEqual(["g0 output 0 a:e2.0", "g0 output 0 a:e2.1", "g0 output 2 c:e1.0"]);
    expect(g.has(1)).toBe(false);
    expect(g.onEvent(0, 1, 1)).toBe(false);
  });

  test("throws from onTick, popOutput, isEmpty and emptyEvent, and non-Error throws, are contained", () => {
    class Nasty extends ScriptedTask {
      constructor(
        id: string,
        private readonly where: "isEmpty" | "emptyEvent" | "weird",
      ) {
        super(id);
      }
      #down = false;
      override onShutdown(): void {
        this.#down = true;
        super.onShutdown();
      }
      override isEmpty(): boolean {
        if (this.where === "isEmpty" && this.#down) throw new Error("isEmpty broke");
        return super.isEmpty();
      }
      override emptyEvent(): string {
        if (this.where === "emptyEvent") throw "a string, not an Error";
        return super.emptyEvent();
      }
      override onTick(): void {
        if (this.where === "weird")
          throw {
            toString() {
              throw new Error("cannot print me");
            },
          };
      }
    }
    const g = new TaskGroup<number, string, ScriptedTask>();
    g.add(new ScriptedTask("ticky", { throwOnTick: true }));
    g.add(new ScriptedTask("poppy", { throwOnPop: 2 }));
    g.add(new Nasty("emptyish", "isEmpty"));
    g.add(new Nasty("eventy", "emptyEvent"));
    g.add(new Nasty("weird", "weird"));
    g.add(new ScriptedTask("good", { tickOutputs: 2 }));
    g.onEvent(0, 1, 2); // poppy queues two outputs; its second pop throws
    expect(drain(g)).toEqual([
      "g0 output 1 poppy:e2.0",
      "g0 error 1 task 1 threw in popOutput: Error: poppy pop failure",
    ]);
    g.onTick(1);
    expect(drain(g)).toEqual([
      "g0 error 0 task 0 threw in onTick: Error: ticky tick failure",
      "g0 error 4 task 4 threw in onTick: an unprintable value",
      "g0 output 5 good:t1.0",
      "g0 output 5 good:t1.1",
    ]);
    g.onShutdown(2);
    expect(drain(g)).toEqual([
      "g0 output 2 emptyish:bye",
      "g0 error 2 task 2 threw in isEmpty: Error: isEmpty broke",
      "g0 output 3 eventy:bye",
      "g0 error 3 task 3 threw in emptyEvent: a string, not an Error",
      "g0 output 5 good:bye",
      "g0 finished 5 good:empty",
    ]);
    expect(g.size).toBe(0);
    expect(g.slots).toBe(0);
  });
});
