/**
 * RTCP (RFC 3550 §6, RFC 4585, RFC 5104, draft-alvestrand-rmcat-remb) without copies:
 * `parseRtcp` checks a compound packet's framing once and returns its packets as typed values
 * whose byte fields are views of the datagram (SR, RR, SDES, BYE, generic NACK, PLI, FIR, REMB);
 * anything else (transport-wide congestion control, XR, APP...) comes through as an opaque view
 * with its type and format, so an SFU can pass it on. `writeRtcp` writes any of them (the same
 * values) into a caller's buffer and returns the length; `writeRtcpCompound` writes several.
 * Wire input is never thrown on: `parseRtcp` returns a `Parsed` with a fixed reason. Pure.
 */
import { accept, type Parsed, reject } from "./reject.ts";

/** Why `parseRtcp` refused a datagram. */
export type RtcpReason =
  /** Shorter than a header, or a packet's body shorter than its type and counts need. */
  | "rtcp-short"
  /** Version is not 2. */
  | "rtcp-bad-version"
  /** A length field runs past the datagram, or the padding count is 0 or runs into the header. */
  | "rtcp-bad-length";

/** RTCP packet types. */
export const RtcpType = {
  SR: 200,
  RR: 201,
  SDES: 202,
  BYE: 203,
  APP: 204,
  RTPFB: 205,
  PSFB: 206,
} as const;

/** A reception report block (RFC 3550 §6.4.1). */
export interface ReportBlock {
  readonly ssrc: number;
  /** Fraction lost since the last report, in 1/256. */
  readonly fractionLost: number;
  /** Cumulative packets lost (24-bit signed: -8,388,608 to 8,388,607). */
  readonly packetsLost: number;
  /** Extended highest sequence number received. */
  readonly highestSequence: number;
  readonly jitter: number;
  /** The middle 32 bits of the last SR's NTP timestamp (LSR). */
  readonly lastSr: number;
  /** Delay since that SR, in 1/65536 s (DLSR). */
  readonly delaySinceLastSr: number;
}

/** A sender report (PT 200). */
export interface SenderReport {
  readonly type: "sr";
  readonly ssrc: number;
  /** NTP timestamp: seconds. */
  readonly ntpSeconds: number;
  /** NTP timestamp: fraction of a second in 1/2^32. */
  readonly ntpFraction: number;
  readonly rtpTimestamp: number;
  readonly packetCount: number;
  readonly octetCount: number;
  /** At most 31. */
  readonly reports: readonly ReportBlock[];
}

/** A receiver report (PT 201). */
export interface ReceiverReport {
  readonly type: "rr";
  readonly ssrc: number;
  /** At most 31. */
  readonly reports: readonly ReportBlock[];
}

/** An SDES item: its type (1 CNAME, 2 NAME...) and a view of its UTF-8 text (at most 255 bytes). */
export interface SdesItem {
  readonly kind: number;
  readonly value: Uint8Array;
}

/** Source description (PT 202): at most 31 chunks, each an SSRC and its items. */
export interface SourceDescription {
  readonly type: "sdes";
  readonly chunks: readonly { readonly ssrc: number; readonly items: readonly SdesItem[] }[];
}

/** Goodbye (PT 203): at most 31 SSRCs and a view of the optional reason (at most 255 bytes). */
export interface Goodbye {
  readonly type: "bye";
  readonly ssrcs: readonly number[];
  readonly reason?: Uint8Array;
}

/** Generic NACK (RTPFB FMT 1): the lost sequence numbers, in PID/BLP order. */
export interface GenericNack {
  readonly type: "nack";
  readonly sender: number;
  readonly media: number;
  /** At least one (the writer packs them: any order, duplicates and a wrap past 65535 allowed). */
  readonly lost: readonly number[];
}

/** Picture loss indication (PSFB FMT 1). */
export interface PictureLossIndication {
  readonly type: "pli";
  readonly sender: number;
  readonly media: number;
}

/** Full intra request (PSFB FMT 4): per entry the SSRC asked and the request's sequence number. */
export interface FullIntraRequest {
  readonly type: "fir";
  readonly sender: number;
  readonly entries: readonly { readonly ssrc: number; readonly sequence: number }[];
}

/** Receiver estimated maximum bitrate (PSFB FMT 15, "REMB"): bits/s for at most 255 SSRCs. */
export interface Remb {
  readonly type: "remb";
  readonly sender: number;
  /** As written: a mantissa of 18 bits times a power of two (the writer rounds down). */
  readonly bitrate: number;
  readonly ssrcs: readonly number[];
}

/** Any other packet: its type, format/count field and a view of it whole (padding excluded). */
export interface OtherRtcp {
  readonly type: "other";
  readonly packetType: number;
  readonly format: number;
  /** Header included (as received: its length field counts any padding that was cut). */
  readonly bytes: Uint8Array;
}

/** One packet of a compound RTCP packet. */
export type RtcpPacket =
  | SenderReport
  | ReceiverReport
  | SourceDescription
  | Goodbye
  | GenericNack
  | PictureLossIndication
  | FullIntraRequest
  | Remb
  | OtherRtcp;

const REMB_ID = 0x52454d42; // "REMB"

/**
 * The packets of compound RTCP `bytes`, checked: every header's version and length, the padding
 * count, and each known type's body against its counts. Byte fields are views of `bytes`.
 */
export function parseRtcp(bytes: Uint8Array): Parsed<RtcpPacket[], RtcpReason> {
  if (bytes.length < 4) return reject("rtcp-short");
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: RtcpPacket[] = [];
  for (let at = 0; at < bytes.length; ) {
    if (bytes.length - at < 4) return reject("rtcp-short");
    const b0 = bytes[at] as number;
    if (b0 >> 6 !== 2) return reject("rtcp-bad-version");
    const end = at + 4 + 4 * v.getUint16(at + 2);
    if (end > bytes.length) return reject("rtcp-bad-length");
    let bodyEnd = end;
    if ((b0 & 0x20) !== 0) {
      const pad = bytes[end - 1] as number;
      if (pad === 0 || pad > end - at - 4) return reject("rtcp-bad-length");
      bodyEnd = end - pad;
    }
    const p = packet(bytes, v, at, bodyEnd, bytes[at + 1] as number, b0 & 0x1f);
    if (p === undefined) return reject("rtcp-short");
    out.push(p);
    at = end;
  }
  return accept(out);
}

/** Reads one packet from `at` (its header) to `end` (padding excluded), or undefined if too short. */
function packet(
  bytes: Uint8Array,
  v: DataView,
  at: number,
  end: number,
  pt: number,
  count: number,
): RtcpPacket | undefined {
  const len = end - at;
  const u32s = (from: number, n: number) =>
    Array.from({ length: n }, (_, i) => v.getUint32(from + 4 * i));
  switch (pt) {
    case RtcpType.SR:
      if (len < 28 + 24 * count) return undefined;
      return {
        type: "sr",
        ssrc: v.getUint32(at + 4),
        ntpSeconds: v.getUint32(at + 8),
        ntpFraction: v.getUint32(at + 12),
        rtpTimestamp: v.getUint32(at + 16),
        packetCount: v.getUint32(at + 20),
        octetCount: v.getUint32(at + 24),
        reports: reports(v, at + 28, count),
      };
    case RtcpType.RR:
      if (len < 8 + 24 * count) return undefined;
      return { type: "rr", ssrc: v.getUint32(at + 4), reports: reports(v, at + 8, count) };
    case RtcpType.SDES:
      return sdes(bytes, v, at + 4, end, count);
    case RtcpType.BYE: {
      if (len < 4 + 4 * count) return undefined;
      const ssrcs = u32s(at + 4, count);
      const r = at + 4 + 4 * count;
      if (r >= end) return { type: "bye", ssrcs };
      const n = bytes[r] as number;
      if (r + 1 + n > end) return undefined;
      return { type: "bye", ssrcs, reason: bytes.subarray(r + 1, r + 1 + n) };
    }
    case RtcpType.RTPFB:
      if (count !== 1) break;
      if (len < 16) return undefined;
      return {
        type: "nack",
        sender: v.getUint32(at + 4),
        media: v.getUint32(at + 8),
        lost: unpackNack(v, at + 12, end),
      };
    case RtcpType.PSFB:
      if (len < 12) return undefined;
      if (count === 1)
        return { type: "pli", sender: v.getUint32(at + 4), media: v.getUint32(at + 8) };
      if (count === 4) {
        const entries: { ssrc: number; sequence: number }[] = [];
        for (let f = at + 12; f + 8 <= end; f += 8)
          entries.push({ ssrc: v.getUint32(f), sequence: bytes[f + 4] as number });
        return { type: "fir", sender: v.getUint32(at + 4), entries };
      }
      if (count === 15 && len >= 20 && v.getUint32(at + 12) === REMB_ID) {
        const n = bytes[at + 16] as number;
        if (len < 20 + 4 * n) return undefined;
        const exp = (bytes[at + 17] as number) >> 2;
        const mantissa = ((bytes[at + 17] as number) & 3) * 65536 + v.getUint16(at + 18);
        return {
          type: "remb",
          sender: v.getUint32(at + 4),
          bitrate: mantissa * 2 ** exp,
          ssrcs: u32s(at + 20, n),
        };
      }
      break;
  }
  return { type: "other", packetType: pt, format: count, bytes: bytes.subarray(at, end) };
}

/** The sequence numbers of NACK FCI entries (PID, BLP) from `at` to `end`. */
function unpackNack(v: DataView, at: number, end: number): number[] {
  const lost: number[] = [];
  for (let f = at; f + 4 <= end; f += 4) {
    const pid = v.getUint16(f);
    const blp = v.getUint16(f + 2);
    lost.push(pid);
    for (let i = 0; i < 16; i++) if ((blp >> i) & 1) lost.push((pid + i + 1) & 0xffff);
  }
  return lost;
}

function reports(v: DataView, at: number, count: number): ReportBlock[] {
  const out: ReportBlock[] = [];
  for (let i = 0; i < count; i++) {
    const b = at + 24 * i;
    const lost = v.getUint32(b + 4) & 0xffffff;
    out.push({
      ssrc: v.getUint32(b),
      fractionLost: v.getUint8(b + 4),
      packetsLost: lost & 0x800000 ? lost - 0x1000000 : lost,
      highestSequence: v.getUint32(b + 8),
      jitter: v.getUint32(b + 12),
      lastSr: v.getUint32(b + 16),
      delaySinceLastSr: v.getUint32(b + 20),
    });
  }
  return out;
}

function sdes(
  bytes: Uint8Array,
  v: DataView,
  at: number,
  end: number,
  count: number,
): SourceDescription | undefined {
  const chunks: { ssrc: number; items: SdesItem[] }[] = [];
  let p = at;
  for (let c = 0; c < count; c++) {
    if (p + 4 > end) return undefined;
    const ssrc = v.getUint32(p);
    p += 4;
    const items: SdesItem[] = [];
    for (;;) {
      if (p >= end) return undefined;
      const kind = bytes[p] as number;
      if (kind === 0) break;
      if (p + 2 > end) return undefined;
      const n = bytes[p + 1] as number;
      if (p + 2 + n > end) return undefined;
      items.push({ kind, value: bytes.subarray(p + 2, p + 2 + n) });
      p += 2 + n;
    }
    p = (p + 4) & ~3; // the null item, then padding to the next word (packets are word-aligned)
    chunks.push({ ssrc, items });
  }
  return { type: "sdes", chunks };
}

/**
 * `lost` (any order, duplicates allowed) as NACK FCI entries [PID, BLP]: sorted along the
 * sequence circle starting after its largest gap (so a run through 65535 → 0 stays one run), each
 * PID followed by a bitmask of the up to 16 numbers after it.
 */
function packNack(lost: readonly number[]): [number, number][] {
  const seqs = [...new Set(lost.map((s) => s & 0xffff))].sort((a, b) => a - b);
  let start = 0;
  let gap = -1;
  for (let i = 0; i < seqs.length; i++) {
    const prev = seqs[(i + seqs.length - 1) % seqs.length] as number;
    const d = ((seqs[i] as number) - prev + 0x10000) & 0xffff;
    if (d > gap) {
      gap = d;
      start = i;
    }
  }
  const fci: [number, number][] = [];
  for (const s of [...seqs.slice(start), ...seqs.slice(0, start)]) {
    const last = fci[fci.length - 1];
    const d = last === undefined ? 0 : (s - last[0] + 0x10000) & 0xffff;
    if (last !== undefined && d >= 1 && d <= 16) last[1] |= 1 << (d - 1);
    else fci.push([s, 0]);
  }
  return fci;
}

/** Bytes of content (header included, padding excluded) of `p`. */
function contentLength(p: RtcpPacket): number {
  switch (p.type) {
    case "sr":
      return 28 + 24 * p.reports.length;
    case "rr":
      return 8 + 24 * p.reports.length;
    case "sdes":
      return p.chunks.reduce(
        (n, c) => n + (((4 + c.items.reduce((m, i) => m + 2 + i.value.length, 0)) >> 2) + 1) * 4,
        4,
      );
    case "bye":
      return 4 + 4 * p.ssrcs.length + (p.reason === undefined ? 0 : 1 + p.reason.length);
    case "nack":
      return 12 + 4 * packNack(p.lost).length;
    case "pli":
      return 12;
    case "fir":
      return 12 + 8 * p.entries.length;
    case "remb":
      return 20 + 4 * p.ssrcs.length;
    case "other":
      return p.bytes.length;
  }
}

/** The bytes `writeRtcp` writes for `p`: a multiple of 4. */
export function rtcpLength(p: RtcpPacket): number {
  return (contentLength(p) + 3) & ~3;
}

/**
 * Writes `p` into `out` at `at` and returns its length (`rtcpLength(p)`). Byte fields are
 * copied; an "other" packet gets a fresh header from its type and format, its body as given, and
 * RTCP padding (P bit) if that body does not end on a word. Throws a RangeError (a caller's
 * mistake, not wire input) when `out` is too small or `p` cannot be written: more than 31
 * reports, chunks or SSRCs in a BYE, an SDES item or BYE reason over 255 bytes, a NACK of
 * nothing, over 255 REMB SSRCs or a bitrate that is negative or not below 2^81, an "other"
 * packet under 4 bytes or a format over 31.
 */
export function writeRtcp(p: RtcpPacket, out: Uint8Array, at = 0): number {
  const n = rtcpLength(p);
  if (out.length < at + n)
    throw new RangeError(`${n} bytes needed at ${at}, the buffer has ${out.length}`);
  const w = new Writer(out, at);
  switch (p.type) {
    case "sr":
      w.header(limit(p.reports.length, 31, "report blocks"), RtcpType.SR, n);
      w.u32(p.ssrc).u32(p.ntpSeconds).u32(p.ntpFraction).u32(p.rtpTimestamp);
      w.u32(p.packetCount).u32(p.octetCount);
      for (const r of p.reports) w.report(r);
      break;
    case "rr":
      w.header(limit(p.reports.length, 31, "report blocks"), RtcpType.RR, n);
      w.u32(p.ssrc);
      for (const r of p.reports) w.report(r);
      break;
    case "sdes":
      w.header(limit(p.chunks.length, 31, "SDES chunks"), RtcpType.SDES, n);
      for (const c of p.chunks) {
        w.u32(c.ssrc);
        for (const i of c.items)
          w.u8(i.kind)
            .u8(limit(i.value.length, 255, "SDES bytes"))
            .copy(i.value);
        w.u8(0).zeroToWord();
      }
      break;
    case "bye":
      w.header(limit(p.ssrcs.length, 31, "BYE SSRCs"), RtcpType.BYE, n);
      for (const s of p.ssrcs) w.u32(s);
      if (p.reason !== undefined) w.u8(limit(p.reason.length, 255, "reason bytes")).copy(p.reason);
      w.zeroToWord();
      break;
    case "nack": {
      const fci = packNack(p.lost);
      if (fci.length === 0) throw new RangeError("a NACK needs at least one sequence number");
      w.header(1, RtcpType.RTPFB, n).u32(p.sender).u32(p.media);
      for (const [pid, blp] of fci) w.u16(pid).u16(blp);
      break;
    }
    case "pli":
      w.header(1, RtcpType.PSFB, n).u32(p.sender).u32(p.media);
      break;
    case "fir":
      w.header(4, RtcpType.PSFB, n).u32(p.sender).u32(0);
      for (const e of p.entries) w.u32(e.ssrc).u32(((e.sequence & 0xff) << 24) >>> 0);
      break;
    case "remb": {
      const [exp, mantissa] = rembBitrate(p.bitrate);
      w.header(15, RtcpType.PSFB, n).u32(p.sender).u32(0).u32(REMB_ID);
      w.u8(limit(p.ssrcs.length, 255, "REMB SSRCs")).u8((exp << 2) | (mantissa >> 16));
      w.u16(mantissa & 0xffff);
      for (const s of p.ssrcs) w.u32(s);
      break;
    }
    case "other": {
      if (p.bytes.length < 4) throw new RangeError("an RTCP packet has a 4-byte header");
      const pad = n - p.bytes.length;
      w.header(limit(p.format, 31, "(a format)"), p.packetType & 0xff, n, pad > 0);
      w.copy(p.bytes.subarray(4));
      if (pad > 0) w.zeroToWord(pad);
      break;
    }
  }
  return n;
}

/** Writes `packets` back to back (a compound packet) into `out` at `at`; returns the length. */
export function writeRtcpCompound(packets: readonly RtcpPacket[], out: Uint8Array, at = 0): number {
  let p = at;
  for (const packet of packets) p += writeRtcp(packet, out, p);
  return p - at;
}

function limit(n: number, max: number, what: string): number {
  if (n > max) throw new RangeError(`${n} ${what}: at most ${max} fit`);
  return n;
}

/** [exponent, 18-bit mantissa] with mantissa × 2^exponent ≤ `bitrate`, the closest such. */
function rembBitrate(bitrate: number): [number, number] {
  if (!(bitrate >= 0 && bitrate < 2 ** 81))
    throw new RangeError(`a REMB bitrate is 0 to 2^81, not ${bitrate}`);
  let exp = 0;
  let mantissa = Math.floor(bitrate);
  while (mantissa >= 1 << 18) {
    mantissa = Math.floor(mantissa / 2);
    exp++;
  }
  return [exp, mantissa];
}

/** A cursor writing big-endian fields into `out` (bounds checked by the caller). */
class Writer {
  readonly #out: Uint8Array;
  readonly #start: number;
  #at: number;

  constructor(out: Uint8Array, at: number) {
    this.#out = out;
    this.#start = at;
    this.#at = at;
  }

  header(count: number, pt: number, n: number, padding = false): this {
    return this.u8(0x80 | (padding ? 0x20 : 0) | count)
      .u8(pt)
      .u16(n / 4 - 1);
  }

  u8(v: number): this {
    this.#out[this.#at++] = v;
    return this;
  }

  u16(v: number): this {
    return this.u8((v >>> 8) & 0xff).u8(v & 0xff);
  }

  u32(v: number): this {
    return this.u16((v >>> 16) & 0xffff).u16(v & 0xffff);
  }

  copy(bytes: Uint8Array): this {
    this.#out.set(bytes, this.#at);
    this.#at += bytes.length;
    return this;
  }

  /** Zeros to the next word boundary; with `padCount`, RTCP padding whose last byte is its count. */
  zeroToWord(padCount?: number): this {
    while ((this.#at - this.#start) % 4 !== 0) this.u8(0);
    if (padCount !== undefined) this.#out[this.#at - 1] = padCount;
    return this;
  }

  report(r: ReportBlock): this {
    return this.u32(r.ssrc)
      .u8(r.fractionLost & 0xff)
      .u8((r.packetsLost >> 16) & 0xff)
      .u16(r.packetsLost & 0xffff)
      .u32(r.highestSequence)
      .u32(r.jitter)
      .u32(r.lastSr)
      .u32(r.delaySinceLastSr);
  }
}
