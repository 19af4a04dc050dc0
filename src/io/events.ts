/**
 * The I/O vocabulary shared by tasks, workers and backends: what a task asks for (actions) and
 * what comes back (events). Plain data. `socket` is an id the caller picks for each socket, and
 * `device` one it picks for each bound TUN/TAP queue (a separate set of ids).
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
  | { readonly kind: "tun-send"; readonly device: number; readonly data: Uint8Array };

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
  | { readonly kind: "tun-unbound"; readonly device: number; readonly error?: IoError };
