/**
 * What arrives over the bus for a grouped worker's tasks (and what its tasks send each other on
 * one worker): envelopes (`envelope.ts`) turned into task inputs, queued for their tasks.
 */
import type { Structured } from "../bus/codec.ts";
import { TaskAddress } from "./address.ts";
import type { Calls, Owed } from "./calls.ts";
import type { LocalChannels } from "./channels.ts";
import { BYTES_MESSAGE, BytesEnvelopes, type Envelope, gone, wellFormed } from "./envelope.ts";
import type { TaskRecord } from "./record.ts";
import type { TaskInput } from "./task.ts";

/** What `BusInbound` needs from its worker. */
export interface InboundHost {
  /** The live task at address id `id`, if any. */
  record(id: number): TaskRecord | undefined;
  /** Queues `input` for `r` (given once the current drain ends). */
  readonly queue: (r: TaskRecord, input: TaskInput) => void;
  /** Answers call `owed` (a call to a task that is gone). */
  answer(owed: Owed, ok: boolean, data: Structured): void;
  /** Counts a delivery dropped (a stale address, a message that is not a grouped worker's). */
  dropped(): void;
}

/**
 * Contract: `take` never throws for what another worker sent, however malformed: what is not a
 * grouped worker's envelope, or is for a task that has ended, is dropped and counted through
 * `dropped`; calls to an ended task are answered with an error.
 */
export class BusInbound {
  readonly #host: InboundHost;
  readonly #calls: Calls;
  readonly #channels: LocalChannels;
  readonly #bytes = new BytesEnvelopes();
  readonly #senders = new Map<number, TaskAddress>();

  /** The inbound side of a worker with these calls and channels. */
  constructor(host: InboundHost, calls: Calls, channels: LocalChannels) {
    this.#host = host;
    this.#calls = calls;
    this.#channels = channels;
  }

  /** `data` from worker `from` (on `channel`, or -1 when direct). */
  take(from: number, channel: number, data: Structured): void {
    if (data instanceof Uint8Array) this.#fromBytes(channel, data);
    else this.#fromBus(from, channel, data as Envelope);
  }

  /** A binary envelope (`BytesEnvelopes`): a message or a publish of bytes. */
  #fromBytes(channel: number, bytes: Uint8Array): void {
    const e = this.#bytes.read(bytes);
    if (e === undefined) {
      this.#host.dropped(); // not a grouped worker's: dropped and counted
      return;
    }
    if (e.kind === BYTES_MESSAGE) {
      const to = this.#host.record(e.to);
      if (to === undefined) this.#host.dropped();
      else this.#host.queue(to, { kind: "message", from: this.sender(e.from), data: e.data });
      return;
    }
    const subscribers = this.#channels.of(channel);
    if (subscribers === undefined) return;
    const input: TaskInput = { kind: "channel", channel, from: this.sender(e.from), data: e.data };
    for (const r of subscribers) this.#host.queue(r, input);
  }

  /** The address of a sender (kept: a few thousand, so a busy peer costs no allocation). */
  sender(id: number): TaskAddress {
    let a = this.#senders.get(id);
    if (a === undefined) {
      if (this.#senders.size >= 4096) this.#senders.clear();
      a = TaskAddress.of(id);
      this.#senders.set(id, a);
    }
    return a;
  }

  #fromBus(from: number, channel: number, e: Envelope): void {
    if (!wellFormed(e)) {
      // not a grouped worker's message (a hand-written worker's, say): dropped and counted
      this.#host.dropped();
      return;
    }
    switch (e[0]) {
      case "m": {
        const to = this.#host.record(e[1]);
        if (to === undefined) this.#host.dropped();
        else this.#host.queue(to, { kind: "message", from: this.sender(e[2]), data: e[3] });
        return;
      }
      case "c": {
        const to = this.#host.record(e[2]);
        if (to === undefined) {
          this.#host.answer({ worker: from, id: e[1] }, false, gone(e[2]));
          return;
        }
        const handle = this.#calls.owe(to, from, e[1]);
        this.#host.queue(to, { kind: "call", call: handle, from: this.sender(e[3]), data: e[4] });
        return;
      }
      case "r":
        this.#calls.settle(e[1], from, e[2], e[3], this.#host.queue);
        return;
      case "p": {
        const subscribers = this.#channels.of(channel);
        if (subscribers === undefined) return;
        const input: TaskInput = {
          kind: "channel",
          channel,
          from: this.sender(e[1]),
          data: e[2],
        };
        for (const r of subscribers) this.#host.queue(r, input);
        return;
      }
    }
  }
}
