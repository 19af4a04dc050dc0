/**
 * What arrives for a grouped worker's tasks from other grouped workers (records of `wire.ts`)
 * and from its own tasks (the same entries, handed over without a record): turned into task
 * inputs, queued for their tasks.
 */
import type { Structured } from "../bus/codec.ts";
import { TaskAddress } from "./address.ts";
import { type Calls, gone, type Owed } from "./calls.ts";
import type { LocalChannels } from "./channels.ts";
import type { TaskRecord } from "./record.ts";
import type { TaskInput } from "./task.ts";
import { CALL, CONTROLLER, MESSAGE, PUBLISH, REPLY, WireReader } from "./wire.ts";

/** What `BusInbound` needs from its worker. */
export interface InboundHost {
  /** The live task at address id `id`, if any. */
  record(id: number): TaskRecord | undefined;
  /** Queues `input` for `r` (given once the current drain ends). */
  readonly queue: (r: TaskRecord, input: TaskInput) => void;
  /** Answers call `owed` (a call to a task that is gone). */
  answer(owed: Owed, ok: boolean, data: Structured): void;
  /** Counts a delivery dropped (a stale address, a record that is not a grouped worker's). */
  dropped(): void;
}

/**
 * Contract: `take` never throws for what another worker sent, however malformed: a record that
 * is not a grouped worker's, or the malformed rest of one, is dropped and counted once through
 * `dropped`, as is each entry for a task that has ended; calls to an ended task are answered
 * with an error. Entries are queued in the order they come.
 */
export class BusInbound {
  readonly #host: InboundHost;
  readonly #calls: Calls;
  readonly #channels: LocalChannels;
  readonly #reader = new WireReader();
  readonly #senders = new Map<number, TaskAddress>();

  /** The inbound side of a worker with these calls and channels. */
  constructor(host: InboundHost, calls: Calls, channels: LocalChannels) {
    this.#host = host;
    this.#calls = calls;
    this.#channels = channels;
  }

  /** A bus message from worker `from` (-1: the controller) on `channel` (-1 when direct). */
  take(from: number, channel: number, data: Structured): void {
    const r = this.#reader;
    if (!(data instanceof Uint8Array) || !r.start(data)) {
      // not a grouped worker's record (a hand-written worker's, say): dropped and counted
      this.#host.dropped();
      return;
    }
    for (let kind = r.next(); kind !== 0; kind = r.next()) {
      switch (kind) {
        case MESSAGE:
          this.message(r.to, r.from, r.data);
          break;
        case CALL:
          this.call(from, r.call, r.to, r.from, r.data);
          break;
        case REPLY:
          this.reply(from, r.call, r.ok, r.data);
          break;
        case PUBLISH:
          if (channel >= 0) this.publish(channel, r.from, r.data);
          else this.#host.dropped();
          break;
        default:
          this.#host.dropped(); // the malformed rest of the record
          return;
      }
    }
  }

  /** A message to task `to` from task `from` (`CONTROLLER`: the controller). */
  message(to: number, from: number, data: Structured): void {
    const r = this.#host.record(to);
    if (r === undefined) this.#host.dropped();
    else this.#host.queue(r, { kind: "message", from: this.#sender(from), data });
  }

  /** Call `call` of worker `worker` (-1: the controller) to task `to` from task `from`. */
  call(worker: number, call: number, to: number, from: number, data: Structured): void {
    const r = this.#host.record(to);
    if (r === undefined) {
      this.#host.answer({ worker, id: call }, false, gone(to));
      return;
    }
    const handle = this.#calls.owe(r, worker, call);
    this.#host.queue(r, { kind: "call", call: handle, from: this.#sender(from), data });
  }

  /** The answer to call `call`, from worker `worker`. */
  reply(worker: number, call: number, ok: boolean, data: Structured): void {
    this.#calls.settle(call, worker, ok, data, this.#host.queue);
  }

  /** A publish on `channel` from task `from`: one input for every local subscriber. */
  publish(channel: number, from: number, data: Structured): void {
    const subscribers = this.#channels.of(channel);
    if (subscribers === undefined) return;
    // a publish's sender is a task (the reader checks it)
    const input: TaskInput = {
      kind: "channel",
      channel,
      from: this.#sender(from) as TaskAddress,
      data,
    };
    for (const r of subscribers) this.#host.queue(r, input);
  }

  /**
   * The address of a sender, null for the controller (kept: a few thousand, so a busy peer costs
   * no allocation).
   */
  #sender(id: number): TaskAddress | null {
    if (id === CONTROLLER) return null;
    let a = this.#senders.get(id);
    if (a === undefined) {
      if (this.#senders.size >= 4096) this.#senders.clear();
      a = TaskAddress.of(id);
      this.#senders.set(id, a);
    }
    return a;
  }
}
