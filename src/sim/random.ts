/**
 * The simulator's only source of randomness: xoshiro128** seeded through splitmix32. The same
 * seed gives the same sequence on every run and machine; nothing here reads a clock or
 * `Math.random`.
 */

/**
 * A seeded pseudo-random generator (xoshiro128**, 32-bit state words, period 2^128 - 1).
 *
 * Contract: two generators made from the same seed return the same numbers in the same order,
 * whatever else the program does; `fork()` derives an independent generator from this one, so a
 * part of a simulation (a link, a middleware) can have its own stream that other parts' draws do
 * not shift.
 */
export class SimRandom {
  readonly #s = new Uint32Array(4);

  /** @param seed any number; its low 32 bits select the sequence */
  constructor(seed: number) {
    let x = seed >>> 0;
    for (let i = 0; i < 4; i++) {
      // splitmix32: spreads a small seed over the whole state (never all zero)
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      this.#s[i] = (z ^ (z >>> 16)) >>> 0;
    }
  }

  /** The next unsigned 32-bit integer. */
  u32(): number {
    const s = this.#s;
    const s0 = s[0] as number;
    const s1 = s[1] as number;
    const s2 = s[2] as number;
    const s3 = s[3] as number;
    const r = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
    const t = s1 << 9;
    const n2 = s2 ^ s0;
    const n3 = s3 ^ s1;
    s[1] = s1 ^ n2;
    s[0] = s0 ^ n3;
    s[2] = n2 ^ t;
    s[3] = rotl(n3, 11);
    return r;
  }

  /** A number uniform in [0, 1) (32 random bits). */
  float(): number {
    return this.u32() / 2 ** 32;
  }

  /** True with probability `p` (always false for p <= 0, always true for p >= 1); one draw. */
  chance(p: number): boolean {
    return this.float() < p;
  }

  /** An integer uniform in [0, n), for n from 1 to 2^32. */
  below(n: number): number {
    return Math.floor(this.float() * n);
  }

  /** A new generator seeded from this one's next number (one draw from this stream). */
  fork(): SimRandom {
    return new SimRandom(this.u32());
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** A deterministic 32-bit hash of bytes (FNV-1a): for spreading flows and fingerprinting data. */
export function hash32(bytes: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ (bytes[i] as number), 0x01000193);
  return h >>> 0;
}
