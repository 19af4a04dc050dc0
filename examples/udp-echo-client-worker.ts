/**
 * The UDP echo client's worker: keeps `window` datagrams in flight over several sockets (so a
 * server's SO_REUSEPORT group spreads them over its workers), checks every echo byte for byte,
 * and measures round-trip latency. After `seconds` it stops sending, waits for the datagrams
 * still in flight (at most `lossTimeoutMs`), and reports its result to the controller.
 *
 * Datagram layout: sequence number (u32), socket (u32), send time (f64 ms), then a pattern
 * derived from the sequence number.
 */
import {
  defineWorker,
  type NetEvent,
  SocketAddr,
  type Structured,
  type WorkerInner,
  type WorkerInput,
  type WorkerOutput,
} from "bun-sansio";

/** What the client passes to its worker. */
export interface LoadConfig {
  readonly [key: string]: Structured;
  readonly host: string;
  readonly port: number;
  readonly size: number;
  readonly window: number;
  readonly seconds: number;
  readonly sockets: number;
  readonly lossTimeoutMs: number;
}

/** The client's result. Latencies in microseconds. */
export interface LoadResult {
  readonly [key: string]: Structured;
  readonly event: "result";
  readonly sent: number;
  readonly received: number;
  readonly lost: number;
  /** Echoes that came back after they had been counted lost. */
  readonly late: number;
  /** Echoes that differ from what was sent (or were never sent). */
  readonly bad: number;
  readonly seconds: number;
  readonly p50: number;
  readonly p99: number;
  readonly error: string | null;
}

const HEADER = 16;
const MAX_LATENCY_US = 1_000_000; // 1 µs buckets up to 1 s; slower echoes share the last bucket

/** Drives echo load; see the module comment. */
export class LoadWorker implements WorkerInner {
  readonly #cfg: LoadConfig;
  readonly #server: SocketAddr;
  readonly #out: WorkerOutput[] = [];
  readonly #inFlight = new Map<number, number>(); // seq -> send time
  readonly #latency = new Uint32Array(MAX_LATENCY_US + 1);
  #open = 0;
  #closedSockets = 0;
  #seq = 0;
  #start = -1;
  #end = -1;
  #sent = 0;
  #received = 0;
  #lost = 0;
  #late = 0;
  #bad = 0;
  #error: string | null = null;
  #reported = false;

  constructor(config: LoadConfig) {
    this.#cfg = config;
    this.#server = SocketAddr.parse(config.host, config.port);
    const any = SocketAddr.parse(this.#server.family === 6 ? "::" : "0.0.0.0", 0);
    for (let s = 0; s < config.sockets; s++) {
      this.#out.push({
        kind: "net",
        owner: 0,
        action: { kind: "udp-listen", socket: s, bind: any },
      });
    }
  }

  tasks(): number {
    return this.#reported ? 0 : 1;
  }

  isEmpty(): boolean {
    return this.#reported && this.#out.length === 0 && this.#closedSockets === this.#cfg.sockets;
  }

  spawn(): void {
    throw new Error("the load worker has no spawnable tasks");
  }

  onTick(now: number): void {
    if (this.#start < 0 || this.#reported) return;
    const sending = this.#sending(now);
    // datagrams not back after lossTimeoutMs are lost; replace them while the run lasts
    for (const [seq, sentAt] of this.#inFlight) {
      if (now - sentAt < this.#cfg.lossTimeoutMs) continue;
      this.#inFlight.delete(seq);
      this.#lost++;
      if (sending) this.#send(now, seq % this.#cfg.sockets);
    }
    if (!sending && this.#inFlight.size === 0) this.#finish(now);
  }

  onEvent(now: number, input: WorkerInput): void {
    if (input.kind !== "net") return;
    const e = input.event;
    if (e.kind === "udp-packet") this.#onEcho(now, e.socket, e.data, e.truncated);
    else this.#onSocket(now, e);
  }

  onShutdown(now: number): void {
    if (this.#end < 0) this.#end = now;
    this.#finish(now);
  }

  popOutput(): WorkerOutput | undefined {
    return this.#out.shift();
  }

  #onSocket(now: number, e: NetEvent): void {
    if (e.kind === "udp-listen-result") {
      if (e.error !== undefined) {
        this.#error = `cannot open a socket: ${e.error.code}: ${e.error.message}`;
        this.#finish(now);
        return;
      }
      if (++this.#open === this.#cfg.sockets) this.#begin(now);
    } else if (e.kind === "udp-send-error") {
      this.#error ??= `send failed: ${e.error.code}: ${e.error.message}`;
    } else if (e.kind === "udp-closed") {
      this.#closedSockets++;
    }
  }

  #begin(now: number): void {
    this.#start = now;
    for (let i = 0; i < this.#cfg.window; i++) this.#send(now, i % this.#cfg.sockets);
  }

  #send(now: number, socket: number): void {
    const seq = this.#seq++ >>> 0;
    const data = new Uint8Array(this.#cfg.size);
    const view = new DataView(data.buffer);
    view.setUint32(0, seq, true);
    view.setUint32(4, socket, true);
    view.setFloat64(8, now, true);
    for (let i = HEADER; i < data.length; i++) data[i] = (seq * 31 + i) & 0xff;
    this.#inFlight.set(seq, now);
    this.#sent++;
    this.#out.push({
      kind: "net",
      owner: 0,
      action: { kind: "udp-send", socket, to: this.#server, data },
    });
  }

  #onEcho(now: number, socket: number, data: Uint8Array, truncated: boolean): void {
    if (this.#reported) return;
    const seq =
      data.length >= HEADER ? new DataView(data.buffer, data.byteOffset).getUint32(0, true) : -1;
    const sentAt = this.#inFlight.get(seq);
    if (sentAt === undefined && seq >= 0 && seq < this.#seq && this.#intactHeader(data, socket)) {
      this.#late++;
      return;
    }
    if (sentAt === undefined || truncated || !this.#intact(data, seq, socket, sentAt)) {
      this.#bad++; // never sent, or changed on the way
      return;
    }
    this.#inFlight.delete(seq);
    this.#received++;
    const us = Math.min(MAX_LATENCY_US, Math.max(0, Math.round((now - sentAt) * 1000)));
    this.#latency[us] = (this.#latency[us] as number) + 1;
    if (this.#sending(now)) this.#send(now, socket);
    else if (this.#inFlight.size === 0) this.#finish(now);
  }

  /** True while the run lasts; marks its end the first time it is false. */
  #sending(now: number): boolean {
    if (this.#end >= 0) return false;
    if (now - this.#start < this.#cfg.seconds * 1000) return true;
    this.#end = now;
    return false;
  }

  #intactHeader(data: Uint8Array, socket: number): boolean {
    return (
      data.length === this.#cfg.size &&
      new DataView(data.buffer, data.byteOffset, data.length).getUint32(4, true) === socket
    );
  }

  #intact(data: Uint8Array, seq: number, socket: number, sentAt: number): boolean {
    if (!this.#intactHeader(data, socket)) return false;
    const view = new DataView(data.buffer, data.byteOffset, data.length);
    if (view.getFloat64(8, true) !== sentAt) return false;
    for (let i = HEADER; i < data.length; i++)
      if (data[i] !== ((seq * 31 + i) & 0xff)) return false;
    return true;
  }

  #finish(now: number): void {
    if (this.#reported) return;
    this.#reported = true;
    this.#lost += this.#inFlight.size;
    this.#inFlight.clear();
    const seconds = this.#start < 0 ? 0 : ((this.#end < 0 ? now : this.#end) - this.#start) / 1000;
    const result: LoadResult = {
      event: "result",
      sent: this.#sent,
      received: this.#received,
      lost: this.#lost,
      late: this.#late,
      bad: this.#bad,
      seconds,
      p50: this.#percentile(0.5),
      p99: this.#percentile(0.99),
      error: this.#error,
    };
    this.#out.push({ kind: "external", data: result });
    for (let s = 0; s < this.#open; s++) {
      this.#out.push({ kind: "net", owner: 0, action: { kind: "udp-unlisten", socket: s } });
    }
    this.#closedSockets += this.#cfg.sockets - this.#open; // never opened
  }

  #percentile(p: number): number {
    if (this.#received === 0) return 0;
    const rank = Math.ceil(p * this.#received);
    let seen = 0;
    for (let us = 0; us < this.#latency.length; us++) {
      seen += this.#latency[us] as number;
      if (seen >= rank) return us;
    }
    return MAX_LATENCY_US;
  }
}

export default defineWorker<LoadConfig>((_index, config) => new LoadWorker(config));
