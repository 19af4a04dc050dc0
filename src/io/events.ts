/**
 * The I/O vocabulary shared by tasks, workers and backends: what a task asks for (actions) and
 * what comes back (events). Plain data. `socket` is an id the caller picks for each socket.
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
    };

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
   * A datagram. `data` and `from` are views into a receive buffer, valid until the handler
   * returns (copy to keep). `size` is the datagram's real size; `truncated` says `data` holds
   * only its first bytes because the receive buffer was smaller.
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
  | { readonly kind: "udp-closed"; readonly socket: number; readonly error?: IoError };
