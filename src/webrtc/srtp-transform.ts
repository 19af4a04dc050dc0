/**
 * The cryptographic transform of one SRTP profile, below the per-SSRC bookkeeping: given a packet,
 * its header length, SSRC and index, it writes the protected or unprotected packet into a buffer
 * and returns its length. Implementations: srtp-gcm.ts (RFC 7714) and srtp-cm.ts (RFC 3711).
 * Lengths are checked by the caller (srtp.ts); a transform only refuses by returning -1 when the
 * tag does not verify.
 */

/** One profile's packet transform with its session keys. */
export interface SrtpTransform {
  /** Bytes of tag after an SRTP packet and after an SRTCP packet's index word. */
  readonly tagLength: number;
  /** Where an SRTCP packet's E flag + index word starts, counted back from its end. */
  readonly rtcpIndexFromEnd: number;
  /**
   * Writes the SRTP form of RTP `packet` (header of `headerLength` bytes) at packet index `index`
   * into `out` (at least `packet.length + tagLength` bytes; it may share `packet`'s start for an
   * in-place transform) and returns its length.
   */
  protectRtp(
    packet: Uint8Array,
    headerLength: number,
    ssrc: number,
    index: number,
    out: Uint8Array,
  ): number;
  /**
   * Verifies SRTP `packet` at `index` and writes the RTP packet into `out` (at least
   * `packet.length - tagLength` bytes, or `packet` itself); returns its length, or -1 (leaving
   * `out` untouched) when the tag does not verify.
   */
  unprotectRtp(
    packet: Uint8Array,
    headerLength: number,
    ssrc: number,
    index: number,
    out: Uint8Array,
  ): number;
  /**
   * Writes the SRTCP form of RTCP `packet` (encrypted, E flag set) at SRTCP index `index` into
   * `out` (at least `packet.length + tagLength + 4` bytes; it may share `packet`'s start) and
   * returns its length.
   */
  protectRtcp(packet: Uint8Array, ssrc: number, index: number, out: Uint8Array): number;
  /**
   * Verifies SRTCP `packet` whose E flag + index word is `word` and writes the RTCP packet into
   * `out` (at least `packet.length - tagLength - 4` bytes, or `packet` itself); returns its
   * length, or -1 when the tag does not verify.
   */
  unprotectRtcp(packet: Uint8Array, ssrc: number, word: number, out: Uint8Array): number;
}

/** The big-endian 32-bit word at `at` (the caller has checked the bounds). */
export function readU32(p: Uint8Array, at: number): number {
  return (
    (((p[at] as number) << 24) |
      ((p[at + 1] as number) << 16) |
      ((p[at + 2] as number) << 8) |
      (p[at + 3] as number)) >>>
    0
  );
}

/** Writes `v` big-endian at `at`. */
export function writeU32(p: Uint8Array, at: number, v: number): void {
  p[at] = v >>> 24;
  p[at + 1] = v >>> 16;
  p[at + 2] = v >>> 8;
  p[at + 3] = v;
}

/** The salt as big-endian words, zero-padded to 16 bytes (for XOR into nonces and IVs). */
export function saltWords(salt: Uint8Array): Uint32Array {
  const padded = new Uint8Array(16);
  padded.set(salt);
  return Uint32Array.of(
    readU32(padded, 0),
    readU32(padded, 4),
    readU32(padded, 8),
    readU32(padded, 12),
  );
}

/** Longest header kept in a reused array by `FrontCopies` (longer ones are viewed in place). */
const SCRATCH_MAX = 256;

/**
 * Copies `p[0, length)` to the start of `out` unless `out` already starts where `p` does. Short
 * lengths are copied byte by byte: cheaper than making the subarray view `set` needs.
 */
export function copyFront(p: Uint8Array, length: number, out: Uint8Array): void {
  if (out.buffer === p.buffer && out.byteOffset === p.byteOffset) return;
  if (length > SCRATCH_MAX) {
    out.set(p.subarray(0, length));
    return;
  }
  for (let i = 0; i < length; i++) out[i] = p[i] as number;
}

/**
 * Reused arrays, one per length, holding copies of a packet's first bytes (its RTP header, or an
 * RTCP header): handing node:crypto a copy in one of these costs less than making a view.
 */
export class FrontCopies {
  readonly #byLength: Uint8Array[] = [];

  /** `p[0, length)` in an array reused for this length (valid until the next call), or a view. */
  of(p: Uint8Array, length: number): Uint8Array {
    if (length > SCRATCH_MAX) return p.subarray(0, length);
    let a = this.#byLength[length];
    if (a === undefined) {
      a = new Uint8Array(length);
      this.#byLength[length] = a;
    }
    for (let i = 0; i < length; i++) a[i] = p[i] as number;
    return a;
  }
}
