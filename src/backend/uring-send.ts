/**
 * The io_uring backend's send buffers: native memory (allocated by the shim, never GC-managed)
 * that holds each datagram or packet from the moment it is handed to the kernel until its send
 * completes. Small buffers take datagrams up to `smallSize - SEND_HEADER` bytes, large ones the
 * rest; a send of a view of a receive buffer takes a buffer too, but points at the receive memory
 * instead of copying it (zero copy), and holds that receive buffer until the send completes.
 */

import { SEND_HEADER } from "../sys/abi.ts";

/** The receive memory a zero-copy send may point into. */
export interface ReceiveMemory {
  /** The receive buffers, viewed from JS. */
  readonly bytes: Uint8Array;
  /** Their native address. */
  readonly addr: number;
  /** Bytes per receive buffer (one datagram, or a packed block). */
  readonly bufSize: number;
}

/** A pool of send buffers, by index (0..small-1 small, then large). */
export class SendBuffers {
  readonly #mem: Uint8Array;
  readonly #memAddr: number;
  readonly #rx: ReceiveMemory;
  readonly #smallCount: number;
  readonly #smallSize: number;
  readonly #largeSize: number;
  readonly #freeSmall: number[] = [];
  readonly #freeLarge: number[] = [];
  /** Socket index of each busy buffer, or -1. */
  readonly sock: Int32Array;
  /** Receive buffer a zero-copy send holds, or -1. */
  readonly #rxHeld: Int32Array;
  /** Native address and length of each busy buffer's datagram. */
  readonly addr: Float64Array;
  readonly len: Int32Array;

  /**
   * A pool over `mem` (native, at `memAddr`): `small` buffers of `smallSize` bytes, then `large`
   * of `largeSize`, header included.
   */
  constructor(
    mem: Uint8Array,
    memAddr: number,
    rx: ReceiveMemory,
    sizes: { small: number; smallSize: number; large: number; largeSize: number },
  ) {
    this.#mem = mem;
    this.#memAddr = memAddr;
    this.#rx = rx;
    this.#smallCount = sizes.small;
    this.#smallSize = sizes.smallSize;
    this.#largeSize = sizes.largeSize;
    const count = sizes.small + sizes.large;
    for (let i = sizes.small - 1; i >= 0; i--) this.#freeSmall.push(i);
    for (let i = count - 1; i >= sizes.small; i--) this.#freeLarge.push(i);
    this.sock = new Int32Array(count).fill(-1);
    this.#rxHeld = new Int32Array(count).fill(-1);
    this.addr = new Float64Array(count);
    this.len = new Int32Array(count);
  }

  /**
   * Takes a buffer for `data` sent on socket `sock`: copied in, or pointed at when `data` is a
   * view of the receive memory (`heldReceiveBuffer` then says which receive buffer it holds).
   * Returns the buffer's index, or -1 when none is free.
   */
  take(sock: number, data: Uint8Array): number {
    const length = data.length;
    const zeroCopy = data.buffer === this.#rx.bytes.buffer;
    const pool =
      length <= this.#smallSize - SEND_HEADER || zeroCopy ? this.#freeSmall : this.#freeLarge;
    const buf = pool.pop();
    if (buf === undefined) return -1;
    if (zeroCopy) {
      this.#rxHeld[buf] = Math.floor(data.byteOffset / this.#rx.bufSize);
      this.addr[buf] = this.#rx.addr + data.byteOffset;
    } else {
      const offset = this.#offset(buf) + SEND_HEADER;
      this.#mem.set(data, offset);
      this.addr[buf] = this.#memAddr + offset;
    }
    this.sock[buf] = sock;
    this.len[buf] = length;
    return buf;
  }

  /** The receive buffer that buffer `buf` holds (a zero-copy send), or -1. */
  heldReceiveBuffer(buf: number): number {
    return this.#rxHeld[buf] as number;
  }

  /** Frees buffer `buf`; returns the receive buffer it held, or -1. */
  release(buf: number): number {
    const held = this.#rxHeld[buf] as number;
    this.#rxHeld[buf] = -1;
    this.sock[buf] = -1;
    (buf < this.#smallCount ? this.#freeSmall : this.#freeLarge).push(buf);
    return held;
  }

  #offset(buf: number): number {
    return buf < this.#smallCount
      ? buf * this.#smallSize
      : this.#smallCount * this.#smallSize + (buf - this.#smallCount) * this.#largeSize;
  }
}
