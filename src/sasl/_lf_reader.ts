/**
 * LF-terminated lines from a connection, each at most a fixed number of
 * bytes: the buffer never grows past that bound, whatever the peer sends.
 *
 * @module
 */

/** A line longer than the bound arrived. */
export class LineTooLongError extends Error {
  constructor(max: number) {
    super(`line longer than ${max} bytes from the authentication server`);
    this.name = "LineTooLongError";
  }
}

/** Reads LF-terminated lines (a CR before the LF is dropped). */
export class LfLineReader {
  #source: { read(p: Uint8Array): Promise<number | null> };
  #buf: Uint8Array;
  #start = 0;
  #end = 0;
  #decoder = new TextDecoder();
  #max: number;

  /**
   * @param source the connection
   * @param maxLength the longest line accepted, in bytes, without its LF
   */
  constructor(source: { read(p: Uint8Array): Promise<number | null> }, maxLength: number) {
    this.#source = source;
    this.#max = maxLength;
    this.#buf = new Uint8Array(maxLength + 1);
  }

  /**
   * The next line, without its line end.
   * @returns the line, or null at the end of input (a partial last line is dropped)
   * @throws {LineTooLongError} when no LF comes within the bound
   */
  async readLine(): Promise<string | null> {
    let scanned = this.#start;
    for (;;) {
      const lf = this.#buf.subarray(scanned, this.#end).indexOf(0x0a);
      if (lf >= 0) {
        const at = scanned + lf;
        let stop = at;
        if (stop > this.#start && this.#buf[stop - 1] === 0x0d) stop--;
        const line = this.#decoder.decode(this.#buf.subarray(this.#start, stop));
        this.#start = at + 1;
        return line;
      }
      if (this.#end - this.#start > this.#max) throw new LineTooLongError(this.#max);
      scanned = this.#end;
      if (this.#end === this.#buf.length) {
        this.#buf.copyWithin(0, this.#start, this.#end);
        scanned -= this.#start;
        this.#end -= this.#start;
        this.#start = 0;
      }
      const n = await this.#source.read(this.#buf.subarray(this.#end));
      if (n === null) return null;
      this.#end += n;
    }
  }
}
