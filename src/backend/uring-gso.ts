/**
 * UDP GSO for the io_uring backend: consecutive sends from one socket to one peer (up to
 * `GSO_MAX` datagrams of at most `GSO_MAX_SEGMENT` bytes, all the size of the first but the last)
 * are turned into one `sendmsg` with `UDP_SEGMENT`, which the kernel cuts into the same datagrams.
 * The batcher extends the send command just written, in place, while the next sends can join it.
 */
import type { SocketAddr } from "../io/addr.ts";
import { Cmd, GSO_MAX, Op } from "../sys/abi.ts";
import { setU64 } from "./backend.ts";

/** A GSO send's largest segment, and its largest total payload. */
const GSO_MAX_SEGMENT = 1472;
const GSO_MAX_BYTES = 65000;
/** Bytes of one native iovec. */
export const IOV_BYTES = 16;
const ADDR_AT = Cmd.DST; // a send command's destination (raw sockaddr)
const ADDR_BYTES = Cmd.DST_LEN - Cmd.DST;

/** Where the batcher reads and writes: the command array and the send buffers' native data. */
export interface GsoMemory {
  /** The command array (see `Cmd` in src/sys/abi.ts). */
  readonly cmds: DataView;
  readonly cmdBytes: Uint8Array;
  /** The native iovec area: `GSO_MAX` iovecs per send buffer that heads a GSO send. */
  readonly iovs: DataView;
  readonly iovsAddr: number;
  /** Native address and length of each busy send buffer's datagram. */
  readonly bufAddr: Float64Array;
  readonly bufLen: Int32Array;
}

/** Builds GSO sends out of consecutive single sends (see the module comment). */
export class GsoBatcher {
  readonly #m: GsoMemory;
  /** Per send buffer: the next datagram of the GSO send it is in, or -1. */
  readonly next: Int32Array;
  readonly #dest: Uint8Array; // destination of a GSO send, by head buffer
  #at = -1; // offset of the command the next send may join, or -1
  #sock = -1;
  #head = -1;
  #tail = -1;
  #segment = 0;
  #count = 0;
  #bytes = 0;

  /** A batcher for `buffers` send buffers. */
  constructor(memory: GsoMemory, buffers: number) {
    this.#m = memory;
    this.next = new Int32Array(buffers).fill(-1);
    this.#dest = new Uint8Array(buffers * ADDR_BYTES);
  }

  /** Nothing may join the last send any more (another command was written, or it was submitted). */
  end(): void {
    this.#at = -1;
  }

  /**
   * The single send of `length` bytes in buffer `buf`, just written at command offset `at` for
   * socket `sock`, may be extended by the next sends.
   */
  start(at: number, sock: number, buf: number, length: number): void {
    if (length === 0 || length > GSO_MAX_SEGMENT) return;
    this.#at = at;
    this.#sock = sock;
    this.#head = buf;
    this.#tail = buf;
    this.#segment = length;
    this.#count = 1;
    this.#bytes = length;
  }

  /** True when a send of `length` bytes to `to` from socket `sock` can join the send being built. */
  canJoin(sock: number, to: SocketAddr, length: number): boolean {
    if (
      this.#at < 0 ||
      sock !== this.#sock ||
      length === 0 ||
      length > this.#segment ||
      this.#count === GSO_MAX ||
      this.#bytes + length > GSO_MAX_BYTES
    ) {
      return false;
    }
    // same destination: family, port and address (the bytes a sockaddr compares on)
    const raw = to.raw;
    const cmd = this.#m.cmdBytes;
    const at = this.#at + ADDR_AT;
    const end = to.family === 4 ? 8 : ADDR_BYTES;
    for (let i = 0; i < end; i++) if (raw[i] !== cmd[at + i]) return false;
    return true;
  }

  /** Adds the datagram in send buffer `buf` (`length` bytes) to the send being built. */
  join(buf: number, length: number): void {
    const m = this.#m;
    const head = this.#head;
    const base = head * GSO_MAX * IOV_BYTES;
    if (this.#count === 1) {
      // the first join turns the single send into a GSO send
      m.cmds.setUint8(this.#at + Cmd.OP, Op.SEND_GSO);
      setU64(m.cmds, this.#at + Cmd.ADDR, m.iovsAddr + base);
      m.cmds.setUint32(this.#at + Cmd.LEN, this.#segment, true);
      const at = this.#at + ADDR_AT;
      this.#dest.set(m.cmdBytes.subarray(at, at + ADDR_BYTES), head * ADDR_BYTES);
      this.#writeIov(base, head);
    }
    this.#writeIov(base + this.#count * IOV_BYTES, buf);
    this.#count++;
    this.#bytes += length;
    m.cmds.setUint16(this.#at + Cmd.COUNT, this.#count, true);
    this.next[this.#tail] = buf;
    this.#tail = buf;
    if (length < this.#segment) this.#at = -1; // a shorter datagram ends a GSO send
  }

  /** The destination (raw sockaddr) of the GSO send headed by buffer `head`. */
  destination(head: number): Uint8Array {
    return this.#dest.subarray(head * ADDR_BYTES, head * ADDR_BYTES + ADDR_BYTES);
  }

  #writeIov(at: number, buf: number): void {
    setU64(this.#m.iovs, at, this.#m.bufAddr[buf] as number);
    setU64(this.#m.iovs, at + 8, this.#m.bufLen[buf] as number);
  }
}
