import { describe, expect, test } from "bun:test";
import { TaskSwitcher } from "../../src/task/index.ts";

describe("TaskSwitcher ordering", () => {
  test("stack-like order inside one cycle: the lowest flagged child stays current until drained", () => {
    const s = new TaskSwitcher(5);
    s.flagAll();
    for (const i of [0, 1, 2]) {
      expect(s.current()).toBe(i);
      s.finished(i);
    }
    // a lower child flagged mid-cycle is served before the rest of the cycle
    s.flagTask(1);
    expect(s.current()).toBe(1);
    s.finished(1);
    expect(s.current()).toBe(3);
    s.finished(3);
    expect(s.current()).toBe(4);
    s.finished(4);
    expect(s.current()).toBeUndefined();
  });

  test("flagAll starts a new cycle from child 0", () => {
    const s = new TaskSwitcher(2);
    for (let cycle = 0; cycle < 3; cycle++) {
      s.flagAll();
      expect(s.current()).toBe(0);
      s.finished(0);
      expect(s.current()).toBe(1);
      s.finished(1);
      expect(s.current()).toBeUndefined();
    }
  });

  test("an event flags exactly one child", () => {
    const s = new TaskSwitcher(5);
    s.flagTask(3);
    expect(s.current()).toBe(3);
    expect(s.isFlagged(2)).toBe(false);
    s.finished(3);
    expect(s.current()).toBeUndefined();
  });

  test("setTasks keeps flags below the new size and drops the rest", () => {
    const s = new TaskSwitcher(4);
    s.flagTask(1);
    s.flagTask(3);
    s.setTasks(2);
    expect(s.current()).toBe(1);
    s.finished(1);
    expect(s.current()).toBeUndefined();
    s.setTasks(100);
    expect(s.current()).toBeUndefined();
    s.flagAll();
    expect(s.current()).toBe(0);
    expect(s.isFlagged(99)).toBe(true);
    expect(s.isFlagged(100)).toBe(false);
  });

  test("10,000 children: the current child is found without visiting the others", () => {
    const s = new TaskSwitcher(10_000);
    s.flagTask(9_999);
    s.flagTask(5_000);
    expect(s.current()).toBe(5_000);
    s.finished(5_000);
    expect(s.current()).toBe(9_999);
    s.flagAll();
    let seen = 0;
    for (let i = s.current(); i !== undefined; i = s.current()) {
      expect(i).toBe(seen);
      s.finished(i);
      seen++;
    }
    expect(seen).toBe(10_000);
  });

  test("flagging outside the range is an error, finishing outside it is ignored", () => {
    const s = new TaskSwitcher(3);
    expect(() => s.flagTask(3)).toThrow(RangeError);
    s.finished(7);
    expect(s.current()).toBeUndefined();
  });
});
