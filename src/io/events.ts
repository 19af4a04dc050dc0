/**
 * The I/O vocabulary shared by tasks, workers and backends: what a task asks for (actions) and
 * what comes back (events). Plain data. `socket` is an id the caller picks for each socket, and
 * `device` one it picks for each bound TUN/TAP queue (a separate set of ids).
 *
 * TCP has two more sets: `listener`, picked by the caller for each listening socket, and `conn`
 * for connections: the caller picks a non-negative one for each `tcp-connect`, and the backend
 * picks a negative one for each connection it accepts (never reused while the backend lives), so
 * the two never meet. A connection's id is free again after its `tcp-closed`, or after a
 * `tcp-connect-result` with an error (no `tcp-closed` follows that one).
 */
import type { SocketAddr } from "./addr.ts";

/** An I/O failure: the errno name ("EADDRINUSE") and a readable message. */
export interface IoError {
  readonly code: string;
  readonly message: string;
}

/** What a task asks the backend to do. */
export type NetAction =
  /** Open a UDP socket bound to `bind` (port 0 picks a free port). Answered by `udp-listen-result`. */
  | {
      readonly kind: "udp-listen";
      readonly socket: number;
      readonly bind: SocketAddr;
      readonly reuseAddr?: boolean;
      readonly reusePort?: boolean;
    }
  /** Close it. Answered by `udp-closed` once nothing is in flight on it. */
  | { readonly kind: "udp-unlisten"; readonly socket: number }
  /** Send one datagram. A view of a received packet is sent without a copy. */
  | {
      readonly kind: "udp-send";
      readonly socket: number;
      readonly to: SocketAddr;
      readonly data: Uint8Array;
    }
  /** Send the same datagram to several addresses. */
  | {
      readonly kind: "udp-send-many";
      readonly socket: number;
      readonly to: readonly SocketAddr[];
      readonly data: Uint8Array;
    }
  /** Send a list of (socket, address, data). */
  | {
      readonly kind: "udp-send-batch";
      readonly packets: readonly {
        readonly socket: number;
        readonly to: SocketAddr;
        readonly data: Uint8Array;
      }[];
    }
  /**
   * Start reading and writing packets on a TUN/TAP queue file descriptor (one of
   * `TunDevice.queues`). The backend borrows the fd: it never closes it, and `tun-unbind` gives
   * it back. Answered by `tun-bind-result`.
   */
  | { readonly kind: "tun-bind"; readonly device: number; readonly fd: number }
  /** Stop using the queue. Answered by `tun-unbound` once nothing is in flight on it. */
  | { readonly kind: "tun-unbind"; readonly device: number }
  /**
   * Write one packet into the device (an IP packet for TUN, an Ethernet frame for TAP). A view of
   * a received packet, even modified in place, is written without a copy.
   */
  | { readonly kind: "tun-send"; readonly device: number; readonly data: Uint8Array }
  /**
   * Listen for TCP connections on `bind` (port 0 picks a free port; SO_REUSEADDR always,
   * SO_REUSEPORT when asked, so that each worker can have its own listener on one port).
   * Answered by `tcp-listen-result`, then a `tcp-accept` per connection.
   */
  | {
      readonly kind: "tcp-listen";
      readonly listener: number;
      readonly bind: SocketAddr;
      /** Connections the kernel may hold before they are accepted. Default 4096. */
      readonly backlog?: number;
      readonly reusePort?: boolean;
    }
  /** Stop listening. Answered by `tcp-unlistened`; accepted connections stay open. */
  | { readonly kind: "tcp-unlisten"; readonly listener: number }
  /**
   * Connect to `to` as connection `conn` (a non-negative id). Answered by `tcp-connect-result`:
   * connected, or an error (`ECONNREFUSED`, `ETIMEDOUT` after `timeoutMs`, `ENETUNREACH`...).
   */
  | {
      readonly kind: "tcp-connect";
      readonly conn: number;
      readonly to: SocketAddr;
      /** Give up after this many milliseconds (ETIMEDOUT). Default 30,000; 0: the kernel's own. */
      readonly timeoutMs?: number;
    }
  /**
   * Queue bytes to send, in order, after everything queued before. `data` is copied before this
   * returns (a view of received data may be passed as it is). Crossing the high-water mark is
   * reported by `tcp-backpressure`; past the hard cap the send is refused with a
   * `tcp-send-error` (ENOBUFS) and nothing of it is queued.
   */
  | { readonly kind: "tcp-send"; readonly conn: number; readonly data: Uint8Array }
  /**
   * Stop receiving: no `tcp-data` after this until `tcp-resume`. The kernel's receive window then
   * fills and the peer's sends slow down and stop. Data already on its way is held for `tcp-resume`.
   */
  | { readonly kind: "tcp-pause"; readonly conn: number }
  /** Receive again: what was held comes first, then new data (and a held `tcp-fin`). */
  | { readonly kind: "tcp-resume"; readonly conn: number }
  /**
   * Half-close: once everything queued is sent, the peer reads end of stream (FIN). Receiving goes
   * on; later sends are refused (EPIPE).
   */
  | { readonly kind: "tcp-shutdown"; readonly conn: number }
  /**
   * Close gracefully: what is queued is still sent, then FIN, then the socket closes (no more
   * events but `tcp-closed`). Unread data the kernel holds makes the close a reset, as in C.
   */
  | { readonly kind: "tcp-close"; readonly conn: number }
  /** Reset the connection now (RST): what is queued is dropped. Answered by `tcp-closed`. */
  | { readonly kind: "tcp-abort"; readonly conn: number };

/** What comes back from the backend. */
export type NetEvent =
  /** The socket is open (`local` is the real bound address) or could not be opened (`error`). */
  | {
      readonly kind: "udp-listen-result";
      readonly socket: number;
      readonly local?: SocketAddr;
      readonly error?: IoError;
    }
  /**
   * A datagram, valid until the handler returns: the backend refills this same object for its
   * next datagram and `data` is a view into a receive buffer (copy what you keep: `data.slice()`,
   * never the objects). `from` is a value: keep it as long as you like (the same peer's datagrams
   * share one `SocketAddr`; never write its `raw`). `size` is the
   * datagram's real size; `truncated` says `data` holds only its first bytes because the receive
   * buffer was smaller.
   */
  | {
      readonly kind: "udp-packet";
      readonly socket: number;
      readonly from: SocketAddr;
      readonly data: Uint8Array;
      readonly size: number;
      readonly truncated: boolean;
    }
  /** A send failed. */
  | { readonly kind: "udp-send-error"; readonly socket: number; readonly error: IoError }
  /** The socket is closed (after `udp-unlisten`, or because it failed with `error`). */
  | { readonly kind: "udp-closed"; readonly socket: number; readonly error?: IoError }
  /** The queue is bound, or could not be (`error`: EEXIST id taken, EBADF not an open fd...). */
  | { readonly kind: "tun-bind-result"; readonly device: number; readonly error?: IoError }
  /**
   * A packet the kernel sent into the device, valid until the handler returns: the backend refills
   * this same object for its next packet, and `data` is a view of a receive buffer (copy what you
   * keep: `data.slice()`, never the objects). `truncated` says `data` holds only the packet's first
   * bytes because the receive buffer was smaller (keep it at least the MTU, plus 14 for TAP);
   * `size` is then the size the packet's IP header declares (the kernel does not tell).
   */
  | {
      readonly kind: "tun-packet";
      readonly device: number;
      readonly data: Uint8Array;
      readonly size: number;
      readonly truncated: boolean;
    }
  /** A write into the device failed (EINVAL: the kernel refused the packet as malformed...). */
  | { readonly kind: "tun-send-error"; readonly device: number; readonly error: IoError }
  /**
   * The backend no longer uses the queue (after `tun-unbind`, or because reading failed with
   * `error`, for example when the device was deleted). The fd is still the caller's to close.
   */
  | { readonly kind: "tun-unbound"; readonly device: number; readonly error?: IoError }
  /** Listening (`local`: the real bound address), or not (`error`). */
  | {
      readonly kind: "tcp-listen-result";
      readonly listener: number;
      readonly local?: SocketAddr;
      readonly error?: IoError;
    }
  /** The listener is closed (after `tcp-unlisten`, or because accepting failed with `error`). */
  | { readonly kind: "tcp-unlistened"; readonly listener: number; readonly error?: IoError }
  /**
   * A new connection on `listener`, as `conn` (a negative id the backend picked), already
   * receiving. `peer` and `local` are values (keep them as long as you like).
   */
  | {
      readonly kind: "tcp-accept";
      readonly listener: number;
      readonly conn: number;
      readonly peer: SocketAddr;
      readonly local: SocketAddr;
    }
  /**
   * The connection is up (`local`, `peer`) and receiving, or failed (`error`; the id is free again
   * and no `tcp-closed` follows).
   */
  | {
      readonly kind: "tcp-connect-result";
      readonly conn: number;
      readonly local?: SocketAddr;
      readonly peer?: SocketAddr;
      readonly error?: IoError;
    }
  /**
   * Received bytes, in order. `data` is a view valid until the drain ends (the UDP contract: copy
   * what you keep; sending the view itself is fine). The same object is refilled for the next data.
   */
  | { readonly kind: "tcp-data"; readonly conn: number; readonly data: Uint8Array }
  /** The peer sent FIN: it sends no more, but the connection is open and the task may still send. */
  | { readonly kind: "tcp-fin"; readonly conn: number }
  /**
   * What is queued to send crossed the high-water mark going up (`blocked`: stop sending) or the
   * low-water mark going down (`blocked` false: send again).
   */
  | { readonly kind: "tcp-backpressure"; readonly conn: number; readonly blocked: boolean }
  /** A send was refused (ENOBUFS past the hard cap, EPIPE after shutdown, EBADF unknown conn). */
  | { readonly kind: "tcp-send-error"; readonly conn: number; readonly error: IoError }
  /**
   * The connection is closed and its id free: after `tcp-close` or `tcp-abort`, or because it
   * failed (`error`: ECONNRESET when the peer reset it, EPIPE, ETIMEDOUT...). Whatever was still
   * queued then is counted in `unsent` (bytes never sent).
   */
  | {
      readonly kind: "tcp-closed";
      readonly conn: number;
      readonly error?: IoError;
      readonly unsent?: number;
    };
