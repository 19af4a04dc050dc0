/**
 * What grouped workers send each other over the bus (the `data` of a "direct" or "channel"
 * message), and what a grouped spawn config holds. Anything else that arrives is not theirs.
 */
import type { Structured } from "../bus/codec.ts";
import { isAddressId, TaskAddress } from "./address.ts";

/** Bus messages between grouped workers (the `data` of a "direct" or "channel" message). */
export type Envelope =
  /** A message to task `to` from task `from`. */
  | readonly ["m", number, number, Structured]
  /** A call `call` of the sending worker to task `to` from task `from`. */
  | readonly ["c", number, number, number, Structured]
  /** The answer to call `call` of the receiving worker. */
  | readonly ["r", number, boolean, Structured]
  /** A publish from task `from`. */
  | readonly ["p", number, Structured];

/** A spawn config of a grouped worker: the kind, its config and the controller's ticket. */
export interface GroupedSpawn {
  readonly task: string;
  readonly config?: Structured;
  readonly ticket?: number;
  /** The spawning task's address id and its tag, when a task asked for the outcome. */
  readonly parent?: number;
  readonly tag?: number;
}

/** A spawn config as read: the kind asked for, its config, and who wants the outcome. */
export interface Spawn {
  readonly task: unknown;
  readonly config: Structured;
  /** The controller's ticket (`Controller.spawnTask`). */
  readonly ticket: number | undefined;
  /** The spawning task's address id and tag (a "spawn" output with a `tag`). */
  readonly parent: number | undefined;
  readonly tag: number | undefined;
}

/** Reads a spawn config defensively (it may come from a hand-written worker). */
export function readSpawn(config: Structured): Spawn {
  const s = (typeof config === "object" && config !== null ? config : {}) as Partial<GroupedSpawn>;
  return {
    task: s.task,
    config: s.config ?? null,
    ticket: typeof s.ticket === "number" ? s.ticket : undefined,
    parent: isAddressId(s.parent) ? s.parent : undefined,
    tag: typeof s.tag === "number" ? s.tag : undefined,
  };
}

/** Whether `e`, from the bus, has the shape of an `Envelope` (ids are checked where used). */
export function wellFormed(e: unknown): e is Envelope {
  if (!Array.isArray(e)) return false;
  switch (e[0]) {
    case "m":
      return e.length === 4 && typeof e[1] === "number" && isAddressId(e[2]);
    case "c":
      return (
        e.length === 5 && typeof e[1] === "number" && typeof e[2] === "number" && isAddressId(e[3])
      );
    case "r":
      // a failure's data is its error text
      return (
        e.length === 4 &&
        typeof e[1] === "number" &&
        (e[2] === true || (e[2] === false && typeof e[3] === "string"))
      );
    case "p":
      return e.length === 3 && isAddressId(e[1]);
    default:
      return false;
  }
}

/** Why a call to task `id` fails: it has ended. */
export function gone(id: number): string {
  let name: string;
  try {
    name = TaskAddress.of(id).toString();
  } catch {
    name = String(id);
  }
  return `no task ${name}: it has ended`;
}

/** A binary envelope's kind: a message to a task, or a publish (`BytesEnvelopes`). */
export const BYTES_MESSAGE = 0x4d;
export const BYTES_PUBLISH = 0x50;
const HEADER = 17;

/**
 * Messages and publishes whose data is a `Uint8Array` travel as one raw bus record, without
 * JSON: kind (1 byte), target address id and sender address id (float64 LE each), then the data.
 * Contract: `write` returns a view of a scratch buffer, valid until the next `write` (the bus
 * copies it at once); `read` returns a reused object whose `data` is a copy (the record is
 * released after the handler), or undefined for bytes that are not such an envelope.
 */
export class BytesEnvelopes {
  #buf = new Uint8Array(256);
  #view = new DataView(this.#buf.buffer);
  readonly #read = { kind: 0, to: 0, from: 0, data: new Uint8Array(0) };
  readonly #f64 = new Float64Array(1);
  readonly #f64Bytes = new Uint8Array(this.#f64.buffer);

  /** The envelope of `data` from task `from` to task `to` (0 for a publish). */
  write(kind: number, to: number, from: number, data: Uint8Array): Uint8Array {
    const size = HEADER + data.length;
    if (this.#buf.length < size) {
      this.#buf = new Uint8Array(Math.max(size, this.#buf.length * 2));
      this.#view = new DataView(this.#buf.buffer);
    }
    this.#buf[0] = kind;
    this.#view.setFloat64(1, to, true);
    this.#view.setFloat64(9, from, true);
    this.#buf.set(data, HEADER);
    return this.#buf.subarray(0, size);
  }

  /** What `bytes` holds, or undefined when it is not a well-formed envelope. */
  read(
    bytes: Uint8Array,
  ): { kind: number; to: number; from: number; data: Uint8Array } | undefined {
    if (bytes.length < HEADER) return undefined;
    const kind = bytes[0] as number;
    if (kind !== BYTES_MESSAGE && kind !== BYTES_PUBLISH) return undefined;
    const to = this.#float64(bytes, 1);
    const from = this.#float64(bytes, 9);
    if (!isAddressId(from) || (kind === BYTES_MESSAGE && !isAddressId(to))) return undefined;
    const r = this.#read;
    r.kind = kind;
    r.to = to;
    r.from = from;
    r.data = bytes.slice(HEADER);
    return r;
  }

  /** The little-endian float64 at byte `at` of `bytes` (no view made; the platform is LE). */
  #float64(bytes: Uint8Array, at: number): number {
    const b = this.#f64Bytes;
    for (let i = 0; i < 8; i++) b[i] = bytes[at + i] as number;
    return this.#f64[0] as number;
  }
}
