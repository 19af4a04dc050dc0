/**
 * A TCP test rig: one backend of a given kind holding listeners and connections on loopback, an
 * optional echo on every accepted connection (pausing its receive while its own queue is blocked,
 * as a well-behaved echo does, and closing after the peer's FIN), byte-exact stream checks and
 * writers that respect backpressure.
 */
import {
  type Backend,
  createBackend,
  type IoError,
  type NetEvent,
  SocketAddr,
  type TcpOptions,
} from "../../src/index.ts";

/** The byte at offset `i` of every test stream (seeded, so two streams differ). */
export function streamByte(i: number, seed: number): number {
  return (i * 7 + seed * 13 + (i >>> 11)) & 0xff;
}

/** `length` bytes of stream `seed` from offset `from`. */
export function streamBytes(from: number, length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = streamByte(from + i, seed);
  return out;
}

/** What one connection of the rig has seen. */
export interface ConnState {
  bytesIn: number;
  /** Offsets at which the data differed from the expected stream (first few). */
  corrupt: number[];
  fin: boolean;
  closed: IoError | "clean" | undefined;
  blocked: boolean;
  sendErrors: IoError[];
  /** Bytes a `write` has queued so far. */
  written: number;
}

/** See the module comment. */
export class TcpRig {
  readonly backend: Backend;
  readonly events: NetEvent[] = [];
  readonly conns = new Map<number, ConnState>();
  /** Echo everything accepted connections receive. */
  echo = true;
  /** Stream seed the received bytes of a connection are checked against (undefined: unchecked). */
  readonly expect = new Map<number, number>();
  readonly #writers = new Map<number, { total: number; seed: number; chunk: number }>();

  constructor(kind: "uring" | "epoll", tcp?: TcpOptions) {
    this.backend = createBackend(kind, {
      onEvent: (_owner, e) => this.#on(e),
      ...(tcp === undefined ? {} : { tcp }),
    });
  }

  /** The state of connection `conn` (created empty on first use). */
  conn(conn: number): ConnState {
    let s = this.conns.get(conn);
    if (s === undefined) {
      s = {
        bytesIn: 0,
        corrupt: [],
        fin: false,
        closed: undefined,
        blocked: false,
        sendErrors: [],
        written: 0,
      };
      this.conns.set(conn, s);
    }
    return s;
  }

  /** Polls (and feeds the writers) until `done()` or `ms` pass; returns whether `done()` held. */
  until(done: () => boolean, ms = 10_000): boolean {
    const deadline = Date.now() + ms;
    while (!done() && Date.now() < deadline) {
      this.#pump();
      this.backend.poll(5);
    }
    return done();
  }

  /** Listens on loopback as `listener`; returns the bound address. */
  listen(listener = 1, host = "127.0.0.1", options: { reusePort?: boolean; port?: number } = {}) {
    this.backend.act(0, {
      kind: "tcp-listen",
      listener,
      bind: SocketAddr.parse(host, options.port ?? 0),
      ...(options.reusePort === undefined ? {} : { reusePort: options.reusePort }),
    });
    const find = () =>
      this.events.find((e) => e.kind === "tcp-listen-result" && e.listener === listener);
    this.until(() => find() !== undefined);
    const r = find();
    if (r?.kind !== "tcp-listen-result" || r.local === undefined)
      throw new Error(`listen failed: ${JSON.stringify(r)}`);
    return r.local;
  }

  /** Connects `conn` to `to` and waits for the answer. */
  connect(conn: number, to: SocketAddr, timeoutMs?: number, waitMs = 10_000) {
    this.backend.act(0, {
      kind: "tcp-connect",
      conn,
      to,
      ...(timeoutMs === undefined ? {} : { timeoutMs }),
    });
    const find = () => this.events.find((e) => e.kind === "tcp-connect-result" && e.conn === conn);
    this.until(() => find() !== undefined, waitMs);
    return find() as Extract<NetEvent, { kind: "tcp-connect-result" }> | undefined;
  }

  /** Writes `total` bytes of stream `seed` on `conn`, `chunk` at a time, as backpressure allows. */
  write(conn: number, total: number, seed: number, chunk = 65536): void {
    this.#writers.set(conn, { total, seed, chunk });
  }

  /** Accepted connections (ids) in order. */
  accepted(): number[] {
    return this.events.flatMap((e) => (e.kind === "tcp-accept" ? [e.conn] : []));
  }

  #pump(): void {
    for (const [conn, w] of this.#writers) {
      const s = this.conn(conn);
      // a backpressure event comes with the next poll: at most 4 chunks before looking again
      for (let i = 0; i < 4 && !s.blocked && s.written < w.total && s.closed === undefined; i++) {
        const n = Math.min(w.chunk, w.total - s.written);
        this.backend.act(0, {
          kind: "tcp-send",
          conn,
          data: streamBytes(s.written, n, w.seed),
        });
        s.written += n;
      }
      if (s.written >= w.total) this.#writers.delete(conn);
    }
  }

  #on(e: NetEvent): void {
    if (e.kind !== "tcp-data") this.events.push(e);
    switch (e.kind) {
      case "tcp-data": {
        const s = this.conn(e.conn);
        const seed = this.expect.get(e.conn);
        if (seed !== undefined && s.corrupt.length < 5) {
          for (let i = 0; i < e.data.length; i++) {
            if (e.data[i] !== streamByte(s.bytesIn + i, seed)) {
              s.corrupt.push(s.bytesIn + i);
              break;
            }
          }
        }
        s.bytesIn += e.data.length;
        if (this.echo && e.conn < 0)
          this.backend.act(0, { kind: "tcp-send", conn: e.conn, data: e.data });
        return;
      }
      case "tcp-fin":
        this.conn(e.conn).fin = true;
        if (this.echo && e.conn < 0) this.backend.act(0, { kind: "tcp-close", conn: e.conn });
        return;
      case "tcp-closed":
        this.conn(e.conn).closed = e.error ?? "clean";
        return;
      case "tcp-backpressure":
        this.conn(e.conn).blocked = e.blocked;
        if (this.echo && e.conn < 0)
          this.backend.act(0, { kind: e.blocked ? "tcp-pause" : "tcp-resume", conn: e.conn });
        return;
      case "tcp-send-error":
        this.conn(e.conn).sendErrors.push(e.error);
        return;
    }
  }
}
