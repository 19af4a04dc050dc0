import { ADDR_BYTES, SocketAddr } from "../io/addr.ts";
import type { NetAction, NetEvent } from "../io/events.ts";
import { native } from "../native/load.ts";
import {
  type BackendOptions,
  type BackendStats,
  type EventSink,
  ioError,
  MAX_UDP_PAYLOAD,
  MAX_UDP6_PAYLOAD,
  zeroStats,
} from "./backend.ts";

/** One open socket of a backend. */
export interface Sock {
  /** Index in the backend's socket table (used in io_uring user data and epoll tokens). */
  readonly index: number;
  /** The id the task chose. */
  readonly id: number;
  /** Who receives its events. */
  readonly owner: number;
  readonly fd: number;
  /** "open", or "closing" after unlisten (no more packets are delivered). */
  state: "open" | "closing";
  /** Sends handed to the kernel and not yet completed. */
  inFlight: number;
}

/**
 * What both backends share: the socket table, binding, queued events, and turning every send
 * action into single datagrams. Subclasses supply the kernel side.
 */
export abstract class SocketTable {
  protected readonly sink: EventSink;
  protected readonly counters: BackendStats = zeroStats();
  protected readonly sendQueueLimit: number;
  /** Sockets by index; a closed socket leaves `undefined`. */
  protected readonly socks: (Sock | undefined)[] = [];
  readonly #byId = new Map<number, Sock>();
  readonly #queued: [number, NetEvent][] = [];
  readonly #bound = new Uint8Array(ADDR_BYTES);

  constructor(options: BackendOptions) {
    this.sink = options.onEvent;
    this.sendQueueLimit = options.sendQueueLimit ?? 65536;
  }

  /** See `Backend.act`. */
  act(owner: number, action: NetAction): void {
    switch (action.kind) {
      case "udp-listen":
        this.#listen(
          owner,
          action.socket,
          action.bind,
          action.reuseAddr ?? false,
          action.reusePort ?? false,
        );
        return;
      case "udp-unlisten": {
        const sock = this.#byId.get(action.socket);
        if (sock === undefined || sock.state !== "open") {
          this.queue(owner, {
            kind: "udp-closed",
            socket: action.socket,
            error: { code: "EBADF", message: `socket ${action.socket} is not open` },
          });
          return;
        }
        sock.state = "closing";
        this.startClose(sock);
        return;
      }
      case "udp-send":
        this.#send(owner, action.socket, action.to, action.data);
        return;
      case "udp-send-many":
        for (const to of action.to) this.#send(owner, action.socket, to, action.data);
        return;
      case "udp-send-batch":
        for (const p of action.packets) this.#send(owner, p.socket, p.to, p.data);
        return;
    }
  }

  /** See `Backend.stats`. */
  stats(): BackendStats {
    return { ...this.counters, sockets: this.#byId.size };
  }

  /** Queues an event for delivery at the start of the next poll (never re-enters the sink). */
  protected queue(owner: number, event: NetEvent): void {
    this.#queued.push([owner, event]);
  }

  /** True when queued events are waiting (poll must not block). */
  protected hasQueued(): boolean {
    return this.#queued.length > 0;
  }

  /** Delivers queued events; returns how many. */
  protected deliverQueued(): number {
    if (this.#queued.length === 0) return 0;
    const events = this.#queued.splice(0);
    for (const [owner, event] of events) this.sink(owner, event);
    this.counters.eventsIn += events.length;
    return events.length;
  }

  /** Removes a socket whose close has completed, closes its fd and reports `udp-closed`. */
  protected finishClose(sock: Sock, error?: ReturnType<typeof ioError>): void {
    if (this.socks[sock.index] !== sock) return;
    this.socks[sock.index] = undefined;
    this.#byId.delete(sock.id);
    native().sio_close(sock.fd);
    this.queue(
      sock.owner,
      error === undefined
        ? { kind: "udp-closed", socket: sock.id }
        : { kind: "udp-closed", socket: sock.id, error },
    );
  }

  /** Every socket still in the table. */
  protected openSocks(): Sock[] {
    return this.socks.filter((s): s is Sock => s !== undefined);
  }

  /** Starts receiving on a newly bound socket. */
  protected abstract armReceive(sock: Sock): void;
  /** Begins closing: stop receiving, then `finishClose` once nothing is in flight. */
  protected abstract startClose(sock: Sock): void;
  /** Sends one datagram (the data may be a receive-buffer view: valid only during this call). */
  protected abstract sendOne(sock: Sock, to: SocketAddr, data: Uint8Array): void;

  #listen(
    owner: number,
    id: number,
    bind: SocketAddr,
    reuseAddr: boolean,
    reusePort: boolean,
  ): void {
    if (this.#byId.has(id)) {
      this.queue(owner, {
        kind: "udp-listen-result",
        socket: id,
        error: { code: "EEXIST", message: `socket id ${id} is already in use` },
      });
      return;
    }
    const fd = native().sio_udp_bind(
      bind.raw,
      reuseAddr ? 1 : 0,
      reusePort ? 1 : 0,
      0,
      0,
      this.#bound,
    );
    if (fd < 0) {
      this.queue(owner, { kind: "udp-listen-result", socket: id, error: ioError(fd) });
      return;
    }
    let index = this.socks.indexOf(undefined);
    if (index < 0) index = this.socks.length;
    const sock: Sock = { index, id, owner, fd, state: "open", inFlight: 0 };
    this.socks[index] = sock;
    this.#byId.set(id, sock);
    this.queue(owner, {
      kind: "udp-listen-result",
      socket: id,
      local: new SocketAddr(this.#bound.slice()),
    });
    this.armReceive(sock);
  }

  #send(owner: number, id: number, to: SocketAddr, data: Uint8Array): void {
    const sock = this.#byId.get(id);
    if (sock === undefined || sock.state !== "open") {
      this.counters.sendErrors++;
      this.queue(owner, {
        kind: "udp-send-error",
        socket: id,
        error: { code: "EBADF", message: `socket ${id} is not open` },
      });
      return;
    }
    const max = to.family === 4 ? MAX_UDP_PAYLOAD : MAX_UDP6_PAYLOAD;
    if (data.length > max) {
      this.counters.sendErrors++;
      this.queue(owner, {
        kind: "udp-send-error",
        socket: id,
        error: {
          code: "EMSGSIZE",
          message: `datagram of ${data.length} bytes is larger than UDP allows (${max})`,
        },
      });
      return;
    }
    this.sendOne(sock, to, data);
  }
}
