/**
 * What every packet view shares: the bytes it looks at, the length check that makes its field
 * accessors safe, and the two ways a check fails (`Malformed`, a value; `WireError`, its thrown
 * form). Also the big-endian field access the views are built from.
 */
import { type Checksummer, onesSum } from "./checksum.ts";

/**
 * Why bytes are not a valid packet of a format:
 * - "truncated": the buffer ends inside a fixed-size part, or inside a header whose length the
 *   packet itself declares.
 * - "bad-version": the version field names another protocol (IPv4 read as IPv6, and so on).
 * - "bad-length": a length field is impossible (below the format's minimum, a header longer than
 *   its packet) or declares more bytes than the buffer holds.
 * - "bad-checksum": a checksum does not verify.
 * - "unsupported": well formed, but not a kind the parsed form (`Repr`) describes.
 */
export type Fault = "truncated" | "bad-version" | "bad-length" | "bad-checksum" | "unsupported";

/** The formats of this layer, as named in messages. */
export type Format = "Ethernet" | "ARP" | "IPv4" | "IPv6" | "ICMPv4" | "UDP";

/**
 * Why bytes were refused, as a value (`check()` and `parse()` return it, never throw it). `F`
 * narrows the faults a given check can report.
 */
export class Malformed<F extends Fault = Fault> {
  /** The format the bytes were read as. */
  readonly format: Format;
  /** The kind of fault, for programs. */
  readonly fault: F;
  /** What was wrong, for people: "IPv4: header length 12 is below 20". */
  readonly message: string;

  /** A fault of `format`; `detail` says what was wrong, without the format's name. */
  constructor(format: Format, fault: F, detail: string) {
    this.format = format;
    this.fault = fault;
    this.message = `${format}: ${detail}`;
  }
}

/** A `Malformed` thrown: what the static `checked(bytes)` constructors throw. */
export class WireError extends Error {
  /** Why the bytes were refused. */
  readonly malformed: Malformed;

  /** Throwable form of `malformed`, with its message. */
  constructor(malformed: Malformed) {
    super(malformed.message);
    this.name = "WireError";
    this.malformed = malformed;
  }
}

/**
 * A view of one packet: bytes [start, start + length) of a `Uint8Array`, not copied (and not
 * sliced: a view of a packet's payload shares its array, see `payloadAs`). Constructing one
 * checks nothing about the contents (so a view can be laid over a buffer to emit into); before
 * reading fields of bytes from outside, call `check()` or construct through the class's static
 * `checked`. Once `check()` has returned `undefined`, every accessor reads and writes inside the
 * view only, until a setter changes a length field (each view says which). The getters of an
 * unchecked view never throw, but what they read may lie outside the view (meaningless values);
 * its methods that go by its length fields (`payloadAs`, checksums) throw a RangeError when those
 * do not fit the view.
 */
export abstract class PacketView {
  /** The array the packet is in; setters write into it. */
  readonly array: Uint8Array;
  /** Where the packet starts in `array`. */
  readonly start: number;
  /** Bytes of the packet (of the view: a packet's own length fields may say less). */
  readonly length: number;

  /**
   * A view of bytes [start, start + length) of `array` (all of it by default), unchecked. Throws
   * a RangeError if that range is not inside `array`.
   */
  constructor(array: Uint8Array, start = 0, length = array.length - start) {
    const whole = Number.isInteger(start) && Number.isInteger(length);
    if (!(whole && start >= 0 && length >= 0 && start + length <= array.length)) {
      throw new RangeError(
        `bytes [${start}, ${start + length}) are not inside a ${array.length}-byte array`,
      );
    }
    this.array = array;
    this.start = start;
    this.length = length;
  }

  /**
   * A checked view of class `this` (`Ipv4Packet.checked(bytes)`) over bytes [start, start +
   * length) of `array`; throws a `WireError` if they are not a packet of its format, a
   * RangeError if the range is not inside `array`.
   */
  static checked<V extends PacketView>(
    this: ViewClass<V>,
    array: Uint8Array,
    start = 0,
    length = array.length - start,
  ): V {
    const view = new this(array, start, length);
    const malformed = view.check();
    if (malformed !== undefined) throw new WireError(malformed);
    return view;
  }

  /**
   * Whether the lengths in the view and in its length fields make a packet of this format whose
   * fields can all be read: `undefined` when they do, else why not. Reads only bytes inside the
   * view, never throws, whatever they are. Checksums are not verified here.
   */
  abstract check(): Malformed | undefined;

  /** The packet's bytes: a live `subarray` of `array` (made on each call). */
  get bytes(): Uint8Array {
    return this.array.subarray(this.start, this.start + this.length);
  }

  /** The byte at `at` in the view. */
  protected u8(at: number): number {
    return this.array[this.start + at] as number;
  }

  /** Writes the byte at `at` in the view (`value` 0 to 255). */
  protected setU8(at: number, value: number): void {
    this.array[this.start + at] = value;
  }

  /** The big-endian 16-bit word at `at` in the view. */
  protected u16(at: number): number {
    return getU16(this.array, this.start + at);
  }

  /** Writes a big-endian 16-bit word at `at` in the view (`value` 0 to 0xffff). */
  protected setU16(at: number, value: number): void {
    setU16(this.array, this.start + at, value);
  }

  /** The big-endian 32-bit word at `at` in the view, unsigned. */
  protected u32(at: number): number {
    return getU32(this.array, this.start + at);
  }

  /** Writes a big-endian 32-bit word at `at` in the view (`value` 0 to 0xffffffff). */
  protected setU32(at: number, value: number): void {
    setU32(this.array, this.start + at, value);
  }

  /** Bytes [at, at + length) of the view: a live `subarray`. */
  protected window(at: number, length: number): Uint8Array {
    return this.array.subarray(this.start + at, this.start + at + length);
  }

  /** A view of class `kind` over bytes [at, at + length) of this one, sharing its array. */
  protected viewAt<V extends PacketView>(kind: ViewClass<V>, at: number, length: number): V {
    return new kind(this.array, this.start + at, length);
  }

  /**
   * The `onesSum` of bytes [from, to) of the view added to `sum` (a partial sum, 0 by default),
   * through `summer` when given.
   */
  protected sum(from: number, to: number, summer: Checksummer | undefined, sum = 0): number {
    const a = this.array;
    const start = this.start;
    return summer === undefined
      ? onesSum(a, start + from, start + to, sum)
      : summer.onesSum(a, start + from, start + to, sum);
  }

  /**
   * Writes into the 16-bit checksum field at `at` the checksum of bytes [from, to) of the view
   * (the field counted as zero), summed through `summer` when given.
   */
  protected fillChecksumAt(
    at: number,
    from: number,
    to: number,
    summer: Checksummer | undefined,
  ): void {
    this.setU16(at, 0);
    this.setU16(at, ~this.sum(from, to, summer) & 0xffff);
  }
}

/** What a view class's constructor takes: a window of an array. */
export type ViewClass<V extends PacketView> = new (
  array: Uint8Array,
  start: number,
  length: number,
) => V;

/** The big-endian 16-bit word at `at` (0 past the end). */
function getU16(b: Uint8Array, at: number): number {
  return ((b[at] as number) << 8) | (b[at + 1] as number);
}

/** Writes `value` (0 to 0xffff) as a big-endian 16-bit word at `at`. */
function setU16(b: Uint8Array, at: number, value: number): void {
  b[at] = value >>> 8;
  b[at + 1] = value & 0xff;
}

/** The big-endian 32-bit word at `at`, unsigned (0 past the end). */
export function getU32(b: Uint8Array, at: number): number {
  return getU16(b, at) * 65536 + getU16(b, at + 2);
}

/** Writes `value` (0 to 0xffffffff) as a big-endian 32-bit word at `at`. */
export function setU32(b: Uint8Array, at: number, value: number): void {
  setU16(b, at, value >>> 16);
  setU16(b, at + 2, value & 0xffff);
}

/**
 * `value`, if it is an integer from 0 to `max`; otherwise throws a RangeError naming `what`
 * (setters and parsed forms refuse values their field cannot hold instead of cutting them).
 */
export function uint(what: string, value: number, max: number): number {
  if (!Number.isInteger(value) || value < 0 || value > max) {
    throw new RangeError(`${what} must be an integer from 0 to ${max}, not ${value}`);
  }
  return value;
}

/** `value`, if it is `length` bytes long; otherwise throws a RangeError naming `what`. */
export function sized(what: string, value: Uint8Array, length: number): Uint8Array {
  if (value.length !== length) {
    throw new RangeError(`${what} must be ${length} bytes, not ${value.length}`);
  }
  return value;
}

/** Throws a RangeError unless `view` holds at least `length` bytes to emit `what` into. */
export function roomFor(what: string, view: PacketView, length: number): void {
  if (view.length < length) {
    throw new RangeError(
      `${what} needs ${length} bytes, the view has ${view.length} (size it by bufferLength)`,
    );
  }
}

/**
 * For `check()`: "truncated" when a view of `length` bytes is shorter than the `need` bytes of
 * `what` (its header, say), else `undefined`.
 */
export function shortOf(
  format: Format,
  length: number,
  need: number,
  what: string,
): Malformed<"truncated"> | undefined {
  if (length >= need) return undefined;
  return new Malformed(format, "truncated", `${length} bytes is shorter than ${what} (${need})`);
}

/** A view with a checksum field. */
interface ChecksummedView extends PacketView {
  readonly checksum: number;
  verifyChecksum(): boolean;
}

/**
 * What refuses `packet` before a parsed form looks at its fields: its `check()`, or
 * "bad-checksum" when its checksum (called `what` in the message) does not verify. `undefined`
 * when neither does.
 */
export function refusal(
  packet: ChecksummedView,
  format: Format,
  what: string,
): Malformed | undefined {
  const malformed = packet.check();
  if (malformed !== undefined || packet.verifyChecksum()) return malformed;
  const value = packet.checksum.toString(16).padStart(4, "0");
  return new Malformed(format, "bad-checksum", `${what} 0x${value} does not verify`);
}
