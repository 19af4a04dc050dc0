/**
 * The UDP echo server's worker: one echo task per worker owning one socket (SO_REUSEPORT, so
 * several workers share the port), every datagram sent back to its sender unchanged, straight
 * from the receive buffer. Datagrams larger than the receive buffers cannot be echoed unchanged:
 * they are dropped and counted. The task reports "listening" (or "listen-failed") and, every
 * tick, its counters to the controller.
 */
import {
  type AppTask,
  defineTasks,
  type NetAction,
  Outbox,
  SocketAddr,
  type TaskInput,
  type TaskOutput,
} from "bun-sansio";
import type { EchoServerReport, EchoWorkerConfig } from "./echo-server.ts";

/** What the server passes to each echo worker. */
export type EchoConfig = EchoWorkerConfig;

/** An echo task's counters: datagrams echoed, and dropped as larger than the buffers. */
export interface EchoCounters {
  readonly echoed: number;
  readonly truncated: number;
}

/** What an echo task tells the controller. */
export type EchoReport = EchoServerReport<EchoCounters>;

const SOCKET = 0;

/** Echoes datagrams on one socket; see the module comment. */
export class Echo implements AppTask<EchoReport> {
  readonly #out = new Outbox<TaskOutput<EchoReport>>();
  // one echo at a time is pending (the runtime pops it before the next input): reuse it
  readonly #echo: { kind: "udp-send"; socket: number; to: SocketAddr; data: Uint8Array };
  readonly #send: TaskOutput<EchoReport>;
  #open = false;
  #closing = false;
  #echoed = 0;
  #truncated = 0;

  constructor(config: EchoConfig) {
    const bind = SocketAddr.parse(config.host, config.port);
    this.#echo = { kind: "udp-send", socket: SOCKET, to: bind, data: new Uint8Array(0) };
    this.#send = { kind: "net", action: this.#echo };
    this.#net({ kind: "udp-listen", socket: SOCKET, bind, reusePort: true });
  }

  onEvent(_now: number, input: TaskInput<EchoReport>): void {
    if (input.kind !== "net") return;
    const e = input.event;
    if (e.kind === "udp-packet") {
      if (e.truncated) this.#truncated++;
      else {
        this.#echoed++;
        this.#echo.to = e.from;
        this.#echo.data = e.data;
        this.#out.push(this.#send);
      }
    } else if (e.kind === "udp-listen-result") {
      if (e.error !== undefined || e.local === undefined) {
        const { code, message } = e.error ?? { code: "EINVAL", message: "no local address" };
        this.#report({ event: "listen-failed", code, message });
        this.#closing = true;
        return;
      }
      this.#open = true;
      this.#report({ event: "listening", address: e.local.toString(), port: e.local.port });
      // a shutdown that came before the socket opened closes it now
      if (this.#closing) this.#net({ kind: "udp-unlisten", socket: SOCKET });
    } else if (e.kind === "udp-closed") {
      this.#open = false;
    }
  }

  onTick(): void {
    this.#report({ event: "counters", echoed: this.#echoed, truncated: this.#truncated });
  }

  onShutdown(): void {
    this.#closing = true;
    if (this.#open) this.#net({ kind: "udp-unlisten", socket: SOCKET });
    this.onTick();
  }

  popOutput(): TaskOutput<EchoReport> | undefined {
    return this.#out.shift();
  }

  isEmpty(): boolean {
    return this.#closing && !this.#open && this.#out.length === 0;
  }

  #net(action: NetAction): void {
    this.#out.push({ kind: "net", action });
  }

  #report(report: EchoReport): void {
    this.#out.push({ kind: "controller", data: report });
  }
}

export default defineTasks<EchoConfig>(
  { echo: (config: EchoConfig) => new Echo(config) },
  { start: (_index, config) => [{ task: "echo", config }] },
);
