/**
 * STUN messages (RFC 5389, RFC 8489): `parseStun` reads a datagram into a `StunMessage` whose
 * attributes are views of the datagram, `buildStun` writes one, `checkIntegrity` verifies
 * MESSAGE-INTEGRITY (HMAC-SHA1) with a short-term or long-term key. Parsing never throws on wire
 * input: it returns a `Parsed` with a fixed `StunReason`. Pure: no I/O, no clock, no randomness.
 */
import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { crc32 } from "node:zlib";
import { SocketAddr } from "../io/addr.ts";
import { accept, type Parsed, reject } from "./reject.ts";

/** The magic cookie every RFC 5389 message carries in bytes 4..8. */
export const STUN_MAGIC_COOKIE = 0x2112a442;
/** Bytes of the STUN header: type, length, magic cookie, transaction id. */
export const STUN_HEADER_LENGTH = 20;
/** The Binding method, the only one ICE uses. */
export const STUN_BINDING = 0x001;

/** Attribute types this codec knows (RFC 5389 §18.2, RFC 8445 §16.1). */
export const StunAttr = {
  MAPPED_ADDRESS: 0x0001,
  USERNAME: 0x0006,
  MESSAGE_INTEGRITY: 0x0008,
  ERROR_CODE: 0x0009,
  UNKNOWN_ATTRIBUTES: 0x000a,
  REALM: 0x0014,
  NONCE: 0x0015,
  XOR_MAPPED_ADDRESS: 0x0020,
  PRIORITY: 0x0024,
  USE_CANDIDATE: 0x0025,
  SOFTWARE: 0x8022,
  FINGERPRINT: 0x8028,
  ICE_CONTROLLED: 0x8029,
  ICE_CONTROLLING: 0x802a,
} as const;

/** The class of a message: the two class bits of its type. */
export type StunClass = "request" | "indication" | "success" | "error";

/** Why `parseStun` refused a datagram. */
export type StunReason =
  /** Fewer than 20 bytes. */
  | "stun-short"
  /** The first two bits are not zero (not STUN, RFC 7983). */
  | "stun-bad-header"
  | "stun-bad-cookie"
  /** The length field is not a multiple of 4 or does not match the datagram. */
  | "stun-bad-length"
  /** An attribute overruns the message, a known one has a bad length or value, or something follows FINGERPRINT. */
  | "stun-bad-attribute"
  | "stun-bad-fingerprint";

/** Why `checkIntegrity` refused a message. */
export type StunIntegrityReason = "stun-no-integrity" | "stun-bad-integrity";

/** One attribute as received: its type and a view of its value (padding excluded). */
export interface StunAttribute {
  readonly type: number;
  readonly value: Uint8Array;
}

/** An ERROR-CODE value: code 300 to 699 and a reason phrase. */
export interface StunErrorCode {
  readonly code: number;
  readonly reason: string;
}

/**
 * A parsed message. Views share memory with the datagram parsed: keep a copy if the datagram's
 * buffer is reused. Attributes after MESSAGE-INTEGRITY other than FINGERPRINT are ignored
 * (RFC 5389 §15.4) and appear nowhere; the typed getters read the first occurrence of a type.
 */
export interface StunMessage {
  readonly cls: StunClass;
  readonly method: number;
  /** The 12-byte transaction id (a view). */
  readonly transactionId: Uint8Array;
  /** The whole datagram (a view). */
  readonly raw: Uint8Array;
  /** Attributes in order, MESSAGE-INTEGRITY and FINGERPRINT included, unknown ones too. */
  readonly attributes: readonly StunAttribute[];
  /** Unknown comprehension-required types (below 0x8000), for a 420 answer; empty if none. */
  readonly unknownRequired: readonly number[];
  /** Offset of the MESSAGE-INTEGRITY attribute header in `raw`, or -1 when absent. */
  readonly integrityAt: number;
  /** True when a FINGERPRINT was present (parsing verified it). */
  readonly hasFingerprint: boolean;
  /** The value of the first attribute of `type`, or undefined. */
  get(type: number): Uint8Array | undefined;
  readonly username: string | undefined;
  readonly software: string | undefined;
  readonly realm: string | undefined;
  readonly nonce: string | undefined;
  readonly mappedAddress: SocketAddr | undefined;
  readonly xorMappedAddress: SocketAddr | undefined;
  readonly errorCode: StunErrorCode | undefined;
  readonly unknownAttributes: readonly number[] | undefined;
  readonly priority: number | undefined;
  readonly useCandidate: boolean;
  readonly iceControlled: bigint | undefined;
  readonly iceControlling: bigint | undefined;
}

/** One attribute to build, by name; MESSAGE-INTEGRITY and FINGERPRINT come from the options. */
export type StunAttributeInit =
  | { readonly type: "username" | "software" | "realm" | "nonce"; readonly value: string }
  | { readonly type: "mapped-address" | "xor-mapped-address"; readonly value: SocketAddr }
  | { readonly type: "error-code"; readonly value: StunErrorCode }
  | { readonly type: "unknown-attributes"; readonly value: readonly number[] }
  | { readonly type: "priority"; readonly value: number }
  | { readonly type: "use-candidate" }
  | { readonly type: "ice-controlled" | "ice-controlling"; readonly value: bigint }
  /** Any attribute as bytes (`code` is its type number). */
  | { readonly type: "raw"; readonly code: number; readonly value: Uint8Array };

/** A message to build. */
export interface StunInit {
  readonly cls: StunClass;
  /** Default: Binding. */
  readonly method?: number;
  /** 12 bytes. */
  readonly transactionId: Uint8Array;
  /** Written in this order. */
  readonly attributes?: readonly StunAttributeInit[];
}

/** How to finish a message. */
export interface StunBuildOptions {
  /** Append MESSAGE-INTEGRITY computed with this key (`shortTermKey` or `longTermKey`). */
  readonly integrity?: Uint8Array;
  /** Append FINGERPRINT (last). */
  readonly fingerprint?: boolean;
  /**
   * The byte written into attribute padding; default 0 (RFC 8489 §14). RFC 5389 §15 lets it be
   * any value, and the RFC 5769 vectors use 0x20.
   */
  readonly padding?: number;
}

const FINGERPRINT_XOR = 0x5354554e;
const INTEGRITY_LENGTH = 20;
/** Longest USERNAME (RFC 5389 §15.3: less than 513 bytes). */
const MAX_USERNAME = 512;
/** Longest SOFTWARE, REALM, NONCE or reason phrase (128 characters, up to 763 bytes). */
const MAX_TEXT = 763;

const CLASSES: readonly StunClass[] = ["request", "indication", "success", "error"];
const decoder = new TextDecoder();
const encoder = new TextEncoder();

/** True when a datagram whose first byte is `firstByte` is STUN (0 to 3, RFC 7983 §7). */
export function isStun(firstByte: number): boolean {
  return firstByte >= 0 && firstByte <= 3;
}

/** The short-term credential key (RFC 5389 §15.4): the password's UTF-8 bytes. */
export function shortTermKey(password: string): Uint8Array {
  return encoder.encode(password);
}

/**
 * The long-term credential key (RFC 5389 §15.4): MD5(username ":" realm ":" password), with
 * strings already processed by SASLprep (this function does not apply it).
 */
export function longTermKey(username: string, realm: string, password: string): Uint8Array {
  return new Uint8Array(createHash("md5").update(`${username}:${realm}:${password}`).digest());
}

/**
 * Reads a datagram. Checks the first two bits, the magic cookie, the length (a multiple of 4
 * that matches the datagram), every attribute's framing and padding, known attributes' lengths
 * and values, and FINGERPRINT when present (which must be last). Never throws.
 */
export function parseStun(datagram: Uint8Array): Parsed<StunMessage, StunReason> {
  const end = datagram.length;
  if (end < STUN_HEADER_LENGTH) return reject("stun-short");
  const type = u16(datagram, 0);
  if (type & 0xc000) return reject("stun-bad-header");
  if (u32(datagram, 4) !== STUN_MAGIC_COOKIE) return reject("stun-bad-cookie");
  const length = u16(datagram, 2);
  if (length % 4 !== 0 || length !== end - STUN_HEADER_LENGTH) {
    return reject("stun-bad-length", `length field ${length}, ${end - STUN_HEADER_LENGTH} bytes`);
  }
  const attributes: StunAttribute[] = [];
  const unknownRequired: number[] = [];
  let integrityAt = -1;
  let fingerprintAt = -1;
  // `at` and `end` stay multiples of 4, so a whole attribute header always fits
  for (let at = STUN_HEADER_LENGTH; at < end; ) {
    if (fingerprintAt >= 0) return reject("stun-bad-attribute", "an attribute after FINGERPRINT");
    const attrType = u16(datagram, at);
    const attrLength = u16(datagram, at + 2);
    const next = at + 4 + ((attrLength + 3) & ~3);
    if (next > end) return reject("stun-bad-attribute", `attribute ${hex(attrType)} overruns`);
    const value = datagram.subarray(at + 4, at + 4 + attrLength);
    if (attrType === StunAttr.FINGERPRINT || integrityAt < 0) {
      const known = validAttribute(attrType, value);
      if (known === false) return reject("stun-bad-attribute", `bad ${hex(attrType)}`);
      if (known === undefined && attrType < 0x8000) unknownRequired.push(attrType);
      if (attrType === StunAttr.FINGERPRINT) fingerprintAt = at;
      else if (attrType === StunAttr.MESSAGE_INTEGRITY) integrityAt = at;
      attributes.push({ type: attrType, value });
    }
    at = next;
  }
  if (fingerprintAt >= 0) {
    const expected = (crc32(datagram.subarray(0, fingerprintAt)) ^ FINGERPRINT_XOR) >>> 0;
    if (u32(datagram, fingerprintAt + 4) !== expected) return reject("stun-bad-fingerprint");
  }
  const cls = CLASSES[((type >> 4) & 1) | ((type >> 7) & 2)] as StunClass;
  const method = (type & 0x000f) | ((type >> 1) & 0x0070) | ((type >> 2) & 0x0f80);
  return accept(
    new Message(
      datagram,
      cls,
      method,
      attributes,
      unknownRequired,
      integrityAt,
      fingerprintAt >= 0,
    ),
  );
}

/**
 * Verifies MESSAGE-INTEGRITY with `key`: HMAC-SHA1 over the message up to the attribute, with
 * the header's length field counting up to the end of MESSAGE-INTEGRITY (RFC 5389 §15.4).
 */
export function checkIntegrity(
  message: StunMessage,
  key: Uint8Array,
): Parsed<StunMessage, StunIntegrityReason> {
  const at = message.integrityAt;
  if (at < 0) return reject("stun-no-integrity");
  const mac = integrityOf(message.raw, at, key);
  const got = message.raw.subarray(at + 4, at + 4 + INTEGRITY_LENGTH);
  return timingSafeEqual(mac, got) ? accept(message) : reject("stun-bad-integrity");
}

/**
 * Writes a message: the attributes in order, then MESSAGE-INTEGRITY and FINGERPRINT as the
 * options ask. Throws a RangeError for what cannot be encoded (a transaction id that is not 12
 * bytes, an over-long string, an error code outside 300..699, a priority or tie-breaker out of
 * range): that is a caller's mistake, not wire input.
 */
export function buildStun(init: StunInit, options: StunBuildOptions = {}): Uint8Array {
  const id = init.transactionId;
  if (id.length !== 12) throw new RangeError(`a transaction id has 12 bytes, got ${id.length}`);
  const method = init.method ?? STUN_BINDING;
  if (!Number.isInteger(method) || method < 0 || method > 0xfff) {
    throw new RangeError(`a STUN method is 0 to 0xfff, got ${method}`);
  }
  const encoded = (init.attributes ?? []).map((a) => encodeAttribute(a, id));
  let length = 0;
  for (const a of encoded) length += 4 + padded(a.value.length);
  const integrityAt = STUN_HEADER_LENGTH + length;
  if (options.integrity !== undefined) length += 4 + INTEGRITY_LENGTH;
  const fingerprintAt = STUN_HEADER_LENGTH + length;
  if (options.fingerprint === true) length += 8;
  if (length > 0xffff)
    throw new RangeError(`a STUN message has at most 65,535 bytes of attributes`);

  const out = new Uint8Array(STUN_HEADER_LENGTH + length).fill(options.padding ?? 0);
  const c = CLASSES.indexOf(init.cls);
  const type =
    (method & 0x000f) |
    ((method & 0x0070) << 1) |
    ((method & 0x0f80) << 2) |
    ((c & 1) << 4) |
    ((c & 2) << 7);
  put16(out, 0, type);
  put32(out, 4, STUN_MAGIC_COOKIE);
  out.set(id, 8);
  let at = STUN_HEADER_LENGTH;
  for (const a of encoded) {
    put16(out, at, a.type);
    put16(out, at + 2, a.value.length);
    out.set(a.value, at + 4);
    at += 4 + padded(a.value.length);
  }
  if (options.integrity !== undefined) {
    put16(out, integrityAt, StunAttr.MESSAGE_INTEGRITY);
    put16(out, integrityAt + 2, INTEGRITY_LENGTH);
    out.set(integrityOf(out, integrityAt, options.integrity), integrityAt + 4);
  }
  put16(out, 2, length);
  if (options.fingerprint === true) {
    put16(out, fingerprintAt, StunAttr.FINGERPRINT);
    put16(out, fingerprintAt + 2, 4);
    put32(out, fingerprintAt + 4, crc32(out.subarray(0, fingerprintAt)) ^ FINGERPRINT_XOR);
  }
  return out;
}

/** The HMAC-SHA1 of `raw` up to `at`, the length field counting up to the end of MESSAGE-INTEGRITY. */
function integrityOf(raw: Uint8Array, at: number, key: Uint8Array): Uint8Array {
  const header = raw.slice(0, STUN_HEADER_LENGTH);
  put16(header, 2, at + 4 + INTEGRITY_LENGTH - STUN_HEADER_LENGTH);
  const hmac = createHmac("sha1", key).update(header).update(raw.subarray(STUN_HEADER_LENGTH, at));
  return new Uint8Array(hmac.digest());
}

/** True for a known attribute with a valid value, false for a known one without, undefined for an unknown type. */
function validAttribute(type: number, v: Uint8Array): boolean | undefined {
  switch (type) {
    case StunAttr.MAPPED_ADDRESS:
    case StunAttr.XOR_MAPPED_ADDRESS:
      return (v.length === 8 && v[1] === 1) || (v.length === 20 && v[1] === 2);
    case StunAttr.USERNAME:
      return v.length <= MAX_USERNAME;
    case StunAttr.SOFTWARE:
    case StunAttr.REALM:
    case StunAttr.NONCE:
      return v.length <= MAX_TEXT;
    case StunAttr.MESSAGE_INTEGRITY:
      return v.length === INTEGRITY_LENGTH;
    case StunAttr.ERROR_CODE: {
      if (v.length < 4 || v.length > 4 + MAX_TEXT) return false;
      const cls = (v[2] as number) & 7;
      return cls >= 3 && cls <= 6 && (v[3] as number) < 100;
    }
    case StunAttr.UNKNOWN_ATTRIBUTES:
      return v.length % 2 === 0;
    case StunAttr.PRIORITY:
    case StunAttr.FINGERPRINT:
      return v.length === 4;
    case StunAttr.USE_CANDIDATE:
      return v.length === 0;
    case StunAttr.ICE_CONTROLLED:
    case StunAttr.ICE_CONTROLLING:
      return v.length === 8;
    default:
      return undefined;
  }
}

class Message implements StunMessage {
  readonly transactionId: Uint8Array;

  constructor(
    readonly raw: Uint8Array,
    readonly cls: StunClass,
    readonly method: number,
    readonly attributes: readonly StunAttribute[],
    readonly unknownRequired: readonly number[],
    readonly integrityAt: number,
    readonly hasFingerprint: boolean,
  ) {
    this.transactionId = raw.subarray(8, STUN_HEADER_LENGTH);
  }

  get(type: number): Uint8Array | undefined {
    for (const a of this.attributes) if (a.type === type) return a.value;
    return undefined;
  }

  get username(): string | undefined {
    return this.#text(StunAttr.USERNAME);
  }

  get software(): string | undefined {
    return this.#text(StunAttr.SOFTWARE);
  }

  get realm(): string | undefined {
    return this.#text(StunAttr.REALM);
  }

  get nonce(): string | undefined {
    return this.#text(StunAttr.NONCE);
  }

  get mappedAddress(): SocketAddr | undefined {
    const v = this.get(StunAttr.MAPPED_ADDRESS);
    return v === undefined ? undefined : SocketAddr.fromIp(v.subarray(4), u16(v, 2));
  }

  get xorMappedAddress(): SocketAddr | undefined {
    const v = this.get(StunAttr.XOR_MAPPED_ADDRESS);
    if (v === undefined) return undefined;
    const ip = v.slice(4);
    for (let i = 0; i < ip.length; i++) ip[i] = (ip[i] as number) ^ (this.raw[4 + i] as number);
    return SocketAddr.fromIp(ip, u16(v, 2) ^ (STUN_MAGIC_COOKIE >>> 16));
  }

  get errorCode(): StunErrorCode | undefined {
    const v = this.get(StunAttr.ERROR_CODE);
    if (v === undefined) return undefined;
    return {
      code: ((v[2] as number) & 7) * 100 + (v[3] as number),
      reason: decoder.decode(v.subarray(4)),
    };
  }

  get unknownAttributes(): readonly number[] | undefined {
    const v = this.get(StunAttr.UNKNOWN_ATTRIBUTES);
    if (v === undefined) return undefined;
    const types: number[] = [];
    for (let i = 0; i < v.length; i += 2) types.push(u16(v, i));
    return types;
  }

  get priority(): number | undefined {
    const v = this.get(StunAttr.PRIORITY);
    return v === undefined ? undefined : u32(v, 0);
  }

  get useCandidate(): boolean {
    return this.get(StunAttr.USE_CANDIDATE) !== undefined;
  }

  get iceControlled(): bigint | undefined {
    return this.#u64(StunAttr.ICE_CONTROLLED);
  }

  get iceControlling(): bigint | undefined {
    return this.#u64(StunAttr.ICE_CONTROLLING);
  }

  #text(type: number): string | undefined {
    const v = this.get(type);
    return v === undefined ? undefined : decoder.decode(v);
  }

  #u64(type: number): bigint | undefined {
    const v = this.get(type);
    return v === undefined ? undefined : (BigInt(u32(v, 0)) << 32n) | BigInt(u32(v, 4));
  }
}

function encodeAttribute(a: StunAttributeInit, id: Uint8Array): StunAttribute {
  switch (a.type) {
    case "username":
      return { type: StunAttr.USERNAME, value: text(a.value, MAX_USERNAME) };
    case "software":
      return { type: StunAttr.SOFTWARE, value: text(a.value, MAX_TEXT) };
    case "realm":
      return { type: StunAttr.REALM, value: text(a.value, MAX_TEXT) };
    case "nonce":
      return { type: StunAttr.NONCE, value: text(a.value, MAX_TEXT) };
    case "mapped-address":
      return { type: StunAttr.MAPPED_ADDRESS, value: address(a.value, undefined) };
    case "xor-mapped-address":
      return { type: StunAttr.XOR_MAPPED_ADDRESS, value: address(a.value, id) };
    case "error-code": {
      const { code, reason } = a.value;
      if (!Number.isInteger(code) || code < 300 || code > 699) {
        throw new RangeError(`a STUN error code is 300 to 699, got ${code}`);
      }
      const phrase = text(reason, MAX_TEXT);
      const value = new Uint8Array(4 + phrase.length);
      value[2] = Math.floor(code / 100);
      value[3] = code % 100;
      value.set(phrase, 4);
      return { type: StunAttr.ERROR_CODE, value };
    }
    case "unknown-attributes": {
      const value = new Uint8Array(a.value.length * 2);
      a.value.forEach((t, i) => {
        put16(value, i * 2, uint(t, 16, "attribute type"));
      });
      return { type: StunAttr.UNKNOWN_ATTRIBUTES, value };
    }
    case "priority": {
      const value = new Uint8Array(4);
      put32(value, 0, uint(a.value, 32, "priority"));
      return { type: StunAttr.PRIORITY, value };
    }
    case "use-candidate":
      return { type: StunAttr.USE_CANDIDATE, value: new Uint8Array(0) };
    case "ice-controlled":
    case "ice-controlling": {
      if (a.value < 0n || a.value >= 1n << 64n) throw new RangeError("a tie-breaker is 64 bits");
      const value = new Uint8Array(8);
      put32(value, 0, Number(a.value >> 32n));
      put32(value, 4, Number(a.value & 0xffffffffn));
      const type = a.type === "ice-controlled" ? StunAttr.ICE_CONTROLLED : StunAttr.ICE_CONTROLLING;
      return { type, value };
    }
    case "raw":
      if (a.value.length > 0xffff) throw new RangeError("an attribute has at most 65,535 bytes");
      return { type: uint(a.code, 16, "attribute type"), value: a.value };
  }
}

/** MAPPED-ADDRESS, or XOR-MAPPED-ADDRESS when the transaction id is given. */
function address(addr: SocketAddr, id: Uint8Array | undefined): Uint8Array {
  const ip = addr.ip;
  const value = new Uint8Array(4 + ip.length);
  value[1] = addr.family === 4 ? 1 : 2;
  put16(value, 2, id === undefined ? addr.port : addr.port ^ (STUN_MAGIC_COOKIE >>> 16));
  value.set(ip, 4);
  if (id !== undefined) {
    const mask = new Uint8Array(16);
    put32(mask, 0, STUN_MAGIC_COOKIE);
    mask.set(id, 4);
    for (let i = 0; i < ip.length; i++) value[4 + i] = (ip[i] as number) ^ (mask[i] as number);
  }
  return value;
}

function text(s: string, max: number): Uint8Array {
  const bytes = encoder.encode(s);
  if (bytes.length > max)
    throw new RangeError(`at most ${max} bytes of UTF-8, got ${bytes.length}`);
  return bytes;
}

function uint(n: number, bits: 16 | 32, what: string): number {
  if (!Number.isInteger(n) || n < 0 || n >= 2 ** bits) {
    throw new RangeError(`${what} must be an unsigned ${bits}-bit integer, got ${n}`);
  }
  return n;
}

function padded(n: number): number {
  return (n + 3) & ~3;
}

function hex(type: number): string {
  return `0x${type.toString(16).padStart(4, "0")}`;
}

function u16(b: Uint8Array, i: number): number {
  return ((b[i] as number) << 8) | (b[i + 1] as number);
}

function u32(b: Uint8Array, i: number): number {
  return (
    (((b[i] as number) << 24) |
      ((b[i + 1] as number) << 16) |
      ((b[i + 2] as number) << 8) |
      (b[i + 3] as number)) >>>
    0
  );
}

function put16(b: Uint8Array, i: number, v: number): void {
  b[i] = v >>> 8;
  b[i + 1] = v & 0xff;
}

function put32(b: Uint8Array, i: number, v: number): void {
  b[i] = v >>> 24;
  b[i + 1] = (v >>> 16) & 0xff;
  b[i + 2] = (v >>> 8) & 0xff;
  b[i + 3] = v & 0xff;
}
