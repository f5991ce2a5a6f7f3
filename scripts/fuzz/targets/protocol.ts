/**
 * Targets for the command-line parser (with the MAIL/RCPT argument path
 * it feeds) and the envelope address parser.
 *
 * @module
 */

import { parseCommand } from "../../../src/protocol/parse_command.ts";
import { formatReply, REPLY, type Reply } from "../../../src/protocol/reply.ts";
import { type Address, addressText, parsePath } from "../../../src/protocol/address.ts";
import { parseMailParams, parseRcptParams } from "../../../src/protocol/esmtp_params.ts";

/** Every extension on, so the fuzzer reaches the SMTPUTF8 and DSN paths. */
const ON = { smtputf8: true, dsn: true };
import { preview } from "../bytes.ts";
import { addressInput, commandLine } from "../grammar.ts";
import { FuzzFailure, type FuzzTarget, unexpected } from "../target.ts";

const REPLY_LINE = /^[2-5]\d\d[ -][^\r\n]*$/;
const BAD_TEXT = /[\r\n\0]/;

/**
 * Checks that a reply formats to CRLF-terminated lines "ddd-..." ... "ddd ...".
 * @param r the reply
 * @param where what produced it
 */
export function checkReply(r: Reply, where: string): void {
  for (const enhanced of [true, false]) {
    const wire = formatReply(r, enhanced);
    if (!wire.endsWith("\r\n")) {
      throw new FuzzFailure("reply.crlf", `${where}: ${JSON.stringify(wire)} does not end in CRLF`);
    }
    const lines = wire.slice(0, -2).split("\r\n");
    for (const [i, line] of lines.entries()) {
      if (!REPLY_LINE.test(line)) {
        throw new FuzzFailure("reply.line", `${where}: bad reply line ${JSON.stringify(line)}`);
      }
      const last = i === lines.length - 1;
      if ((line[3] === " ") !== last) {
        throw new FuzzFailure("reply.continuation", `${where}: ${JSON.stringify(wire)}`);
      }
      if (line.slice(0, 3) !== String(r.code)) {
        throw new FuzzFailure("reply.code", `${where}: ${JSON.stringify(wire)}`);
      }
    }
  }
}

const textOf = (b: Uint8Array) => new TextDecoder().decode(b);

/** parseCommand() and what a session does with MAIL/RCPT arguments. */
export const commandTarget: FuzzTarget = {
  name: "command",
  description: "parseCommand: a verb of one word or an error Reply that formats to reply lines",
  setup(): Promise<void> {
    for (const [name, r] of Object.entries(REPLY)) checkReply(r, `REPLY.${name}`);
    return Promise.resolve();
  },
  generate: commandLine,
  check(input: Uint8Array): void {
    let parsed;
    try {
      parsed = parseCommand(input);
    } catch (err) {
      throw unexpected("command.throws", err);
    }
    if ("error" in parsed) {
      checkReply(parsed.error, `parseCommand(${preview(input)})`);
      return;
    }
    const { verb, arg } = parsed;
    // The verb is the line's first word: no blank, no control character.
    // deno-lint-ignore no-control-regex
    if (!/^[^ \t\x00-\x1f\x7f]+$/.test(verb)) {
      throw new FuzzFailure("command.verb", `verb ${JSON.stringify(verb)} from ${preview(input)}`);
    }
    if (typeof arg !== "string" || BAD_TEXT.test(arg)) {
      throw new FuzzFailure("command.arg", `arg ${JSON.stringify(arg)} from ${preview(input)}`);
    }
    if (input.some((c) => (c < 32 && c !== 9) || c === 127)) {
      throw new FuzzFailure("command.control", `control byte accepted in ${preview(input)}`);
    }
    // What the MAIL and RCPT handlers do next.
    const m = /^(FROM|TO):/i.exec(arg);
    if ((verb === "MAIL" || verb === "RCPT") && m) {
      for (const [strict, utf8] of [[true, false], [false, false], [false, true]] as const) {
        let p;
        try {
          p = parsePath(arg.slice(m[0].length), { strict, utf8 });
        } catch (err) {
          throw unexpected("command.parsePath", err);
        }
        if (!p.ok) continue;
        checkAddress(p.address, `${verb} ${preview(input)}`);
        try {
          const r = verb === "MAIL" ? parseMailParams(p.params, ON) : parseRcptParams(p.params, ON);
          if (r && "code" in r) checkReply(r, `params of ${preview(input)}`);
        } catch (err) {
          if (err instanceof FuzzFailure) throw err;
          throw unexpected("command.params", err);
        }
      }
    }
  },
};

/**
 * Renders an address back into strict `<...>` path syntax.
 * @param a the address
 * @returns the path text
 */
export function renderPath(a: Address): string {
  const route = a.route.length ? a.route.map((h) => `@${h}`).join(",") + ":" : "";
  const local = a.quoted ? `"${a.local.replace(/["\\]/g, (c) => `\\${c}`)}"` : a.local;
  return `<${route}${local}${a.domain ? `@${a.domain}` : ""}>`;
}

function checkAddress(a: Address, where: string): void {
  const text = addressText(a);
  if (BAD_TEXT.test(text) || a.route.some((h) => BAD_TEXT.test(h))) {
    throw new FuzzFailure(
      "address.control",
      `${where}: addressText ${JSON.stringify(text)} holds CR/LF/NUL`,
    );
  }
}

function sameAddress(a: Address, b: Address): boolean {
  return a.local === b.local && a.domain === b.domain && a.quoted === b.quoted &&
    a.route.length === b.route.length && a.route.every((h, i) => h === b.route[i]);
}

/** parsePath(): never throws; parsed addresses are clean and re-parse to themselves. */
export const addressTarget: FuzzTarget = {
  name: "address",
  description: "parsePath: no throw; addressText has no CR/LF/NUL; render+reparse is stable",
  generate: addressInput,
  check(input: Uint8Array): void {
    const text = textOf(input);
    const results = [];
    for (const strict of [true, false]) {
      let p;
      try {
        p = parsePath(text, { strict });
      } catch (err) {
        throw unexpected("address.throws", err);
      }
      results.push(p);
      if (!p.ok) continue;
      const where = `parsePath(${JSON.stringify(text.slice(0, 200))}, strict=${strict})`;
      checkAddress(p.address, where);
      // The text as sent goes into the dsn_orig_rcpt record.
      if (p.sent !== undefined && /[\r\n\0]/.test(p.sent)) {
        throw new FuzzFailure("address.sent", `${where}: sent ${JSON.stringify(p.sent)}`);
      }
      // Postfix's blanks are SP and HT only: "SMTPUTF8\u00a0" is not SMTPUTF8.
      if (/^[ \t]|[ \t]$/.test(p.params)) {
        throw new FuzzFailure("address.params", `${where}: params ${JSON.stringify(p.params)}`);
      }
      const again = parsePath(renderPath(p.address), { strict: true });
      if (!again.ok || !sameAddress(again.address, p.address) || again.params !== "") {
        throw new FuzzFailure(
          "address.reparse",
          `${where} gave ${JSON.stringify(p.address)}, rendered ${
            JSON.stringify(renderPath(p.address))
          } re-parses to ${JSON.stringify(again)}`,
        );
      }
    }
    const [strictP, looseP] = results;
    if (strictP?.ok && !(looseP?.ok && sameAddress(strictP.address, looseP.address))) {
      throw new FuzzFailure(
        "address.strictness",
        `strict accepts what loose does not: ${preview(input)}`,
      );
    }
  },
};
