/**
 * A seeded fuzzer for the WebRTC parsers: each target gives valid samples; the fuzzer feeds
 * random bytes and mutated samples (bit flips, truncation, extension, spliced ranges, length
 * fields pushed to extremes) and checks that nothing throws and every input is either accepted
 * or refused with a reason, which it counts. The same seed replays the same inputs.
 *
 * Targets live in test/webrtc/fuzz-targets/*.ts; `bun test` runs each at a small count, and
 * `bun test/webrtc/fuzz-all.ts [--count N] [--seed S]` runs them all at full count.
 */

/** One parser under fuzz. */
export interface FuzzTarget {
  readonly name: string;
  /** Valid inputs to mutate (at least one). */
  readonly samples: readonly Uint8Array[];
  /**
   * Feeds one input: returns undefined when it was accepted, or the reason it was refused. It
   * must not throw: an exception is a failure of the fuzz run.
   */
  feed(input: Uint8Array): string | undefined;
}

/** What a run saw. */
export interface FuzzReport {
  readonly target: string;
  readonly count: number;
  readonly seed: number;
  readonly accepted: number;
  /** Refusals by reason. */
  readonly rejected: Record<string, number>;
}

/** A small, fast, seedable PRNG (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Input `i` of a run with `random`: random bytes, or a mutation of a sample. */
export function fuzzInput(samples: readonly Uint8Array[], random: () => number): Uint8Array {
  const int = (n: number) => Math.floor(random() * n);
  if (random() < 0.1) {
    const out = new Uint8Array(int(1600));
    for (let i = 0; i < out.length; i++) out[i] = int(256);
    return out;
  }
  const sample = samples[int(samples.length)] as Uint8Array;
  let out: Uint8Array = sample.slice();
  const mutations = 1 + int(4);
  for (let m = 0; m < mutations; m++) {
    const kind = int(7);
    if (out.length === 0) out = new Uint8Array(1 + int(64));
    const at = int(out.length);
    switch (kind) {
      case 0: // flip bits
        out[at] = (out[at] as number) ^ (1 << int(8));
        break;
      case 1: // random byte
        out[at] = int(256);
        break;
      case 2: // truncate
        out = out.slice(0, at);
        break;
      case 3: {
        // extend with random bytes
        const tail = new Uint8Array(int(200));
        for (let i = 0; i < tail.length; i++) tail[i] = int(256);
        const grown = new Uint8Array(out.length + tail.length);
        grown.set(out);
        grown.set(tail, out.length);
        out = grown;
        break;
      }
      case 4: {
        // a 16-bit field at an even offset to an extreme (lengths, counts)
        const v = [0, 1, 0xff, 0x7fff, 0xffff][int(5)] as number;
        const even = at & ~1;
        out[even] = v >>> 8;
        if (even + 1 < out.length) out[even + 1] = v & 0xff;
        break;
      }
      case 5: {
        // splice a range of another sample in
        const other = samples[int(samples.length)] as Uint8Array;
        const from = int(other.length + 1);
        const piece = other.subarray(from, from + int(64));
        const spliced = new Uint8Array(at + piece.length + Math.max(0, out.length - at));
        spliced.set(out.subarray(0, at));
        spliced.set(piece, at);
        spliced.set(out.subarray(at), at + piece.length);
        out = spliced;
        break;
      }
      default: {
        // duplicate a range
        const len = int(Math.min(64, out.length - at) + 1);
        const doubled = new Uint8Array(out.length + len);
        doubled.set(out.subarray(0, at + len));
        doubled.set(out.subarray(at, at + len), at + len);
        doubled.set(out.subarray(at + len), at + 2 * len);
        out = doubled;
      }
    }
  }
  return out;
}

/** Feeds `count` inputs from `seed` to `target`; throws (naming the seed and input) on an exception. */
export function runFuzz(target: FuzzTarget, count: number, seed: number): FuzzReport {
  const random = rng(seed);
  let accepted = 0;
  const rejected: Record<string, number> = {};
  for (let i = 0; i < count; i++) {
    const input = fuzzInput(target.samples, random);
    let reason: string | undefined;
    try {
      reason = target.feed(input);
    } catch (e) {
      const hex = Buffer.from(input.subarray(0, 64)).toString("hex");
      throw new Error(
        `${target.name}: input ${i} of seed ${seed} threw ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)} (first bytes ${hex})`,
      );
    }
    if (reason === undefined) accepted++;
    else rejected[reason] = (rejected[reason] ?? 0) + 1;
  }
  return { target: target.name, count, seed, accepted, rejected };
}

/**
 * Runs every target of `targets` at `count` inputs from `seed` and checks the run: nothing threw,
 * every input was accepted or refused, some were accepted, and every refusal reason starts with
 * `prefix` (the module's own reasons).
 */
export function checkFuzz(
  targets: readonly FuzzTarget[],
  count: number,
  seed: number,
  prefix: string,
): FuzzReport[] {
  return targets.map((target) => {
    const r = runFuzz(target, count, seed);
    const refused = Object.values(r.rejected).reduce((a, b) => a + b, 0);
    if (r.accepted + refused !== count) throw new Error(`${target.name}: inputs went missing`);
    if (r.accepted === 0)
      throw new Error(`${target.name}: nothing was accepted: the samples are broken`);
    const foreign = Object.keys(r.rejected).filter((k) => !k.startsWith(prefix));
    if (foreign.length > 0)
      throw new Error(`${target.name}: refusals not of ${prefix}*: ${foreign}`);
    return r;
  });
}
