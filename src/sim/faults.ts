/**
 * Fault injection as backend middleware: wraps any backend, real or simulated, and from a seed
 * drops, delays, truncates or "exhausts" what it receives and refuses or fails what is sent.
 */
import type { BackendStats, EventSink } from "../backend/backend.ts";
import { type BackendFactory, BackendMiddleware } from "../backend/middleware.ts";
import type { IoError, NetAction, NetEvent } from "../io/events.ts";
import { type SimErrno, simError } from "./errors.ts";
import { SimRandom } from "./random.ts";

/**
 * What to inject, as probabilities from 0 to 1. Each received packet (`udp-packet`,
 * `tun-packet`) takes at most one of drop, exhaust, delay, truncate (so those add up to at most
 * 1); each datagram or packet sent takes at most one of refuse, fail (the same).
 */
export interface FaultOptions {
  /** Selects every choice (one draw per packet received and per datagram sent). */
  readonly seed: number;
  /**
   * The clock delays are measured on, in ms: the network's (`network.clock`) over a simulated
   * backend, a monotonic one (`() => performance.now()`) over a real one.
   */
  readonly clock: () => number;
  /** A received packet vanishes. */
  readonly drop?: number;
  /**
   * The receive buffers "ran out" as the packet came: it is lost and counted as the backends
   * count it, in `bufferExhaustion` and `kernelDrops` (the contract has no event for it).
   */
  readonly exhaust?: number;
  /** A received packet is held back by `delayMs`, then delivered (a copy), later ones passing it. */
  readonly delay?: number;
  /** How long a delayed packet is held, in ms; default 10. */
  readonly delayMs?: number;
  /**
   * A received packet is cut to half its bytes, flagged `truncated` with its real `size`, as
   * one larger than the receive buffer is (an empty one cannot be cut and passes unchanged).
   */
  readonly truncate?: number;
  /** A send is refused as the kernel does when it has no room: `EAGAIN` as a send-error event. */
  readonly refuse?: number;
  /** A send fails with `failCode` as a send-error event. */
  readonly fail?: number;
  /** The errno of a failed send; default `ENETUNREACH`. */
  readonly failCode?: SimErrno;
}

/** A delayed packet: a copy of its event, for `owner`, due at `due`. */
interface Held {
  readonly due: number;
  readonly owner: number;
  readonly event: NetEvent;
}

/** What a `FaultBackend` injected, counted since creation. */
export interface FaultCounts {
  dropped: number;
  exhausted: number;
  delayed: number;
  truncated: number;
  refused: number;
  failed: number;
}

/**
 * Wraps the backend `make` makes with fault injection (see `FaultOptions`); composes with other
 * middleware: `withPcap(withFaults(make, options), path)`.
 */
export function withFaults(
  make: BackendFactory,
  options: FaultOptions,
): BackendFactory<FaultBackend> {
  return (sink) => new FaultBackend(make, sink, options);
}

/**
 * A backend with faults injected (made by `withFaults`).
 *
 * Contract: the `Backend` contract of the backend inside, with these changes. Received packets
 * are dropped, lost to exhaustion, delayed or truncated as drawn; a delayed one is a copy,
 * delivered by the first `poll` at or after its time (`poll` waits no longer than that, and
 * `nextDeadline` says it). Sends are refused or failed as drawn, per datagram (`udp-send-many`
 * and `udp-send-batch` go on without the ones taken out); their `udp-send-error` /
 * `tun-send-error` events come at the next `poll`, never from `act`. `stats()` is the inner
 * backend's with `eventsIn` counting what this one delivered and the injected faults added to
 * `truncated`, `bufferExhaustion`, `kernelDrops` and `sendErrors`; `faults()` counts each fault.
 */
export class FaultBackend extends BackendMiddleware {
  readonly #o: FaultOptions;
  readonly #random: SimRandom;
  readonly #counts: FaultCounts = {
    dropped: 0,
    exhausted: 0,
    delayed: 0,
    truncated: 0,
    refused: 0,
    failed: 0,
  };
  /** Injected send errors, for the next poll. */
  readonly #errors: { readonly owner: number; readonly event: NetEvent }[] = [];
  /** Delayed packets, earliest first (one delay for all: arrival order is due order). */
  readonly #held: Held[] = [];
  #delivered = 0;

  /**
   * Use `withFaults`. Throws a RangeError when a probability is outside 0 to 1 or a group's
   * probabilities add up to more than 1.
   */
  constructor(make: BackendFactory, sink: EventSink, options: FaultOptions) {
    super(make, sink);
    const { drop = 0, exhaust = 0, delay = 0, truncate = 0, refuse = 0, fail = 0 } = options;
    for (const p of [drop, exhaust, delay, truncate, refuse, fail])
      if (!(p >= 0 && p <= 1)) throw new RangeError(`a probability is 0 to 1, got ${p}`);
    if (drop + exhaust + delay + truncate > 1 || refuse + fail > 1)
      throw new RangeError("fault probabilities of one group add up to more than 1");
    this.#o = options;
    this.#random = new SimRandom(options.seed);
  }

  /** Each fault injected so far. */
  faults(): FaultCounts {
    return { ...this.#counts };
  }

  /** See the class comment. */
  override act(owner: number, action: NetAction): void {
    switch (action.kind) {
      case "udp-send":
        if (this.#passes(owner, udpError(action.socket))) this.inner.act(owner, action);
        return;
      case "udp-send-many": {
        const to = action.to.filter(() => this.#passes(owner, udpError(action.socket)));
        if (to.length > 0) this.inner.act(owner, { ...action, to });
        return;
      }
      case "udp-send-batch": {
        const packets = action.packets.filter((p) => this.#passes(owner, udpError(p.socket)));
        if (packets.length > 0) this.inner.act(owner, { ...action, packets });
        return;
      }
      case "tun-send":
        if (
          this.#passes(owner, (error) => ({ kind: "tun-send-error", device: action.device, error }))
        )
          this.inner.act(owner, action);
        return;
      default:
        this.inner.act(owner, action);
    }
  }

  /** See the class comment. */
  override poll(timeoutMs: number): number {
    const before = this.#delivered;
    for (const { owner, event } of this.#errors.splice(0)) this.#pass(owner, event);
    const held = this.#held[0];
    let wait = timeoutMs;
    if (this.#delivered > before) wait = 0;
    else if (held !== undefined) {
      const left = Math.max(0, Math.ceil(held.due - this.#o.clock()));
      wait = timeoutMs < 0 ? left : Math.min(timeoutMs, left);
    }
    this.inner.poll(wait);
    const now = this.#o.clock();
    for (let h = this.#held[0]; h !== undefined && h.due <= now; h = this.#held[0]) {
      this.#held.shift();
      this.#pass(h.owner, h.event);
    }
    return this.#delivered - before;
  }

  /** See `Backend.nextDeadline`: the inner backend's, or sooner for errors and delayed packets. */
  override nextDeadline(): number {
    const own =
      this.#errors.length > 0 ? this.#o.clock() : (this.#held[0]?.due ?? Number.POSITIVE_INFINITY);
    return Math.min(own, super.nextDeadline());
  }

  /** See the class comment. */
  override stats(): BackendStats {
    const s = this.inner.stats();
    const c = this.#counts;
    return {
      ...s,
      eventsIn: this.#delivered,
      truncated: s.truncated + c.truncated,
      bufferExhaustion: s.bufferExhaustion + c.exhausted,
      kernelDrops: s.kernelDrops + c.exhausted,
      sendErrors: s.sendErrors + c.refused + c.failed,
    };
  }

  protected override onEvent(owner: number, event: NetEvent): void {
    if (event.kind !== "udp-packet" && event.kind !== "tun-packet") {
      this.#pass(owner, event);
      return;
    }
    const { drop = 0, exhaust = 0, delay = 0, truncate = 0 } = this.#o;
    const x = this.#random.float();
    if (x < drop) this.#counts.dropped++;
    else if (x < drop + exhaust) this.#counts.exhausted++;
    else if (x < drop + exhaust + delay) {
      this.#counts.delayed++;
      const copy = { ...event, data: event.data.slice() };
      this.#held.push({ due: this.#o.clock() + (this.#o.delayMs ?? 10), owner, event: copy });
    } else if (x < drop + exhaust + delay + truncate && event.data.length > 0) {
      this.#counts.truncated++;
      this.#pass(owner, {
        ...event,
        data: event.data.subarray(0, event.data.length >>> 1),
        truncated: true,
      });
    } else this.#pass(owner, event);
  }

  #pass(owner: number, event: NetEvent): void {
    this.#delivered++;
    this.sink(owner, event);
  }

  /** Draws a send's fate: true to send it, false when refused or failed (its error queued). */
  #passes(owner: number, error: (e: IoError) => NetEvent): boolean {
    const { refuse = 0, fail = 0 } = this.#o;
    const x = this.#random.float();
    if (x < refuse) {
      this.#counts.refused++;
      this.#errors.push({ owner, event: error(simError("EAGAIN")) });
      return false;
    }
    if (x < refuse + fail) {
      this.#counts.failed++;
      this.#errors.push({ owner, event: error(simError(this.#o.failCode ?? "ENETUNREACH")) });
      return false;
    }
    return true;
  }
}

function udpError(socket: number): (error: IoError) => NetEvent {
  return (error) => ({ kind: "udp-send-error", socket, error });
}
