/**
 * TCP on the epoll backend: the same events as io_uring's (`TcpTable`) from level-triggered
 * readiness, `accept4`, `recv` into one read buffer, sends straight from the caller's bytes when
 * the queue is empty (what the socket does not take is copied and sent on EPOLLOUT), and
 * non-blocking connect with a deadline. EPOLLOUT is watched only while something waits to be
 * sent or a connect is under way; after the peer's FIN, EPOLLIN and EPOLLRDHUP leave the interest
 * set (level triggering would report them forever).
 */
import { ptr } from "bun:ffi";
import type { SocketAddr } from "../io/addr.ts";
import type { NetEvent } from "../io/events.ts";
import { ioError } from "../sys/errno.ts";
import type { Native } from "../sys/native.ts";
import { type EventSink, setU64 } from "./backend.ts";
import { type Conn, type Listener, type TcpOptions, TcpTable } from "./tcp.ts";

const EPOLLIN = 0x001;
const EPOLLOUT = 0x004;
const EPOLLERR = 0x008;
const EPOLLHUP = 0x010;
const EPOLLRDHUP = 0x2000;
const RECEIVING = EPOLLIN | EPOLLRDHUP;
const EAGAIN = -11;
const EINPROGRESS = -115;
const ECONNABORTED = -103;
const EMFILE = -24;
const ENFILE = -23;
/** Token high halves: which table the low half (a slot) indexes. */
export const TOKEN_LISTENER = 1;
export const TOKEN_CONN = 2;
/** Reads per connection per readiness report (level triggering brings the rest next time). */
const READS = 4;
const ACCEPTS = 256;
const IOVS = 64;

/** Unsent bytes of a connection: copies, the first one sent from `head`. */
interface Pending {
  readonly chunks: Uint8Array[];
  head: number;
}

/** See the module comment. */
export class EpollTcp extends TcpTable {
  readonly #n: Native;
  readonly #ep: number;
  readonly #buf: Uint8Array;
  readonly #iovs = new Uint8Array(IOVS * 16);
  readonly #iovsView = new DataView(this.#iovs.buffer);
  /** Per connection slot: the epoll events watched (-1: not registered). */
  readonly #interest: number[] = [];
  readonly #pending: (Pending | undefined)[] = [];
  /** Connects under way with a deadline (performance.now() ms). */
  readonly #deadlines = new Map<Conn, { at: number; timeoutMs: number }>();

  constructor(
    n: Native,
    ep: number,
    options: TcpOptions | undefined,
    sink: EventSink,
    queue: (owner: number, event: NetEvent) => void,
    delivered: () => void,
  ) {
    super(options, sink, queue);
    this.#n = n;
    this.#ep = ep;
    this.#buf = new Uint8Array(options?.recvBufferSize ?? 65536);
    this.onDelivered = delivered;
  }

  /** Milliseconds until the next connect deadline (Infinity: none). */
  untilDeadline(): number {
    let next = Number.POSITIVE_INFINITY;
    for (const d of this.#deadlines.values()) next = Math.min(next, d.at);
    return next === Number.POSITIVE_INFINITY ? next : Math.max(0, next - performance.now());
  }

  /** Fails the connects whose deadline has passed (ETIMEDOUT). */
  expire(): void {
    if (this.#deadlines.size === 0) return;
    const now = performance.now();
    for (const [c, d] of this.#deadlines) {
      if (d.at > now) continue;
      this.#deadlines.delete(c);
      this.#unwatch(c);
      this.connected(c, { code: "ETIMEDOUT", message: `no connection within ${d.timeoutMs} ms` });
    }
  }

  /**
   * Handles readiness `events` of the listener or connection at `slot`; `tag` is the token's high
   * half: a TOKEN_* kind and, above it, the generation the slot had when it was watched. A report
   * for an older generation (its slot closed and reused earlier in the same batch) is ignored.
   */
  ready(tag: number, slot: number, events: number): void {
    const gen = tag >>> 8;
    if ((tag & 0xff) === TOKEN_LISTENER) {
      const l = this.listeners[slot];
      if (l?.gen === gen && l.accepting) this.#accept(l);
      return;
    }
    const c = this.conns[slot];
    if (c === undefined || c.gen !== gen) {
      this.counters.tcpStaleCompletions++;
      return;
    }
    if (c.phase === "connecting") {
      this.#deadlines.delete(c);
      const r = this.#n.sio_tcp_so_error(c.fd);
      if (r < 0) this.#unwatch(c);
      this.connected(c, r < 0 ? ioError(r) : undefined);
      return;
    }
    if ((events & EPOLLOUT) !== 0 && c.phase === "open") this.#flush(c);
    if ((events & (RECEIVING | EPOLLHUP | EPOLLERR)) !== 0) this.#read(c);
  }

  // ---- TcpTable ----------------------------------------------------------------------------

  protected startAccept(l: Listener): void {
    this.#ctl(l.fd, EPOLLIN, TOKEN_LISTENER, l.gen, l.slot, l.inFlight === 0 ? 1 : 2);
    l.inFlight = 1; // registered with epoll (nothing is in flight in the io_uring sense)
  }

  protected stopAccept(l: Listener): void {
    if (l.inFlight > 0) this.#n.sio_epoll_ctl(this.#ep, 3, l.fd, 0, 0);
    l.inFlight = 0;
    this.listenerGone(l);
  }

  protected startConnect(c: Conn, to: SocketAddr, timeoutMs: number): void {
    this.#pending[c.slot] = undefined;
    const r = this.#n.sio_tcp_connect(c.fd, to.raw);
    if (r !== 0 && r !== EINPROGRESS) {
      this.#unwatch(c);
      this.connected(c, ioError(r));
      return;
    }
    this.#watch(c, EPOLLOUT);
    if (r === 0) {
      this.connected(c, undefined);
      return;
    }
    if (timeoutMs > 0) this.#deadlines.set(c, { at: performance.now() + timeoutMs, timeoutMs });
  }

  protected startReceive(c: Conn): void {
    this.#watch(c, this.#events(c) | RECEIVING);
  }

  protected stopReceive(c: Conn): void {
    this.#watch(c, this.#events(c) & ~RECEIVING);
  }

  protected enqueue(c: Conn, data: Uint8Array): boolean {
    let p = this.#pending[c.slot];
    let from = 0;
    if ((p === undefined || p.chunks.length === 0) && c.phase === "open") {
      const r = this.#n.sio_tcp_send(c.fd, data, data.length);
      if (r < 0 && r !== EAGAIN) {
        this.failed(c, ioError(r));
        return true;
      }
      if (r > 0) {
        from = r;
        this.sent(c, r);
      }
      if (from === data.length) return true;
    }
    if (p === undefined) {
      p = { chunks: [], head: 0 };
      this.#pending[c.slot] = p;
    }
    p.chunks.push(data.slice(from));
    if (c.phase === "open") this.#watch(c, this.#events(c) | EPOLLOUT);
    return true;
  }

  protected kick(c: Conn): void {
    this.#flush(c);
  }

  protected teardown(c: Conn): void {
    this.#deadlines.delete(c);
    this.#unwatch(c);
    this.connGone(c);
  }

  // ---- readiness ---------------------------------------------------------------------------

  #accept(l: Listener): void {
    for (let i = 0; i < ACCEPTS && l.accepting; i++) {
      const fd = this.#n.sio_tcp_accept(l.fd);
      if (fd >= 0) {
        this.accepted(l, fd, false);
      } else if (fd === EAGAIN) {
        return;
      } else if (fd === EMFILE || fd === ENFILE) {
        this.#ctl(l.fd, 0, TOKEN_LISTENER, l.gen, l.slot, 2);
        this.parkAccept(l);
        return;
      } else if (fd !== ECONNABORTED) {
        this.acceptFailed(l, ioError(fd));
        return;
      }
    }
  }

  #read(c: Conn): void {
    const buf = this.#buf;
    for (let i = 0; i < READS && c.phase === "open" && !c.paused && !c.eof; i++) {
      const r = this.#n.sio_tcp_recv(c.fd, buf, buf.length);
      if (r > 0) {
        this.received(c, buf.subarray(0, r));
        if (r < buf.length) return;
      } else if (r === 0) {
        if (c.phase === "open") this.#watch(c, this.#events(c) & ~RECEIVING);
        this.peerFinished(c);
        return;
      } else {
        if (r !== EAGAIN) this.failed(c, ioError(r));
        return;
      }
    }
  }

  /** Sends what waits on `c` until the socket is full; stops watching EPOLLOUT once all is sent. */
  #flush(c: Conn): void {
    const p = this.#pending[c.slot];
    while (p !== undefined && p.chunks.length > 0 && c.phase === "open") {
      const count = Math.min(IOVS, p.chunks.length);
      for (let i = 0; i < count; i++) {
        const chunk = p.chunks[i] as Uint8Array;
        const start = i === 0 ? p.head : 0;
        setU64(this.#iovsView, i * 16, ptr(chunk) + start);
        setU64(this.#iovsView, i * 16 + 8, chunk.length - start);
      }
      const r = this.#n.sio_tcp_sendv(c.fd, this.#iovs, count);
      if (r === EAGAIN) return;
      if (r < 0) {
        this.failed(c, ioError(r));
        return;
      }
      let left = r;
      while (left > 0) {
        const chunk = p.chunks[0] as Uint8Array;
        const n = Math.min(left, chunk.length - p.head);
        p.head += n;
        left -= n;
        if (p.head === chunk.length) {
          p.chunks.shift();
          p.head = 0;
        }
      }
      this.sent(c, r);
    }
    if (c.phase === "open") this.#watch(c, this.#events(c) & ~EPOLLOUT);
  }

  #events(c: Conn): number {
    const e = this.#interest[c.slot] ?? -1;
    return Math.max(e, 0);
  }

  /** Sets the events watched on `c` (registering it the first time). */
  #watch(c: Conn, events: number): void {
    const now = this.#interest[c.slot] ?? -1;
    if (now === events) return;
    this.#ctl(c.fd, events, TOKEN_CONN, c.gen, c.slot, now < 0 ? 1 : 2);
    this.#interest[c.slot] = events;
  }

  /** Stops watching `c` and forgets what it had pending (it is going away). */
  #unwatch(c: Conn): void {
    if ((this.#interest[c.slot] ?? -1) >= 0) this.#n.sio_epoll_ctl(this.#ep, 3, c.fd, 0, 0);
    this.#interest[c.slot] = -1;
    this.#pending[c.slot] = undefined;
  }

  #ctl(fd: number, events: number, kind: number, gen: number, slot: number, op: number): void {
    const token = (kind + gen * 256) * 2 ** 32 + slot;
    const r = this.#n.sio_epoll_ctl(this.#ep, op, fd, events, token);
    if (r < 0) throw new Error(`epoll_ctl failed for a TCP socket: ${ioError(r).code}`);
  }
}
