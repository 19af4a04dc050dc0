/**
 * How the WebRTC stack refuses hostile or broken input: parsers and state machines never throw on
 * what comes off the wire; they return a `Rejected` with a short fixed reason (a string literal
 * of the module's own reason type, e.g. "stun-bad-fingerprint"), and the caller counts it in a
 * `RejectCounts`. Exceptions are kept for programming errors (a caller breaking a contract).
 */

/** A refused input and why (a fixed, countable reason; `detail` is free text for logs). */
export interface Rejected<Reason extends string = string> {
  readonly ok: false;
  readonly reason: Reason;
  readonly detail?: string;
}

/** A parse that worked. */
export interface Accepted<T> {
  readonly ok: true;
  readonly value: T;
}

/** What a parser returns: the value, or why not. */
export type Parsed<T, Reason extends string = string> = Accepted<T> | Rejected<Reason>;

/** A refusal (`detail` optional). */
export function reject<Reason extends string>(reason: Reason, detail?: string): Rejected<Reason> {
  return detail === undefined ? { ok: false, reason } : { ok: false, reason, detail };
}

/** A success. */
export function accept<T>(value: T): Accepted<T> {
  return { ok: true, value };
}

/** Counts of refusals by reason, for stats and tests. */
export class RejectCounts {
  readonly #counts = new Map<string, number>();

  /** Counts `r` once. */
  add(r: Rejected): void {
    this.#counts.set(r.reason, (this.#counts.get(r.reason) ?? 0) + 1);
  }

  /** How many were refused for `reason` (every reason when omitted). */
  count(reason?: string): number {
    if (reason !== undefined) return this.#counts.get(reason) ?? 0;
    let n = 0;
    for (const v of this.#counts.values()) n += v;
    return n;
  }

  /** The counts as a plain object, reasons sorted. */
  toJSON(): Record<string, number> {
    return Object.fromEntries([...this.#counts].sort(([a], [b]) => a.localeCompare(b)));
  }
}
