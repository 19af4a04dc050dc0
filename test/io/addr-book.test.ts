/** `AddressBook`: received source addresses as values, against `SocketAddr.parse` as the model. */
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { ADDR_BYTES, SocketAddr } from "../../src/io/addr.ts";
import { AddressBook } from "../../src/io/addr-book.ts";

const v4 = fc
  .tuple(fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 4, maxLength: 4 }), fc.nat(65535))
  .map(([ip, port]) => SocketAddr.fromIp(new Uint8Array(ip), port));
const v6 = fc
  .tuple(fc.uint8Array({ minLength: 16, maxLength: 16 }), fc.nat(65535))
  .map(([ip, port]) => SocketAddr.fromIp(ip, port));

describe("AddressBook", () => {
  test("every address read is equal to the bytes read, stays so when the buffer is overwritten, and one peer gets one value", () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(v4, v6), { minLength: 1, maxLength: 60 }),
        fc.nat(40),
        (addrs, limit) => {
          const book = new AddressBook(limit + 1);
          const buffer = new Uint8Array(ADDR_BYTES + 8);
          const view = new DataView(buffer.buffer);
          const kept: [SocketAddr, string][] = [];
          const first = new Map<string, SocketAddr>();
          for (const a of addrs) {
            buffer.set(a.raw, 8);
            const got = book.at(view, 8);
            expect(got.toString()).toBe(a.toString());
            expect(got.raw.buffer).not.toBe(buffer.buffer);
            kept.push([got, a.toString()]);
            const seen = first.get(a.toString());
            // within the limit, the same peer's address is the same object
            if (seen !== undefined && limit + 1 > addrs.length) expect(got).toBe(seen);
            if (seen === undefined) first.set(a.toString(), got);
            expect(book.size).toBeLessThanOrEqual(limit + 1);
          }
          buffer.fill(0xee);
          for (const [got, text] of kept) expect(got.toString()).toBe(text);
        },
      ),
      { numRuns: 300 },
    );
  });

  test("IPv6 addresses that differ only in scope id are different values", () => {
    const book = new AddressBook();
    const a = SocketAddr.parse("fe80::1", 9);
    const b = SocketAddr.parse("fe80::1", 9);
    new DataView(b.raw.buffer).setUint32(24, 3, true);
    const ra = book.at(new DataView(a.raw.buffer), 0);
    const rb = book.at(new DataView(b.raw.buffer), 0);
    expect(ra).not.toBe(rb);
    expect(Array.from(rb.raw.subarray(24))).toEqual([3, 0, 0, 0]);
  });
});
