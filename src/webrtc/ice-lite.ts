/**
 * An ICE-lite agent for one session (RFC 8445 §2.5: the server side of a WebRTC peer, always
 * controlled, answering checks and sending none). Sans-IO: `handle` takes a STUN datagram and
 * its source, `handleTimeout` the passing of time; the caller then drains `pollTransmit` and
 * `pollEvent` before feeding the next input, and sleeps until `pollTimeout`. No clock, no
 * timers: `now` (milliseconds, monotonic) comes with every call.
 *
 * Selection: the agent latches the source of the first request that passes integrity (Chromium
 * sends its DTLS ClientHello right after its first check, before nominating), and moves to the
 * source of a USE-CANDIDATE request that comes from elsewhere. Consent (RFC 7675): every
 * authenticated check from the selected address refreshes it; without one for
 * `disconnectedAfterMs` the state is "disconnected", for `consentTimeoutMs` "failed" (final).
 */
import type { SocketAddr } from "../io/addr.ts";
import { RejectCounts, type Rejected, reject } from "./reject.ts";
import {
  buildStun,
  checkIntegrity,
  parseStun,
  STUN_BINDING,
  StunAttr,
  type StunAttributeInit,
  type StunMessage,
  type StunReason,
  shortTermKey,
} from "./stun.ts";

/** A datagram to send. */
export interface IceTransmit {
  readonly to: SocketAddr;
  readonly data: Uint8Array;
}

/** Where the session stands: "failed" is final. */
export type IceLiteState = "checking" | "connected" | "disconnected" | "failed";

/** What the caller learns from `pollEvent`. */
export type IceLiteEvent =
  | { readonly type: "state"; readonly state: "connected" | "disconnected" }
  /** No consent for `consentTimeoutMs` (or no check at all that long after creation). */
  | { readonly type: "state"; readonly state: "failed"; readonly reason: "consent" }
  /** The address to send to changed, or was nominated (USE-CANDIDATE). */
  | { readonly type: "selected"; readonly address: SocketAddr; readonly nominated: boolean };

/** Why `handle` refused a datagram (counted in `rejects`); the comment says what was answered. */
export type IceLiteReason =
  | StunReason
  /** A response, or an indication of another method: dropped. */
  | "ice-not-request"
  /** A method other than Binding: dropped. */
  | "ice-bad-method"
  /** A request without FINGERPRINT (RFC 8445 §7.1.1 requires it): dropped. */
  | "ice-no-fingerprint"
  /** No USERNAME or no MESSAGE-INTEGRITY: 400. */
  | "ice-no-credentials"
  /** USERNAME is not `localUfrag:remoteUfrag`: 401. */
  | "ice-bad-username"
  /** MESSAGE-INTEGRITY does not check with the local password: 401. */
  | "ice-bad-integrity"
  /** Unknown comprehension-required attributes: 420 listing them. */
  | "ice-unknown-attribute"
  /** No PRIORITY: 400. */
  | "ice-no-priority"
  /** ICE-CONTROLLED from the peer (a lite agent is always controlled): 487. */
  | "ice-role-conflict"
  /** The session has failed: dropped. */
  | "ice-closed";

/** The session's credentials (from the SDP offer and answer) and its timers. */
export interface IceLiteOptions {
  readonly localUfrag: string;
  readonly localPwd: string;
  readonly remoteUfrag: string;
  /** Silence after which the state is "failed" (default 30,000 ms, RFC 7675). */
  readonly consentTimeoutMs?: number;
  /** Silence after which a connected session is "disconnected" (default 10,000 ms). */
  readonly disconnectedAfterMs?: number;
}

type ErrorCode = 400 | 401 | 420 | 487;

const PHRASES: Record<ErrorCode, string> = {
  400: "Bad Request",
  401: "Unauthorized",
  420: "Unknown Attribute",
  487: "Role Conflict",
};

/** The lite agent of one session; see the module comment for its contract. */
export class IceLiteAgent {
  /** Refusals by reason. */
  readonly rejects = new RejectCounts();
  readonly #key: Uint8Array;
  readonly #username: Uint8Array;
  readonly #consentMs: number;
  readonly #disconnectedMs: number;
  readonly #transmits: IceTransmit[] = [];
  readonly #events: IceLiteEvent[] = [];
  #state: IceLiteState = "checking";
  #selected: SocketAddr | undefined;
  #nominated = false;
  /** When consent was last refreshed (creation time until the first check). */
  #consentAt: number;

  /** An agent created at `now`, in state "checking". */
  constructor(options: IceLiteOptions, now: number) {
    this.#key = shortTermKey(options.localPwd);
    this.#username = new TextEncoder().encode(`${options.localUfrag}:${options.remoteUfrag}`);
    this.#consentMs = options.consentTimeoutMs ?? 30_000;
    this.#disconnectedMs = options.disconnectedAfterMs ?? 10_000;
    this.#consentAt = now;
  }

  /** The current state. */
  get state(): IceLiteState {
    return this.#state;
  }

  /** Where to send media and DTLS, once a check has passed. */
  get selected(): SocketAddr | undefined {
    return this.#selected;
  }

  /**
   * Feeds one STUN datagram received from `from` (kept when selected: it must be a value that
   * is not overwritten later, as the runtime's `from` is). Returns undefined when accepted, or
   * the refusal, which is also counted; an error response may be queued (see `IceLiteReason`).
   */
  handle(now: number, from: SocketAddr, datagram: Uint8Array): Rejected<IceLiteReason> | undefined {
    this.handleTimeout(now);
    if (this.#state === "failed") return this.#count(reject("ice-closed"));
    const parsed = parseStun(datagram);
    if (!parsed.ok) return this.#count(parsed);
    const req = parsed.value;
    if (req.method !== STUN_BINDING) return this.#count(reject("ice-bad-method"));
    if (req.cls === "indication") return undefined; // a keepalive: nothing to answer
    if (req.cls !== "request") return this.#count(reject("ice-not-request"));
    if (!req.hasFingerprint) return this.#count(reject("ice-no-fingerprint"));
    const username = req.get(StunAttr.USERNAME);
    if (username === undefined || req.integrityAt < 0) {
      return this.#refuse("ice-no-credentials", 400, req, from, false);
    }
    if (Buffer.compare(username, this.#username) !== 0) {
      return this.#refuse("ice-bad-username", 401, req, from, false);
    }
    if (!checkIntegrity(req, this.#key).ok) {
      return this.#refuse("ice-bad-integrity", 401, req, from, false);
    }
    if (req.unknownRequired.length > 0) {
      const unknown: StunAttributeInit = { type: "unknown-attributes", value: req.unknownRequired };
      return this.#refuse("ice-unknown-attribute", 420, req, from, true, unknown);
    }
    if (req.priority === undefined) return this.#refuse("ice-no-priority", 400, req, from, true);
    if (req.iceControlled !== undefined) {
      return this.#refuse("ice-role-conflict", 487, req, from, true);
    }
    this.#answer(req, from, "success", [{ type: "xor-mapped-address", value: from }], true);
    this.#select(from, req.useCandidate);
    if (this.#selected?.equals(from) === true) {
      this.#consentAt = now;
      if (this.#state !== "connected") this.#setState("connected");
    }
    return undefined;
  }

  /** Applies the passing of time: "disconnected" and "failed" on silence. */
  handleTimeout(now: number): void {
    if (this.#state === "failed") return;
    if (now >= this.#consentAt + this.#consentMs) {
      this.#state = "failed";
      this.#events.push({ type: "state", state: "failed", reason: "consent" });
    } else if (this.#state === "connected" && now >= this.#consentAt + this.#disconnectedMs) {
      this.#setState("disconnected");
    }
  }

  /** The next datagram to send, or undefined when none is queued. */
  pollTransmit(): IceTransmit | undefined {
    return this.#transmits.shift();
  }

  /** The next event, or undefined when none is queued. */
  pollEvent(): IceLiteEvent | undefined {
    return this.#events.shift();
  }

  /** When `handleTimeout` must next be called, or undefined once failed. */
  pollTimeout(): number | undefined {
    if (this.#state === "failed") return undefined;
    const failAt = this.#consentAt + this.#consentMs;
    return this.#state === "connected"
      ? Math.min(failAt, this.#consentAt + this.#disconnectedMs)
      : failAt;
  }

  #select(from: SocketAddr, useCandidate: boolean): void {
    const current = this.#selected;
    if (current !== undefined) {
      if (!useCandidate) return; // latched: only a nomination moves it
      if (this.#nominated && current.equals(from)) return;
    }
    this.#selected = from;
    this.#nominated = useCandidate;
    this.#events.push({ type: "selected", address: from, nominated: useCandidate });
  }

  #setState(state: "connected" | "disconnected"): void {
    this.#state = state;
    this.#events.push({ type: "state", state });
  }

  #refuse(
    reason: IceLiteReason,
    code: ErrorCode,
    req: StunMessage,
    from: SocketAddr,
    signed: boolean,
    extra?: StunAttributeInit,
  ): Rejected<IceLiteReason> {
    const attributes: StunAttributeInit[] = [
      { type: "error-code", value: { code, reason: PHRASES[code] } },
    ];
    if (extra !== undefined) attributes.push(extra);
    this.#answer(req, from, "error", attributes, signed);
    return this.#count(reject(reason));
  }

  #answer(
    req: StunMessage,
    to: SocketAddr,
    cls: "success" | "error",
    attributes: StunAttributeInit[],
    signed: boolean,
  ): void {
    const init = { cls, transactionId: req.transactionId, attributes };
    const data = signed
      ? buildStun(init, { integrity: this.#key, fingerprint: true })
      : buildStun(init, { fingerprint: true });
    this.#transmits.push({ to, data });
  }

  #count<R extends Rejected<IceLiteReason>>(r: R): R {
    this.rejects.add(r);
    return r;
  }
}
