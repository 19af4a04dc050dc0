/**
 * The Internet checksum (RFC 1071) and its incremental update (RFC 1624). Sums long ranges over
 * 32-bit words: the one's complement sum does not depend on byte order (RFC 1071 section 2), so
 * words read in the machine's order, folded, and byte-swapped back give the network-order sum.
 */

/** Below this many bytes, summing byte pairs is faster than making a word view of the buffer. */
const WORD_SUM_MIN = 128;
/** Below this many bytes, summing byte pairs is faster than summing words of a view at hand. */
const CACHED_WORD_SUM_MIN = 16;

/** True on a little-endian machine, where words read from memory need their bytes swapped. */
const LITTLE_ENDIAN = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

/**
 * The one's complement sum (RFC 1071) of bytes [start, end) of `bytes`, added to `sum` (a
 * 16-bit partial sum, as this function returns), folded to 16 bits. An odd last byte counts as
 * the high byte of a word. Bytes that carry a correct checksum sum to 0xffff. Throws a
 * RangeError unless 0 <= start <= end <= bytes.length.
 */
export function onesSum(bytes: Uint8Array, start: number, end: number, sum = 0): number {
  return sumRange(bytes, start, end, sum, undefined);
}

/** The Internet checksum of bytes [start, end): the complement of their `onesSum` (what goes on the wire). */
export function internetChecksum(bytes: Uint8Array, start: number, end: number): number {
  return ~onesSum(bytes, start, end) & 0xffff;
}

/**
 * `onesSum` with a 32-bit word view of the last buffer summed kept for the next sum: packets of
 * one receive pool share a buffer, so summing them makes no view per packet. The results are
 * `onesSum`'s. Holds only that cache: keep one per packet handler (not per packet).
 */
export class Checksummer {
  #buffer: ArrayBufferLike | undefined = undefined;
  #words: Uint32Array<ArrayBufferLike> = new Uint32Array(0);

  /** See `onesSum`. */
  onesSum(bytes: Uint8Array, start: number, end: number, sum = 0): number {
    const buffer = bytes.buffer;
    if (buffer !== this.#buffer || (bytes.byteOffset + end) >>> 2 > this.#words.length) {
      this.#buffer = buffer;
      this.#words = new Uint32Array(buffer, 0, buffer.byteLength >>> 2);
    }
    return sumRange(bytes, start, end, sum, this.#words);
  }
}

/**
 * The checksum after one 16-bit word of the summed data changed from `from` to `to`, without
 * summing again (RFC 1624, equation 3). A result of 0 is ambiguous (data summing to zero needs
 * 0xffff instead): sum again then.
 */
export function adjustChecksum(checksum: number, from: number, to: number): number {
  return ~fold((~checksum & 0xffff) + (~from & 0xffff) + to) & 0xffff;
}

/**
 * `onesSum`, over 32-bit words of `words` (a view of the whole buffer) when given, else of a view
 * made for a long enough range.
 */
function sumRange(
  bytes: Uint8Array,
  start: number,
  end: number,
  sum: number,
  words: Uint32Array | undefined,
): number {
  if (!(start >= 0 && start <= end && end <= bytes.length)) {
    throw new RangeError(`cannot sum bytes [${start}, ${end}) of a ${bytes.length}-byte buffer`);
  }
  const even = ((bytes.byteOffset + start) & 1) === 0;
  const least = words === undefined ? WORD_SUM_MIN : CACHED_WORD_SUM_MIN;
  const s =
    even && end - start >= least ? wordSum(bytes, start, end, words) : pairSum(bytes, start, end);
  return fold(s + sum);
}

/** The sum of big-endian byte pairs of [start, end), unfolded. */
function pairSum(b: Uint8Array, start: number, end: number): number {
  let s = 0;
  let i = start;
  for (; i + 1 < end; i += 2) s += ((b[i] as number) << 8) | (b[i + 1] as number);
  if (i < end) s += (b[i] as number) << 8;
  return s;
}

/**
 * The network-order sum of [start, end), folded, read as machine-order 32-bit words from the
 * aligned middle of the range (whose start must be even in the underlying buffer): words of
 * `cached` (a view of the whole buffer) when given, else of a view made here.
 */
function wordSum(
  b: Uint8Array,
  start: number,
  end: number,
  cached: Uint32Array | undefined,
): number {
  let s = 0;
  let i = start;
  if (((b.byteOffset + i) & 2) !== 0) {
    s += machineWord(b, i, end);
    i += 2;
  }
  const first = (b.byteOffset + i) >>> 2;
  const count = (end - i) >>> 2;
  const words = cached ?? new Uint32Array(b.buffer, first * 4, count);
  const from = cached === undefined ? 0 : first;
  for (let w = from; w < from + count; w++) s += words[w] as number;
  i += count * 4;
  if (i + 1 < end) {
    s += machineWord(b, i, end);
    i += 2;
  }
  if (i < end) s += machineWord(b, i, end); // the lone byte, a zero after it
  const folded = fold(s);
  return LITTLE_ENDIAN ? ((folded & 0xff) << 8) | (folded >>> 8) : folded;
}

/** The 16-bit word at `at` in the machine's byte order (a byte at or past `end` counts as 0). */
function machineWord(b: Uint8Array, at: number, end: number): number {
  const first = b[at] as number;
  const second = at + 1 < end ? (b[at + 1] as number) : 0;
  return LITTLE_ENDIAN ? first | (second << 8) : (first << 8) | second;
}

/** Folds a non-negative sum below 2^53 to 16 bits with end-around carries. */
function fold(sum: number): number {
  let s = sum;
  while (s > 0xffffffff) s = (s % 0x10000) + Math.floor(s / 0x10000);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}
