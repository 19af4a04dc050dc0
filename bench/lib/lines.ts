/** Reads a child process's output line by line. */

/** The lines of a byte stream (UTF-8), one at a time, in order. */
export class LineReader {
  readonly #reader: { read(): Promise<{ done: boolean; value?: Uint8Array | undefined }> };
  readonly #decoder = new TextDecoder();
  #pending = "";
  #ended = false;

  /** Takes the stream's reader (the stream cannot be read elsewhere afterwards). */
  constructor(stream: ReadableStream<Uint8Array>) {
    this.#reader = stream.getReader();
  }

  /**
   * The next line without its newline, or `undefined` once the stream has ended (a last line
   * without a newline is returned before that).
   */
  async next(): Promise<string | undefined> {
    for (;;) {
      const nl = this.#pending.indexOf("\n");
      if (nl >= 0) {
        const line = this.#pending.slice(0, nl);
        this.#pending = this.#pending.slice(nl + 1);
        return line;
      }
      if (this.#ended) {
        const rest = this.#pending;
        this.#pending = "";
        return rest === "" ? undefined : rest;
      }
      const { value, done } = await this.#reader.read();
      if (done) this.#ended = true;
      else this.#pending += this.#decoder.decode(value, { stream: true });
    }
  }

  /** Reads lines until one contains `text` and returns it, or `undefined` if the stream ends. */
  async until(text: string): Promise<string | undefined> {
    for (let line = await this.next(); line !== undefined; line = await this.next()) {
      if (line.includes(text)) return line;
    }
    return undefined;
  }
}
