/**
 * Codecs turn structured messages into ring records and back.
 *
 * `encode` returns bytes that stay valid only until the next `encode` call on the same codec (the
 * codec reuses a scratch buffer); the ring copies them at once. `decode` must not keep the view it
 * is given: the record is released after the handler returns.
 */
export interface Codec<T> {
  /** Encodes `value`; throws a TypeError naming the path of a value it cannot represent. */
  encode(value: T): Uint8Array;
  /** Decodes a record made by `encode`; throws a RangeError on malformed input. */
  decode(bytes: Uint8Array): T;
}

/** The values the default codec carries: JSON-like data plus `undefined` and `Uint8Array`. */
export type Structured =
  | undefined
  | null
  | boolean
  | number
  | string
  | Uint8Array
  | readonly Structured[]
  | { readonly [key: string]: Structured };

/**
 * A message type the bus can carry: `T` itself when the bus codec can carry it (JSON-like data,
 * `undefined` and `Uint8Array`; no functions, class instances or bigints). Checked as
 * `value: T & Encodable<T>` (or through `AppTask<M>`), it accepts plain interfaces without index
 * signatures and makes a field the codec cannot carry a compile-time error. What TypeScript cannot see (an
 * `unknown` cast, a NaN) the codec refuses at run time with a TypeError naming the path.
 */
export type Encodable<T> = T extends undefined | null | boolean | number | string | Uint8Array
  ? T
  : T extends (...args: never[]) => unknown
    ? never
    : T extends readonly (infer U)[]
      ? readonly Encodable<U>[]
      : T extends object
        ? { readonly [K in keyof T]: Encodable<T[K]> }
        : never;

const MAX_DEPTH = 64;

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder("utf-8", { fatal: true });

const PLAIN = 0;
const WITH_BYTES = 1;
const BYTES_KEY = "\u0000bytes";

/**
 * JSON for the structure, raw bytes for every `Uint8Array` in it: one flag byte, then (only when
 * the message holds byte arrays) their count and length-prefixed contents, then the JSON text in
 * which each byte array is replaced by `{"\u0000bytes": index}`.
 *
 * Before encoding it checks that JSON will not silently change the value: functions, symbols,
 * bigints, non-finite numbers, class instances (Map, Date...) and cycles (as nesting deeper than
 * 64) are refused with a
 * TypeError naming the path. The bus default, chosen by measurement against JSON, a tagged binary codec and bun:jsc (bench/codec.ts, docs/benchmarks.md).
 */
export class JsonBytesCodec implements Codec<Structured> {
  #buf = new Uint8Array(256);
  #attachments: Uint8Array[] = [];
  readonly #replacer = (_key: string, v: unknown): unknown => {
    if (v instanceof Uint8Array) {
      this.#attachments.push(v);
      return { [BYTES_KEY]: this.#attachments.length - 1 };
    }
    return v;
  };

  encode(value: Structured): Uint8Array {
    const hasBytes = check(value, 0);
    this.#attachments.length = 0;
    const text = JSON.stringify(value, hasBytes ? this.#replacer : undefined) ?? "null";
    let size = 1 + text.length * 3;
    for (const a of this.#attachments) size += 4 + a.length;
    if (hasBytes) size += 4;
    if (this.#buf.length < size) this.#buf = new Uint8Array(size);
    const buf = this.#buf;
    let at = 1;
    buf[0] = hasBytes ? WITH_BYTES : PLAIN;
    if (hasBytes) {
      at = writeU32(buf, at, this.#attachments.length);
      for (const a of this.#attachments) {
        at = writeU32(buf, at, a.length);
        buf.set(a, at);
        at += a.length;
      }
      this.#attachments.length = 0;
    }
    const { written } = utf8.encodeInto(text, buf.subarray(at));
    return buf.subarray(0, at + written);
  }

  decode(bytes: Uint8Array): Structured {
    if (bytes.length === 0) throw new RangeError("malformed message: empty");
    const flag = bytes[0];
    if (flag === PLAIN) return parse(bytes.subarray(1));
    if (flag !== WITH_BYTES) throw new RangeError(`malformed message: unknown flag ${flag}`);
    let at = 1;
    const count = readU32(bytes, at);
    at += 4;
    if (count > bytes.length)
      throw new RangeError(`malformed message: ${count} byte arrays claimed`);
    const attachments: Uint8Array[] = [];
    for (let i = 0; i < count; i++) {
      const length = readU32(bytes, at);
      at += 4;
      if (at + length > bytes.length)
        throw new RangeError("malformed message: byte array runs past the end");
      attachments.push(bytes.slice(at, at + length));
      at += length;
    }
    return parse(bytes.subarray(at), (_key, v) => {
      if (v !== null && typeof v === "object" && !Array.isArray(v)) {
        const index = (v as Record<string, unknown>)[BYTES_KEY];
        if (typeof index === "number" && Object.keys(v).length === 1) {
          const a = attachments[index];
          if (a === undefined)
            throw new RangeError(`malformed message: byte array ${index} missing`);
          return a;
        }
      }
      return v;
    });
  }
}

function parse(text: Uint8Array, reviver?: (key: string, value: unknown) => unknown): Structured {
  try {
    return JSON.parse(utf8Decoder.decode(text), reviver) as Structured;
  } catch (e) {
    if (e instanceof RangeError) throw e;
    throw new RangeError(`malformed message: ${e instanceof Error ? e.message : String(e)}`);
  }
}

function writeU32(buf: Uint8Array, at: number, n: number): number {
  buf[at] = n;
  buf[at + 1] = n >>> 8;
  buf[at + 2] = n >>> 16;
  buf[at + 3] = n >>> 24;
  return at + 4;
}

function readU32(buf: Uint8Array, at: number): number {
  if (at + 4 > buf.length) throw new RangeError(`malformed message: truncated at offset ${at}`);
  return (
    ((buf[at] as number) |
      ((buf[at + 1] as number) << 8) |
      ((buf[at + 2] as number) << 16) |
      ((buf[at + 3] as number) << 24)) >>>
    0
  );
}

/** Throws a TypeError for anything JSON would silently change; true when a Uint8Array is inside. */
function check(v: unknown, depth: number): boolean {
  switch (typeof v) {
    case "string":
    case "boolean":
    case "undefined":
      return false;
    case "number":
      if (!Number.isFinite(v)) throw new TypeError(`cannot encode $: ${v} has no JSON form`);
      return false;
    case "object": {
      if (v === null) return false;
      if (v instanceof Uint8Array) return true;
      if (depth > MAX_DEPTH) {
        throw new TypeError(`cannot encode $: nested deeper than ${MAX_DEPTH} (or a cycle)`);
      }
      let bytes = false;
      if (Array.isArray(v)) {
        for (let i = 0; i < v.length; i++) bytes = checkIn(v[i], depth, `[${i}]`) || bytes;
      } else {
        const proto = Object.getPrototypeOf(v);
        if (proto !== Object.prototype && proto !== null) {
          throw new TypeError(
            `cannot encode $: ${proto?.constructor?.name ?? "object"} is not a plain object`,
          );
        }
        if (BYTES_KEY in v)
          throw new TypeError("cannot encode $: the key \\u0000bytes is reserved");
        for (const key in v)
          bytes = checkIn((v as Record<string, unknown>)[key], depth, `.${key}`) || bytes;
      }
      return bytes;
    }
    default:
      throw new TypeError(`cannot encode $: ${typeof v} is not supported`);
  }
}

function checkIn(v: unknown, depth: number, step: string): boolean {
  try {
    return check(v, depth + 1);
  } catch (e) {
    if (e instanceof TypeError) e.message = e.message.replace("$", `$${step}`);
    throw e;
  }
}
