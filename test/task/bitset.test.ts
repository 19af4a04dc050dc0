import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { LowestBitSet } from "../../src/task/bitset.ts";

describe("LowestBitSet", () => {
  test("matches a Set model under random add/delete/fill/clear/resize", () => {
    const op = fc.oneof(
      fc.record({ op: fc.constant("add" as const), i: fc.nat(5000) }),
      fc.record({ op: fc.constant("delete" as const), i: fc.nat(5000) }),
      fc.record({ op: fc.constant("resize" as const), i: fc.nat(5000) }),
      fc.record({ op: fc.constant("fill" as const), i: fc.constant(0) }),
      fc.record({ op: fc.constant("clear" as const), i: fc.constant(0) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 200 }), (ops) => {
        const set = new LowestBitSet(100);
        const model = new Set<number>();
        let size = 100;
        for (const { op, i } of ops) {
          if (op === "add") {
            if (i < size) {
              set.add(i);
              model.add(i);
            } else {
              expect(() => set.add(i)).toThrow(RangeError);
            }
          } else if (op === "delete") {
            set.delete(i);
            model.delete(i);
          } else if (op === "resize") {
            set.resize(i);
            size = i;
            for (const m of [...model]) if (m >= size) model.delete(m);
          } else if (op === "fill") {
            set.fill();
            for (let k = 0; k < size; k++) model.add(k);
          } else {
            set.clear();
            model.clear();
          }
          const lowest = model.size === 0 ? undefined : Math.min(...model);
          expect(set.lowest()).toBe(lowest);
          expect(set.isEmpty()).toBe(model.size === 0);
          expect(set.size).toBe(size);
        }
        for (let k = 0; k < size; k++) expect(set.has(k)).toBe(model.has(k));
      }),
      { numRuns: 300 },
    );
  });

  test("members at word and level boundaries are found", () => {
    const set = new LowestBitSet(40_000);
    for (const i of [39_999, 32_768, 1024, 1023, 32, 31, 0]) {
      set.add(i);
      expect(set.lowest()).toBe(i);
    }
    for (const i of [0, 31, 32, 1023, 1024, 32_768, 39_999]) {
      expect(set.lowest()).toBe(i);
      set.delete(i);
    }
    expect(set.lowest()).toBeUndefined();
  });

  test("rejects bad sizes and out-of-range members", () => {
    expect(() => new LowestBitSet(-1)).toThrow(RangeError);
    expect(() => new LowestBitSet(1.5)).toThrow(RangeError);
    const set = new LowestBitSet(10);
    expect(() => set.add(10)).toThrow(RangeError);
    expect(() => set.add(-1)).toThrow(RangeError);
    expect(() => set.add(Number.NaN)).toThrow(RangeError);
    set.delete(99);
    expect(set.has(99)).toBe(false);
    expect(set.isEmpty()).toBe(true);
  });
});
