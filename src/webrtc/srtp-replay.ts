/**
 * Per-SSRC packet index bookkeeping for SRTP: the index estimate of RFC 3711 Appendix A (rollover
 * counter from the highest index seen and a 16-bit sequence number) and a sliding replay window
 * over indexes (RFC 3711 §3.3.2). Plain numbers: an SRTP index is 48 bits, an SRTCP index 31,
 * both exact in a double.
 */

/**
 * The packet index (ROC * 65536 + SEQ) of sequence number `seq` given the highest index accepted
 * so far (RFC 3711 Appendix A): the guess among ROC - 1, ROC and ROC + 1 nearest to `highest`.
 * Negative when the guess is ROC - 1 with ROC 0, i.e. a packet from before the stream began.
 */
export function estimateSrtpIndex(highest: number, seq: number): number {
  const roc = Math.floor(highest / 65536);
  const sl = highest - roc * 65536;
  let v = roc;
  if (sl < 32768) {
    if (seq - sl > 32768) v = roc - 1;
  } else if (sl - 32768 > seq) {
    v = roc + 1;
  }
  return v * 65536 + seq;
}

/** `ReplayWindow.check`: the index is new (above or inside the window and unseen). */
export const REPLAY_FRESH = 0;
/** `ReplayWindow.check`: the index was already accepted. */
export const REPLAY_SEEN = 1;
/** `ReplayWindow.check`: the index is below the window (or negative). */
export const REPLAY_TOO_OLD = 2;

/**
 * A replay window of `size` indexes (a power of two, at least 64) below the highest accepted one,
 * kept as a ring of bits. `check` is pure; `accept` records an index that passed authentication.
 */
export class ReplayWindow {
  /** The highest accepted index, -1 before the first. */
  highest = -1;
  readonly #bits: Uint32Array;
  readonly #mask: number;

  /** A window of `size` indexes; a RangeError unless `size` is a power of two from 64 to 2^20. */
  constructor(size: number) {
    if (!Number.isInteger(size) || size < 64 || size > 1 << 20 || (size & (size - 1)) !== 0) {
      throw new RangeError(`replay window must be a power of two from 64 to 2^20, got ${size}`);
    }
    this.#bits = new Uint32Array(size >>> 5);
    this.#mask = size - 1;
  }

  /** REPLAY_FRESH, REPLAY_SEEN or REPLAY_TOO_OLD for `index`. */
  check(index: number): number {
    if (index > this.highest) return REPLAY_FRESH;
    if (index < 0 || this.highest - index > this.#mask) return REPLAY_TOO_OLD;
    const bit = index & this.#mask;
    return ((this.#bits[bit >>> 5] as number) >>> (bit & 31)) & 1 ? REPLAY_SEEN : REPLAY_FRESH;
  }

  /** Records `index` (which `check` called fresh), sliding the window up when it is the highest. */
  accept(index: number): void {
    const bits = this.#bits;
    const mask = this.#mask;
    if (index > this.highest) {
      if (index - this.highest > mask) {
        bits.fill(0);
      } else {
        for (let i = this.highest + 1; i < index; i++) {
          const b = i & mask;
          bits[b >>> 5] = (bits[b >>> 5] as number) & ~(1 << (b & 31));
        }
      }
      this.highest = index;
    }
    const bit = index & mask;
    bits[bit >>> 5] = (bits[bit >>> 5] as number) | (1 << (bit & 31));
  }
}
