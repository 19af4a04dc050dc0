const NONE: readonly number[] = Object.freeze([]);

/**
 * One endpoint's view of who subscribes to which channel. Each endpoint keeps its own copy,
 * updated by the subscribe/unsubscribe records that travel on the bus; no locks, no sharing.
 */
export class Subscriptions {
  readonly #byChannel = new Map<number, readonly number[]>();

  /** Records `endpoint` as a subscriber of `channel`. False if it already was. */
  add(channel: number, endpoint: number): boolean {
    const current = this.#byChannel.get(channel) ?? NONE;
    if (current.includes(endpoint)) return false;
    // copy on write: a publish iterating the old array is not disturbed
    this.#byChannel.set(
      channel,
      [...current, endpoint].sort((a, b) => a - b),
    );
    return true;
  }

  /** Removes `endpoint` from `channel`'s subscribers. False if it was not one. */
  remove(channel: number, endpoint: number): boolean {
    const current = this.#byChannel.get(channel);
    if (current === undefined || !current.includes(endpoint)) return false;
    const next = current.filter((e) => e !== endpoint);
    if (next.length === 0) this.#byChannel.delete(channel);
    else this.#byChannel.set(channel, next);
    return true;
  }

  /** Removes `endpoint` from every channel. */
  removeEndpoint(endpoint: number): void {
    for (const channel of [...this.#byChannel.keys()]) this.remove(channel, endpoint);
  }

  /** True when `endpoint` subscribes to `channel`. */
  has(channel: number, endpoint: number): boolean {
    return this.#byChannel.get(channel)?.includes(endpoint) ?? false;
  }

  /** The subscribers of `channel`, in endpoint order (a snapshot: later changes make a new array). */
  of(channel: number): readonly number[] {
    return this.#byChannel.get(channel) ?? NONE;
  }
}
