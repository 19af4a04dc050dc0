/**
 * DTLS record and handshake framing: the real Chromium ClientHello flight (two records in two
 * datagrams) cut into records and its fragments put back into the 1,413-byte message; any message
 * split into fragments that come reordered, repeated and overlapping is put back byte for byte
 * (fast-check); refusals and a seeded fuzz.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import {
  ContentType,
  fragmentHandshake,
  type HandshakeFragment,
  HandshakeReassembler,
  parseHandshakeFragments,
  parseRecords,
  writeRecord,
} from "../../src/webrtc/dtls/record.ts";
import { checkFuzz } from "./fuzz.ts";
import { targets } from "./fuzz-targets/dtls-record.ts";

const flight = (
  JSON.parse(
    readFileSync(join(import.meta.dir, "fixtures", "chromium-client-hello.json"), "utf8"),
  ) as {
    datagrams: string[];
  }
).datagrams.map((h) => new Uint8Array(Buffer.from(h, "hex")));

describe("DTLS records", () => {
  test("Chromium's ClientHello flight: two handshake records, fragments that make one 1,413-byte ClientHello offering DTLS 1.2", () => {
    const r = new HandshakeReassembler();
    let records = 0;
    for (const d of flight) {
      const parsed = parseRecords(d);
      expect(parsed.ok).toBe(true);
      if (!parsed.ok) return;
      for (const rec of parsed.value) {
        records++;
        expect([rec.type, rec.epoch]).toEqual([ContentType.HANDSHAKE, 0]);
        const fragments = parseHandshakeFragments(rec.fragment);
        expect(fragments.ok).toBe(true);
        if (fragments.ok) for (const f of fragments.value) expect(r.add(f)).toBeUndefined();
      }
    }
    expect(records).toBe(2);
    const hello = r.pop();
    expect(hello?.msgType).toBe(1);
    expect(hello?.body.length).toBe(1413);
    // client_version 0xFEFD (DTLS 1.2; 1.3 is offered in supported_versions)
    expect([hello?.body[0], hello?.body[1]]).toEqual([0xfe, 0xfd]);
    expect(r.pop()).toBeUndefined();
    expect(r.next).toBe(1);
  });

  test("any message, fragmented, reordered, repeated and overlapping, comes back whole and in message_seq order", () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 3000 }), { minLength: 1, maxLength: 4 }),
        fc.integer({ min: 1, max: 700 }),
        fc.array(fc.nat(), { maxLength: 40 }),
        fc.integer({ min: 0, max: 2 ** 31 }),
        (bodies, max, extra, shuffleSeed) => {
          const fragments = bodies.flatMap((b, seq) => fragmentHandshake(seq + 1, seq, b, max));
          // repeats and overlapping pieces: re-fragment random messages at another size
          for (const e of extra) {
            const seq = e % bodies.length;
            fragments.push(
              ...fragmentHandshake(seq + 1, seq, bodies[seq] as Uint8Array, 1 + (e % 97)),
            );
          }
          let s = shuffleSeed;
          const rand = () => {
            s = (s * 1103515245 + 12345) % 2 ** 31;
            return s / 2 ** 31;
          };
          for (let i = fragments.length - 1; i > 0; i--) {
            const j = Math.floor(rand() * (i + 1));
            [fragments[i], fragments[j]] = [fragments[j] as Uint8Array, fragments[i] as Uint8Array];
          }
          const r = new HandshakeReassembler();
          const out: Uint8Array[] = [];
          for (const f of fragments) {
            const parsed = parseHandshakeFragments(f);
            expect(parsed.ok).toBe(true);
            if (!parsed.ok) return;
            for (const p of parsed.value) expect(r.add(p)).toBeUndefined();
            for (let m = r.pop(); m !== undefined; m = r.pop()) out.push(m.body);
          }
          expect(out.map((b) => Buffer.from(b).toString("hex"))).toEqual(
            bodies.map((b) => Buffer.from(b).toString("hex")),
          );
        },
      ),
      { numRuns: 200, seed: 16 },
    );
  });

  test("records round-trip with 48-bit sequence numbers; refusals carry reasons", () => {
    const out = new Uint8Array(100);
    const n = writeRecord(out, 0, {
      type: 23,
      version: 0xfefd,
      epoch: 1,
      seq: 2 ** 48 - 1,
      fragment: Uint8Array.of(1, 2, 3),
    });
    const r = parseRecords(out.subarray(0, n));
    expect(r.ok && r.value.map((x) => [x.type, x.epoch, x.seq, [...x.fragment]])).toEqual([
      [23, 1, 2 ** 48 - 1, [1, 2, 3]],
    ]);
    const reason = (b: Uint8Array) => {
      const p = parseRecords(b);
      return p.ok ? "ok" : p.reason;
    };
    expect(reason(out.subarray(0, 12))).toBe("dtls-short-record");
    expect(reason(out.subarray(0, n - 1))).toBe("dtls-short-record");
    expect(reason(Uint8Array.of(99, ...out.subarray(1, n)))).toBe("dtls-bad-record");
    expect(reason(Uint8Array.of(23, 3, 3, ...out.subarray(3, n)))).toBe("dtls-bad-record"); // TLS, not DTLS
    const f = parseHandshakeFragments(Uint8Array.of(1, 0, 0, 4, 0, 0, 0, 0, 3, 0, 0, 2, 9, 9));
    expect(f.ok ? "ok" : f.reason).toBe("dtls-bad-fragment"); // offset 3 + 2 > length 4
    const r2 = new HandshakeReassembler(0, 2);
    const far = fragmentHandshake(1, 5, Uint8Array.of(1), 10)[0] as Uint8Array;
    const parsed = parseHandshakeFragments(far);
    expect(parsed.ok && r2.add(parsed.value[0] as HandshakeFragment)).toBe("dtls-bad-fragment"); // past the window
  });

  test("fuzz: 10,000 mutated flights per target (records, server, client) never throw, each is accepted or refused with a reason", () => {
    expect(checkFuzz(targets, 10_000, 0x5eed, "dtls-").length).toBe(targets.length);
  }, 30_000);
});
