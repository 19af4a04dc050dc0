import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { JsonBytesCodec, type Structured } from "../../src/bus/index.ts";
import { structured } from "./structured.ts";

describe("JsonBytesCodec (the bus default)", () => {
  test("round-trips random structured values, byte arrays included", () => {
    const codec = new JsonBytesCodec();
    fc.assert(
      fc.property(structured, (v) => {
        expect(codec.decode(codec.encode(v).slice())).toEqual(v);
      }),
      { numRuns: 500 },
    );
  });

  test("byte arrays arrive as copies, not views of the record", () => {
    const codec = new JsonBytesCodec();
    const record = codec.encode({ a: new Uint8Array([1, 2, 3]) }).slice();
    const back = codec.decode(record) as { a: Uint8Array };
    record.fill(0);
    expect([...back.a]).toEqual([1, 2, 3]);
  });

  test("refuses values JSON would silently change, naming where they are", () => {
    const codec = new JsonBytesCodec();
    const bad: [unknown, RegExp][] = [
      [{ a: [1, () => 2] }, /\$\.a\[1\]: function is not supported/],
      [{ n: Number.NaN }, /\$\.n: NaN has no JSON form/],
      [{ big: 1n }, /\$\.big: bigint/],
      [{ when: new Date(0) }, /\$\.when: Date is not a plain object/],
      [{ m: new Map() }, /Map is not a plain object/],
      [{ "\u0000bytes": 1 }, /reserved/],
    ];
    for (const [value, message] of bad) {
      expect(() => codec.encode(value as Structured)).toThrow(message);
    }
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(() => codec.encode(cyclic as Structured)).toThrow(/deeper than 64/);
  });

  test("malformed records are RangeErrors, never crashes or garbage", () => {
    const codec = new JsonBytesCodec();
    const good = codec.encode({ a: new Uint8Array(8), b: "x" }).slice();
    const cases = [
      new Uint8Array(0),
      Uint8Array.of(7),
      Uint8Array.of(0, 0x7b),
      Uint8Array.of(1, 0xff, 0xff, 0xff, 0x7f),
      good.subarray(0, 10),
      Uint8Array.of(0, 0xc3, 0x28),
    ];
    for (const bytes of cases) expect(() => codec.decode(bytes)).toThrow(RangeError);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), (bytes) => {
        try {
          codec.decode(bytes);
        } catch (e) {
          expect(e).toBeInstanceOf(RangeError);
        }
      }),
    );
  });
});
