/**
 * The few DER (ITU-T X.690) encodings a self-signed X.509 certificate needs: TLV with definite
 * lengths, INTEGER, OBJECT IDENTIFIER, UTF8String, UTCTime / GeneralizedTime, BIT STRING,
 * SEQUENCE, SET and explicit context tags. Writers only; certificates are read with node:crypto.
 */

/** A TLV: `tag`, the definite length of `content`, `content`. */
export function tlv(tag: number, content: Uint8Array): Uint8Array {
  const n = content.length;
  const len: number[] = [];
  if (n < 0x80) len.push(n);
  else {
    const bytes: number[] = [];
    for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
    len.push(0x80 | bytes.length, ...bytes);
  }
  const out = new Uint8Array(1 + len.length + n);
  out[0] = tag;
  out.set(len, 1);
  out.set(content, 1 + len.length);
  return out;
}

function join(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** SEQUENCE of `parts`. */
export function sequence(...parts: readonly Uint8Array[]): Uint8Array {
  return tlv(0x30, join(parts));
}

/** SET of `parts` (in the order given: callers pass one element or a sorted list). */
export function set(...parts: readonly Uint8Array[]): Uint8Array {
  return tlv(0x31, join(parts));
}

/** `[n] EXPLICIT` around `content`. */
export function explicit(n: number, content: Uint8Array): Uint8Array {
  return tlv(0xa0 | n, content);
}

/** INTEGER from unsigned big-endian `bytes` (leading zeros dropped, a 0 added before a high bit). */
export function unsignedInteger(bytes: Uint8Array): Uint8Array {
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0) start++;
  const v = bytes.subarray(start);
  const pad = ((v[0] ?? 0) & 0x80) !== 0 || v.length === 0;
  return tlv(0x02, pad ? join([Uint8Array.of(0), v]) : v);
}

/** INTEGER `n` (a small non-negative number). */
export function smallInteger(n: number): Uint8Array {
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return unsignedInteger(Uint8Array.from(bytes.length === 0 ? [0] : bytes));
}

/** OBJECT IDENTIFIER from dotted text ("1.2.840.10045.4.3.2"). */
export function oid(dotted: string): Uint8Array {
  const arcs = dotted.split(".").map(Number);
  const [a = 0, b = 0, ...rest] = arcs;
  const out = [40 * a + b];
  for (const arc of rest) {
    const groups: number[] = [arc & 0x7f];
    for (let v = Math.floor(arc / 128); v > 0; v = Math.floor(v / 128))
      groups.unshift(0x80 | (v & 0x7f));
    out.push(...groups);
  }
  return tlv(0x06, Uint8Array.from(out));
}

/** UTF8String. */
export function utf8String(text: string): Uint8Array {
  return tlv(0x0c, new TextEncoder().encode(text));
}

/** A Time (RFC 5280 §4.1.2.5): UTCTime before 2050, GeneralizedTime from then on; whole seconds. */
export function time(date: Date): Uint8Array {
  const two = (n: number) => String(n).padStart(2, "0");
  const y = date.getUTCFullYear();
  const rest = `${two(date.getUTCMonth() + 1)}${two(date.getUTCDate())}${two(date.getUTCHours())}${two(date.getUTCMinutes())}${two(date.getUTCSeconds())}Z`;
  const encode = (s: string) => new TextEncoder().encode(s);
  return y < 2050 ? tlv(0x17, encode(`${two(y % 100)}${rest}`)) : tlv(0x18, encode(`${y}${rest}`));
}

/** BIT STRING of whole bytes. */
export function bitString(bytes: Uint8Array): Uint8Array {
  return tlv(0x03, join([Uint8Array.of(0), bytes]));
}
