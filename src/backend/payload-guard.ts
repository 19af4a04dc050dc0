/**
 * A debugging middleware that catches the one lifetime rule the types cannot: a received
 * packet's `data` is a view of a receive buffer, valid until its handler returns (the `Backend`
 * contract). Turned on per worker with `AddWorkerOptions.checkPayloads` (or the environment
 * variable `BUN_SANSIO_CHECK_PAYLOADS=1`).
 */
import type { NetAction, NetEvent } from "../io/events.ts";
import type { EventSink } from "./backend.ts";
import { type BackendFactory, BackendMiddleware } from "./middleware.ts";

/** What a released payload is overwritten with: kept bytes read as 0xDB, never as a new packet. */
export const PAYLOAD_POISON = 0xdb;

/** A payload view was used after its handler returned (`PayloadGuard`, the simulated backend). */
export class PayloadKeptError extends Error {
  override readonly name = "PayloadKeptError";

  /** The error for a view of received packet number `packet` (when known) sent too late. */
  static sent(packet?: number): PayloadKeptError {
    const which = packet === undefined ? "a received packet's" : `received packet #${packet}'s`;
    return new PayloadKeptError(
      `a view of ${which} payload was sent after its handler returned, when its buffer is already reused: copy what you keep (data.slice())`,
    );
  }
}

/** Wraps `make`'s backend in a `PayloadGuard`. */
export function withPayloadGuard(make: BackendFactory): BackendFactory<PayloadGuard> {
  return (sink) => new PayloadGuard(make, sink);
}

/**
 * Contract: behaves as the inner backend, except that each received packet's `data` is a copy
 * of its own, which is overwritten with `PAYLOAD_POISON` as soon as the handler returns; a send
 * of a view of such a released copy throws a `PayloadKeptError` from `act` (the grouped worker
 * turns it into a task error naming the task that sent it, a hand-written inner's becomes a
 * worker error). A view of the packet being handled is still sent as it was (copied for the
 * kernel). Costs a copy and an allocation per packet: for tests and debugging, not production.
 */
export class PayloadGuard extends BackendMiddleware {
  /** Each released payload's buffer → the number of the packet it held. */
  readonly #released = new WeakMap<ArrayBufferLike, number>();
  #handling: ArrayBufferLike | undefined;
  #packets = 0;

  /** See `withPayloadGuard`. */
  constructor(make: BackendFactory, sink: EventSink) {
    super(make, sink);
  }

  override act(owner: number, action: NetAction): void {
    switch (action.kind) {
      case "udp-send":
      case "udp-send-many":
      case "tun-send":
        this.inner.act(owner, { ...action, data: this.#checked(action.data) } as NetAction);
        return;
      case "udp-send-batch":
        this.inner.act(owner, {
          kind: "udp-send-batch",
          packets: action.packets.map((p) => ({ ...p, data: this.#checked(p.data) })),
        });
        return;
      default:
        this.inner.act(owner, action);
    }
  }

  protected onEvent(owner: number, event: NetEvent): void {
    if (event.kind !== "udp-packet" && event.kind !== "tun-packet") {
      this.sink(owner, event);
      return;
    }
    const own = event.data.slice();
    const packet = ++this.#packets;
    this.#handling = own.buffer;
    try {
      this.sink(owner, { ...event, data: own });
    } finally {
      this.#handling = undefined;
      own.fill(PAYLOAD_POISON);
      this.#released.set(own.buffer, packet);
    }
  }

  /** `data` as the inner backend may send it; throws for a view of a released payload. */
  #checked(data: Uint8Array): Uint8Array {
    const packet = this.#released.get(data.buffer);
    if (packet !== undefined) {
      throw PayloadKeptError.sent(packet);
    }
    // the copy handed to the handler is poisoned when it returns; the kernel may read it later
    return data.buffer === this.#handling ? data.slice() : data;
  }
}
