/**
 * A controlling ICE client with one candidate pair, for the project's own test peers talking to
 * an ICE-lite server: it sends Binding requests (USERNAME `remoteUfrag:localUfrag`, PRIORITY,
 * ICE-CONTROLLING, USE-CANDIDATE, MESSAGE-INTEGRITY with the remote password, FINGERPRINT),
 * retransmits them on deadlines (RFC 5389 §7.2.1: RTO doubling, Rc sends, then Rm × RTO), and
 * reports "connected" with the mapped address, or "failed". Once connected it sends a fresh
 * check every `refreshMs` to keep the server's consent (RFC 7675); a check that gets no answer
 * fails the session.
 *
 * Sans-IO like `IceLiteAgent`: `handle` and `handleTimeout` take `now`; the caller drains
 * `pollTransmit` and `pollEvent`, and sleeps until `pollTimeout`. Transaction ids and the
 * tie-breaker come from the injected `random`.
 */
import { randomBytes } from "node:crypto";
import type { SocketAddr } from "../io/addr.ts";
import type { IceTransmit } from "./ice-lite.ts";
import { RejectCounts, type Rejected, reject } from "./reject.ts";
import {
  buildStun,
  checkIntegrity,
  parseStun,
  STUN_BINDING,
  type StunReason,
  shortTermKey,
} from "./stun.ts";

/** Where the client stands: "failed" is final. */
export type IceClientState = "checking" | "connected" | "failed";

/** What the caller learns from `pollEvent`. */
export type IceClientEvent =
  /** The first check succeeded; `mapped` is the address the server saw. */
  | { readonly type: "connected"; readonly mapped: SocketAddr }
  /** A check got no answer after every retransmission. */
  | { readonly type: "failed"; readonly reason: "timeout" }
  /** A check got an error response. */
  | { readonly type: "failed"; readonly reason: "error-response"; readonly code: number };

/** Why `handle` refused a datagram (counted in `rejects`; all are dropped). */
export type IceClientReason =
  | StunReason
  /** Not a Binding response. */
  | "ice-not-response"
  /** Not the transaction in flight (late, duplicate or forged). */
  | "ice-unknown-transaction"
  /** From another address than the one the request went to (RFC 8445 §7.2.5.2.1). */
  | "ice-asymmetric"
  | "ice-no-fingerprint"
  /** MESSAGE-INTEGRITY missing from a success, or not checking with the remote password. */
  | "ice-bad-integrity"
  /** A success response without XOR-MAPPED-ADDRESS. */
  | "ice-no-mapped-address"
  /** The client has failed. */
  | "ice-closed";

/** The pair to check, the credentials, and the timers. */
export interface IceClientOptions {
  readonly localUfrag: string;
  readonly remoteUfrag: string;
  readonly remotePwd: string;
  /** The server's candidate. */
  readonly remote: SocketAddr;
  /** PRIORITY sent (default 2,130,706,431: a host candidate, RFC 8445 §5.1.2.1). */
  readonly priority?: number;
  /** Initial retransmission timeout (default 500 ms). */
  readonly rtoMs?: number;
  /** Sends per check, Rc (default 7). */
  readonly maxSends?: number;
  /** After the last send, wait `lastWaitFactor` × `rtoMs`, Rm (default 16). */
  readonly lastWaitFactor?: number;
  /** Interval of consent checks once connected (default 5,000 ms; Infinity for none). */
  readonly refreshMs?: number;
  /** Random bytes (default node:crypto's randomBytes). */
  readonly random?: (n: number) => Uint8Array;
}

interface Transaction {
  readonly id: Uint8Array;
  readonly data: Uint8Array;
  sends: number;
  deadline: number;
}

/** The client side of one candidate pair; see the module comment for its contract. */
export class IceClient {
  /** Refusals by reason. */
  readonly rejects = new RejectCounts();
  readonly #remote: SocketAddr;
  readonly #key: Uint8Array;
  readonly #username: string;
  readonly #priority: number;
  readonly #tieBreaker: bigint;
  readonly #rto: number;
  readonly #maxSends: number;
  readonly #lastWait: number;
  readonly #refreshMs: number;
  readonly #random: (n: number) => Uint8Array;
  readonly #transmits: IceTransmit[] = [];
  readonly #events: IceClientEvent[] = [];
  #state: IceClientState = "checking";
  #mapped: SocketAddr | undefined;
  #tx: Transaction | undefined;
  #refreshAt = Number.POSITIVE_INFINITY;

  /** A client that queues its first check at `now`. */
  constructor(options: IceClientOptions, now: number) {
    this.#remote = options.remote;
    this.#key = shortTermKey(options.remotePwd);
    this.#username = `${options.remoteUfrag}:${options.localUfrag}`;
    this.#priority = options.priority ?? 2_130_706_431;
    this.#rto = options.rtoMs ?? 500;
    this.#maxSends = options.maxSends ?? 7;
    this.#lastWait = (options.lastWaitFactor ?? 16) * this.#rto;
    this.#refreshMs = options.refreshMs ?? 5_000;
    this.#random = options.random ?? randomBytes;
    const tie = this.#random(8);
    this.#tieBreaker = tie.reduce((acc, b) => (acc << 8n) | BigInt(b), 0n);
    this.#check(now);
  }

  /** The current state. */
  get state(): IceClientState {
    return this.#state;
  }

  /** The address the server saw, from the latest successful check. */
  get mapped(): SocketAddr | undefined {
    return this.#mapped;
  }

  /** Feeds one STUN datagram received from `from`. Returns undefined when accepted, else the refusal (also counted). */
  handle(
    now: number,
    from: SocketAddr,
    datagram: Uint8Array,
  ): Rejected<IceClientReason> | undefined {
    this.handleTimeout(now);
    if (this.#state === "failed") return this.#count(reject("ice-closed"));
    const parsed = parseStun(datagram);
    if (!parsed.ok) return this.#count(parsed);
    const res = parsed.value;
    if (res.method !== STUN_BINDING || (res.cls !== "success" && res.cls !== "error")) {
      return this.#count(reject("ice-not-response"));
    }
    const tx = this.#tx;
    if (tx === undefined || Buffer.compare(res.transactionId, tx.id) !== 0) {
      return this.#count(reject("ice-unknown-transaction"));
    }
    if (!from.equals(this.#remote)) return this.#count(reject("ice-asymmetric"));
    if (!res.hasFingerprint) return this.#count(reject("ice-no-fingerprint"));
    // a success must be signed; an error may not be (400 and 401 cannot be), but if signed it must check
    const signed = res.integrityAt >= 0;
    if ((res.cls === "success" || signed) && !checkIntegrity(res, this.#key).ok) {
      return this.#count(reject("ice-bad-integrity"));
    }
    if (res.cls === "error") {
      this.#fail({ type: "failed", reason: "error-response", code: res.errorCode?.code ?? 0 });
      return undefined;
    }
    const mapped = res.xorMappedAddress;
    if (mapped === undefined) return this.#count(reject("ice-no-mapped-address"));
    this.#tx = undefined;
    this.#mapped = mapped;
    this.#refreshAt = now + this.#refreshMs;
    if (this.#state === "checking") {
      this.#state = "connected";
      this.#events.push({ type: "connected", mapped });
    }
    return undefined;
  }

  /** Applies the passing of time: retransmissions, failure, consent checks. */
  handleTimeout(now: number): void {
    const tx = this.#tx;
    if (tx !== undefined) {
      if (now < tx.deadline) return;
      if (tx.sends >= this.#maxSends) {
        this.#fail({ type: "failed", reason: "timeout" });
        return;
      }
      this.#send(tx, now);
    } else if (this.#state === "connected" && now >= this.#refreshAt) {
      this.#check(now);
    }
  }

  /** The next datagram to send, or undefined when none is queued. */
  pollTransmit(): IceTransmit | undefined {
    return this.#transmits.shift();
  }

  /** The next event, or undefined when none is queued. */
  pollEvent(): IceClientEvent | undefined {
    return this.#events.shift();
  }

  /** When `handleTimeout` must next be called, or undefined when nothing is pending. */
  pollTimeout(): number | undefined {
    if (this.#tx !== undefined) return this.#tx.deadline;
    return this.#state === "connected" && Number.isFinite(this.#refreshAt)
      ? this.#refreshAt
      : undefined;
  }

  /** Starts a new check (a new transaction) at `now`. */
  #check(now: number): void {
    const id = this.#random(12);
    const data = buildStun(
      {
        cls: "request",
        transactionId: id,
        attributes: [
          { type: "username", value: this.#username },
          { type: "priority", value: this.#priority },
          { type: "ice-controlling", value: this.#tieBreaker },
          { type: "use-candidate" },
        ],
      },
      { integrity: this.#key, fingerprint: true },
    );
    this.#tx = { id, data, sends: 0, deadline: now };
    this.#send(this.#tx, now);
  }

  /** Sends (or resends) `tx` at `now` and sets its next deadline. */
  #send(tx: Transaction, now: number): void {
    tx.sends++;
    tx.deadline =
      now + (tx.sends < this.#maxSends ? this.#rto * 2 ** (tx.sends - 1) : this.#lastWait);
    this.#transmits.push({ to: this.#remote, data: tx.data });
  }

  #fail(event: IceClientEvent): void {
    this.#state = "failed";
    this.#tx = undefined;
    this.#events.push(event);
  }

  #count<R extends Rejected<IceClientReason>>(r: R): R {
    this.rejects.add(r);
    return r;
  }
}
