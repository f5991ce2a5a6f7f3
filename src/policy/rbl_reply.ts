/**
 * The reply of a DNS list hit (reject_rbl_client, reject_rhsbl_*), as
 * Postfix's rbl_reject_reply builds it: a template from rbl_reply_maps
 * (looked up with the zone as written, `zone=filter`, then the bare zone)
 * or default_rbl_reply, expanded with `$rbl_code`, `$rbl_domain`,
 * `$rbl_reason` (`$rbl_txt`), `$rbl_what`, `$rbl_class` and the session's
 * `$client`, `$client_address`, `$client_name`, `$client_port`,
 * `$reverse_client_name`, `$helo_name`, `$sender`, `$sender_name`,
 * `$sender_domain`, `$recipient`, `$recipient_name`, `$recipient_domain`,
 * `$server_name`; `${name?text}` and `${name:text}` as in main.cf. Expanded
 * values keep printable ASCII, space and tab only (Postfix's
 * smtpd_expand_filter). The result must start with a 4xx or 5xx code and a
 * space (otherwise a warning and `450 4.7.1 Service unavailable`); an
 * enhanced code after it is used, fitted to what is refused, else 4.7.1
 * (of the code's class). A table that fails answers `451 4.3.5 Server
 * configuration error`; a bad template from the table falls back to the
 * default with a warning; a bad default_rbl_reply stops the start.
 *
 * @module
 */

import { type Reply, reply, type ReplyCode } from "../protocol/reply.ts";
import { addressText } from "../protocol/address.ts";
import type { Address } from "../protocol/address.ts";
import type { PolicyContext } from "./context.ts";
import type { Decision } from "./decision.ts";
import { type CompileEnv, type EvalEnv, fitDetail, refuse, tracedLookup } from "./restriction.ts";
import type { LookupTable } from "./tables/mod.ts";

/**
 * Expands `$name`, `${name}`, `${name?text}` and `${name:text}`.
 * @param template the text
 * @param lookup a name's value, or undefined when the name is unknown
 * @returns the expansion, or undefined for an unknown name or bad syntax
 */
export function expandTemplate(
  template: string,
  lookup: (name: string) => string | undefined,
): string | undefined {
  let out = "";
  let i = 0;
  while (i < template.length) {
    const c = template[i] as string;
    if (c !== "$") {
      out += c;
      i++;
      continue;
    }
    const next = template[i + 1];
    if (next === "$") {
      out += "$";
      i += 2;
      continue;
    }
    if (next === "{" || next === "(") {
      const close = next === "{" ? "}" : ")";
      let depth = 1;
      let j = i + 2;
      for (; j < template.length && depth > 0; j++) {
        if (template[j] === next) depth++;
        else if (template[j] === close) depth--;
      }
      if (depth !== 0) return undefined;
      const inner = template.slice(i + 2, j - 1);
      const m = /^([A-Za-z0-9_]+)(?:([?:])([\s\S]*))?$/.exec(inner);
      if (!m) return undefined;
      const value = lookup(m[1] as string);
      if (value === undefined) return undefined;
      if (m[2] === undefined) out += value;
      else if ((m[2] === "?") === (value !== "")) {
        const text = expandTemplate(m[3] as string, lookup);
        if (text === undefined) return undefined;
        out += text;
      }
      i = j;
      continue;
    }
    const m = /^[A-Za-z0-9_]+/.exec(template.slice(i + 1));
    if (!m) return undefined;
    const value = lookup(m[0]);
    if (value === undefined) return undefined;
    out += value;
    i += 1 + m[0].length;
  }
  return out;
}

/** What a DNS list hit says. */
export interface RblHit {
  /** The zone argument as written (`zone` or `zone=filter`). */
  readonly zoneArg: string;
  /** $rbl_domain: the zone without the filter. */
  readonly zone: string;
  /** $rbl_what: the address or name that is listed. */
  readonly what: string;
  /** $rbl_class: "Client host", "Sender address", ... */
  readonly class: string;
  /** $rbl_reason: the TXT text, "" when none. */
  readonly reason: string;
}

const printable = (s: string): string => s.replace(/[^\t\x20-\x7e]/g, "_");

function addressNames(prefix: string, a: Address | undefined): Record<string, string> {
  const text = a ? addressText(a) : "";
  return {
    [prefix]: text || "<>",
    [`${prefix}_name`]: text ? (a?.domain ? a.local : text) : "<>",
    [`${prefix}_domain`]: a?.domain ?? "",
  };
}

function names(hit: RblHit, ctx: PolicyContext, code: number, me: string): Record<string, string> {
  return {
    "rbl_code": String(code),
    "rbl_domain": hit.zone,
    "rbl_reason": hit.reason,
    "rbl_txt": hit.reason,
    "rbl_what": hit.what,
    "rbl_class": hit.class,
    "server_name": me,
    "client": `${ctx.clientName}[${ctx.clientAddress}]`,
    "client_address": ctx.clientAddress,
    "client_name": ctx.clientName,
    "client_port": ctx.clientPort ?? "",
    "reverse_client_name": ctx.reverseName,
    "helo_name": ctx.helo ?? "",
    ...addressNames("sender", ctx.sender),
    ...addressNames("recipient", ctx.recipient),
  };
}

const SAMPLE: RblHit = { zoneArg: "z", zone: "z", what: "w", class: "Client host", reason: "r" };
const SAMPLE_CTX: PolicyContext = {
  clientAddress: "192.0.2.1",
  clientName: "c",
  reverseName: "c",
  nameStatus: "ok",
  reverseStatus: "ok",
  local: false,
  helo: undefined,
  sender: undefined,
  recipient: undefined,
};

/** Builds the reply of a hit (the compiled default_rbl_reply and rbl_reply_maps). */
export type RblReply = (e: EvalEnv, hit: RblHit, by: string) => Promise<Decision>;

/**
 * Compiles default_rbl_reply (checked now) and opens rbl_reply_maps.
 * @param env the compile environment
 * @returns the reply builder
 * @throws {ConfigError} (through env.fail) for a default template that does not expand
 */
export function compileRblReply(env: CompileEnv): RblReply {
  const config = env.config;
  const fallback = config.default_rbl_reply;
  const code = config.maps_rbl_reject_code;
  const me = config.myhostname;
  if (expandTemplate(fallback, (n) => names(SAMPLE, SAMPLE_CTX, code, me)[n]) === undefined) {
    env.fail(`default_rbl_reply: bad template "${fallback}"`);
  }
  const tables: LookupTable[] = config.rbl_reply_maps.map((spec) => env.table(spec));
  return async (e, hit, by) => {
    let template: string | undefined;
    const keys = hit.zoneArg === hit.zone ? [hit.zone] : [hit.zoneArg, hit.zone];
    search: for (const key of keys) {
      for (const t of tables) {
        const r = await tracedLookup(e, t, key);
        if (r.kind === "tempfail") {
          e.warn(`${t.name} lookup error for "${key}": ${r.reason}`);
          return { kind: "defer", reply: reply(451, "3.5", "Server configuration error"), by };
        }
        if (r.kind === "found") {
          template = r.value;
          break search;
        }
      }
    }
    const values = names(hit, e.ctx, code, me);
    const lookup = (n: string) => n in values ? printable(values[n] as string) : undefined;
    let text = template === undefined ? undefined : expandTemplate(template, lookup);
    if (template !== undefined && text === undefined) {
      e.warn(`bad rbl reply template for domain ${hit.zoneArg}: ${template}`);
    }
    text ??= expandTemplate(fallback, lookup) ?? "";
    return refuse(rblReplyOf(e, text, hit.class), by);
  };
}

/** "554 5.7.1 text" → the reply, as Postfix checks and splits it. */
function rblReplyOf(e: EvalEnv, text: string, cls: string): Reply {
  const m = /^([45])(\d\d) (?:[245]\.(\d{1,3}\.\d{1,3})(?: |$))?([\s\S]*)$/.exec(text);
  if (!m) {
    e.warn(`rbl response code configuration error: ${text}`);
    return reply(450, "7.1", "Service unavailable");
  }
  const subject = cls === "Sender address"
    ? "sender"
    : cls === "Recipient address"
    ? "recipient"
    : "client";
  const detail = fitDetail(m[3] ?? "7.1", subject) as `${number}.${number}`;
  return reply(Number(`${m[1]}${m[2]}`) as ReplyCode, detail, m[4] || "Service unavailable");
}
