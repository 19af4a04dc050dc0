/**
 * Source addresses of received datagrams as values: the same peer's datagrams get the same
 * `SocketAddr`, which no later datagram overwrites, without an allocation per datagram.
 */
import { ADDR_BYTES, SocketAddr } from "./addr.ts";

const AF_INET = 2;
const AF_INET6 = 10;

/**
 * Interns raw sockaddrs. Contract: `at` returns a `SocketAddr` equal to the bytes read, whose
 * `raw` shares no memory with the buffer read from, so it may be kept for good (do not write its
 * `raw`). At most `limit` addresses are remembered; past that the book starts again (addresses
 * already handed out stay correct: only their identity is not reused).
 */
export class AddressBook {
  readonly #v4 = new Map<number, SocketAddr>();
  readonly #v6 = new Map<string, SocketAddr>();
  readonly #limit: number;

  /** A book of at most `limit` addresses (default 65,536). */
  constructor(limit = 65_536) {
    this.#limit = limit;
  }

  /** Addresses remembered now. */
  get size(): number {
    return this.#v4.size + this.#v6.size;
  }

  /** The address whose raw sockaddr (sockaddr_in or sockaddr_in6) starts at byte `at` of `view`. */
  at(view: DataView, at: number): SocketAddr {
    const family = view.getUint16(at, true);
    if (family === AF_INET) {
      // port and IPv4 address: 48 bits, a safe integer
      const key = view.getUint16(at + 2, false) * 0x1_0000_0000 + view.getUint32(at + 4, false);
      const known = this.#v4.get(key);
      if (known !== undefined) return known;
      const made = this.#copy(view, at);
      this.#remember(this.#v4, key, made);
      return made;
    }
    let key = family === AF_INET6 ? "6" : `?${family}`;
    for (let i = 2; i < ADDR_BYTES; i += 2) key += `,${view.getUint16(at + i, false)}`;
    const known = this.#v6.get(key);
    if (known !== undefined) return known;
    const made = this.#copy(view, at);
    this.#remember(this.#v6, key, made);
    return made;
  }

  #copy(view: DataView, at: number): SocketAddr {
    const raw = new Uint8Array(ADDR_BYTES);
    raw.set(new Uint8Array(view.buffer, view.byteOffset + at, ADDR_BYTES));
    return new SocketAddr(raw);
  }

  #remember<K>(map: Map<K, SocketAddr>, key: K, addr: SocketAddr): void {
    if (this.size >= this.#limit) {
      this.#v4.clear();
      this.#v6.clear();
    }
    map.set(key, addr);
  }
}
