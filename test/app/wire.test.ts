/**
 * The records grouped workers send each other (src/app/wire.ts): batches against a model of
 * what was added, the limits, refusals, and hostile bytes.
 */
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { TaskAddress } from "../../src/app/address.ts";
import {
  Batches,
  CALL,
  CONTROLLER,
  MESSAGE,
  PUBLISH,
  REPLY,
  WireReader,
} from "../../src/app/wire.ts";
import type { Structured } from "../../src/bus/index.ts";
import { RecordTooLargeError } from "../../src/ring/errors.ts";
import { SimRandom } from "../../src/sim/random.ts";
import { structured } from "../bus/structured.ts";

/** One entry as the model keeps it and as the reader gives it back. */
type Entry =
  | { kind: "message"; to: number; from: number; data: Structured }
  | { kind: "call"; call: number; to: number; from: number; data: Structured }
  | { kind: "reply"; call: number; ok: boolean; data: Structured };

interface Add {
  worker: number;
  entry: Entry;
}

const id = fc
  .record({
    worker: fc.integer({ min: 0, max: 255 }),
    group: fc.integer({ min: 0, max: 255 }),
    slot: fc.integer({ min: 0, max: 2 ** 20 - 1 }),
    generation: fc.integer({ min: 0, max: 2 ** 16 - 1 }),
  })
  .map((a) => new TaskAddress(a.worker, a.group, a.slot, a.generation).id);
const data: fc.Arbitrary<Structured> = fc.oneof(
  structured,
  fc.constant(undefined),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.uint8Array({ maxLength: 600 }),
);
const callId = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });
const entry: fc.Arbitrary<Entry> = fc.oneof(
  fc.record({
    kind: fc.constant("message" as const),
    to: id,
    from: fc.oneof(id, fc.constant(CONTROLLER)),
    data,
  }),
  fc.record({
    kind: fc.constant("call" as const),
    call: callId,
    to: id,
    from: fc.oneof(id, fc.constant(CONTROLLER)),
    data,
  }),
  fc.record({ kind: fc.constant("reply" as const), call: callId, ok: fc.constant(true), data }),
  fc.record({
    kind: fc.constant("reply" as const),
    call: callId,
    ok: fc.constant(false),
    data: fc.string(),
  }),
);
const add: fc.Arbitrary<Add> = fc.record({ worker: fc.integer({ min: 0, max: 3 }), entry });

/** Adds `e` for `worker`; returns what `Batches` handed out at once. */
function put(b: Batches<number>, worker: number, e: Entry, who: number) {
  switch (e.kind) {
    case "message":
      return b.message(worker, e.to, e.from, e.data, who);
    case "call":
      return b.call(worker, e.call, e.to, e.from, e.data, who);
    case "reply":
      return b.reply(worker, e.call, e.ok, e.data, who);
  }
}

/** Every entry of a direct record, in order; throws if any is malformed. */
function read(bytes: Uint8Array): Entry[] {
  const r = new WireReader();
  expect(r.start(bytes)).toBe(true);
  const out: Entry[] = [];
  for (let kind = r.next(); kind !== 0; kind = r.next()) {
    if (kind === MESSAGE) out.push({ kind: "message", to: r.to, from: r.from, data: r.data });
    else if (kind === CALL)
      out.push({ kind: "call", call: r.call, to: r.to, from: r.from, data: r.data });
    else if (kind === REPLY) out.push({ kind: "reply", call: r.call, ok: r.ok, data: r.data });
    else throw new Error(`entry kind ${kind} in a direct record`);
  }
  return out;
}

describe("wire records between grouped workers", () => {
  test("batches against a model: every entry once, in order per worker, records within the limit", () => {
    fc.assert(
      fc.property(
        fc.array(add, { maxLength: 80 }),
        fc.integer({ min: 64, max: 4096 }),
        (adds, limit) => {
          const max = 64 * 1024;
          const b = new Batches<number>(limit, max);
          const sent: { worker: number; bytes: Uint8Array; who: number | undefined }[] = [];
          const keep = (r: ReturnType<typeof put>) => {
            if (r !== undefined)
              sent.push({ worker: r.worker, bytes: r.bytes.slice(), who: r.who });
          };
          for (const [i, a] of adds.entries()) keep(put(b, a.worker, a.entry, i));
          for (let r = b.take(); r !== undefined; r = b.take()) keep(r);
          expect(b.pending).toBe(false);
          const got = new Map<number, Entry[]>();
          for (const s of sent) {
            const entries = read(s.bytes);
            expect(entries.length).toBeGreaterThan(0);
            // over the limit only when alone; who is known exactly when alone
            if (s.bytes.length > limit) expect(entries).toHaveLength(1);
            if (entries.length === 1) expect(s.who).toBeNumber();
            else expect(s.who).toBeUndefined();
            got.set(s.worker, [...(got.get(s.worker) ?? []), ...entries]);
          }
          for (let w = 0; w <= 3; w++) {
            const want = adds.filter((a) => a.worker === w).map((a) => a.entry);
            expect(got.get(w) ?? []).toEqual(want);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  test("a batch of one entry names its sender; a full batch goes before the entry that overflows it", () => {
    const b = new Batches<string>(100, 1000);
    const to = new TaskAddress(1, 0, 0, 0).id;
    expect(b.message(1, to, to, 1, "a")).toBeUndefined();
    expect(b.message(1, to, to, 2, "b")).toBeUndefined();
    // 1 + 2 * 26 bytes so far; the next 60-byte entry does not fit: the two go first
    const full = b.message(1, to, to, new Uint8Array(38), "c");
    expect(full?.who).toBeUndefined();
    expect(read(full?.bytes as Uint8Array).map((e) => e.data)).toEqual([1, 2]);
    const last = b.take();
    expect(last?.who).toBe("c");
    expect(read(last?.bytes as Uint8Array)[0]?.data).toEqual(new Uint8Array(38));
    // an entry larger than a batch goes alone, after the batch before it
    expect(b.message(1, to, to, 3, "d")).toBeUndefined();
    const before = b.message(1, to, to, new Uint8Array(200), "big");
    expect(read(before?.bytes as Uint8Array).map((e) => e.data)).toEqual([3]);
    const alone = b.take();
    expect(alone?.who).toBe("big");
    expect(b.take()).toBeUndefined();
  });

  test("refusals write nothing: data the codec cannot carry, an entry larger than the bus carries", () => {
    const b = new Batches<string>(100, 1000);
    const to = new TaskAddress(1, 0, 0, 0).id;
    b.message(1, to, to, "kept", "a");
    expect(() => b.message(1, to, to, { f: (() => 0) as unknown as Structured }, "bad")).toThrow(
      /cannot encode \$\.f: function/,
    );
    expect(() => b.message(1, to, to, Number.NaN, "bad")).toThrow(/NaN has no JSON form/);
    expect(() => b.message(1, to, to, new Uint8Array(2000), "huge")).toThrow(RecordTooLargeError);
    expect(() => b.publish(to, new Uint8Array(2000))).toThrow(/raise ringBytes/);
    const r = b.take();
    expect(read(r?.bytes as Uint8Array).map((e) => e.data)).toEqual(["kept"]);
    expect(r?.who).toBe("a");
  });

  test("a publish record carries its sender and data; a reply's failure must be text", () => {
    const b = new Batches<string>(100, 1000);
    const from = new TaskAddress(0, 1, 2, 3).id;
    const r = new WireReader();
    expect(r.start(b.publish(from, { room: "x", n: 1 }))).toBe(true);
    expect(r.next()).toBe(PUBLISH);
    expect([r.from, r.data]).toEqual([from, { room: "x", n: 1 }]);
    expect(r.next()).toBe(0);
    // a failed reply is written as text whatever it was given
    const out = b.reply(0, 7, false, 42, "a") ?? b.take();
    expect(read(out?.bytes as Uint8Array)).toEqual([
      { kind: "reply", call: 7, ok: false, data: "42" },
    ]);
  });

  test("seeded fuzz: damaged records never throw; what is read before the damage is well formed", () => {
    const rng = new SimRandom(20261123);
    const b = new Batches<number>(512, 4096);
    const reader = new WireReader();
    const to = new TaskAddress(1, 2, 3, 4).id;
    let malformed = 0;
    for (let round = 0; round < 5000; round++) {
      b.message(1, to, CONTROLLER, rng.chance(0.5) ? round : { round }, 0);
      b.call(1, round, to, to, new Uint8Array(rng.below(20)), 0);
      b.reply(1, round, rng.chance(0.5), "why", 0);
      const bytes = (b.take() as { bytes: Uint8Array }).bytes.slice();
      // damage: flip bytes, cut short, or append garbage
      const damaged =
        round % 3 === 0
          ? bytes.subarray(0, rng.below(bytes.length))
          : round % 3 === 1
            ? bytes.map((x) => (rng.chance(0.05) ? rng.below(256) : x))
            : new Uint8Array([
                ...bytes,
                ...Array.from({ length: 1 + rng.below(29) }, () => rng.below(256)),
              ]);
      if (!reader.start(damaged)) continue;
      for (let kind = reader.next(); kind !== 0; kind = reader.next()) {
        if (kind === -1) {
          malformed++;
          break;
        }
        expect([MESSAGE, CALL, REPLY]).toContain(kind);
        if (kind !== REPLY) expect(() => TaskAddress.of(reader.to)).not.toThrow();
        if (kind !== MESSAGE) expect(Number.isSafeInteger(reader.call)).toBe(true);
      }
    }
    expect(malformed).toBeGreaterThan(1000);
  });
});
