/**
 * The DTLS 1.2 record layer's framing (RFC 6347 §4.1) and handshake message framing with
 * reassembly (§4.2.2–4.2.3): a datagram is cut into records (type, version, epoch, 48-bit
 * sequence number, fragment view); handshake fragments (message type, length, message_seq,
 * fragment offset and length) are put back together whatever order, overlap or duplication they
 * come in. Views, no copies until a message is whole; wire input is never thrown on.
 */
import { accept, type Parsed, reject } from "../reject.ts";

/** Record content types. */
export const ContentType = {
  CHANGE_CIPHER_SPEC: 20,
  ALERT: 21,
  HANDSHAKE: 22,
  APPLICATION_DATA: 23,
} as const;

/** Why a record or handshake fragment was refused. */
export type RecordReason =
  /** Fewer bytes than a record header, or than the length it gives. */
  | "dtls-short-record"
  /** A content type outside 20–63 or a version that is not DTLS (0xFEFF, 0xFEFD). */
  | "dtls-bad-record"
  /** A handshake fragment shorter than its header or than its length, or past its message. */
  | "dtls-bad-fragment";

/** One record of a datagram. */
export interface DtlsRecord {
  readonly type: number;
  readonly version: number;
  readonly epoch: number;
  /** The 48-bit sequence number. */
  readonly seq: number;
  /** A view of the fragment. */
  readonly fragment: Uint8Array;
}

const RECORD_HEADER = 13;

/**
 * The records of `datagram`, in order; refused (with what was read before discarded by the
 * caller as it sees fit) at the first that does not frame.
 */
export function parseRecords(datagram: Uint8Array): Parsed<DtlsRecord[], RecordReason> {
  const out: DtlsRecord[] = [];
  const v = new DataView(datagram.buffer, datagram.byteOffset, datagram.byteLength);
  for (let at = 0; at < datagram.length; ) {
    if (datagram.length - at < RECORD_HEADER) return reject("dtls-short-record");
    const type = datagram[at] as number;
    const version = v.getUint16(at + 1);
    if (type < 20 || type > 63 || (version !== 0xfeff && version !== 0xfefd))
      return reject("dtls-bad-record");
    const length = v.getUint16(at + 11);
    const end = at + RECORD_HEADER + length;
    if (end > datagram.length) return reject("dtls-short-record");
    out.push({
      type,
      version,
      epoch: v.getUint16(at + 3),
      seq: v.getUint16(at + 5) * 2 ** 32 + v.getUint32(at + 7),
      fragment: datagram.subarray(at + RECORD_HEADER, end),
    });
    at = end;
  }
  return accept(out);
}

/** Writes record (`type`, `version`, `epoch`, `seq`, `fragment`) at `at` of `out`; returns its length. */
export function writeRecord(
  out: Uint8Array,
  at: number,
  record: {
    readonly type: number;
    readonly version: number;
    readonly epoch: number;
    readonly seq: number;
    readonly fragment: Uint8Array;
  },
): number {
  const n = RECORD_HEADER + record.fragment.length;
  if (out.length < at + n)
    throw new RangeError(`${n} bytes needed at ${at}, the buffer has ${out.length}`);
  const v = new DataView(out.buffer, out.byteOffset, out.byteLength);
  out[at] = record.type;
  v.setUint16(at + 1, record.version);
  v.setUint16(at + 3, record.epoch);
  v.setUint16(at + 5, Math.floor(record.seq / 2 ** 32));
  v.setUint32(at + 7, record.seq >>> 0);
  v.setUint16(at + 11, record.fragment.length);
  out.set(record.fragment, at + RECORD_HEADER);
  return n;
}

/** One handshake fragment (RFC 6347 §4.2.2). */
export interface HandshakeFragment {
  readonly msgType: number;
  /** The whole message's length. */
  readonly length: number;
  readonly messageSeq: number;
  readonly offset: number;
  /** A view of this fragment's bytes. */
  readonly body: Uint8Array;
}

const HANDSHAKE_HEADER = 12;

/** The handshake fragments of a (decrypted) handshake record's fragment. */
export function parseHandshakeFragments(
  fragment: Uint8Array,
): Parsed<HandshakeFragment[], RecordReason> {
  const out: HandshakeFragment[] = [];
  for (let at = 0; at < fragment.length; ) {
    if (fragment.length - at < HANDSHAKE_HEADER) return reject("dtls-bad-fragment");
    const u24 = (i: number) =>
      ((fragment[i] as number) << 16) |
      ((fragment[i + 1] as number) << 8) |
      (fragment[i + 2] as number);
    const length = u24(at + 1);
    const offset = u24(at + 6);
    const fragLength = u24(at + 9);
    const end = at + HANDSHAKE_HEADER + fragLength;
    if (end > fragment.length || offset + fragLength > length) return reject("dtls-bad-fragment");
    out.push({
      msgType: fragment[at] as number,
      length,
      messageSeq: ((fragment[at + 4] as number) << 8) | (fragment[at + 5] as number),
      offset,
      body: fragment.subarray(at + HANDSHAKE_HEADER, end),
    });
    at = end;
  }
  return accept(out);
}

/**
 * Writes handshake message (`msgType`, `messageSeq`, `body`) as fragments of at most
 * `maxFragment` body bytes; returns each fragment with its header (new arrays).
 */
export function fragmentHandshake(
  msgType: number,
  messageSeq: number,
  body: Uint8Array,
  maxFragment: number,
): Uint8Array[] {
  if (maxFragment < 1) throw new RangeError("fragments need at least one byte of body");
  const out: Uint8Array[] = [];
  for (
    let offset = 0;
    offset < body.length || (offset === 0 && out.length === 0);
    offset += maxFragment
  ) {
    const n = Math.min(maxFragment, body.length - offset);
    const f = new Uint8Array(HANDSHAKE_HEADER + n);
    const u24 = (i: number, x: number) => {
      f[i] = (x >>> 16) & 0xff;
      f[i + 1] = (x >>> 8) & 0xff;
      f[i + 2] = x & 0xff;
    };
    f[0] = msgType;
    u24(1, body.length);
    f[4] = (messageSeq >>> 8) & 0xff;
    f[5] = messageSeq & 0xff;
    u24(6, offset);
    u24(9, n);
    f.set(body.subarray(offset, offset + n), HANDSHAKE_HEADER);
    out.push(f);
    if (body.length === 0) break;
  }
  return out;
}

/** A message put back together: its type, sequence number and body. */
export interface HandshakeMessage {
  readonly msgType: number;
  readonly messageSeq: number;
  readonly body: Uint8Array;
}

/**
 * Puts handshake messages back together from fragments in any order, overlapping or repeated,
 * and hands them out in message_seq order starting at `next`. Fragments of messages already
 * handed out are ignored (retransmissions); fragments too far ahead (past `window` messages) or
 * disagreeing with what is known of their message (another type or length) are refused.
 * Memory is bounded: at most `window` messages of at most `maxMessage` bytes are held.
 */
export class HandshakeReassembler {
  #next: number;
  readonly #window: number;
  readonly #maxMessage: number;
  readonly #pending = new Map<
    number,
    { msgType: number; body: Uint8Array; have: Uint8Array; missing: number }
  >();

  /** A reassembler expecting message_seq `next` first. */
  constructor(next = 0, window = 8, maxMessage = 1 << 16) {
    this.#next = next;
    this.#window = window;
    this.#maxMessage = maxMessage;
  }

  /** The message_seq expected next. */
  get next(): number {
    return this.#next;
  }

  /** Adds `f`; returns undefined when taken or ignored, or why it was refused. */
  add(f: HandshakeFragment): RecordReason | undefined {
    if (f.messageSeq < this.#next) return undefined; // already handed out: a retransmission
    if (f.messageSeq >= this.#next + this.#window || f.length > this.#maxMessage)
      return "dtls-bad-fragment";
    let m = this.#pending.get(f.messageSeq);
    if (m === undefined) {
      m = {
        msgType: f.msgType,
        body: new Uint8Array(f.length),
        have: new Uint8Array(f.length),
        missing: f.length,
      };
      this.#pending.set(f.messageSeq, m);
    } else if (m.msgType !== f.msgType || m.body.length !== f.length) return "dtls-bad-fragment";
    m.body.set(f.body, f.offset);
    for (let i = f.offset; i < f.offset + f.body.length; i++) {
      if (m.have[i] === 0) {
        m.have[i] = 1;
        m.missing--;
      }
    }
    return undefined;
  }

  /** The next whole message in order, or undefined. */
  pop(): HandshakeMessage | undefined {
    const m = this.#pending.get(this.#next);
    if (m === undefined || m.missing > 0) return undefined;
    this.#pending.delete(this.#next);
    return { msgType: m.msgType, messageSeq: this.#next++, body: m.body };
  }
}
