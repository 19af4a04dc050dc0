/**
 * RTP packets (RFC 3550 §5.1) without copies: `parseRtp` checks a datagram's header once and
 * returns a view whose getters read the fields where they lie; header extensions (RFC 8285, the
 * one-byte 0xBEDE and two-byte 0x100X forms) are iterated as views; `writeRtp` builds a packet
 * into a caller's buffer; the setters and `setExtension` rewrite in place as an SFU forwarding a
 * stream does. Wire input is never thrown on: `parseRtp` returns a `Parsed` with a fixed reason.
 * Pure: no I/O, no clock, no randomness.
 */
import { accept, type Parsed, reject } from "./reject.ts";

/** Why `parseRtp` refused a datagram. */
export type RtpReason =
  /** Shorter than its fixed header, CSRC list or extension header. */
  | "rtp-short"
  /** Version is not 2. */
  | "rtp-bad-version"
  /** The padding count is 0 or runs into the header. */
  | "rtp-bad-padding"
  /** The extension's length runs past the packet. */
  | "rtp-bad-extension";

/** One header extension element: its id and a view of its value. */
export interface RtpExtension {
  readonly id: number;
  readonly value: Uint8Array;
}

/** Bytes of the fixed RTP header. */
export const RTP_HEADER_LENGTH = 12;
/** RFC 8285 one-byte header extension profile. */
export const RTP_ONE_BYTE_PROFILE = 0xbede;
/** RFC 8285 two-byte header extension profile (its low 4 bits are "appbits"). */
export const RTP_TWO_BYTE_PROFILE = 0x1000;

const u16 = (b: Uint8Array, at: number) => ((b[at] as number) << 8) | (b[at + 1] as number);
const u32 = (b: Uint8Array, at: number) =>
  (((b[at] as number) << 24) |
    ((b[at + 1] as number) << 16) |
    ((b[at + 2] as number) << 8) |
    (b[at + 3] as number)) >>>
  0;
function setU16(b: Uint8Array, at: number, v: number): void {
  b[at] = v >>> 8;
  b[at + 1] = v;
}
function setU32(b: Uint8Array, at: number, v: number): void {
  b[at] = v >>> 24;
  b[at + 1] = v >>> 16;
  b[at + 2] = v >>> 8;
  b[at + 3] = v;
}

/**
 * A checked RTP packet over the caller's bytes: valid while those bytes are (a receive buffer is
 * valid until the input's outputs are popped; keep a copy to hold on to it). Getters read the
 * bytes on each call; setters write them in place.
 */
export class RtpPacket {
  /** The whole packet (a view of the caller's bytes). */
  readonly bytes: Uint8Array;
  /** Bytes of the header (fixed part, CSRCs and extension): also the payload's offset. */
  readonly headerLength: number;
  /** Payload bytes (padding excluded). */
  readonly payloadLength: number;

  /** Use `parseRtp`: the constructor trusts its arguments. */
  constructor(bytes: Uint8Array, headerLength: number, payloadLength: number) {
    this.bytes = bytes;
    this.headerLength = headerLength;
    this.payloadLength = payloadLength;
  }

  /** The version field (always 2 once parsed). */
  get version(): number {
    return (this.bytes[0] as number) >> 6;
  }
  /** Whether the P bit is set (padding follows the payload). */
  get padding(): boolean {
    return ((this.bytes[0] as number) & 0x20) !== 0;
  }
  /** Bytes of padding after the payload (its count byte included); 0 without the P bit. */
  get paddingLength(): number {
    return this.bytes.length - this.headerLength - this.payloadLength;
  }
  /** Whether the X bit is set (a header extension follows the CSRCs). */
  get hasExtension(): boolean {
    return ((this.bytes[0] as number) & 0x10) !== 0;
  }
  /** The number of CSRCs, 0 to 15. */
  get csrcCount(): number {
    return (this.bytes[0] as number) & 0x0f;
  }
  /** The marker bit. */
  get marker(): boolean {
    return ((this.bytes[1] as number) & 0x80) !== 0;
  }
  /** Sets or clears the marker bit in place. */
  set marker(on: boolean) {
    this.bytes[1] = ((this.bytes[1] as number) & 0x7f) | (on ? 0x80 : 0);
  }
  /** The payload type, 0 to 127. */
  get payloadType(): number {
    return (this.bytes[1] as number) & 0x7f;
  }
  /** Rewrites the payload type in place (its low 7 bits; the marker is kept). */
  set payloadType(pt: number) {
    this.bytes[1] = ((this.bytes[1] as number) & 0x80) | (pt & 0x7f);
  }
  /** The sequence number, 0 to 0xffff. */
  get sequenceNumber(): number {
    return u16(this.bytes, 2);
  }
  /** Rewrites the sequence number in place (modulo 2^16). */
  set sequenceNumber(seq: number) {
    setU16(this.bytes, 2, seq & 0xffff);
  }
  /** The timestamp, 0 to 2^32 - 1. */
  get timestamp(): number {
    return u32(this.bytes, 4);
  }
  /** Rewrites the timestamp in place (modulo 2^32). */
  set timestamp(ts: number) {
    setU32(this.bytes, 4, ts >>> 0);
  }
  /** The synchronization source. */
  get ssrc(): number {
    return u32(this.bytes, 8);
  }
  /** Rewrites the SSRC in place (modulo 2^32). */
  set ssrc(ssrc: number) {
    setU32(this.bytes, 8, ssrc >>> 0);
  }

  /** CSRC `i` (0-based, below `csrcCount`). */
  csrc(i: number): number {
    return u32(this.bytes, 12 + 4 * i);
  }

  /** The CSRC list, in order (a new array). */
  csrcs(): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.csrcCount; i++) out.push(this.csrc(i));
    return out;
  }

  /** A view of the payload (padding excluded). */
  get payload(): Uint8Array {
    return this.bytes.subarray(this.headerLength, this.headerLength + this.payloadLength);
  }

  /** The extension profile (0xBEDE, 0x100X, or another), or undefined without an extension. */
  get extensionProfile(): number | undefined {
    return this.hasExtension ? u16(this.bytes, 12 + 4 * this.csrcCount) : undefined;
  }

  /**
   * The RFC 8285 extension elements in order, as views of the packet; none for another profile.
   * Padding bytes are skipped; iteration stops at the reserved id 15 of the one-byte form and at
   * an element that would run past the extension block (RFC 8285 §4.2: the rest is ignored).
   */
  *extensions(): Generator<RtpExtension> {
    for (let at = this.#firstElement(); at >= 0; ) {
      const next = this.#element(at);
      if (next === undefined) return;
      const [id, start, len] = next;
      if (id !== 0) yield { id, value: this.bytes.subarray(start, start + len) };
      at = start + len;
    }
  }

  /** The value of the first extension element `id` (a view), or undefined. */
  extension(id: number): Uint8Array | undefined {
    for (const e of this.extensions()) if (e.id === id) return e.value;
    return undefined;
  }

  /**
   * Rewrites in place the value of extension element `id` with `value` of the same length (an
   * SFU rewriting abs-send-time or a transport-wide sequence number). Returns false, writing
   * nothing, when the packet has no such element or its length differs.
   */
  setExtension(id: number, value: Uint8Array): boolean {
    const found = this.extension(id);
    if (found === undefined || found.length !== value.length) return false;
    found.set(value);
    return true;
  }

  /** Offset of the first extension element, or -1 without an RFC 8285 extension. */
  #firstElement(): number {
    const profile = this.extensionProfile;
    const known =
      profile === RTP_ONE_BYTE_PROFILE || (profile ?? 0) >> 4 === RTP_TWO_BYTE_PROFILE >> 4;
    return known ? 12 + 4 * this.csrcCount + 4 : -1;
  }

  /** The element at `at`: [id (0 for padding), value offset, value length], or undefined at the end. */
  #element(at: number): [number, number, number] | undefined {
    const end = this.headerLength;
    if (at >= end) return undefined;
    const b = this.bytes;
    const head = b[at] as number;
    if (this.extensionProfile === RTP_ONE_BYTE_PROFILE) {
      const id = head >> 4;
      if (id === 0) return [0, at + 1, 0]; // a padding byte (its length nibble ignored)
      const len = (head & 0x0f) + 1;
      return id === 15 || at + 1 + len > end ? undefined : [id, at + 1, len];
    }
    if (head === 0) return [0, at + 1, 0];
    if (at + 2 > end) return undefined;
    const len = b[at + 1] as number;
    return at + 2 + len > end ? undefined : [head, at + 2, len];
  }
}

/**
 * Checks `bytes` as an RTP packet: version 2, the CSRC list and the extension block inside the
 * datagram, a padding count from 1 to what follows the header. The view reads it in place.
 */
export function parseRtp(bytes: Uint8Array): Parsed<RtpPacket, RtpReason> {
  if (bytes.length < RTP_HEADER_LENGTH) return reject("rtp-short");
  const b0 = bytes[0] as number;
  if (b0 >> 6 !== 2) return reject("rtp-bad-version");
  let header = RTP_HEADER_LENGTH + 4 * (b0 & 0x0f);
  if (bytes.length < header) return reject("rtp-short");
  if ((b0 & 0x10) !== 0) {
    if (bytes.length < header + 4) return reject("rtp-short");
    header += 4 + 4 * u16(bytes, header + 2);
    if (bytes.length < header) return reject("rtp-bad-extension");
  }
  let padding = 0;
  if ((b0 & 0x20) !== 0) {
    padding = bytes[bytes.length - 1] as number;
    if (padding === 0 || header + padding > bytes.length) return reject("rtp-bad-padding");
  }
  return accept(new RtpPacket(bytes, header, bytes.length - header - padding));
}

/** What `writeRtp` writes. Numeric fields are written modulo their widths. */
export interface RtpInit {
  readonly payloadType: number;
  readonly sequenceNumber: number;
  readonly timestamp: number;
  readonly ssrc: number;
  readonly marker?: boolean;
  /** At most 15. */
  readonly csrcs?: readonly number[];
  /**
   * Header extensions, in order: in the one-byte form when every id is 1–14 and every value
   * 1–16 bytes, else in the two-byte form (ids 1–255, values 0–255 bytes).
   */
  readonly extensions?: readonly RtpExtension[];
  readonly payload: Uint8Array;
  /** Bytes of padding to add (1–255, the count byte included; zeros then the count), or none. */
  readonly paddingLength?: number;
}

/** Whether `extensions` fit RFC 8285's one-byte form. */
function oneByteFits(extensions: readonly RtpExtension[]): boolean {
  return extensions.every(
    (e) => e.id >= 1 && e.id <= 14 && e.value.length >= 1 && e.value.length <= 16,
  );
}

/** Bytes of the extension block for `exts` (header included), 0 without extensions. */
function extensionLength(exts: readonly RtpExtension[]): number {
  if (exts.length === 0) return 0;
  const one = oneByteFits(exts);
  let n = 0;
  for (const e of exts) n += (one ? 1 : 2) + e.value.length;
  return 4 + Math.ceil(n / 4) * 4;
}

/** The bytes `init` takes as a packet. */
export function rtpLength(init: RtpInit): number {
  return (
    RTP_HEADER_LENGTH +
    4 * (init.csrcs?.length ?? 0) +
    extensionLength(init.extensions ?? []) +
    init.payload.length +
    (init.paddingLength ?? 0)
  );
}

/**
 * Writes the packet `init` describes into `out` at `at` and returns its length. Throws a
 * RangeError (a caller's mistake, not wire input) when `out` is too small, there are more than
 * 15 CSRCs, an extension cannot be written (id outside 1–255, value longer than 255 bytes) or
 * the padding is outside 1–255.
 */
export function writeRtp(init: RtpInit, out: Uint8Array, at = 0): number {
  const csrcs = init.csrcs ?? [];
  const exts = init.extensions ?? [];
  const pad = init.paddingLength ?? 0;
  if (csrcs.length > 15)
    throw new RangeError(`an RTP packet holds at most 15 CSRCs, not ${csrcs.length}`);
  for (const e of exts) {
    if (!(e.id >= 1 && e.id <= 255) || e.value.length > 255)
      throw new RangeError(`header extension ${e.id} (${e.value.length} bytes) cannot be written`);
  }
  if (init.paddingLength !== undefined && !(pad >= 1 && pad <= 255))
    throw new RangeError(`RTP padding is 1 to 255 bytes, not ${pad}`);
  const length = rtpLength(init);
  if (out.length < at + length)
    throw new RangeError(`${length} bytes needed at ${at}, the buffer has ${out.length}`);
  out[at] = 0x80 | (pad > 0 ? 0x20 : 0) | (exts.length > 0 ? 0x10 : 0) | csrcs.length;
  out[at + 1] = (init.marker ? 0x80 : 0) | (init.payloadType & 0x7f);
  setU16(out, at + 2, init.sequenceNumber & 0xffff);
  setU32(out, at + 4, init.timestamp >>> 0);
  setU32(out, at + 8, init.ssrc >>> 0);
  let p = at + RTP_HEADER_LENGTH;
  for (const c of csrcs) {
    setU32(out, p, c >>> 0);
    p += 4;
  }
  if (exts.length > 0) {
    const one = oneByteFits(exts);
    const block = extensionLength(exts);
    setU16(out, p, one ? RTP_ONE_BYTE_PROFILE : RTP_TWO_BYTE_PROFILE);
    setU16(out, p + 2, (block - 4) / 4);
    const end = p + block;
    p += 4;
    for (const e of exts) {
      if (one) out[p++] = (e.id << 4) | (e.value.length - 1);
      else {
        out[p++] = e.id;
        out[p++] = e.value.length;
      }
      out.set(e.value, p);
      p += e.value.length;
    }
    out.fill(0, p, end);
    p = end;
  }
  out.set(init.payload, p);
  p += init.payload.length;
  if (pad > 0) {
    out.fill(0, p, p + pad - 1);
    out[p + pad - 1] = pad;
    p += pad;
  }
  return p - at;
}

/**
 * Whether a datagram whose second byte is `second` is RTCP rather than RTP when both share a
 * port (RFC 5761 §4: RTCP packet types 192–223 fall where RTP payload types 64–95 with the
 * marker would).
 */
export function isRtcpPayloadType(second: number): boolean {
  return second >= 192 && second <= 223;
}
