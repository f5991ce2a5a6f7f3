/**
 * The error raised for a configuration that cannot be used. It names the
 * file and line when they are known, as `file:line: message`.
 *
 * @module
 */

/** A configuration problem found at start-up. */
export class ConfigError extends Error {
  /** The parameter concerned, when there is one. */
  readonly key: string | undefined;
  /** The file concerned, when there is one. */
  readonly file: string | undefined;
  /** The 1-based line, when known. */
  readonly line: number | undefined;
  /** The message without the file and line. */
  readonly detail: string;

  /**
   * @param message what is wrong
   * @param where the parameter, file and line concerned
   */
  constructor(message: string, where: { key?: string; file?: string; line?: number } = {}) {
    const prefix = where.file ? `${where.file}${where.line ? `:${where.line}` : ""}: ` : "";
    super(`${prefix}${message}`);
    this.name = "ConfigError";
    this.key = where.key;
    this.file = where.file;
    this.line = where.line;
    this.detail = message;
  }
}
