import { type Pointer, toArrayBuffer } from "bun:ffi";
import type { SocketAddr } from "../io/addr.ts";
import { AddressBook } from "../io/addr-book.ts";
import { Cmd, Cqe, GSO_MAX, Info, Op, SEND_HEADER } from "../sys/abi.ts";
import { ioError } from "../sys/errno.ts";
import { type Native, native } from "../sys/native.ts";
import { type Backend, setU64 } from "./backend.ts";
import { type Sock, SocketTable } from "./sockets.ts";
import { GsoBatcher, IOV_BYTES } from "./uring-gso.ts";
import { SendBuffers } from "./uring-send.ts";
import {
  packedBuffersAvailable,
  recvLayout,
  setupError,
  type UringOptions,
} from "./uring-setup.ts";
import { TCP_OP_BASE, UringTcp } from "./uring-tcp.ts";

// user_data: high 32 bits say what completed, low 32 bits which one
const UD_RECV = 1;
const UD_SEND = 2;
const UD_WAKE = 3;
const UD_CANCEL = 4;

const CQE_F_BUFFER = 1;
const CQE_F_MORE = 2;
const CQE_F_BUF_MORE = 16; // a packed receive buffer goes on: the kernel is not done with it
const MSG_TRUNC = 0x20;
const ENOBUFS = -105;
const EIO = -5;
const EINVAL = -22;
const EMSGSIZE = -90;
const EOPNOTSUPP = -95;
const ECANCELED = -125;

/** Errors with which a route refuses GSO sends (no checksum offload, MTU below the segment...). */
const GSO_REFUSED = new Set([EIO, EINVAL, EMSGSIZE, EOPNOTSUPP]);

/**
 * io_uring backend: multishot recvmsg (UDP) and multishot read (TUN/TAP) into a provided-buffer
 * ring, sends and writes from send buffers (or straight from a receive buffer), one io_uring_enter
 * per poll for everything queued, and an eventfd read by the ring as the cross-thread wake-up.
 * Use from the thread that created it.
 */
export class UringBackend extends SocketTable implements Backend {
  readonly kind = "uring" as const;
  readonly wakeHandle: number;
  /** IORING_SETUP_* flags the ring was created with. */
  readonly setupFlags: number;
  /** TUN/TAP queues are read with multishot reads (see `UringOptions.multishotRead`). */
  readonly multishotRead: boolean;
  /** Received datagrams and packets are packed into blocks (see `UringOptions.packedBuffers`). */
  readonly packedBuffers: boolean;
  /** Bytes of receive buffers (see `BackendOptions.recvBuffers`). */
  readonly recvMemory: number;
  readonly #n: Native;
  readonly #ring: Pointer;
  readonly #cmds: DataView;
  readonly #cmdBytes: Uint8Array;
  readonly #cmdCap: number;
  #cmdCount = 0;
  readonly #cqes: DataView;
  readonly #bufs: Uint8Array;
  readonly #bufsView: DataView; // the same memory, for the recvmsg_out headers
  readonly #bufsAddr: number;
  /** Bytes per receive buffer: one datagram's, or a block of them when packed. */
  readonly #bufSize: number;
  /** The largest datagram or packet received whole, with its headers (`recvBufferSize`). */
  readonly #recvSize: number;
  readonly #payloadOffset: number;
  readonly #filled: Int32Array; // bytes the kernel has put in each (packed) buffer so far
  /** Source addresses handed out with datagrams, each reused in turn (copies of the buffer's). */
  /** Source addresses as values (a kept `from` stays correct). */
  readonly #addrs = new AddressBook();
  readonly #send: SendBuffers;
  readonly #bufferRefs: Int32Array; // zero-copy sends holding each receive buffer
  readonly #bufferHeld: Uint8Array; // 1 while a buffer is out of the ring
  readonly #armed: boolean[] = []; // per socket index: multishot receive armed
  /** Sends and writes (`to` undefined) waiting for a free send buffer. */
  readonly #waiting: { sock: Sock; to: SocketAddr | undefined; data: Uint8Array }[] = [];
  // GSO: consecutive sends to one peer from one socket become one sendmsg with UDP_SEGMENT
  readonly #noGso: boolean[] = []; // per socket index: GSO failed on this socket's route
  readonly #gso: GsoBatcher;
  readonly #tcp: UringTcp;
  readonly #flushEvents = (): void => {
    this.deliverQueued();
  };
  #closed = false;

  /** Creates the ring. Throws UringUnavailableError (with the reason) when io_uring cannot be used. */
  constructor(options: UringOptions) {
    super(options);
    const n = native();
    this.#n = n;
    const entries = options.entries ?? 1024;
    const recvSize = options.recvBufferSize ?? 2048;
    if (!Number.isInteger(recvSize) || recvSize % 8 !== 0 || recvSize < 256) {
      throw new RangeError(
        `recvBufferSize must be a multiple of 8 and at least 256, got ${recvSize}`,
      );
    }
    const wanted = options.recvBuffers;
    if (
      wanted !== undefined &&
      (!Number.isInteger(wanted) || wanted < 1 || wanted > 32768 || (wanted & (wanted - 1)) !== 0)
    ) {
      throw new RangeError(`recvBuffers must be a power of two from 1 to 32768, got ${wanted}`);
    }
    const packed = packedBuffersAvailable() && options.packedBuffers !== false;
    const { count: bufCount, size: bufSize } = recvLayout(wanted, recvSize, packed);
    this.#recvSize = recvSize;
    this.#bufSize = bufSize;
    this.recvMemory = bufCount * bufSize;
    const small = options.sendBuffers ?? 1024;
    const large = options.largeSendBuffers ?? 16;
    const smallSize = 2048;
    const largeSize = SEND_HEADER + 65536;
    this.#cmdCap = entries;
    const err = new Int32Array(1);
    const ring = n.sio_uring_new(
      entries,
      bufCount,
      this.#bufSize,
      small,
      smallSize,
      large,
      largeSize,
      entries,
      err,
    );
    if (ring === null) throw setupError(err[0] as number);
    this.#ring = ring as Pointer;
    // if the kernel refuses packing after all, the shim has registered the buffers one datagram
    // each again: the larger buffers then simply hold one datagram each
    this.packedBuffers = packed && n.sio_uring_pack_recv(ring, recvSize) === 0;
    const info = (what: number) => n.sio_uring_info(ring, what) as number;
    this.#cmds = new DataView(toArrayBuffer(info(Info.CMDS) as Pointer, 0, entries * Cmd.BYTES));
    this.#cmdBytes = new Uint8Array(this.#cmds.buffer);
    this.#cqes = new DataView(
      toArrayBuffer(info(Info.CQES) as Pointer, 0, info(Info.CQE_CAP) * Cqe.BYTES),
    );
    this.#bufsAddr = info(Info.RECV_BUFS);
    this.#bufs = new Uint8Array(
      toArrayBuffer(this.#bufsAddr as Pointer, 0, bufCount * this.#bufSize),
    );
    this.#bufsView = new DataView(this.#bufs.buffer);
    this.#filled = new Int32Array(bufCount);
    const sendAddr = info(Info.SEND_BUFS);
    this.#send = new SendBuffers(
      new Uint8Array(toArrayBuffer(sendAddr as Pointer, 0, small * smallSize + large * largeSize)),
      sendAddr,
      { bytes: this.#bufs, addr: this.#bufsAddr, bufSize: this.#bufSize },
      { small, smallSize, large, largeSize },
    );
    this.setupFlags = info(Info.SETUP_FLAGS);
    this.wakeHandle = info(Info.EVENTFD);
    this.#payloadOffset = info(Info.PAYLOAD_OFFSET);
    this.multishotRead = info(Info.READ_MULTISHOT) === 1 && options.multishotRead !== false;
    this.#bufferRefs = new Int32Array(bufCount);
    this.#bufferHeld = new Uint8Array(bufCount);
    const iovsAddr = info(Info.IOVS);
    this.#gso = new GsoBatcher(
      {
        cmds: this.#cmds,
        cmdBytes: this.#cmdBytes,
        iovs: new DataView(
          toArrayBuffer(iovsAddr as Pointer, 0, (small + large) * GSO_MAX * IOV_BYTES),
        ),
        iovsAddr,
        bufAddr: this.#send.addr,
        bufLen: this.#send.len,
      },
      small + large,
    );
    this.#command(Op.WAKE_READ, -1, UD_WAKE, 0);
    this.#tcp = new UringTcp(
      {
        n,
        ring: this.#ring,
        cmds: this.#cmds,
        cmdBytes: this.#cmdBytes,
        command: (op, fd, type, index, addr) => this.#command(op, fd, type, index, addr),
      },
      options.tcp,
      this.sink,
      (owner, event) => this.queue(owner, event),
      () => this.counters.eventsIn++,
    );
    this.tcp = this.#tcp;
  }

  poll(timeoutMs: number): number {
    if (this.#closed) throw new Error("backend is closed");
    this.#retryWaiting();
    this.#tcp.runTimers();
    this.#tcp.beforeEnter();
    const busy = this.hasQueued() || this.#tcp.hasHeld();
    const wanted = timeoutMs < 0 ? Number.POSITIVE_INFINITY : timeoutMs;
    const until = Math.min(wanted, this.#tcp.untilTimer());
    const timeoutNs = busy ? 0 : until === Number.POSITIVE_INFINITY ? -1 : Math.round(until * 1e6);
    const count = this.#enter(timeoutNs);
    let delivered = this.deliverQueued();
    for (let i = 0; i < count; i++) delivered += this.#complete(i);
    const before = this.counters.eventsIn;
    this.#tcp.deliverHeld(this.#flushEvents);
    return delivered + this.counters.eventsIn - before + this.deliverQueued();
  }

  close(): void {
    if (this.#closed) return;
    for (const sock of this.openSocks()) {
      if (sock.state === "open") {
        sock.state = "closing";
        this.startClose(sock);
      }
    }
    this.#waiting.length = 0;
    this.counters.sendQueued = 0;
    this.#tcp.closeAll();
    const deadline = Date.now() + 2000;
    while ((this.openSocks().length > 0 || !this.#tcp.isEmpty()) && Date.now() < deadline) {
      this.#tcp.beforeEnter();
      const count = this.#enter(50e6);
      for (let i = 0; i < count; i++) this.#complete(i);
    }
    for (const sock of this.openSocks()) this.finishClose(sock);
    this.#closed = true;
    this.#n.sio_uring_free(this.#ring);
  }

  /**
   * For tests of the stale-completion guard only: submits a no-op whose completion carries the
   * user data of a receive on TCP connection slot `slot` at generation `gen` (an end of stream,
   * were it not stale). `tcpGeneration` tells a slot's generation now.
   */
  injectStaleTcpCompletion(slot: number, gen: number): void {
    this.#tcp.injectStaleCompletion(slot, gen);
  }

  /** The generation TCP connection slot `slot` has now (see `injectStaleTcpCompletion`). */
  tcpGeneration(slot: number): number {
    return this.#tcp.generation(slot);
  }

  protected armReceive(sock: Sock): void {
    this.#armed[sock.index] = true;
    if (sock.kind === "udp") {
      this.#command(Op.RECV_MULTI, sock.fd, UD_RECV, sock.index);
    } else {
      const at = this.#command(Op.READ, sock.fd, UD_RECV, sock.index);
      if (this.multishotRead) this.#cmds.setUint8(at + Cmd.FLAG, 1);
    }
  }

  protected startClose(sock: Sock): void {
    if (this.#armed[sock.index]) {
      this.#command(Op.CANCEL, -1, UD_CANCEL, sock.index, UD_RECV * 2 ** 32 + sock.index);
    } else if (sock.inFlight === 0) {
      this.finishClose(sock);
    }
  }

  protected sendOne(sock: Sock, to: SocketAddr, data: Uint8Array): void {
    const length = data.length;
    if (this.#gso.canJoin(sock.index, to, length)) {
      const buf = this.#store(sock, data);
      if (buf >= 0) {
        this.#gso.join(buf, length);
        return;
      }
    }
    const buf = this.#store(sock, data);
    if (buf < 0) {
      this.#wait(sock, to, data);
      return;
    }
    const at = this.#sendCommand(sock, buf, to.raw);
    if (this.#noGso[sock.index] !== true) this.#gso.start(at, sock.index, buf, length);
  }

  protected writePacket(sock: Sock, data: Uint8Array): void {
    const buf = this.#store(sock, data);
    if (buf < 0) {
      this.#wait(sock, undefined, data);
      return;
    }
    sock.inFlight++;
    const at = this.#command(Op.WRITE, sock.fd, UD_SEND, buf, this.#send.addr[buf] as number);
    this.#cmds.setUint32(at + Cmd.LEN, data.length, true);
  }

  /** Keeps a copy of a send or write (`to` undefined) until a send buffer frees, or drops it. */
  #wait(sock: Sock, to: SocketAddr | undefined, data: Uint8Array): void {
    if (this.#waiting.length >= this.sendQueueLimit) {
      this.counters.sendDrops++;
      return;
    }
    this.#waiting.push({ sock, to: to?.copy(), data: data.slice() });
    this.counters.sendQueued = this.#waiting.length;
  }

  /** Queues a single send of the datagram in `buf` to the raw address `dest`; returns its offset. */
  #sendCommand(sock: Sock, buf: number, dest: Uint8Array): number {
    sock.inFlight++;
    const at = this.#command(Op.SENDMSG, sock.fd, UD_SEND, buf, this.#send.addr[buf] as number);
    this.#cmds.setUint32(at + Cmd.LEN, this.#send.len[buf] as number, true);
    this.#cmdBytes.set(dest, at + Cmd.DST);
    return at;
  }

  /**
   * Takes a send buffer for `data` (copied, or pointing into the receive buffer it is a view of,
   * which then stays out of the ring until the send completes); -1 when none is free.
   */
  #store(sock: Sock, data: Uint8Array): number {
    const buf = this.#send.take(sock.index, data);
    const held = buf < 0 ? -1 : this.#send.heldReceiveBuffer(buf);
    if (held >= 0) {
      this.#bufferRefs[held] = (this.#bufferRefs[held] as number) + 1;
      this.counters.zeroCopySends++;
    }
    return buf;
  }

  /** Writes a command; returns its byte offset (for callers that fill more fields). */
  #command(op: number, fd: number, type: number, index: number, addr = 0): number {
    this.#gso.end(); // a GSO send is only ever extended by the command right after it
    if (this.#cmdCount === this.#cmdCap) {
      // the command array is full: submit it without reaping. Commands are written while
      // completions are being handled, so reaping here would overwrite the completion array
      // mid-loop and deliver events from inside another event's handler; the completions wait
      // in the kernel's queue for the next enter instead.
      const r = this.#n.sio_uring_submit(this.#ring, this.#cmdCount);
      this.#cmdCount = 0;
      this.counters.submits++;
      if (r < 0) throw new Error(`io_uring_submit failed: ${ioError(r).code}`);
    }
    const at = this.#cmdCount++ * Cmd.BYTES;
    const c = this.#cmds;
    c.setUint32(at + Cmd.OP, op, true); // op, and zero flag and count
    c.setInt32(at + Cmd.FD, fd, true);
    c.setUint32(at + Cmd.USER_DATA, index, true); // user_data: low 32 bits which one...
    c.setUint32(at + Cmd.USER_DATA + 4, type, true); // ...high 32 bits what completed
    setU64(c, at + Cmd.ADDR, addr);
    c.setUint32(at + Cmd.BUF, index, true); // send buffer or receive buffer id
    return at;
  }

  #enter(timeoutNs: number): number {
    this.#gso.end();
    const n = this.#cmdCount;
    this.#cmdCount = 0;
    this.counters.submits++;
    const r = this.#n.sio_uring_enter(this.#ring, n, timeoutNs);
    if (r < 0) throw new Error(`io_uring_enter failed: ${ioError(r).code}`);
    return r;
  }

  /** Handles completion `i` of the last enter; returns the number of events delivered. */
  #complete(i: number): number {
    const at = i * Cqe.BYTES;
    const q = this.#cqes;
    const index = q.getUint32(at + Cqe.USER_DATA, true);
    const type = q.getUint32(at + Cqe.USER_DATA + 4, true);
    const res = q.getInt32(at + Cqe.RES, true);
    const flags = q.getUint32(at + Cqe.FLAGS, true);
    switch (type) {
      case UD_RECV:
        return this.#received(index, res, flags);
      case UD_SEND:
        this.#sent(index, res);
        return 0;
      case UD_WAKE:
        if (!this.#closed) {
          if (res >= 0) this.counters.wakeups++;
          this.#command(Op.WAKE_READ, -1, UD_WAKE, 0);
        }
        return 0;
      default: {
        if (type >= TCP_OP_BASE * 2 ** 24) {
          const before = this.counters.eventsIn;
          this.#tcp.complete(type, index, res, flags);
          // what the handlers' actions answered (tcp-backpressure...) comes before the next data
          this.deliverQueued();
          return this.counters.eventsIn - before;
        }
        return 0; // UD_CANCEL: the cancelled receive reports itself through its own completion
      }
    }
  }

  #received(index: number, res: number, flags: number): number {
    const sock = this.socks[index];
    let delivered = 0;
    if (flags !== Cqe.PREP_FAILED && (flags & CQE_F_BUFFER) !== 0) {
      // `res` bytes at the buffer's fill mark: always its start unless packed
      const buffer = flags >>> 16;
      const at = buffer * this.#bufSize + (this.#filled[buffer] as number);
      if (res > 0) this.#filled[buffer] = (this.#filled[buffer] as number) + res;
      if (res >= 0 && sock !== undefined && sock.state === "open") {
        delivered =
          sock.kind === "udp"
            ? this.#deliverPacket(sock, at, res)
            : this.#deliverRead(sock, at, res);
      }
      if ((flags & CQE_F_BUF_MORE) === 0) {
        // the kernel is done with the buffer: it goes back once no zero-copy send holds it
        this.#filled[buffer] = 0;
        this.#bufferHeld[buffer] = 1;
        this.counters.buffersOutstanding++;
        if (this.#bufferRefs[buffer] === 0) this.#recycle(buffer);
      }
    }
    const more = flags !== Cqe.PREP_FAILED && (flags & CQE_F_MORE) !== 0;
    if (more || sock === undefined) return delivered;
    this.#armed[index] = false;
    if (sock.state === "closing") {
      if (sock.inFlight === 0) this.finishClose(sock);
    } else if (res >= 0 || res === ENOBUFS) {
      if (res === ENOBUFS) this.counters.bufferExhaustion++;
      this.armReceive(sock);
    } else if (res !== ECANCELED) {
      sock.state = "closing";
      if (sock.inFlight === 0) this.finishClose(sock, ioError(res));
    }
    return delivered;
  }

  /**
   * Delivers the datagram at byte `at` of the receive buffers (io_uring_recvmsg_out first), of
   * which the kernel wrote `res` bytes. A header that disagrees with `res` (which would mean a
   * datagram placed where it was not written) is counted in `badReceives` and dropped, never
   * delivered to the wrong socket.
   */
  #deliverPacket(sock: Sock, at: number, res: number): number {
    const size = this.#bufsView.getUint32(at + 8, true); // io_uring_recvmsg_out.payloadlen
    const outFlags = this.#bufsView.getUint32(at + 12, true); // .flags
    const written = res - this.#payloadOffset;
    const cut = (outFlags & MSG_TRUNC) !== 0;
    if (written < 0 || written > size || (!cut && written !== size)) {
      this.counters.badReceives++;
      return 0;
    }
    // a packed buffer may have had room for more: what does not fit recvBufferSize is cut the same
    const room = this.#recvSize - this.#payloadOffset;
    const length = Math.min(size, room);
    const truncated = (outFlags & MSG_TRUNC) !== 0 || size > room;
    const data = this.#bufs.subarray(at + this.#payloadOffset, at + this.#payloadOffset + length);
    this.sink(
      sock.owner,
      this.udpPacket(sock, this.#addrs.at(this.#bufsView, at + 16), data, size, truncated),
    );
    return 1;
  }

  /** Delivers a packet read from a TUN/TAP queue (`res` bytes at byte `at` of the buffers). */
  #deliverRead(sock: Sock, at: number, res: number): number {
    if (res === 0) return 0;
    const data = this.#bufs.subarray(at, at + Math.min(res, this.#recvSize));
    this.sink(sock.owner, this.tunPacket(sock, data, this.#recvSize));
    return 1;
  }

  #recycle(buffer: number): void {
    if (this.#bufferHeld[buffer] === 0) return;
    this.#bufferHeld[buffer] = 0;
    this.counters.buffersOutstanding--;
    if (!this.#closed) this.#command(Op.RECYCLE, -1, 0, buffer);
  }

  #sent(buf: number, res: number): void {
    const sockIndex = this.#send.sock[buf] as number;
    const sock = this.socks[sockIndex];
    const gso = this.#gso.next[buf] !== -1;
    if (gso && res < 0 && sock?.state === "open" && GSO_REFUSED.has(res)) {
      // this route cannot take GSO sends: send the datagrams one by one, and never again GSO
      this.#noGso[sockIndex] = true;
      this.counters.gsoFallbacks++;
      sock.inFlight--;
      for (let s = buf; s !== -1; ) {
        const next = this.#gso.next[s] as number;
        this.#gso.next[s] = -1;
        this.#sendCommand(sock, s, this.#gso.destination(buf));
        s = next;
      }
      return;
    }
    let datagrams = 0;
    for (let s = buf; s !== -1; datagrams++) {
      const next = this.#gso.next[s] as number;
      this.#gso.next[s] = -1;
      this.#release(s);
      s = next;
    }
    if (gso) this.counters.gsoSends++;
    if (sock === undefined) return;
    sock.inFlight--;
    if (res >= 0) this.counters.packetsOut += datagrams;
    else this.sendFailed(sock, ioError(res));
    if (sock.state === "closing" && sock.inFlight === 0 && !this.#armed[sock.index])
      this.finishClose(sock);
  }

  /** Frees a send buffer and the receive buffer it held, if any. */
  #release(buf: number): void {
    const held = this.#send.release(buf);
    if (held < 0) return;
    const refs = (this.#bufferRefs[held] as number) - 1;
    this.#bufferRefs[held] = refs;
    if (refs === 0) this.#recycle(held);
  }

  #retryWaiting(): void {
    if (this.#waiting.length === 0) return;
    const waiting = this.#waiting.splice(0);
    this.counters.sendQueued = 0;
    for (const w of waiting) {
      if (w.sock.state !== "open") continue;
      if (w.to === undefined) this.writePacket(w.sock, w.data);
      else this.sendOne(w.sock, w.to, w.data);
    }
  }
}
