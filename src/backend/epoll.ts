import { ptr } from "bun:ffi";
import { ADDR_BYTES, SocketAddr } from "../io/addr.ts";
import { AddressBook } from "../io/addr-book.ts";
import type { IoError } from "../io/events.ts";
import { Epoll } from "../sys/abi.ts";
import { ioError } from "../sys/errno.ts";
import { type Native, native } from "../sys/native.ts";
import { type Backend, type BackendOptions, ResourceLimitError, setU64 } from "./backend.ts";
import { EpollTcp } from "./epoll-tcp.ts";
import { type Sock, SocketTable } from "./sockets.ts";

const BATCH = 64; // datagrams per recvmmsg / sendmmsg call
const { META_BYTES, META_ADDR, ENTRY_BYTES, ENTRY_ADDR, EVENT_BYTES } = Epoll;
const EPOLLIN = 0x001;
const EPOLLOUT = 0x004;
const WAKE_TOKEN = 0xffffffff;
const MSG_TRUNC = 0x20;

/** A copied send waiting for its socket to drain; `to` is undefined for a TUN/TAP write. */
type Blocked = { to: SocketAddr | undefined; data: Uint8Array };

/**
 * epoll backend: the same events and semantics as the io_uring backend, with readiness
 * notification plus recvmmsg/sendmmsg batches (UDP) and read/write loops (TUN/TAP), for kernels
 * and containers without io_uring. Sends are handed to the kernel before the receive buffers are
 * reused, so echoing a received view needs no copy; what would block is copied and sent when the
 * socket or queue drains.
 */
export class EpollBackend extends SocketTable implements Backend {
  readonly kind = "epoll" as const;
  readonly wakeHandle: number;
  readonly #n: Native;
  readonly #ep: number;
  readonly #bufSize: number;
  readonly #bufs: Uint8Array;
  readonly #bufsAddr: number;
  readonly #meta: Uint8Array;
  readonly #metaView: DataView;
  /** The source address of each datagram of a recvmmsg batch: views of its `#meta` entry. */
  /** Source addresses as values (a kept `from` stays correct). */
  readonly #addrs = new AddressBook();
  readonly #sizes = new Int32Array(BATCH); // packet sizes of a TUN/TAP read batch
  readonly #events: Uint8Array;
  readonly #eventsView: DataView;
  readonly #entries: Uint8Array;
  readonly #entriesView: DataView;
  readonly #entryData: (Uint8Array | undefined)[] = []; // keeps batch data alive until sent
  #batchSock: Sock | undefined;
  #batchCount = 0;
  /** Per socket index: datagrams or packets (copied) waiting for the socket to accept more. */
  readonly #blocked: Blocked[][] = [];
  readonly #tcp: EpollTcp;
  readonly #flushEvents = (): void => {
    this.deliverQueued();
  };
  #closed = false;

  constructor(options: BackendOptions) {
    super(options);
    const n = native();
    this.#n = n;
    this.#bufSize = options.recvBufferSize ?? 2048;
    this.#bufs = new Uint8Array(BATCH * this.#bufSize);
    this.#bufsAddr = ptr(this.#bufs);
    this.#meta = new Uint8Array(BATCH * META_BYTES);
    this.#metaView = new DataView(this.#meta.buffer);
    this.#events = new Uint8Array(BATCH * EVENT_BYTES);
    this.#eventsView = new DataView(this.#events.buffer);
    this.#entries = new Uint8Array(BATCH * ENTRY_BYTES);
    this.#entriesView = new DataView(this.#entries.buffer);
    const ep = n.sio_epoll_new();
    if (ep < 0) throw new ResourceLimitError("the epoll backend (epoll_create1)", ioError(ep));
    const wake = n.sio_eventfd();
    if (wake < 0) {
      n.sio_close(ep);
      throw new ResourceLimitError("the epoll backend (its wake-up eventfd)", ioError(wake));
    }
    n.sio_epoll_ctl(ep, 1, wake, EPOLLIN, WAKE_TOKEN);
    this.#ep = ep;
    this.wakeHandle = wake;
    this.#tcp = new EpollTcp(
      n,
      ep,
      options.tcp,
      this.sink,
      (owner, event) => this.queue(owner, event),
      () => this.counters.eventsIn++,
    );
    this.tcp = this.#tcp;
  }

  poll(timeoutMs: number): number {
    if (this.#closed) throw new Error("backend is closed");
    this.#retryBlocked();
    this.#flush(); // sends queued by act() since the last poll
    const wanted = timeoutMs < 0 ? Number.POSITIVE_INFINITY : timeoutMs;
    this.#tcp.runTimers();
    const until = Math.min(wanted, this.#tcp.untilDeadline(), this.#tcp.untilTimer());
    const busy = this.hasQueued() || this.#tcp.hasHeld();
    const timeout = busy ? 0 : until === Number.POSITIVE_INFINITY ? -1 : Math.ceil(until);
    this.counters.submits++;
    const count = this.#n.sio_epoll_wait(this.#ep, this.#events, BATCH, timeout);
    if (count < 0) throw new Error(`epoll_wait failed: ${ioError(count).code}`);
    let delivered = this.deliverQueued();
    for (let i = 0; i < count; i++) {
      const token = this.#eventsView.getUint32(i * EVENT_BYTES, true);
      const events = this.#eventsView.getUint32(i * EVENT_BYTES + 8, true);
      if (token === WAKE_TOKEN) {
        this.#n.sio_eventfd_drain(this.wakeHandle);
        this.counters.wakeups++;
        continue;
      }
      const kind = this.#eventsView.getUint32(i * EVENT_BYTES + 4, true);
      if (kind !== 0) {
        const before = this.counters.eventsIn;
        this.#tcp.ready(kind, token, events);
        this.deliverQueued(); // what the handlers' actions answered comes before the next data
        delivered += this.counters.eventsIn - before;
        continue;
      }
      const sock = this.socks[token];
      if (sock === undefined) continue;
      if ((events & EPOLLOUT) !== 0) this.#retryBlocked();
      if ((events & ~EPOLLOUT) !== 0) delivered += this.#receive(sock);
    }
    const before = this.counters.eventsIn;
    this.#tcp.expire();
    this.#tcp.deliverHeld(this.#flushEvents);
    delivered += this.counters.eventsIn - before;
    return delivered + this.deliverQueued();
  }

  close(): void {
    if (this.#closed) return;
    this.#tcp.closeAll();
    for (const sock of this.openSocks()) this.finishClose(sock);
    this.#n.sio_close(this.wakeHandle);
    this.#n.sio_close(this.#ep);
    this.#closed = true;
  }

  protected armReceive(sock: Sock): void {
    this.#blocked[sock.index] = [];
    const r = this.#n.sio_epoll_ctl(this.#ep, 1, sock.fd, EPOLLIN, sock.index);
    if (r < 0) {
      sock.state = "closing";
      this.finishClose(sock, ioError(r));
    }
  }

  protected startClose(sock: Sock): void {
    this.#closeNow(sock);
  }

  /** Stops watching `sock`, drops what waits to be sent on it, and removes it (with `error`). */
  #closeNow(sock: Sock, error?: IoError): void {
    if (this.#batchSock === sock) this.#flush();
    this.#n.sio_epoll_ctl(this.#ep, 3, sock.fd, 0, 0);
    const blocked = this.#blocked[sock.index] as Blocked[];
    this.counters.sendQueued -= blocked.length;
    this.#blocked[sock.index] = [];
    this.finishClose(sock, error);
  }

  protected sendOne(sock: Sock, to: SocketAddr, data: Uint8Array): void {
    this.#batch(sock, to, data);
  }

  protected writePacket(sock: Sock, data: Uint8Array): void {
    this.#batch(sock, undefined, data);
  }

  /** Adds a send (or a write, `to` undefined) to the batch of `sock`. */
  #batch(sock: Sock, to: SocketAddr | undefined, data: Uint8Array): void {
    const blocked = this.#blocked[sock.index] as Blocked[];
    if (blocked.length > 0) {
      this.#hold(sock, to, data); // keep order behind what is already waiting
      return;
    }
    if (this.#batchSock !== sock || this.#batchCount === BATCH) this.#flush();
    this.#batchSock = sock;
    const at = this.#batchCount * ENTRY_BYTES;
    const zeroCopy = data.buffer === this.#bufs.buffer;
    const address = zeroCopy
      ? this.#bufsAddr + data.byteOffset
      : data.length === 0
        ? this.#bufsAddr
        : ptr(data);
    if (zeroCopy) this.counters.zeroCopySends++;
    setU64(this.#entriesView, at, address);
    this.#entriesView.setUint32(at + 8, data.length, true);
    if (to !== undefined) this.#entries.set(to.raw, at + ENTRY_ADDR);
    this.#entryData[this.#batchCount] = data;
    this.#batchCount++;
  }

  /**
   * Reads every waiting datagram (UDP) or packet (TUN/TAP) of `sock` in batches and delivers
   * them; each batch's sends go out before its buffers are reused.
   */
  #receive(sock: Sock): number {
    let delivered = 0;
    for (;;) {
      const r =
        sock.kind === "udp"
          ? this.#n.sio_recvmmsg(sock.fd, this.#bufs, this.#bufSize, BATCH, this.#meta)
          : this.#n.sio_tun_read(sock.fd, this.#bufs, this.#bufSize, BATCH, this.#sizes);
      if (r < 0) {
        sock.state = "closing";
        this.#closeNow(sock, ioError(r));
        return delivered;
      }
      for (let i = 0; i < r && sock.state === "open"; i++) {
        delivered +=
          sock.kind === "udp" ? this.#deliverDatagram(sock, i) : this.#deliverRead(sock, i);
      }
      this.#flush();
      if (r < BATCH || sock.state !== "open") return delivered;
    }
  }

  /** Delivers datagram `i` of the last recvmmsg batch. */
  #deliverDatagram(sock: Sock, i: number): number {
    const m = i * META_BYTES;
    const size = this.#metaView.getInt32(m, true);
    const truncated =
      (this.#metaView.getUint32(m + 4, true) & MSG_TRUNC) !== 0 || size > this.#bufSize;
    const base = i * this.#bufSize;
    const data = this.#bufs.subarray(base, base + Math.min(size, this.#bufSize));
    const from = this.#addrs.at(this.#metaView, m + META_ADDR);
    this.sink(sock.owner, this.udpPacket(sock, from, data, size, truncated));
    return 1;
  }

  /** Delivers packet `i` of the last TUN/TAP read batch. */
  #deliverRead(sock: Sock, i: number): number {
    const size = this.#sizes[i] as number;
    if (size === 0) return 0;
    const base = i * this.#bufSize;
    const data = this.#bufs.subarray(base, base + Math.min(size, this.#bufSize));
    this.sink(sock.owner, this.tunPacket(sock, data, this.#bufSize));
    return 1;
  }

  /** Hands the current batch to the kernel; what would block is copied and waits for EPOLLOUT. */
  #flush(): void {
    const sock = this.#batchSock;
    const count = this.#batchCount;
    this.#batchSock = undefined;
    this.#batchCount = 0;
    if (sock === undefined || count === 0) return;
    let done = 0;
    while (done < count) {
      const entries = this.#entries.subarray(done * ENTRY_BYTES);
      const r =
        sock.kind === "udp"
          ? this.#n.sio_sendmmsg(sock.fd, entries, count - done)
          : this.#n.sio_tun_write(sock.fd, entries, count - done);
      if (r > 0) {
        done += r;
        this.counters.packetsOut += r;
      } else if (r === 0) {
        break; // would block
      } else {
        this.sendFailed(sock, ioError(r));
        done++; // skip the datagram that failed, keep the rest
      }
    }
    for (let i = done; i < count; i++) {
      const at = i * ENTRY_BYTES;
      const to =
        sock.kind === "udp"
          ? new SocketAddr(this.#entries.slice(at + ENTRY_ADDR, at + ENTRY_ADDR + ADDR_BYTES))
          : undefined;
      this.#hold(sock, to, this.#entryData[i] as Uint8Array);
    }
    this.#entryData.fill(undefined, 0, count);
  }

  #hold(sock: Sock, to: SocketAddr | undefined, data: Uint8Array): void {
    const blocked = this.#blocked[sock.index] as Blocked[];
    if (this.counters.sendQueued >= this.sendQueueLimit) {
      this.counters.sendDrops++;
      return;
    }
    if (blocked.length === 0)
      this.#n.sio_epoll_ctl(this.#ep, 2, sock.fd, EPOLLIN | EPOLLOUT, sock.index);
    blocked.push({ to: to?.copy(), data: data.slice() });
    this.counters.sendQueued++;
  }

  #retryBlocked(): void {
    if (this.counters.sendQueued === 0) return;
    for (const sock of this.openSocks()) {
      const blocked = this.#blocked[sock.index] as Blocked[];
      if (blocked.length === 0) continue;
      const waiting = blocked.splice(0);
      this.counters.sendQueued -= waiting.length;
      this.#n.sio_epoll_ctl(this.#ep, 2, sock.fd, EPOLLIN, sock.index);
      for (const w of waiting) this.#batch(sock, w.to, w.data);
      this.#flush();
    }
  }
}
