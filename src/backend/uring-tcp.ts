/**
 * TCP on the io_uring backend: multishot accept, multishot receive into the stream buffers
 * (provided-buffer group 1, incrementally consumed where the kernel can), one send under way per
 * connection (MSG_WAITALL, iovecs over its queue), connect with a linked timeout. Semantics and
 * pitfalls: docs/tcp-design.md.
 *
 * User data: high 32 bits `op << 24 | generation`, low 32 bits the listener or connection slot.
 * A slot is freed only once nothing is in flight on it, and a completion whose generation is not
 * the slot's is ignored and counted (`tcpStaleCompletions`), its buffer still recycled.
 */
import { type Pointer, toArrayBuffer } from "bun:ffi";
import type { SocketAddr } from "../io/addr.ts";
import type { IoError, NetAction, NetEvent } from "../io/events.ts";
import { Cmd, Info, Op, TcpSlot } from "../sys/abi.ts";
import { ioError } from "../sys/errno.ts";
import type { Native } from "../sys/native.ts";
import type { EventSink } from "./backend.ts";
import { type Conn, type Listener, type TcpOptions, TcpTable, tcpRefusal } from "./tcp.ts";
import { SendBlocks, SendQueue } from "./uring-tcp-queue.ts";

/** The first op of TCP user data (the UDP and TUN ones are below it). */
export const TCP_OP_BASE = 0x10;
const OP_ACCEPT = 0x10;
const OP_RECV = 0x11;
const OP_SEND = 0x12;
const OP_CONNECT = 0x13;
const OP_TIMEOUT = 0x14;
const OP_CANCEL = 0x15;

const CQE_F_BUFFER = 1;
const CQE_F_MORE = 2;
const CQE_F_BUF_MORE = 16;
const ECANCELED = -125;
const ENOBUFS = -105;
const EMFILE = -24;
const ENFILE = -23;

/** Writes a command into the ring's command array; returns its byte offset. */
export type Command = (
  op: number,
  fd: number,
  type: number,
  index: number,
  addr?: number,
) => number;

/** What the backend lends: its ring, commands and the shim. */
export interface UringTcpRing {
  readonly n: Native;
  readonly ring: Pointer;
  readonly command: Command;
  readonly cmds: DataView;
  /** The same command array, as bytes. */
  readonly cmdBytes: Uint8Array;
}

function userData(op: number, gen: number): number {
  return op * 2 ** 24 + gen;
}

/** See the module comment. */
export class UringTcp extends TcpTable {
  readonly #r: UringTcpRing;
  readonly #options: TcpOptions | undefined;
  #ready: IoError | undefined | "no";
  #rx = new Uint8Array(0);
  #rxSize = 0;
  #inc = false;
  #filled = new Int32Array(0);
  #slots = new DataView(new ArrayBuffer(0));
  #pool: SendBlocks | undefined;
  /** Per connection slot. */
  readonly #queues: (SendQueue | undefined)[] = [];
  readonly #recvArmed: boolean[] = [];
  readonly #connectRes: number[] = [];
  readonly #connectTimeout: number[] = [];
  /**
   * Connections with bytes to hand to the kernel at the next submit: `#dirty[0..#dirtyCount)`,
   * each marked in `#dirtyGen` by slot with its generation + 1 (0: not listed), so an entry left
   * by a connection whose slot was reused since is skipped. Not a Set: adding and clearing a Set
   * on every request makes the engine reallocate its table each time, and sweeping that cost a
   * helper thread about 1 µs per request in an echo.
   */
  readonly #dirty: Conn[] = [];
  #dirtyCount = 0;
  #dirtyGen = new Uint32Array(0);
  readonly #recvParked = new Set<Conn>();

  constructor(
    r: UringTcpRing,
    options: TcpOptions | undefined,
    sink: EventSink,
    queue: (owner: number, event: NetEvent) => void,
    delivered: () => void,
  ) {
    super(options, sink, queue);
    this.#r = r;
    this.#options = options;
    this.#ready = "no";
    this.onDelivered = delivered;
  }

  /** Carries out a TCP action, setting up the ring's TCP memory on the first one. */
  override act(owner: number, action: NetAction): void {
    if (this.#ready === "no") this.#ready = this.#init();
    if (this.#ready !== undefined) {
      const refusal = tcpRefusal(action, this.#ready);
      if (refusal !== undefined) this.emit(owner, refusal);
      return;
    }
    super.act(owner, action);
  }

  /** Queues the sends and receives that wait for the next submit (before every enter). */
  beforeEnter(): void {
    if (this.#recvParked.size > 0) {
      for (const c of this.#recvParked) {
        this.#recvParked.delete(c);
        if (this.#wantsReceive(c)) this.startReceive(c);
      }
    }
    for (let i = 0; i < this.#dirtyCount; i++) {
      const c = this.#dirty[i] as Conn;
      if (this.#dirtyGen[c.slot] !== c.gen + 1) continue; // torn down, its slot reused since
      this.#dirtyGen[c.slot] = 0;
      this.#flush(c);
    }
    this.#dirtyCount = 0;
  }

  /** Handles a TCP completion (`type`: the user data's high half). */
  complete(type: number, slot: number, res: number, flags: number): void {
    const op = type >>> 24;
    const gen = type & 0xffffff;
    if (op === OP_ACCEPT) {
      this.#accepted(slot, gen, res, flags);
      return;
    }
    if (op === OP_CANCEL) return; // the cancelled operations report through their own completions
    const c = this.conns[slot];
    if (c === undefined || c.gen !== gen) {
      this.counters.tcpStaleCompletions++;
      if (op === OP_RECV) this.#buffer(res, flags); // still give its buffer back
      return;
    }
    switch (op) {
      case OP_RECV:
        this.#received(c, res, flags);
        break;
      case OP_SEND:
        this.#sent(c, res);
        break;
      case OP_CONNECT:
      case OP_TIMEOUT:
        c.inFlight--;
        if (op === OP_CONNECT) this.#connectRes[c.slot] = res;
        if (c.inFlight === 0) this.#connectDone(c);
        return;
    }
    if (c.phase === "closing" && c.inFlight === 0) this.#gone(c);
  }

  /**
   * Submits a no-op carrying the user data of connection slot `slot` with generation `gen` and
   * receive op: its completion looks like an end of stream from that generation. For tests of the
   * stale-completion guard only.
   */
  injectStaleCompletion(slot: number, gen: number): void {
    this.#r.command(Op.NOP, -1, userData(OP_RECV, gen), slot);
  }

  /** The generation connection slot `slot` has now (for tests of stale completions). */
  generation(slot: number): number {
    return this.connGen(slot);
  }

  // ---- TcpTable ----------------------------------------------------------------------------

  protected startAccept(l: Listener): void {
    l.inFlight++;
    this.#r.command(Op.ACCEPT_MULTI, l.fd, userData(OP_ACCEPT, l.gen), l.slot);
  }

  protected stopAccept(l: Listener): void {
    if (l.inFlight === 0) {
      this.listenerGone(l);
      return;
    }
    this.#cancel(userData(OP_ACCEPT, l.gen), l.slot, l.gen);
  }

  protected startConnect(c: Conn, to: SocketAddr, timeoutMs: number): void {
    this.#queues[c.slot] ??= new SendQueue(this.#pool as SendBlocks);
    this.#connectRes[c.slot] = 0;
    this.#connectTimeout[c.slot] = timeoutMs;
    c.inFlight += timeoutMs > 0 ? 2 : 1;
    const at = this.#r.command(Op.CONNECT, c.fd, userData(OP_CONNECT, c.gen), c.slot);
    if (timeoutMs > 0) this.#setAddr(at, userData(OP_TIMEOUT, c.gen), c.slot);
    // buf is the slot (its area holds the address and timeout), as `command` sets it
    this.#r.cmds.setUint32(at + Cmd.LEN, timeoutMs, true);
    this.#r.cmdBytes.set(to.raw, at + Cmd.DST);
  }

  protected startReceive(c: Conn): void {
    this.#queues[c.slot] ??= new SendQueue(this.#pool as SendBlocks);
    if (this.#recvArmed[c.slot] === true || this.#recvParked.has(c)) return;
    this.#recvArmed[c.slot] = true;
    c.inFlight++;
    this.#r.command(Op.RECV_STREAM, c.fd, userData(OP_RECV, c.gen), c.slot);
  }

  protected stopReceive(c: Conn): void {
    this.#recvParked.delete(c);
    if (this.#recvArmed[c.slot] === true) this.#cancel(userData(OP_RECV, c.gen), c.slot, c.gen);
  }

  protected enqueue(c: Conn, data: Uint8Array): boolean {
    const q = this.#queues[c.slot] as SendQueue;
    if (!q.push(data)) return false;
    if (c.phase === "open") this.#markDirty(c);
    return true;
  }

  protected kick(c: Conn): void {
    this.#markDirty(c);
  }

  protected teardown(c: Conn): void {
    if (this.#dirtyGen[c.slot] === c.gen + 1) this.#dirtyGen[c.slot] = 0;
    this.#recvParked.delete(c);
    const q = this.#queues[c.slot];
    if (q !== undefined && q.sending === 0) q.clear();
    if (c.inFlight === 0) {
      this.#gone(c);
      return;
    }
    this.#r.command(Op.CANCEL_FD, c.fd, userData(OP_CANCEL, c.gen), c.slot);
  }

  // ---- completions -------------------------------------------------------------------------

  #accepted(slot: number, gen: number, res: number, flags: number): void {
    const l = this.listeners[slot];
    if (l === undefined || l.gen !== gen) {
      this.counters.tcpStaleCompletions++;
      if (res >= 0) this.#r.n.sio_close(res);
      return;
    }
    if (res >= 0) {
      if (l.closing) {
        this.counters.tcpAcceptRefused++;
        this.#r.n.sio_close(res);
      } else this.accepted(l, res, false);
    }
    if ((flags & CQE_F_MORE) !== 0) return;
    l.inFlight--;
    if (l.closing) {
      if (l.inFlight === 0) this.listenerGone(l);
    } else if (res === EMFILE || res === ENFILE) {
      this.parkAccept(l);
    } else if (res < 0 && res !== ECANCELED) {
      this.acceptFailed(l, ioError(res));
    } else {
      this.startAccept(l); // the kernel ended the multishot (a full CQ...): arm it again
    }
  }

  #received(c: Conn, res: number, flags: number): void {
    if ((flags & CQE_F_BUFFER) !== 0) {
      const buf = flags >>> 16;
      if (res > 0) {
        const at = buf * this.#rxSize + (this.#inc ? (this.#filled[buf] as number) : 0);
        this.received(c, this.#rx.subarray(at, at + res));
      }
      this.#buffer(res, flags);
    } else if (res === 0) {
      this.peerFinished(c);
    }
    if ((flags & CQE_F_MORE) !== 0) return;
    this.#recvArmed[c.slot] = false;
    c.inFlight--;
    if (res === ENOBUFS) {
      this.counters.tcpRecvParked++;
      this.#recvParked.add(c); // re-armed before the next submit, after the buffers went back
    } else if (res < 0 && res !== ECANCELED) {
      this.failed(c, ioError(res));
    } else if (this.#wantsReceive(c)) {
      this.startReceive(c);
    }
  }

  /** Accounts for the stream buffer a receive completion carries, recycling it when done. */
  #buffer(res: number, flags: number): void {
    if ((flags & CQE_F_BUFFER) === 0) return;
    const buf = flags >>> 16;
    if (this.#inc && res > 0) this.#filled[buf] = (this.#filled[buf] as number) + res;
    if ((flags & CQE_F_BUF_MORE) !== 0) return;
    this.#filled[buf] = 0;
    // given back at the next submit: the data views stay valid until then
    const at = this.#r.command(Op.RECYCLE, -1, 0, buf);
    this.#r.cmds.setUint8(at + Cmd.FLAG, 1); // a stream buffer
  }

  #sent(c: Conn, res: number): void {
    const q = this.#queues[c.slot] as SendQueue;
    c.inFlight--;
    q.sending = 0;
    if (res > 0) {
      q.consume(res);
      this.sent(c, res);
    }
    if (c.phase === "closing") {
      q.clear();
      return;
    }
    if (res < 0) this.failed(c, ioError(res));
    else if (c.queued > 0) this.#markDirty(c);
  }

  #connectDone(c: Conn): void {
    if (c.phase === "closing") {
      this.#gone(c);
      return;
    }
    const res = this.#connectRes[c.slot] as number;
    const timeoutMs = this.#connectTimeout[c.slot] as number;
    this.connected(
      c,
      res >= 0
        ? undefined
        : res === ECANCELED
          ? { code: "ETIMEDOUT", message: `no connection within ${timeoutMs} ms` }
          : ioError(res),
    );
  }

  #gone(c: Conn): void {
    this.#queues[c.slot]?.clear();
    this.#recvArmed[c.slot] = false;
    this.connGone(c);
  }

  /** Lists `c` for the next submit (once). */
  #markDirty(c: Conn): void {
    if (this.#dirtyGen[c.slot] === c.gen + 1) return;
    this.#dirtyGen[c.slot] = c.gen + 1;
    this.#dirty[this.#dirtyCount++] = c;
  }

  #flush(c: Conn): void {
    const q = this.#queues[c.slot] as SendQueue;
    if (c.phase !== "open" || q.sending > 0 || q.length === 0) return;
    const at = c.slot * TcpSlot.BYTES + TcpSlot.IOV;
    const count = q.fill(this.#slots, at, TcpSlot.IOV_MAX);
    c.inFlight++;
    const cmd = this.#r.command(Op.SEND_STREAM, c.fd, userData(OP_SEND, c.gen), c.slot);
    this.#r.cmds.setUint16(cmd + Cmd.COUNT, count, true); // buf: the slot, as `command` sets it
  }

  #wantsReceive(c: Conn): boolean {
    return c.phase === "open" && c.close === "no" && !c.paused && !c.eof;
  }

  #cancel(target: number, slot: number, gen: number): void {
    const at = this.#r.command(Op.CANCEL, -1, userData(OP_CANCEL, gen), slot);
    this.#setAddr(at, target, slot);
  }

  /**
   * Sets the `addr` field of the command at `at` to the user data (`high`, `low`) of another
   * operation (a u64 above 2^53: written in halves, never through a number).
   */
  #setAddr(at: number, high: number, low: number): void {
    this.#r.cmds.setUint32(at + Cmd.ADDR, low, true);
    this.#r.cmds.setUint32(at + Cmd.ADDR + 4, high, true);
  }

  #init(): IoError | undefined {
    const o = this.#options;
    const rxCount = o?.recvBuffers ?? 256;
    const rxSize = o?.recvBufferSize ?? 65536;
    const sendMemory = o?.sendMemory ?? 32 << 20;
    const n = this.#r.n;
    const r = n.sio_uring_tcp_init(this.#r.ring, rxCount, rxSize, this.maxConnections, sendMemory);
    if (r < 0) {
      const e = ioError(r);
      return { code: e.code, message: `cannot set up TCP on this io_uring ring: ${e.message}` };
    }
    const info = (what: number) => n.sio_uring_info(this.#r.ring, what) as number;
    this.#rx = new Uint8Array(
      toArrayBuffer(info(Info.TCP_RECV_BUFS) as Pointer, 0, rxCount * rxSize),
    );
    this.#rxSize = rxSize;
    this.#inc = info(Info.TCP_INC) === 1;
    this.#filled = new Int32Array(rxCount);
    this.#dirtyGen = new Uint32Array(this.maxConnections);
    this.#slots = new DataView(
      toArrayBuffer(info(Info.TCP_SLOTS) as Pointer, 0, this.maxConnections * TcpSlot.BYTES),
    );
    const txAddr = info(Info.TCP_SEND_MEM);
    this.#pool = new SendBlocks(
      new Uint8Array(toArrayBuffer(txAddr as Pointer, 0, sendMemory)),
      txAddr,
    );
    return undefined;
  }
}
