/**
 * The Internet checksum against the textbook sum: any bytes, any offset and alignment in a larger
 * buffer, any split, with and without a `Checksummer`; RFC 1071's worked example; RFC 1624's
 * incremental update; ranges outside the buffer refused.
 */
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { adjustChecksum, Checksummer, internetChecksum, onesSum } from "../../src/wire/index.ts";
import { refSum, runs } from "./reference.ts";

const u16 = fc.integer({ min: 0, max: 0xffff });

describe("onesSum", () => {
  test("RFC 1071 section 3's example sums to 0xddf2", () => {
    const b = Uint8Array.of(0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7);
    expect(onesSum(b, 0, b.length)).toBe(0xddf2);
    expect(internetChecksum(b, 0, b.length)).toBe(0x220d);
  });

  test("matches the textbook sum at any offset, alignment and split, with or without a Checksummer", () => {
    const summer = new Checksummer();
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 3000 }),
        fc.nat(7),
        fc.nat(),
        u16,
        (b, offset, cut, initial) => {
          const big = new Uint8Array(offset + b.length + 5).fill(0xa5);
          big.set(b, offset);
          const view = big.subarray(offset, offset + b.length);
          const want = refSum(b);
          expect(onesSum(view, 0, b.length)).toBe(want);
          expect(summer.onesSum(view, 0, b.length)).toBe(want);
          expect(onesSum(big, offset, offset + b.length)).toBe(want);
          const at = (cut % (b.length + 1)) & ~1; // an even split point
          expect(onesSum(view, at, b.length, onesSum(view, 0, at))).toBe(want);
          expect(summer.onesSum(view, 0, b.length, initial)).toBe(
            onesSum(view, 0, b.length, initial),
          );
        },
      ),
      runs(400),
    );
  });

  test("a Checksummer follows the buffer it is given (a new one, or a view of another part)", () => {
    const summer = new Checksummer();
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ minLength: 16, maxLength: 400 }), { maxLength: 6 }),
        (bs) => {
          for (const b of bs) expect(summer.onesSum(b, 0, b.length)).toBe(refSum(b));
        },
      ),
      runs(100),
    );
  });

  test("a range outside the buffer is a RangeError, not a wrong sum", () => {
    const b = new Uint8Array(10);
    for (const [start, end] of [
      [-1, 4],
      [0, 11],
      [6, 5],
      [Number.NaN, 2],
    ] as const) {
      expect(() => onesSum(b, start, end)).toThrow(RangeError);
      expect(() => new Checksummer().onesSum(b, start, end)).toThrow(RangeError);
    }
  });
});

test("adjustChecksum agrees with summing again, up to the two zeros of one's complement", () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 4, maxLength: 200 }),
      fc.nat(),
      u16,
      (raw, which, to) => {
        const b = raw.subarray(0, raw.length & ~1);
        const checksum = internetChecksum(b, 0, b.length);
        const at = 2 * (which % (b.length / 2));
        const from = ((b[at] as number) << 8) | (b[at + 1] as number);
        b[at] = to >> 8;
        b[at + 1] = to & 0xff;
        // 0x0000 and 0xffff are both zero: equal modulo 0xffff
        expect(adjustChecksum(checksum, from, to) % 0xffff).toBe(
          internetChecksum(b, 0, b.length) % 0xffff,
        );
      },
    ),
    runs(300),
  );
});
