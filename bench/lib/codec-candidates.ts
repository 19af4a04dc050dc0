/**
 * The codecs the bus default (JsonBytesCodec) was measured against in bench/codec.ts: a tagged
 * binary codec written for this purpose, and plain JSON. Kept here so the measurement can be
 * repeated; the runtime does not use them.
 */
import type { Codec, Structured } from "../../src/bus/index.ts";

const MAX_DEPTH = 64;
const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder("utf-8", { fatal: true });

const T_UNDEFINED = 0;
const T_NULL = 1;
const T_FALSE = 2;
const T_TRUE = 3;
const T_INT32 = 4;
const T_FLOAT64 = 5;
const T_STRING = 6;
const T_BYTES = 7;
const T_ARRAY = 8;
const T_OBJECT = 9;

/** Internal: an encoding failure that collects the path to the bad value on its way out. */
class EncodeError extends Error {
  path = "";
  static within(e: unknown, step: string): unknown {
    if (e instanceof EncodeError) e.path = step + e.path;
    return e;
  }
}

/**
 * A small tagged binary codec: one type byte per value, little-endian numbers, length-prefixed
 * UTF-8 strings, byte arrays and containers.
 */
export class TaggedCodec implements Codec<Structured> {
  #buf = new Uint8Array(256);
  #view = new DataView(this.#buf.buffer);
  #at = 0;

  encode(value: Structured): Uint8Array {
    this.#at = 0;
    try {
      this.#value(value, 0);
    } catch (e) {
      if (e instanceof EncodeError) throw new TypeError(`cannot encode $${e.path}: ${e.message}`);
      throw e;
    }
    return this.#buf.subarray(0, this.#at);
  }

  decode(bytes: Uint8Array): Structured {
    const reader = new Reader(bytes);
    const value = reader.value(0);
    if (reader.at !== bytes.length) {
      throw new RangeError(`malformed message: ${bytes.length - reader.at} trailing bytes`);
    }
    return value;
  }

  #room(n: number): void {
    if (this.#at + n <= this.#buf.length) return;
    let size = this.#buf.length * 2;
    while (size < this.#at + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.#buf.subarray(0, this.#at));
    this.#buf = next;
    this.#view = new DataView(next.buffer);
  }

  #byte(b: number): void {
    this.#room(1);
    this.#buf[this.#at++] = b;
  }

  #u32(n: number): void {
    this.#room(4);
    this.#view.setUint32(this.#at, n, true);
    this.#at += 4;
  }

  #value(v: Structured, depth: number): void {
    if (depth > MAX_DEPTH) throw new EncodeError(`nested deeper than ${MAX_DEPTH}`);
    switch (typeof v) {
      case "undefined":
        this.#byte(T_UNDEFINED);
        return;
      case "boolean":
        this.#byte(v ? T_TRUE : T_FALSE);
        return;
      case "number":
        if ((v | 0) === v && !Object.is(v, -0)) {
          this.#room(5);
          this.#buf[this.#at] = T_INT32;
          this.#view.setInt32(this.#at + 1, v, true);
          this.#at += 5;
        } else {
          this.#room(9);
          this.#buf[this.#at] = T_FLOAT64;
          this.#view.setFloat64(this.#at + 1, v, true);
          this.#at += 9;
        }
        return;
      case "string": {
        this.#room(5 + v.length * 3);
        this.#buf[this.#at] = T_STRING;
        const { written } = utf8.encodeInto(v, this.#buf.subarray(this.#at + 5));
        this.#view.setUint32(this.#at + 1, written, true);
        this.#at += 5 + written;
        return;
      }
      case "object": {
        if (v === null) {
          this.#byte(T_NULL);
          return;
        }
        if (v instanceof Uint8Array) {
          this.#byte(T_BYTES);
          this.#u32(v.length);
          this.#room(v.length);
          this.#buf.set(v, this.#at);
          this.#at += v.length;
          return;
        }
        if (Array.isArray(v)) {
          const items = v as readonly Structured[];
          this.#byte(T_ARRAY);
          this.#u32(items.length);
          for (let i = 0; i < items.length; i++) {
            try {
              this.#value(items[i], depth + 1);
            } catch (e) {
              throw EncodeError.within(e, `[${i}]`);
            }
          }
          return;
        }
        const proto = Object.getPrototypeOf(v);
        if (proto !== Object.prototype && proto !== null) {
          throw new EncodeError(`${proto?.constructor?.name ?? "object"} is not a plain object`);
        }
        const record = v as { readonly [key: string]: Structured };
        const keys = Object.keys(record);
        this.#byte(T_OBJECT);
        this.#u32(keys.length);
        for (const key of keys) {
          this.#value(key, depth + 1);
          try {
            this.#value(record[key], depth + 1);
          } catch (e) {
            throw EncodeError.within(e, `.${key}`);
          }
        }
        return;
      }
      default:
        throw new EncodeError(`${typeof v} is not supported`);
    }
  }
}

const f64 = new Float64Array(1);
const f64Bytes = new Uint8Array(f64.buffer);

class Reader {
  at = 0;
  constructor(readonly bytes: Uint8Array) {}

  need(n: number): void {
    if (this.at + n > this.bytes.length) {
      throw new RangeError(
        `malformed message: needs ${n} bytes at offset ${this.at}, has ${this.bytes.length - this.at}`,
      );
    }
  }

  u32(): number {
    this.need(4);
    const b = this.bytes;
    const at = this.at;
    this.at = at + 4;
    return (
      ((b[at] as number) |
        ((b[at + 1] as number) << 8) |
        ((b[at + 2] as number) << 16) |
        ((b[at + 3] as number) << 24)) >>>
      0
    );
  }

  value(depth: number): Structured {
    if (depth > MAX_DEPTH)
      throw new RangeError(`malformed message: nested deeper than ${MAX_DEPTH}`);
    this.need(1);
    const type = this.bytes[this.at++];
    switch (type) {
      case T_UNDEFINED:
        return undefined;
      case T_NULL:
        return null;
      case T_FALSE:
        return false;
      case T_TRUE:
        return true;
      case T_INT32:
        return this.u32() | 0;
      case T_FLOAT64: {
        this.need(8);
        for (let i = 0; i < 8; i++) f64Bytes[i] = this.bytes[this.at + i] as number;
        this.at += 8;
        return f64[0] as number;
      }
      case T_STRING: {
        const n = this.u32();
        this.need(n);
        const s = utf8Decoder.decode(this.bytes.subarray(this.at, this.at + n));
        this.at += n;
        return s;
      }
      case T_BYTES: {
        const n = this.u32();
        this.need(n);
        const copy = this.bytes.slice(this.at, this.at + n);
        this.at += n;
        return copy;
      }
      case T_ARRAY: {
        const n = this.u32();
        this.need(n); // every item takes at least one byte: a lying count fails here, not later
        const items: Structured[] = [];
        for (let i = 0; i < n; i++) items.push(this.value(depth + 1));
        return items;
      }
      case T_OBJECT: {
        const n = this.u32();
        this.need(n * 2);
        const record: { [key: string]: Structured } = {};
        for (let i = 0; i < n; i++) {
          const key = this.value(depth + 1);
          if (typeof key !== "string")
            throw new RangeError("malformed message: object key is not a string");
          const item = this.value(depth + 1);
          if (key === "__proto__") {
            // a plain assignment would replace the prototype instead of adding a key
            Object.defineProperty(record, key, {
              value: item,
              enumerable: true,
              writable: true,
              configurable: true,
            });
          } else {
            record[key] = item;
          }
        }
        return record;
      }
      default:
        throw new RangeError(
          `malformed message: unknown type byte ${type} at offset ${this.at - 1}`,
        );
    }
  }
}

/** JSON text in UTF-8: the plain baseline (cannot carry `Uint8Array` efficiently). */
export class JsonCodec implements Codec<Structured> {
  #buf = new Uint8Array(256);

  encode(value: Structured): Uint8Array {
    const text = JSON.stringify(value) ?? "null";
    if (this.#buf.length < text.length * 3) this.#buf = new Uint8Array(text.length * 3);
    const { written } = utf8.encodeInto(text, this.#buf);
    return this.#buf.subarray(0, written);
  }

  decode(bytes: Uint8Array): Structured {
    return JSON.parse(utf8Decoder.decode(bytes)) as Structured;
  }
}
