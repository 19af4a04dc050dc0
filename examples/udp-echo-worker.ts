/**
 * The UDP echo server's worker: one socket (SO_REUSEPORT, so several workers can share the
 * port), every datagram sent back to its sender unchanged, straight from the receive buffer.
 * Datagrams larger than the receive buffers cannot be echoed unchanged: they are dropped and
 * counted. The worker reports "listening" (or "listen-failed") and, every tick, its counters to
 * the controller.
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

/** What the server passes to each echo worker. */
export interface EchoConfig {
  readonly [key: string]: Structured;
  readonly host: string;
  readonly port: number;
}

/** What an echo worker tells the controller. */
export type EchoReport =
  | { readonly event: "listening"; readonly address: string; readonly port: number }
  | { readonly event: "listen-failed"; readonly code: string; readonly message: string }
  | { readonly event: "counters"; readonly echoed: number; readonly truncated: number };

const SOCKET = 0;

/** Echoes datagrams on one socket; see the module comment. */
export class EchoWorker implements WorkerInner {
  readonly #out: WorkerOutput[] = [];
  #open = false;
  #closing = false;
  #echoed = 0;
  #truncated = 0;

  constructor(config: EchoConfig) {
    this.#out.push({
      kind: "net",
      owner: 0,
      action: {
        kind: "udp-listen",
        socket: SOCKET,
        bind: SocketAddr.parse(config.host, config.port),
        reusePort: true,
      },
    });
  }

  tasks(): number {
    return this.#open ? 1 : 0;
  }

  isEmpty(): boolean {
    return !this.#open && this.#out.length === 0;
  }

  spawn(): void {
    throw new Error("the echo worker has no spawnable tasks");
  }

  onTick(): void {
    this.#report({ event: "counters", echoed: this.#echoed, truncated: this.#truncated });
  }

  onEvent(_now: number, input: WorkerInput): void {
    if (input.kind !== "net") return;
    const e = input.event;
    if (e.kind === "udp-packet") {
      if (e.truncated) this.#truncated++;
      else {
        this.#echoed++;
        this.#out.push({
          kind: "net",
          owner: 0,
          action: { kind: "udp-send", socket: SOCKET, to: e.from, data: e.data },
        });
      }
      return;
    }
    this.#onControl(e);
  }

  onShutdown(): void {
    this.#closing = true;
    if (this.#open) {
      this.#out.push({ kind: "net", owner: 0, action: { kind: "udp-unlisten", socket: SOCKET } });
    }
    this.onTick();
  }

  popOutput(): WorkerOutput | undefined {
    return this.#out.shift();
  }

  #onControl(e: NetEvent): void {
    if (e.kind === "udp-listen-result") {
      if (e.error !== undefined || e.local === undefined) {
        const error = e.error ?? { code: "EINVAL", message: "no local address" };
        this.#report({ event: "listen-failed", code: error.code, message: error.message });
        return;
      }
      this.#open = true;
      this.#report({ event: "listening", address: e.local.toString(), port: e.local.port });
      // a shutdown that arrived before the socket opened closes it now
      if (this.#closing) {
        this.#out.push({ kind: "net", owner: 0, action: { kind: "udp-unlisten", socket: SOCKET } });
      }
    } else if (e.kind === "udp-closed") {
      this.#open = false;
    }
  }

  #report(report: EchoReport): void {
    this.#out.push({ kind: "external", data: report });
  }
}

export default defineWorker<EchoConfig>((_index, config) => new EchoWorker(config));
