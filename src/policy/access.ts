/**
 * access(5) semantics: the order in which keys are looked up for a client,
 * a host name or an e-mail address, and what a table's value means (OK,
 * REJECT text, DEFER text, DUNNO, 4NN/5NN text, WARN, the actions on the
 * message in message_actions.ts, or a restriction list).
 * Every value of every table is compiled at start, so a bad value stops the
 * start instead of becoming a 451 in a session.
 *
 * @module
 */

import { bothForms, stripExtension } from "./addr_find.ts";
import { type Destinations, NO_DESTINATIONS } from "./destinations.ts";
import { type Config, ConfigError } from "../config/mod.ts";
import { type Address, addressText } from "../protocol/address.ts";
import { resolveAddress } from "./resolve_address.ts";
import { hasRouting } from "./hostname.ts";
import { reply, type ReplyCode } from "../protocol/reply.ts";
import type { Factory } from "./restriction.ts";
import type { PolicyContext } from "./context.ts";
import type { Decision } from "./decision.ts";
import {
  type CompileEnv,
  type EvalEnv,
  refusal,
  refuse,
  type Restriction,
  type Subject,
  tracedLookup,
} from "./restriction.ts";
import type { LookupTable } from "./tables/mod.ts";
import { messageAction } from "./message_actions.ts";

/**
 * What a table value does, compiled. `value` is the looked-up value when
 * it differs from the compiled one ($n substitution in regexp:/pcre:).
 */
export type Action = (
  env: EvalEnv,
  subject: Subject,
  by: string,
  value?: string,
) => Promise<Decision>;

/**
 * Host name keys: the name, then each parent domain (Postfix's default
 * parent_domain_matches_subdomains includes smtpd_access_maps).
 * @param host a host or domain name
 * @returns the keys in lookup order
 */
export function hostKeys(host: string): string[] {
  const h = host.toLowerCase().replace(/\.$/, "");
  const out = [h];
  let rest = h;
  for (let dot = rest.indexOf("."); dot > 0; dot = rest.indexOf(".")) {
    rest = rest.slice(dot + 1);
    if (rest) out.push(rest);
  }
  return out;
}

/**
 * Client address keys: the address, then shorter prefixes (1.2.3, 1.2, 1;
 * for IPv6, fewer ":"-separated groups).
 * @param address the IP address
 * @returns the keys in lookup order
 */
export function addressKeys(address: string): string[] {
  const sep = address.includes(":") ? ":" : ".";
  const parts = address.split(sep);
  const out: string[] = [];
  for (let n = parts.length; n >= 1; n--) {
    const k = parts.slice(0, n).join(sep);
    if (k) out.push(k);
  }
  return out;
}

/**
 * E-mail address keys, as Postfix's check_mail_access: user+ext@domain,
 * user@domain (with recipient_delimiter, see ./addr_find.ts), domain and
 * its parents, user+ext@, user@; a local part that needs quoting is
 * looked up quoted first (`"a..b"@domain`), then as it is.
 * @param local the local part
 * @param domain the domain ("" when unqualified)
 * @param delimiter recipient_delimiter ("" for none: no extension is cut)
 * @param nullKey the null sender's key (smtpd_null_access_lookup_key)
 * @returns the keys in lookup order
 */
export function emailKeys(
  local: string,
  domain: string,
  delimiter = "",
  nullKey = "<>",
): string[] {
  if (!local && !domain) return [nullKey];
  const bare = stripExtension(local, delimiter);
  const locals = bare === undefined ? [local] : [local, bare];
  const out = domain
    ? [...locals.flatMap((l) => bothForms(l, `@${domain}`)), ...hostKeys(domain)]
    : locals.flatMap((l) => bothForms(l, ""));
  out.push(...locals.flatMap((l) => bothForms(l, "@")));
  return out.map((k) => k.toLowerCase());
}

/**
 * The access(5) keys of a sender or recipient (Postfix's check_mail_access):
 * the address as trivial-rewrite resolved it (<user> is user@$myorigin,
 * x%site@ourdomain is x@site; see ./resolve_address.ts), the null sender
 * as smtpd_null_access_lookup_key.
 * @param a the address
 * @param options the configuration, whether the table matches patterns
 *   (no extension cut), our destinations and the evaluation
 * @returns the keys in lookup order
 */
export async function mailAccessKeys(
  a: Address,
  options: KeyOptions,
): Promise<string[]> {
  const { config, pattern, destinations, env } = options;
  const r = await resolveAddress(a, { myorigin: config.myorigin, destinations, env });
  // recipient_delimiter: user+ext@domain is also looked up as user@domain.
  const delimiter = pattern ? "" : config.recipient_delimiter;
  return emailKeys(r.local, r.domain, delimiter, config.smtpd_null_access_lookup_key);
}

/**
 * Postfix's check_mail_access: an OK for a recipient whose resolved form
 * still routes (y%site@relay.example) is too suspicious to permit, and
 * counts as DUNNO unless allow_untrusted_routing is set.
 * @param d the access table's decision
 * @param options the configuration, our destinations and the evaluation
 * @returns the decision to use
 */
export async function distrustRoutedPermit(
  d: Decision,
  options: Omit<KeyOptions, "pattern">,
): Promise<Decision> {
  const a = options.env.ctx.recipient;
  if (d.kind !== "permit" || !a || options.config.allow_untrusted_routing) return d;
  const resolved = await resolveAddress(a, {
    myorigin: options.config.myorigin,
    destinations: options.destinations,
    env: options.env,
  });
  return hasRouting(resolved) ? { kind: "dunno" } : d;
}

/**
 * Looks keys up in order; the first found value's action decides (DUNNO goes on to the next table).
 * @param env the evaluation
 * @param table the table
 * @param keys keys in order
 * @param actions compiled actions by value
 * @param subject what a refusal names
 * @param by the restriction name
 * @returns the decision
 */
export async function checkAccess(
  env: EvalEnv,
  table: LookupTable,
  keys: readonly string[],
  actions: ReadonlyMap<string, Action>,
  subject: Subject,
  by: string,
): Promise<Decision> {
  for (const key of keys) {
    const r = await tracedLookup(env, table, key);
    if (r.kind === "tempfail") {
      env.deferIfPermit ??= reply(451, "3.0", `Temporary lookup failure`);
      env.warn(`${table.name}: lookup of "${key}" failed: ${r.reason}`);
      return { kind: "dunno" };
    }
    if (r.kind === "found") {
      const action = actions.get(r.template ?? r.value);
      if (!action) return { kind: "dunno" };
      return await action(env, subject, `${by} ${table.name} ${key}`, r.value);
    }
  }
  return { kind: "dunno" };
}

/**
 * Compiles every value of a table into actions.
 * @param table the table (its values must be enumerable)
 * @param env the compile environment
 * @returns value → action
 */
export function compileActions(table: LookupTable, env: CompileEnv): Map<string, Action> {
  if (table.values === undefined) return new RuntimeActions(env.config, table.name);
  const out = new Map<string, Action>();
  for (const v of table.values ?? []) {
    if (out.has(v)) continue;
    const template = table.pattern === true && /\$(\d|\{\d|\(\d)/.test(v);
    // A result with $n (in a regexp: or pcre: table) is checked as written
    // at start, and compiled again with the matched text filled in when it
    // is used. The argument of FILTER, REDIRECT or BCC is judged only then:
    // "BCC archive+$1" has its "@" once $1 is an address.
    const action = atValue(
      table,
      v,
      () => compileAction(v, template ? { ...env, runtime: true } : env, table.name),
    );
    out.set(
      v,
      !template ? action : (e, s, by, value) => {
        if (value === undefined || value === v) return action(e, s, by);
        const filled = runtimeAction(value, env.config);
        if (typeof filled !== "string") return filled(e, s, by);
        e.warn(`${table.name}: ${filled}`);
        return Promise.resolve(refuse(reply(451, "3.5", "Server configuration error"), by));
      },
    );
  }
  return out;
}

/**
 * Compiles one table value; an error about it also names the table file
 * and line the value is on, after the configuration's file and line.
 * @param table the table
 * @param value the value
 * @param compile the compilation
 * @returns what compile returns
 * @throws {ConfigError} with the value's file and line added
 */
function atValue<T>(table: LookupTable, value: string, compile: () => T): T {
  try {
    return compile();
  } catch (err) {
    const where = err instanceof ConfigError ? table.origin?.(value) : undefined;
    if (!(err instanceof ConfigError) || where === undefined) throw err;
    const { key } = err;
    const keyed = key !== undefined && err.detail.startsWith(`${key}: `);
    let rest = keyed ? err.detail.slice(`${key}: `.length) : err.detail;
    // The file and line say more than the table's name some messages begin with.
    if (rest.startsWith(`${table.name}: `)) rest = rest.slice(`${table.name}: `.length);
    const message = keyed ? `${key}: ${where}: ${rest}` : `${where}: ${rest}`;
    throw new ConfigError(message, { file: err.file, line: err.line, key });
  }
}

/**
 * The actions of a table whose values are known only when looked up
 * (socketmap:): each value is compiled when first seen (at most 1,000 kept).
 */
class RuntimeActions extends Map<string, Action> {
  #config: Config;
  #where: string;
  constructor(config: Config, where: string) {
    super();
    this.#config = config;
    this.#where = where;
  }
  override get(value: string): Action {
    const known = super.get(value);
    if (known) return known;
    const a = runtimeAction(value, this.#config);
    const action: Action = typeof a !== "string" ? a : (e, _s, by) => {
      e.warn(`${this.#where}: ${a}`);
      return Promise.resolve(refuse(reply(451, "3.5", "Server configuration error"), by));
    };
    if (this.size < 1000) this.set(value, action);
    return action;
  }
}

class ActionError extends Error {}

/**
 * Compiles an action known only at run time (a policy server's reply, a
 * table result after $n substitution). Restriction lists and tables are
 * refused; a malformed FILTER, REDIRECT or BCC is skipped with a warning
 * when met, as Postfix does.
 * @param value the action text
 * @param config the configuration (reply codes)
 * @returns the action, or why it cannot be applied
 */
export function runtimeAction(value: string, config: Config): Action | string {
  const env: CompileEnv = {
    config,
    runtime: true,
    // No restriction names in a policy service's answer: nothing needs mynetworks.
    mynetworks: [],
    destinations: NO_DESTINATIONS,
    fail: (message) => {
      throw new ActionError(message);
    },
    warn: () => {},
    table: () => {
      throw new ActionError("tables are not allowed here");
    },
    compileList: () => {
      throw new ActionError("restriction lists are not allowed here");
    },
    evaluateList: () => Promise.resolve({ kind: "dunno" }),
  };
  try {
    return compileAction(value, env, "action");
  } catch (err) {
    if (err instanceof ActionError) return `unsupported action "${value}"`;
    throw err;
  }
}

/**
 * Compiles one access(5) value.
 * @param value the table value
 * @param env the compile environment
 * @param where the table, for errors
 * @returns the action
 */
export function compileAction(value: string, env: CompileEnv, where: string): Action {
  const v = value.trim();
  const [word = "", ...restWords] = v.split(/\s+/);
  const rest = v.slice(word.length).trim();
  const upper = word.toUpperCase();
  const cfg = env.config;
  if (upper === "OK" || upper === "PERMIT" || /^\d+$/.test(v)) {
    return (_e, _s, by) => Promise.resolve({ kind: "permit", by });
  }
  if (upper === "DUNNO") return () => Promise.resolve({ kind: "dunno" });
  if (upper === "REJECT") {
    return (e, s, by) =>
      Promise.resolve(
        refuse(refusal(cfg.access_map_reject_code, "7.1", s, e.ctx, rest || "Access denied"), by),
      );
  }
  if (upper === "DEFER") {
    return (e, s, by) =>
      Promise.resolve(refuse(refusal(450, "7.1", s, e.ctx, rest || "Access denied"), by));
  }
  if (upper === "DEFER_IF_PERMIT") {
    return (e, s) => {
      e.deferIfPermit ??= refusal(450, "7.1", s, e.ctx, rest || "Service is unavailable");
      return Promise.resolve({ kind: "dunno" });
    };
  }
  if (upper === "WARN") {
    // Logged as Postfix logs it: "NOQUEUE: warn: RCPT from ...: text; from=<...> ...".
    return (e) => {
      (e.effects ??= []).push({ kind: "warn", text: rest });
      return Promise.resolve({ kind: "dunno" });
    };
  }
  const coded = /^([45])(\d\d)$/.exec(word);
  if (coded) {
    const code = Number(word) as ReplyCode;
    return (e, s, by) =>
      Promise.resolve(refuse(refusal(code, "7.1", s, e.ctx, rest || "Access denied"), by));
  }
  const action = messageAction(upper, rest, env, where);
  if (action) return action;
  if (/^[0-9]/.test(word)) {
    env.fail(`${where}: unsupported access action "${v}"`);
  }
  // Otherwise the value is a restriction list (restriction names or class names).
  void restWords;
  const list: Restriction[] = env.compileList(v.split(/[\s,]+/).filter(Boolean), where);
  return (e) => env.evaluateList(list, e);
}

/** What the keys of an access check depend on besides the session facts. */
export interface KeyOptions {
  /** The configuration (recipient_delimiter). */
  readonly config: Config;
  /**
   * The table matches patterns (regexp:, pcre:): Postfix gives it only the
   * whole fact, so no extension is cut for it.
   */
  readonly pattern: boolean;
  /** Our destinations (an address is resolved against them). */
  readonly destinations: Destinations;
  /** The evaluation (table lookups of the destinations are traced). */
  readonly env: EvalEnv;
}

/**
 * Builds a check_*_access restriction: its table is opened and every value
 * compiled at start; at evaluation the keys come from the session facts.
 * @param subject what a refusal names
 * @param keysOf the lookup keys in order, or undefined when the fact is absent
 * @returns the restriction factory
 */
export function accessFactory(
  subject: Subject,
  keysOf: (
    ctx: PolicyContext,
    options: KeyOptions,
  ) => readonly string[] | undefined | Promise<readonly string[] | undefined>,
): Factory {
  return {
    arg: "table",
    make: (name, arg, env) => {
      const table = env.table(arg as string);
      const actions = compileActions(table, env);
      return {
        name,
        run: async (e) => {
          const keys = await keysOf(e.ctx, {
            config: env.config,
            pattern: table.pattern === true,
            destinations: env.destinations,
            env: e,
          });
          if (keys === undefined) return { kind: "dunno" };
          const k = table.pattern ? wholeKeys(keys, e.ctx) : keys;
          // checkAccess names the table and key after the restriction.
          return await checkAccess(e, table, k, actions, subject, name.split(" ", 1)[0] as string);
        },
      };
    },
  };
}

/**
 * The keys a pattern table (regexp:, pcre:) sees: only whole facts, in
 * their original case, as Postfix gives them (no parent domains, network
 * prefixes or "user@" parts; no case folding).
 * @param keys the access(5) keys in lookup order (lower-cased)
 * @param ctx the facts, for the original spelling
 * @returns the keys that are not parts of an earlier key
 */
export function wholeKeys(keys: readonly string[], ctx: PolicyContext): string[] {
  const originals = [
    ctx.clientName,
    ctx.clientAddress,
    ctx.helo,
    ctx.sender && addressText(ctx.sender),
    ctx.recipient && addressText(ctx.recipient),
    ctx.etrnDomain,
  ].filter((v): v is string => !!v);
  const out: string[] = [];
  for (const k of keys) {
    if (out.some((w) => w.toLowerCase() !== k && w.toLowerCase().includes(k))) continue;
    out.push(originals.find((o) => o.toLowerCase() === k) ?? k);
  }
  return out;
}
