/**
 * What both kernel backends share for TCP: listeners and connections by id and by slot, the
 * meaning of every TCP action, the per-connection send queue's accounting (high- and low-water
 * marks, hard cap), receive holds, half-close and close sequencing, and the events. Subclasses
 * (`UringTcp`, `EpollTcp`) move the bytes.
 *
 * Events made while an action is carried out are queued (an action never calls back); events
 * made while completions or readiness are handled go to the sink at once, in the order they
 * happened, so a connection's `tcp-accept` always comes before its first `tcp-data`.
 */
import { ADDR_BYTES, SocketAddr } from "../io/addr.ts";
import type { IoError, NetAction, NetEvent } from "../io/events.ts";
import { ioError } from "../sys/errno.ts";
import { native } from "../sys/native.ts";
import type { EventSink } from "./backend.ts";

/** TCP options of a backend (`BackendOptions.tcp`). */
export interface TcpOptions {
  /** Queued bytes at which `tcp-backpressure { blocked: true }` is sent. Default 64 KiB. */
  highWater?: number;
  /** Queued bytes at which `tcp-backpressure { blocked: false }` follows. Default 16 KiB. */
  lowWater?: number;
  /** Queued bytes past which a send is refused (ENOBUFS). Default 1 MiB. */
  maxQueued?: number;
  /**
   * io_uring: stream receive buffers shared by every connection (a power of two). Default 256.
   * An idle connection holds none.
   */
  recvBuffers?: number;
  /** io_uring: bytes per stream receive buffer. Default 64 KiB. */
  recvBufferSize?: number;
  /** io_uring: send memory for every connection's queue, in bytes. Default 32 MiB (mapped lazily). */
  sendMemory?: number;
  /** Most connections and listeners open at once. Default 65,536. */
  maxConnections?: number;
  /**
   * How long a graceful `tcp-close` may wait for the connection's queue to drain (a peer that has
   * stopped reading) before the connection is reset and reported closed with ETIMEDOUT and its
   * `unsent` bytes. Default 30,000 ms.
   */
  closeTimeoutMs?: number;
}

/** TCP counters of a backend (part of `BackendStats`). */
export interface TcpStats {
  /** Connections open (accepted or connected, not yet closed). */
  tcpConnections: number;
  /** Connections accepted since creation. */
  tcpAccepted: number;
  /** Bytes received and delivered (or held while paused). */
  tcpBytesIn: number;
  /** Bytes the kernel took from the send queues. */
  tcpBytesOut: number;
  /** Bytes queued to send right now, over every connection. */
  tcpQueuedBytes: number;
  /** Sends refused (ENOBUFS past the hard cap or out of send memory, EPIPE, EBADF). */
  tcpSendRefused: number;
  /** Bytes still queued when their connection was reset or failed (reported as `unsent`). */
  tcpUnsentBytes: number;
  /** Bytes received after `tcp-close` was asked for, dropped (the task said it wants none). */
  tcpDiscardedBytes: number;
  /**
   * io_uring completions (or epoll readiness reports) for an older generation of a slot, ignored
   * (their buffers recycled).
   */
  tcpStaleCompletions: number;
  /** io_uring: times a connection's receive was parked because the stream buffers ran out. */
  tcpRecvParked: number;
  /** Times accepting stopped because the process ran out of file descriptors (EMFILE/ENFILE). */
  tcpAcceptParked: number;
  /**
   * Connections the kernel accepted that were reset at once: past `maxConnections` (raise it),
   * or on a listener already closing.
   */
  tcpAcceptRefused: number;
}

/** The names of the TCP counters, in the order of a worker's stats block. */
export const TCP_STATS_FIELDS = [
  "tcpConnections",
  "tcpAccepted",
  "tcpBytesIn",
  "tcpBytesOut",
  "tcpQueuedBytes",
  "tcpSendRefused",
  "tcpUnsentBytes",
  "tcpDiscardedBytes",
  "tcpStaleCompletions",
  "tcpRecvParked",
  "tcpAcceptParked",
  "tcpAcceptRefused",
] as const satisfies readonly (keyof TcpStats)[];

/** Zeroed TCP counters. */
export function zeroTcpStats(): TcpStats {
  return pickTcpStats(() => 0);
}

/** TCP counters with each value `value(name)` gives. */
export function pickTcpStats(value: (field: keyof TcpStats) => number): TcpStats {
  // typed by the list, so a counter missing from TCP_STATS_FIELDS fails to compile here
  const out = {} as Record<(typeof TCP_STATS_FIELDS)[number], number>;
  for (const field of TCP_STATS_FIELDS) out[field] = value(field);
  return out;
}

/** A listening socket. */
export interface Listener {
  readonly id: number;
  readonly owner: number;
  readonly fd: number;
  readonly slot: number;
  readonly gen: number;
  /** Accepting (false while parked on EMFILE, and once closing). */
  accepting: boolean;
  closing: boolean;
  /** Kernel operations under way (io_uring's multishot accept). */
  inFlight: number;
  /** Why accepting failed (reported with `tcp-unlistened`). */
  error: IoError | undefined;
}

/** One connection. */
export interface Conn {
  readonly id: number;
  readonly owner: number;
  readonly fd: number;
  readonly slot: number;
  readonly gen: number;
  phase: "connecting" | "open" | "closing";
  /** Bytes accepted by `tcp-send` that the kernel has not taken yet. */
  queued: number;
  /** Above the high-water mark (reported), not yet back under the low one. */
  blocked: boolean;
  shutdown: "no" | "asked" | "done";
  close: "no" | "graceful" | "abort";
  paused: boolean;
  /** Data received while paused (copies), delivered on resume. */
  readonly held: Uint8Array[];
  /** The peer's FIN came (no more data will). */
  eof: boolean;
  /** The FIN came while paused and is not reported yet. */
  finHeld: boolean;
  /** What ended it (reported with `tcp-closed`). */
  error: IoError | undefined;
  /** Kernel operations under way (io_uring: the receive, a send, the connect and its timeout). */
  inFlight: number;
}

/**
 * The event that answers TCP action `action` when it cannot be carried out at all (`error`: TCP
 * is not available on this backend), or undefined for an action that is not TCP.
 */
export function tcpRefusal(action: NetAction, error: IoError): NetEvent | undefined {
  switch (action.kind) {
    case "tcp-listen":
      return { kind: "tcp-listen-result", listener: action.listener, error };
    case "tcp-unlisten":
      return { kind: "tcp-unlistened", listener: action.listener, error };
    case "tcp-connect":
      return { kind: "tcp-connect-result", conn: action.conn, error };
    case "tcp-close":
    case "tcp-abort":
      return { kind: "tcp-closed", conn: action.conn, error };
    case "tcp-send":
    case "tcp-pause":
    case "tcp-resume":
    case "tcp-shutdown":
      return { kind: "tcp-send-error", conn: action.conn, error };
    default:
      return undefined;
  }
}

/** How long a listener parked on EMFILE waits before it tries to accept again, at most. */
const ACCEPT_RETRY_MS = 100;
const DEFAULTS = {
  highWater: 65536,
  lowWater: 16384,
  maxQueued: 1 << 20,
  maxConnections: 65536,
  closeTimeoutMs: 30_000,
};
/** Generations wrap at 24 bits (io_uring user data has room for that beside the op). */
const GEN_MASK = 0xffffff;

function connNotOpen(conn: number): IoError {
  return { code: "EBADF", message: `connection ${conn} is not open` };
}

/** The shared TCP layer; see the module comment. */
export abstract class TcpTable {
  protected readonly counters: TcpStats = zeroTcpStats();
  protected readonly highWater: number;
  protected readonly lowWater: number;
  protected readonly maxQueued: number;
  protected readonly maxConnections: number;
  /** Connections by slot (the io_uring user data's low half, the epoll token's). */
  protected readonly conns: (Conn | undefined)[] = [];
  /** Listeners by slot. */
  protected readonly listeners: (Listener | undefined)[] = [];
  readonly #sink: EventSink;
  readonly #queue: (owner: number, event: NetEvent) => void;
  readonly #connById = new Map<number, Conn>();
  readonly #listenerById = new Map<number, Listener>();
  readonly #connGen: number[] = [];
  readonly #listenerGen: number[] = [];
  readonly #freeConnSlots: number[] = [];
  readonly #freeListenerSlots: number[] = [];
  #nextAccepted = -1;
  #acting = 0;
  /** Connections resumed with data (or a FIN) still held. */
  readonly #heldReady = new Set<Conn>();
  readonly #closeTimeoutMs: number;
  /**
   * Graceful closes waiting for their queue to drain, with their deadlines (performance.now()
   * ms); every close gets the same timeout, so insertion order is deadline order.
   */
  readonly #closing = new Map<Conn, number>();
  /** When the first of the parked listeners parked (performance.now() ms). */
  #parkedAt = 0;
  /** Listeners parked on EMFILE, re-armed when a connection closes or after a while. */
  readonly #parked = new Set<Listener>();
  readonly #peer = new Uint8Array(ADDR_BYTES);
  readonly #local = new Uint8Array(ADDR_BYTES);
  readonly #data = { kind: "tcp-data" as const, conn: 0, data: new Uint8Array(0) as Uint8Array };
  /** Counts every event handed to the sink (the backend's `eventsIn`). */
  protected onDelivered: () => void = () => {};

  /**
   * @param sink where events made during completion handling go at once
   * @param queue where events made during an action go (delivered at the next poll)
   */
  constructor(
    options: TcpOptions | undefined,
    sink: EventSink,
    queue: (owner: number, event: NetEvent) => void,
  ) {
    this.highWater = options?.highWater ?? DEFAULTS.highWater;
    this.lowWater = options?.lowWater ?? DEFAULTS.lowWater;
    this.maxQueued = options?.maxQueued ?? DEFAULTS.maxQueued;
    this.maxConnections = options?.maxConnections ?? DEFAULTS.maxConnections;
    this.#closeTimeoutMs = options?.closeTimeoutMs ?? DEFAULTS.closeTimeoutMs;
    if (!(this.lowWater >= 0 && this.lowWater < this.highWater && this.highWater <= this.maxQueued))
      throw new RangeError(
        `tcp options need 0 <= lowWater < highWater <= maxQueued, got ${this.lowWater}, ${this.highWater}, ${this.maxQueued}`,
      );
    this.#sink = sink;
    this.#queue = queue;
  }

  /** Counters (see `TcpStats`). */
  stats(): TcpStats {
    return { ...this.counters, tcpConnections: this.#connById.size };
  }

  /** True when nothing TCP is open. */
  isEmpty(): boolean {
    return this.#connById.size === 0 && this.#listenerById.size === 0;
  }

  /** Carries out a TCP action (any other kind is ignored). */
  act(owner: number, action: NetAction): void {
    this.#acting++;
    try {
      this.#act(owner, action);
    } finally {
      this.#acting--;
    }
  }

  /** Resets every connection and closes every listener (the backend is closing). */
  closeAll(): void {
    this.#acting++;
    try {
      for (const l of this.listeners) if (l !== undefined && !l.closing) this.#unlisten(l);
      for (const c of this.conns) if (c !== undefined && c.phase !== "closing") this.#abort(c);
    } finally {
      this.#acting--;
    }
  }

  // ---- what subclasses provide -------------------------------------------------------------

  /** Starts accepting on a new listener. */
  protected abstract startAccept(l: Listener): void;
  /** Stops accepting; calls `listenerGone` once nothing is in flight. */
  protected abstract stopAccept(l: Listener): void;
  /** Starts connecting `c` to `to`, bounded by `timeoutMs` (0: none); ends in `connected`. */
  protected abstract startConnect(c: Conn, to: SocketAddr, timeoutMs: number): void;
  /** Starts receiving on `c` (not paused, not at end of stream). */
  protected abstract startReceive(c: Conn): void;
  /** Stops receiving on `c` (pause); data already on its way still arrives through `received`. */
  protected abstract stopReceive(c: Conn): void;
  /**
   * Queues `data` (already counted in `c.queued`) to send on `c`, copying what is not sent at
   * once; false when there is no memory for it.
   */
  protected abstract enqueue(c: Conn, data: Uint8Array): boolean;
  /** Sends what `c` has queued (it has just connected). */
  protected abstract kick(c: Conn): void;
  /** Stops everything under way on `c` and drops its queue; calls `connGone` once idle. */
  protected abstract teardown(c: Conn): void;

  // ---- what subclasses call ----------------------------------------------------------------

  /** An event from completion handling (or, during an action, queued). */
  protected emit(owner: number, event: NetEvent): void {
    if (this.#acting > 0) {
      this.#queue(owner, event);
      return;
    }
    this.onDelivered();
    this.#sink(owner, event);
  }

  /** `data` arrived on `c` (a view valid until the sink returns). */
  protected received(c: Conn, data: Uint8Array): void {
    if (c.phase !== "open" || c.close !== "no") {
      this.counters.tcpDiscardedBytes += data.length;
      return;
    }
    this.counters.tcpBytesIn += data.length;
    if (c.paused || c.held.length > 0) {
      // behind what is held: in order, after it
      c.held.push(data.slice());
      if (!c.paused) this.#heldReady.add(c);
      return;
    }
    const e = this.#data;
    e.conn = c.id;
    e.data = data;
    this.emit(c.owner, e);
  }

  /** The peer's FIN came on `c`. */
  protected peerFinished(c: Conn): void {
    if (c.eof) return;
    c.eof = true;
    if (c.phase !== "open" || c.close !== "no") return;
    if (c.paused || c.held.length > 0) c.finHeld = true;
    else this.emit(c.owner, { kind: "tcp-fin", conn: c.id });
  }

  /** The kernel took `bytes` of `c`'s queue. */
  protected sent(c: Conn, bytes: number): void {
    c.queued -= bytes;
    this.counters.tcpQueuedBytes -= bytes;
    this.counters.tcpBytesOut += bytes;
    if (c.blocked && c.queued <= this.lowWater && c.phase === "open" && c.close === "no") {
      c.blocked = false;
      this.emit(c.owner, { kind: "tcp-backpressure", conn: c.id, blocked: false });
    }
    if (c.queued === 0) this.#drained(c);
  }

  /** `c` failed (reset, broken pipe...): it is torn down and reported closed with `error`. */
  protected failed(c: Conn, error: IoError): void {
    if (c.phase === "closing") return;
    c.error = error;
    c.phase = "closing";
    this.teardown(c);
  }

  /** `c` connected (`error` undefined) or could not; a failed one is gone at once. */
  protected connected(c: Conn, error: IoError | undefined): void {
    if (c.phase !== "connecting") return;
    if (error === undefined) {
      const r = native().sio_tcp_adopt(c.fd, 0, this.#peer, this.#local);
      if (r < 0) error = ioError(r);
    }
    if (error !== undefined) {
      c.phase = "closing";
      this.#release(c);
      this.emit(c.owner, { kind: "tcp-connect-result", conn: c.id, error });
      return;
    }
    c.phase = "open";
    this.emit(c.owner, {
      kind: "tcp-connect-result",
      conn: c.id,
      local: new SocketAddr(this.#local.slice()),
      peer: new SocketAddr(this.#peer.slice()),
    });
    // paused while connecting, or by the handler of the event just given
    if (!c.paused && c.phase === "open") this.startReceive(c);
    if (c.queued > 0) this.kick(c);
  }

  /**
   * The kernel accepted `fd` on `l` (already tracked by the ledger when `tracked`): the
   * connection is reported and starts receiving. Returns it, or undefined when it was refused
   * (gone already, or too many connections), its fd then closed.
   */
  protected accepted(l: Listener, fd: number, tracked: boolean): Conn | undefined {
    const n = native();
    const r = n.sio_tcp_adopt(fd, tracked ? 0 : 1, this.#peer, this.#local);
    const slot = r < 0 ? -1 : this.#takeSlot(false);
    if (slot < 0) {
      if (r >= 0) this.counters.tcpAcceptRefused++; // (r < 0: the peer had gone already)
      n.sio_tcp_linger0(fd);
      n.sio_close(fd);
      return undefined;
    }
    const c = this.#newConn(this.#nextAccepted--, l.owner, fd, slot);
    this.counters.tcpAccepted++;
    this.emit(l.owner, {
      kind: "tcp-accept",
      listener: l.id,
      conn: c.id,
      peer: new SocketAddr(this.#peer.slice()),
      local: new SocketAddr(this.#local.slice()),
    });
    // unless the event's handler has paused, closed or reset it already
    if (!c.paused && c.phase === "open") this.startReceive(c);
    return c;
  }

  /**
   * Accepting on `l` stopped for lack of file descriptors: it is tried again when a connection
   * closes, or `ACCEPT_RETRY_MS` later (descriptors may be freed by anything in the process).
   */
  protected parkAccept(l: Listener): void {
    l.accepting = false;
    this.counters.tcpAcceptParked++;
    if (this.#parked.size === 0) this.#parkedAt = performance.now();
    this.#parked.add(l);
  }

  /**
   * Milliseconds until `runTimers` has something to do (parked listeners to try again, a
   * graceful close to give up on); Infinity when nothing waits.
   */
  untilTimer(): number {
    let at = this.#parked.size === 0 ? Number.POSITIVE_INFINITY : this.#parkedAt + ACCEPT_RETRY_MS;
    for (const due of this.#closing.values()) {
      at = Math.min(at, due); // the first is the earliest
      break;
    }
    return at === Number.POSITIVE_INFINITY ? at : Math.max(0, at - performance.now());
  }

  /**
   * Tries parked listeners again once their retry time has come, and resets connections whose
   * graceful close has waited `closeTimeoutMs` (backends call it before every poll).
   */
  runTimers(): void {
    if (this.#parked.size === 0 && this.#closing.size === 0) return;
    const now = performance.now();
    if (this.#parked.size > 0 && now >= this.#parkedAt + ACCEPT_RETRY_MS) this.#unpark();
    for (const [c, due] of this.#closing) {
      if (due > now) break;
      this.#closing.delete(c);
      c.error = {
        code: "ETIMEDOUT",
        message: `tcp-close waited ${this.#closeTimeoutMs} ms for the peer to read what was queued (tcp.closeTimeoutMs); the connection was reset`,
      };
      this.#abort(c);
    }
  }

  #unpark(): void {
    for (const l of this.#parked) {
      this.#parked.delete(l);
      if (!l.closing) {
        l.accepting = true;
        this.startAccept(l);
      }
    }
  }

  /** Accepting on `l` failed for good: it is closed and reported with `error`. */
  protected acceptFailed(l: Listener, error: IoError): void {
    if (l.closing) return;
    l.closing = true;
    l.accepting = false;
    this.#parked.delete(l);
    l.error = error;
    this.stopAccept(l);
  }

  /** Nothing is in flight on closing listener `l` any more: it is closed and reported. */
  protected listenerGone(l: Listener): void {
    if (this.listeners[l.slot] !== l) return;
    this.listeners[l.slot] = undefined;
    this.#listenerGen[l.slot] = (l.gen + 1) & GEN_MASK;
    this.#freeListenerSlots.push(l.slot);
    this.#listenerById.delete(l.id);
    native().sio_close(l.fd);
    this.emit(l.owner, {
      kind: "tcp-unlistened",
      listener: l.id,
      ...(l.error === undefined ? {} : { error: l.error }),
    });
  }

  /** Nothing is in flight on closing connection `c` any more: it is closed and reported. */
  protected connGone(c: Conn): void {
    if (this.conns[c.slot] !== c) return;
    const unsent = c.queued;
    this.#release(c);
    this.emit(c.owner, {
      kind: "tcp-closed",
      conn: c.id,
      ...(c.error === undefined ? {} : { error: c.error }),
      ...(unsent > 0 ? { unsent } : {}),
    });
  }

  /** The generation a completion for connection slot `slot` must carry. */
  protected connGen(slot: number): number {
    return this.#connGen[slot] ?? 0;
  }

  // ---- the actions -------------------------------------------------------------------------

  #act(owner: number, a: NetAction): void {
    switch (a.kind) {
      case "tcp-listen":
        this.#listen(owner, a.listener, a.bind, a.backlog ?? 4096, a.reusePort ?? false);
        return;
      case "tcp-unlisten": {
        const l = this.#listenerById.get(a.listener);
        if (l === undefined || l.closing) {
          this.emit(owner, {
            kind: "tcp-unlistened",
            listener: a.listener,
            error: { code: "EBADF", message: `listener ${a.listener} is not open` },
          });
          return;
        }
        this.#unlisten(l);
        return;
      }
      case "tcp-connect":
        this.#connect(owner, a.conn, a.to, a.timeoutMs ?? 30000);
        return;
      case "tcp-send":
        this.#send(owner, a.conn, a.data);
        return;
      default:
        this.#control(owner, a);
    }
  }

  /** Pause, resume, shutdown, close and abort: the actions on an open connection. */
  #control(owner: number, a: NetAction): void {
    if (!("conn" in a)) return;
    const c = this.#connById.get(a.conn);
    if (c === undefined || c.phase === "closing" || c.close !== "no") {
      // closing twice is harmless; anything else on a connection that is not there is an error
      if (a.kind === "tcp-close" || a.kind === "tcp-abort") {
        if (c === undefined)
          this.emit(owner, { kind: "tcp-closed", conn: a.conn, error: connNotOpen(a.conn) });
        else if (a.kind === "tcp-abort" && c.phase !== "closing") this.#abort(c);
        return;
      }
      this.emit(owner, { kind: "tcp-send-error", conn: a.conn, error: connNotOpen(a.conn) });
      return;
    }
    switch (a.kind) {
      case "tcp-pause":
        if (c.paused) return;
        c.paused = true;
        if (c.phase === "open" && !c.eof) this.stopReceive(c);
        return;
      case "tcp-resume":
        this.#resume(c);
        return;
      case "tcp-shutdown":
        if (c.shutdown !== "no") return;
        c.shutdown = "asked";
        if (c.queued === 0 && c.phase === "open") this.#drained(c);
        return;
      case "tcp-close":
        c.close = "graceful";
        c.paused = true;
        c.held.length = 0;
        if (c.phase === "connecting") this.#abort(c);
        else if (c.queued === 0) this.#drained(c);
        else this.#closing.set(c, performance.now() + this.#closeTimeoutMs);
        return;
      case "tcp-abort":
        this.#abort(c);
        return;
    }
  }

  #resume(c: Conn): void {
    if (!c.paused) return;
    c.paused = false;
    if (c.held.length > 0 || c.finHeld) this.#heldReady.add(c);
    if (c.phase === "open" && !c.eof) this.startReceive(c);
  }

  /** True when held data waits to be delivered (a poll must not block). */
  hasHeld(): boolean {
    return this.#heldReady.size > 0;
  }

  /**
   * Delivers what resumed connections held, a chunk at a time, each followed by the events its
   * handler's actions made (`flush`): a handler that pauses again (its queue blocked) stops the
   * delivery there, and the rest stays held. Backends call it after handling completions.
   */
  deliverHeld(flush: () => void): void {
    if (this.#heldReady.size === 0) return; // (no iterator made on every poll)
    for (const c of this.#heldReady) {
      while (!c.paused && c.held.length > 0 && c.phase === "open" && c.close === "no") {
        const data = c.held.shift() as Uint8Array;
        this.emit(c.owner, { kind: "tcp-data", conn: c.id, data });
        flush();
      }
      if (c.paused) continue;
      this.#heldReady.delete(c);
      if (c.finHeld && c.held.length === 0 && c.phase === "open" && c.close === "no") {
        c.finHeld = false;
        this.emit(c.owner, { kind: "tcp-fin", conn: c.id });
        flush();
      }
    }
  }

  #abort(c: Conn): void {
    c.close = "abort";
    c.phase = "closing";
    native().sio_tcp_linger0(c.fd);
    this.teardown(c);
  }

  /** `c`'s queue is empty: a shutdown or graceful close asked for goes ahead. */
  #drained(c: Conn): void {
    if (c.phase !== "open") return;
    if (c.shutdown === "asked" || c.close === "graceful") {
      if (c.shutdown !== "done") {
        c.shutdown = "done";
        const r = native().sio_tcp_shutdown(c.fd);
        if (r < 0 && c.close === "no") {
          this.failed(c, ioError(r));
          return;
        }
      }
      if (c.close === "graceful") {
        c.phase = "closing";
        this.teardown(c);
      }
    }
  }

  #send(owner: number, id: number, data: Uint8Array): void {
    const c = this.#connById.get(id);
    const error =
      c === undefined || c.phase === "closing" || c.close !== "no"
        ? connNotOpen(id)
        : c.shutdown !== "no"
          ? { code: "EPIPE", message: `connection ${id} is shut down for writing` }
          : c.queued + data.length > this.maxQueued
            ? {
                code: "ENOBUFS",
                message: `connection ${id} has ${c.queued} bytes queued; ${data.length} more would pass the cap of ${this.maxQueued} (wait for tcp-backpressure { blocked: false }, or raise tcp.maxQueued)`,
              }
            : undefined;
    if (error !== undefined || c === undefined) {
      this.counters.tcpSendRefused++;
      this.emit(owner, { kind: "tcp-send-error", conn: id, error: error ?? connNotOpen(id) });
      return;
    }
    if (data.length === 0) return;
    // counted first: an epoll backend may send at once, from inside enqueue
    c.queued += data.length;
    this.counters.tcpQueuedBytes += data.length;
    if (!this.enqueue(c, data)) {
      c.queued -= data.length;
      this.counters.tcpQueuedBytes -= data.length;
      this.counters.tcpSendRefused++;
      this.emit(owner, {
        kind: "tcp-send-error",
        conn: id,
        error: {
          code: "ENOBUFS",
          message: `the backend's TCP send memory is used up by queued data (raise tcp.sendMemory, or send less before tcp-backpressure clears)`,
        },
      });
      return;
    }
    if (!c.blocked && c.queued >= this.highWater && c.phase !== "closing") {
      c.blocked = true;
      this.emit(owner, { kind: "tcp-backpressure", conn: id, blocked: true });
    }
  }

  #listen(
    owner: number,
    id: number,
    bind: SocketAddr,
    backlog: number,
    reusePort: boolean,
  ): undefined {
    const refuse = (error: IoError): undefined => {
      this.emit(owner, { kind: "tcp-listen-result", listener: id, error });
    };
    if (this.#listenerById.has(id))
      return refuse({ code: "EEXIST", message: `listener id ${id} is already in use` });
    const slot = this.#takeSlot(true);
    if (slot < 0) return refuse(this.#tooMany());
    const fd = native().sio_tcp_listen(bind.raw, backlog, reusePort ? 1 : 0, this.#local);
    if (fd < 0) {
      this.#freeListenerSlots.push(slot);
      return refuse(ioError(fd));
    }
    const l: Listener = {
      id,
      owner,
      fd,
      slot,
      gen: this.#listenerGen[slot] ?? 0,
      accepting: true,
      closing: false,
      inFlight: 0,
      error: undefined,
    };
    this.listeners[slot] = l;
    this.#listenerById.set(id, l);
    this.emit(owner, {
      kind: "tcp-listen-result",
      listener: id,
      local: new SocketAddr(this.#local.slice()),
    });
    this.startAccept(l);
  }

  #unlisten(l: Listener): void {
    l.closing = true;
    l.accepting = false;
    this.#parked.delete(l);
    this.stopAccept(l);
  }

  #connect(owner: number, id: number, to: SocketAddr, timeoutMs: number): undefined {
    const refuse = (error: IoError): undefined => {
      this.emit(owner, { kind: "tcp-connect-result", conn: id, error });
    };
    if (!Number.isInteger(id) || id < 0)
      return refuse({
        code: "EINVAL",
        message: `connection ids of tcp-connect are non-negative integers, got ${id} (negative ones are for accepted connections)`,
      });
    if (this.#connById.has(id))
      return refuse({ code: "EEXIST", message: `connection id ${id} is already in use` });
    const slot = this.#takeSlot(false);
    if (slot < 0) return refuse(this.#tooMany());
    const fd = native().sio_tcp_socket(to.raw);
    if (fd < 0) {
      this.#freeConnSlots.push(slot);
      return refuse(ioError(fd));
    }
    const c = this.#newConn(id, owner, fd, slot);
    c.phase = "connecting";
    this.startConnect(c, to, Math.max(0, Math.round(timeoutMs)));
  }

  #newConn(id: number, owner: number, fd: number, slot: number): Conn {
    const c: Conn = {
      id,
      owner,
      fd,
      slot,
      gen: this.#connGen[slot] ?? 0,
      phase: "open",
      queued: 0,
      blocked: false,
      shutdown: "no",
      close: "no",
      paused: false,
      held: [],
      eof: false,
      finHeld: false,
      error: undefined,
      inFlight: 0,
    };
    this.conns[slot] = c;
    this.#connById.set(id, c);
    return c;
  }

  /** Frees `c`'s slot and id and closes its fd; parked listeners may accept again. */
  #release(c: Conn): void {
    this.#heldReady.delete(c);
    this.#closing.delete(c);
    this.conns[c.slot] = undefined;
    this.#connGen[c.slot] = (c.gen + 1) & GEN_MASK;
    this.#freeConnSlots.push(c.slot);
    this.#connById.delete(c.id);
    if (c.queued > 0) {
      this.counters.tcpUnsentBytes += c.queued;
      this.counters.tcpQueuedBytes -= c.queued;
    }
    native().sio_close(c.fd);
    this.#unpark(); // a descriptor is free
  }

  /** A free slot (listener or connection), or -1 past `maxConnections`. */
  #takeSlot(listener: boolean): number {
    const free = listener ? this.#freeListenerSlots : this.#freeConnSlots;
    const table = listener ? this.listeners : this.conns;
    const reused = free.pop();
    if (reused !== undefined) return reused;
    if (this.#connById.size + this.#listenerById.size >= this.maxConnections) return -1;
    return table.length < this.maxConnections ? table.push(undefined) - 1 : -1;
  }

  #tooMany(): IoError {
    return {
      code: "EMFILE",
      message: `this backend has ${this.maxConnections} TCP connections and listeners open (raise tcp.maxConnections)`,
    };
  }
}
