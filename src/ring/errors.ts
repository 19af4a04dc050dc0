/** A record does not fit in the ring even when the ring is empty. */
export class RecordTooLargeError extends RangeError {
  override readonly name = "RecordTooLargeError";
  /**
   * @param length the payload length that was offered
   * @param max the largest payload this ring accepts (half its capacity minus the header)
   * @param message what to say instead of the default (for callers that know what to advise)
   */
  constructor(
    readonly length: number,
    readonly max: number,
    message = `record of ${length} bytes is larger than this ring accepts (at most ${max} bytes)`,
  ) {
    super(message);
  }
}

/**
 * The ring's shared memory holds something no producer wrote: a record header whose length runs
 * past the published data. The ring stops delivering; nothing is read out of bounds.
 */
export class RingCorruptError extends Error {
  override readonly name = "RingCorruptError";
  /**
   * @param offset byte offset of the bad header in the data area
   * @param detail what was wrong with it
   */
  constructor(
    readonly offset: number,
    readonly detail: string,
  ) {
    super(`ring memory corrupt at offset ${offset}: ${detail}`);
  }
}
