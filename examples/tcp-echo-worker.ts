/**
 * The TCP echo server's worker: one echo task per worker owning one listener (SO_REUSEPORT, so
 * several workers share the port). Every byte a connection sends comes back in order, straight
 * from the receive buffer. While a connection's send queue is blocked (its peer reads slower than
 * it writes) the task pauses receiving on it, so the peer's writes slow down instead of the
 * queue growing; it closes a connection once the peer has finished (FIN) and all is echoed. The
 * task reports "listening" (or "listen-failed") and, every tick, its counters to the controller.
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
export type TcpEchoConfig = EchoWorkerConfig;

/** An echo task's counters: connections accepted and open, bytes echoed, connections reset. */
export interface TcpEchoCounters {
  readonly accepted: number;
  readonly open: number;
  readonly bytes: number;
  readonly resets: number;
}

/** What an echo task tells the controller. */
export type TcpEchoReport = EchoServerReport<TcpEchoCounters>;

const LISTENER = 0;

/** Echoes every connection of one listener; see the module comment. */
export class TcpEcho implements AppTask<TcpEchoReport> {
  readonly #out = new Outbox<TaskOutput<TcpEchoReport>>();
  // one echo at a time is pending (the runtime pops it before the next input): reuse it
  readonly #echo: { kind: "tcp-send"; conn: number; data: Uint8Array };
  readonly #send: TaskOutput<TcpEchoReport>;
  #listening = false;
  #closing = false;
  readonly #open = new Set<number>();
  #accepted = 0;
  #bytes = 0;
  #resets = 0;

  constructor(config: TcpEchoConfig) {
    this.#echo = { kind: "tcp-send", conn: 0, data: new Uint8Array(0) };
    this.#send = { kind: "net", action: this.#echo };
    const bind = SocketAddr.parse(config.host, config.port);
    this.#net({ kind: "tcp-listen", listener: LISTENER, bind, reusePort: true });
  }

  onEvent(_now: number, input: TaskInput<TcpEchoReport>): void {
    if (input.kind !== "net") return;
    const e = input.event;
    switch (e.kind) {
      case "tcp-data":
        this.#bytes += e.data.length;
        this.#echo.conn = e.conn;
        this.#echo.data = e.data;
        this.#out.push(this.#send);
        return;
      case "tcp-backpressure":
        this.#net({ kind: e.blocked ? "tcp-pause" : "tcp-resume", conn: e.conn });
        return;
      case "tcp-accept":
        this.#accepted++;
        this.#open.add(e.conn);
        if (this.#closing) this.#net({ kind: "tcp-close", conn: e.conn });
        return;
      case "tcp-fin":
        this.#net({ kind: "tcp-close", conn: e.conn }); // after what is queued is echoed
        return;
      case "tcp-closed":
        if (e.error !== undefined) this.#resets++;
        this.#open.delete(e.conn);
        return;
      case "tcp-listen-result":
        if (e.error !== undefined || e.local === undefined) {
          const { code, message } = e.error ?? { code: "EINVAL", message: "no local address" };
          this.#report({ event: "listen-failed", code, message });
          this.#closing = true;
          return;
        }
        this.#listening = true;
        this.#report({ event: "listening", address: e.local.toString(), port: e.local.port });
        if (this.#closing) this.#net({ kind: "tcp-unlisten", listener: LISTENER });
        return;
      case "tcp-unlistened":
        this.#listening = false;
        return;
    }
  }

  onTick(): void {
    this.#report({
      event: "counters",
      accepted: this.#accepted,
      open: this.#open.size,
      bytes: this.#bytes,
      resets: this.#resets,
    });
  }

  onShutdown(): void {
    this.#closing = true;
    if (this.#listening) this.#net({ kind: "tcp-unlisten", listener: LISTENER });
    for (const conn of this.#open) this.#net({ kind: "tcp-close", conn });
    this.onTick();
  }

  popOutput(): TaskOutput<TcpEchoReport> | undefined {
    return this.#out.shift();
  }

  isEmpty(): boolean {
    return this.#closing && !this.#listening && this.#open.size === 0 && this.#out.length === 0;
  }

  #net(action: NetAction): void {
    this.#out.push({ kind: "net", action });
  }

  #report(report: TcpEchoReport): void {
    this.#out.push({ kind: "controller", data: report });
  }
}

export default defineTasks<TcpEchoConfig>(
  { echo: (config: TcpEchoConfig) => new TcpEcho(config) },
  { start: (_index, config) => [{ task: "echo", config }] },
);
