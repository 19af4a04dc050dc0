import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import {
  createRing,
  RecordTooLargeError,
  RingConsumer,
  RingCorruptError,
  RingProducer,
  recordSize,
} from "../../src/ring/index.ts";

function pattern(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = (seed * 31 + i * 7) & 0xff;
  return out;
}

function take(c: RingConsumer): { data: Uint8Array; tag: number } | undefined {
  if (!c.next()) return undefined;
  return { data: c.bytes.slice(c.offset, c.offset + c.length), tag: c.tag };
}

describe("SPSC ring", () => {
  test("wrap-around at every offset, for every record size that fits", () => {
    const capacity = 256;
    for (let start = 0; start < capacity; start += 8) {
      for (let length = 0; length <= capacity / 2 - 8; length += 3) {
        const sab = createRing(capacity);
        const p = new RingProducer(sab);
        const c = new RingConsumer(sab);
        // move both ends to `start` with filler records
        let moved = 0;
        while (moved < start) {
          const filler = Math.min(start - moved, 64) - 8;
          expect(p.tryPush(new Uint8Array(filler))).toBe(true);
          moved += recordSize(filler);
        }
        p.publish();
        while (c.next());
        c.release();
        // now three records that cross the end of the data area somewhere
        for (let k = 0; k < 3; k++) {
          const data = pattern(length, start + k);
          expect(p.tryPush(data, k + 1)).toBe(true);
          p.publish();
          const got = take(c);
          expect(got?.tag).toBe(k + 1);
          expect(got?.data).toEqual(data);
          c.release();
        }
        expect(c.next()).toBe(false);
      }
    }
  });

  test("random push/publish/consume/release sequences match a FIFO model", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.record({ op: fc.constant("push" as const), n: fc.nat(1000) }),
            fc.record({ op: fc.constant("publish" as const), n: fc.constant(0) }),
            fc.record({ op: fc.constant("take" as const), n: fc.nat(5) }),
            fc.record({ op: fc.constant("release" as const), n: fc.constant(0) }),
          ),
          { maxLength: 300 },
        ),
        (ops) => {
          const sab = createRing(4096);
          const p = new RingProducer(sab);
          const c = new RingConsumer(sab);
          const staged: Uint8Array[] = [];
          const published: Uint8Array[] = [];
          let seq = 0;
          for (const { op, n } of ops) {
            if (op === "push") {
              const data = pattern(n, seq);
              if (p.tryPush(data, seq)) {
                staged.push(data);
                seq++;
              }
            } else if (op === "publish") {
              p.publish();
              published.push(...staged.splice(0));
            } else if (op === "take") {
              for (let k = 0; k < n; k++) {
                const got = take(c);
                const want = published.shift();
                if (want === undefined) {
                  expect(got).toBeUndefined();
                  break;
                }
                expect(got?.data).toEqual(want);
              }
            } else {
              c.release();
            }
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  test("a full ring refuses records until the consumer releases", () => {
    const sab = createRing(1024);
    const p = new RingProducer(sab);
    const c = new RingConsumer(sab);
    let pushed = 0;
    while (p.tryPush(pattern(56, pushed))) pushed++;
    expect(pushed).toBe(1024 / 64);
    expect(p.reserve(0, 0)).toBe(-1);
    p.publish();
    expect(c.next()).toBe(true);
    expect(p.tryPush(pattern(56, 99))).toBe(false); // read but not released: still owned
    c.release();
    expect(p.tryPush(pattern(56, 99))).toBe(true);
  });

  test("a record larger than the ring accepts gets a clear error", () => {
    const p = new RingProducer(createRing(1024));
    expect(p.maxPayload).toBe(504);
    expect(p.tryPush(new Uint8Array(504))).toBe(true);
    expect(() => p.tryPush(new Uint8Array(505))).toThrow(RecordTooLargeError);
    expect(() => p.tryPush(new Uint8Array(505))).toThrow("at most 504 bytes");
    expect(() => p.reserve(-1, 0)).toThrow(RecordTooLargeError);
    expect(() => p.reserve(Number.NaN, 0)).toThrow(RecordTooLargeError);
  });

  test("a corrupted length is reported, never read out of bounds", () => {
    for (const bad of [0xfffffff0, 5000, 200, 0xffffffff]) {
      const sab = createRing(1024);
      const p = new RingProducer(sab);
      const c = new RingConsumer(sab);
      p.tryPush(pattern(16, 1));
      p.tryPush(pattern(16, 2));
      p.publish();
      // overwrite the second record's length in shared memory, as a stray write would
      new Uint32Array(sab, 192)[recordSize(16) / 4] = bad;
      expect(take(c)?.data).toEqual(pattern(16, 1));
      expect(() => c.next()).toThrow(RingCorruptError);
      expect(() => c.next()).toThrow(/corrupt at offset 24/);
      expect(c.broken).toBeInstanceOf(RingCorruptError);
    }
  });

  test("bad capacities and foreign buffers are refused", () => {
    expect(() => createRing(100)).toThrow(RangeError);
    expect(() => createRing(32)).toThrow(RangeError);
    expect(() => new RingConsumer(new SharedArrayBuffer(1024))).toThrow(/not a ring/);
  });
});
