/**
 * The binary records grouped workers send each other over the bus (always raw bus records: the
 * bus codec is not involved except for structured data inside an entry).
 *
 * A direct record is `DIRECT` then entries, each one of:
 * - `MESSAGE` to (f64) from (f64) data: a message to task `to` from task `from`;
 * - `CALL` call (f64) to (f64) from (f64) data: call `call` of the sending worker;
 * - `REPLY` call (f64) ok (u8) data: the answer to call `call` of the receiving worker (a
 *   failure's data is its error text).
 * A publish record is `PUBLISH` from (f64) data. Data is a kind byte and then: a float64 for a
 * number, nothing for undefined, a u32 length and the bytes for a Uint8Array, or a u32 length and
 * the bus codec's encoding for anything else. Numbers are little-endian. Ids are address ids
 * (`address.ts`), call ids safe integers; the controller, as the sender of a message or call
 * or the receiver of a message, is `CONTROLLER`.
 */
import { type Codec, JsonBytesCodec, type Structured } from "../bus/codec.ts";
import { RecordTooLargeError } from "../ring/errors.ts";
import type { FromTasks } from "../worker/inner.ts";
import { isAddressId } from "./address.ts";

/** The id of the controller as a sender or receiver (it is not a task). */
export const CONTROLLER = -1;

/** The first byte of a record. */
export const DIRECT = 0x42;
export const PUBLISH = 0x50;
/** The first byte of an entry of a direct record (`WireReader.next` returns it). */
export const MESSAGE = 0x6d;
export const CALL = 0x63;
export const REPLY = 0x72;

const NUMBER = 1;
const UNDEFINED = 2;
const BYTES = 3;
const ENCODED = 4;

/** Bytes before an entry's data. */
const HEAD = { [MESSAGE]: 17, [CALL]: 25, [REPLY]: 10 } as const;
/** Where a batch starts. */
const FIRST_BUFFER = 1024;

/** One destination's batch: the buffer being filled, and a spare (the last one handed out). */
class Batch<Who> {
  buf = new Uint8Array(FIRST_BUFFER);
  view = new DataView(this.buf.buffer);
  #spare = new Uint8Array(FIRST_BUFFER);
  #spareView = new DataView(this.#spare.buffer);
  /** Bytes filled: the record's first byte is always there. */
  length = 1;
  entries = 0;
  /** Whose entry the batch holds, when it holds one. */
  who: Who | undefined;

  constructor(readonly worker: number) {
    this.buf[0] = DIRECT;
    this.#spare[0] = DIRECT;
  }

  /** Room for `size` more bytes. */
  ensure(size: number): void {
    const need = this.length + size;
    if (need <= this.buf.length) return;
    const bigger = new Uint8Array(Math.max(need, this.buf.length * 2));
    bigger.set(this.buf.subarray(0, this.length));
    this.buf = bigger;
    this.view = new DataView(bigger.buffer);
  }

  /** What was filled, as a view valid until the next swap; filling goes on in the spare. */
  swap(): Uint8Array {
    const full = this.buf.subarray(0, this.length);
    const buf = this.#spare;
    const view = this.#spareView;
    this.#spare = this.buf;
    this.#spareView = this.view;
    this.buf = buf;
    this.view = view;
    this.buf[0] = DIRECT;
    this.length = 1;
    this.entries = 0;
    return full;
  }
}

/** A batch to send now: its bytes (valid until the next call on `Batches`) and where they go. */
export interface Ready<Who> {
  worker: number;
  bytes: Uint8Array;
  /** Whose entry it is, when the batch holds a single entry (undefined for several). */
  who: Who | undefined;
}

/**
 * Direct entries to other workers, gathered into one record per destination worker, so a drain
 * that sends many messages costs one bus record per destination, not one per message.
 *
 * Contract: an add either keeps the entry (to go out with `take`) or returns a batch to send now
 * because the entry did not fit (the entry is then the first of the next batch); a record never
 * exceeds `limit` bytes unless it holds a single entry larger than that, and never `max` (the
 * bus's largest message): such an entry is refused with a `RecordTooLargeError`. Bytes handed
 * out stay valid until the next call that adds or takes (send them at once). An add that throws
 * (data the codec refuses, an entry too large) has written nothing. Entries to one worker keep
 * their order.
 */
export class Batches<Who> {
  readonly #limit: number;
  readonly #max: number;
  readonly #codec: Codec<Structured>;
  readonly #batches: (Batch<Who> | undefined)[] = [];
  /** Destinations with entries, in the order they got their first. */
  readonly #pending: Batch<Who>[] = [];
  /** A batch that must go before anything else (a large entry that went in after a full batch). */
  #urgent: Batch<Who> | undefined;
  readonly #ready: Ready<Who> = { worker: 0, bytes: new Uint8Array(0), who: undefined };
  // the data being added, prepared before anything is written
  #kind = 0;
  #number = 0;
  #bytes: Uint8Array = new Uint8Array(0);
  #publish = new Uint8Array(256);
  #publishView = new DataView(this.#publish.buffer);

  /** Batches of at most `limit` bytes, for a bus whose largest message is `max` bytes. */
  constructor(limit: number, max: number, codec: Codec<Structured> = new JsonBytesCodec()) {
    if (!(limit >= 64 && max >= limit)) {
      throw new RangeError(`batches of ${limit} bytes on a bus of ${max}-byte messages`);
    }
    this.#limit = limit;
    this.#max = max;
    this.#codec = codec;
  }

  /** True when some batch has entries. */
  get pending(): boolean {
    return this.#pending.length !== 0;
  }

  /** Adds a message to task `to` on `worker` from task `from`. */
  message(
    worker: number,
    to: number,
    from: number,
    data: Structured,
    who: Who,
  ): Ready<Who> | undefined {
    return this.#add(worker, MESSAGE, data, who, to, from, 0);
  }

  /** Adds call `call` to task `to` on `worker` from task `from`. */
  call(
    worker: number,
    call: number,
    to: number,
    from: number,
    data: Structured,
    who: Who,
  ): Ready<Who> | undefined {
    return this.#add(worker, CALL, data, who, call, to, from);
  }

  /** Adds the answer to call `call` of `worker` (`ok` false: `data` is the error text). */
  reply(
    worker: number,
    call: number,
    ok: boolean,
    data: Structured,
    who: Who,
  ): Ready<Who> | undefined {
    return this.#add(worker, REPLY, ok ? data : String(data), who, call, ok ? 1 : 0, 0);
  }

  /**
   * Adds an entry of `kind` for `worker`: its head fields (`a`, `b`, `c` in the order of the
   * module comment; a reply's `b` is its ok byte), then `data`.
   */
  #add(
    worker: number,
    kind: typeof MESSAGE | typeof CALL | typeof REPLY,
    data: Structured,
    who: Who,
    a: number,
    b: number,
    c: number,
  ): Ready<Who> | undefined {
    const size = this.#prepare(data);
    const head = HEAD[kind];
    const batch = this.#room(worker, head + size);
    const at = batch.length;
    const view = batch.view;
    batch.buf[at] = kind;
    view.setFloat64(at + 1, a, true);
    if (kind === REPLY) batch.buf[at + 9] = b;
    else view.setFloat64(at + 9, b, true);
    if (kind === CALL) view.setFloat64(at + 17, c, true);
    return this.#added(batch, at + head, who);
  }

  /**
   * The batch that must go first, or else a batch with entries (`worker`'s, if given); undefined
   * when none.
   */
  take(worker?: number): Ready<Who> | undefined {
    const b = this.#urgent ?? (worker === undefined ? this.#pending[0] : this.#batches[worker]);
    if (b === undefined || b.entries === 0) return undefined;
    if (b === this.#urgent) this.#urgent = undefined;
    return this.#out(b);
  }

  /** The publish record of `data` from task `from` (valid until the next `publish`). */
  publish(from: number, data: Structured): Uint8Array {
    const size = 9 + this.#prepare(data);
    this.#fits(size);
    if (this.#publish.length < size) {
      this.#publish = new Uint8Array(Math.max(size, this.#publish.length * 2));
      this.#publishView = new DataView(this.#publish.buffer);
    }
    this.#publish[0] = PUBLISH;
    this.#publishView.setFloat64(1, from, true);
    this.#write(this.#publish, this.#publishView, 9);
    return this.#publish.subarray(0, size);
  }

  /** The batch of `worker`, with room for `size` bytes; a full one is handed out first. */
  #room(worker: number, size: number): Batch<Who> {
    this.#fits(1 + size);
    let b = this.#batches[worker];
    if (b === undefined) {
      b = new Batch<Who>(worker);
      this.#batches[worker] = b;
    }
    this.#full = undefined;
    if (b.entries !== 0 && b.length + size > this.#limit) this.#full = this.#out(b);
    b.ensure(size);
    return b;
  }

  /** Throws unless a record of `size` bytes fits on the bus. */
  #fits(size: number): void {
    if (size > this.#max) {
      throw new RecordTooLargeError(
        size,
        this.#max,
        `a message of ${size} bytes is larger than this bus carries (${this.#max} bytes, half of ringBytes): raise ringBytes or send it in parts`,
      );
    }
  }

  /** A batch handed out by `#room` because the entry being added did not fit. */
  #full: Ready<Who> | undefined;

  #added(b: Batch<Who>, dataAt: number, who: Who): Ready<Who> | undefined {
    b.length = this.#write(b.buf, b.view, dataAt);
    if (b.entries++ === 0) this.#pending.push(b);
    b.who = who;
    const full = this.#full;
    this.#full = undefined;
    if (b.length < this.#limit) return full;
    // a single entry as large as a batch: it goes on its own, now or right after `full`
    if (full === undefined) return this.#out(b);
    this.#urgent = b;
    return full;
  }

  /** Hands out `b`'s entries. */
  #out(b: Batch<Who>): Ready<Who> {
    const r = this.#ready;
    r.worker = b.worker;
    r.who = b.entries === 1 ? b.who : undefined;
    r.bytes = b.swap();
    const i = this.#pending.indexOf(b);
    if (i >= 0) this.#pending.splice(i, 1);
    return r;
  }

  /** Prepares `data` for writing; returns its size. Throws what the codec throws. */
  #prepare(data: Structured): number {
    if (typeof data === "number") {
      if (!Number.isFinite(data)) throw new TypeError(`cannot encode $: ${data} has no JSON form`);
      this.#kind = NUMBER;
      this.#number = data;
      return 9;
    }
    if (data === undefined) {
      this.#kind = UNDEFINED;
      return 1;
    }
    this.#bytes = data instanceof Uint8Array ? data : this.#codec.encode(data);
    this.#kind = data instanceof Uint8Array ? BYTES : ENCODED;
    return 5 + this.#bytes.length;
  }

  /** Writes the prepared data at `at`; returns where it ends. */
  #write(buf: Uint8Array, view: DataView, at: number): number {
    buf[at] = this.#kind;
    switch (this.#kind) {
      case NUMBER:
        view.setFloat64(at + 1, this.#number, true);
        return at + 9;
      case UNDEFINED:
        return at + 1;
      default:
        view.setUint32(at + 1, this.#bytes.length, true);
        buf.set(this.#bytes, at + 5);
        return at + 5 + this.#bytes.length;
    }
  }
}

/**
 * Reads a record entry by entry. Contract: `next` returns the kind of the next entry (`MESSAGE`,
 * `CALL`, `REPLY`, or `PUBLISH` for a publish record's one entry) with its fields set, 0 at the
 * end, and -1 when the rest of the record is malformed (it never throws, whatever the bytes).
 * Data is a copy or a decoded value: the task may keep it.
 */
export class WireReader {
  to = 0;
  from = 0;
  call = 0;
  ok = false;
  data: Structured = undefined;
  readonly #codec: Codec<Structured>;
  #bytes: Uint8Array = new Uint8Array(0);
  #view: DataView = new DataView(this.#bytes.buffer);
  #at = 0;
  #publish = false;

  /** A reader decoding structured data with `codec` (the writer's). */
  constructor(codec: Codec<Structured> = new JsonBytesCodec()) {
    this.#codec = codec;
  }

  /** Starts on `bytes`; false when it is not a grouped worker's record. */
  start(bytes: Uint8Array): boolean {
    const kind = bytes[0];
    if (kind !== DIRECT && kind !== PUBLISH) return false;
    this.#bytes = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.#at = 1;
    this.#publish = kind === PUBLISH;
    return true;
  }

  /** The next entry's kind (fields set), 0 at the end, -1 when malformed. */
  next(): number {
    const at = this.#at;
    const end = this.#bytes.length;
    if (this.#publish) {
      if (at === end) return 0;
      this.#at = end;
      if (at + 8 >= end) return -1;
      this.from = this.#view.getFloat64(at, true);
      if (!isAddressId(this.from) || !this.#data(at + 8, end)) return -1;
      return this.#at === end ? PUBLISH : -1;
    }
    if (at === end) return 0;
    const kind = this.#bytes[at] as number;
    const head = kind === MESSAGE || kind === CALL || kind === REPLY ? HEAD[kind] : 0;
    if (head === 0 || at + head >= end) return this.#bad();
    const v = this.#view;
    switch (kind) {
      case MESSAGE:
        this.to = v.getFloat64(at + 1, true);
        this.from = v.getFloat64(at + 9, true);
        if (!isParty(this.to) || !isParty(this.from)) return this.#bad();
        break;
      case CALL:
        this.call = v.getFloat64(at + 1, true);
        this.to = v.getFloat64(at + 9, true);
        this.from = v.getFloat64(at + 17, true);
        if (!Number.isSafeInteger(this.call) || !isAddressId(this.to) || !isParty(this.from))
          return this.#bad();
        break;
      default: {
        this.call = v.getFloat64(at + 1, true);
        const ok = this.#bytes[at + 9];
        if (!Number.isSafeInteger(this.call) || (ok !== 0 && ok !== 1)) return this.#bad();
        this.ok = ok === 1;
      }
    }
    if (!this.#data(at + head, end)) return this.#bad();
    if (kind === REPLY && !this.ok && typeof this.data !== "string") return this.#bad();
    return kind;
  }

  #bad(): number {
    this.#at = this.#bytes.length;
    return -1;
  }

  /** Reads data at `at`; false when malformed. Moves past it. */
  #data(at: number, end: number): boolean {
    const bytes = this.#bytes;
    switch (bytes[at]) {
      case NUMBER:
        if (at + 9 > end) return false;
        this.data = this.#view.getFloat64(at + 1, true);
        this.#at = at + 9;
        return true;
      case UNDEFINED:
        this.data = undefined;
        this.#at = at + 1;
        return true;
      case BYTES:
      case ENCODED: {
        if (at + 5 > end) return false;
        const length = this.#view.getUint32(at + 1, true);
        const from = at + 5;
        if (from + length > end) return false;
        if (bytes[at] === BYTES) this.data = bytes.slice(from, from + length);
        else {
          try {
            this.data = this.#codec.decode(bytes.subarray(from, from + length));
          } catch {
            return false;
          }
        }
        this.#at = from + length;
        return true;
      }
      default:
        return false;
    }
  }
}

/** Whether `id` may send a message or call, or receive a message: a task, or the controller. */
function isParty(id: number): boolean {
  return id === CONTROLLER || isAddressId(id);
}

/**
 * What a grouped worker's record for the controller holds (its tasks' "controller" messages and
 * answers to the controller's calls), as `FromTasks` messages, in order; false when the rest of
 * the record is malformed (what came before it is given).
 */
export function readForController(
  reader: WireReader,
  bytes: Uint8Array,
  take: (message: FromTasks) => void,
): boolean {
  if (!reader.start(bytes)) return false;
  for (let kind = reader.next(); kind !== 0; kind = reader.next()) {
    if (kind === MESSAGE && isAddressId(reader.from)) {
      take({ op: "message", from: reader.from, data: reader.data });
    } else if (kind === REPLY) {
      take(
        reader.ok
          ? { op: "reply", call: reader.call, ok: true, data: reader.data }
          : { op: "reply", call: reader.call, ok: false, error: reader.data as string },
      );
    } else return false;
  }
  return true;
}
