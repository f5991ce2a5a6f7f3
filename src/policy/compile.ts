/**
 * Compiles the restriction lists once, at start: every name is resolved
 * against the registry below (a literal object, no registration by side
 * effect), every table is opened and every table value compiled, and every
 * restriction class is resolved with cycle detection. Any problem stops
 * the start with `file:line: message`; evaluation never parses a string.
 *
 * @module
 */

import { ConfigError, type LoadedConfig } from "../config/mod.ts";
import type { CompileEnv, Factory, Restriction } from "./restriction.ts";
import { type CompiledLists, evaluateList, LIST_PARAMS, type ListParam } from "./lists.ts";
import { CompiledPolicy } from "./evaluate.ts";
import type { DnsResolver } from "./resolver.ts";
import type { Network } from "./cidr.ts";
import { compileNetworks } from "./relay.ts";
import { ADDRESS } from "./restrictions/address.ts";
import { CLIENT } from "./restrictions/client.ts";
import { DNSBL } from "./restrictions/dnsbl.ts";
import { DNSBL_SCORE } from "./restrictions/dnsbl_score.ts";
import { ETRN } from "./restrictions/etrn.ts";
import { GENERIC } from "./restrictions/generic.ts";
import { HELO } from "./restrictions/helo.ts";
import { dnsReplyFilter } from "./dns_filter.ts";
import { impliedAccess } from "./implied_access.ts";
import { POLICY_SERVICE } from "./restrictions/policy_service.ts";
import { RELAY } from "./restrictions/relay.ts";
import { SASL } from "./restrictions/sasl.ts";
import { SERVER_ACCESS } from "./restrictions/server_access.ts";
import { isTableSpec, type LookupTable, openTable, TableOpenError } from "./tables/mod.ts";

/** Every restriction name. */
export const RESTRICTIONS: Readonly<Record<string, Factory>> = {
  ...GENERIC,
  ...CLIENT,
  ...HELO,
  ...ADDRESS,
  ...RELAY,
  ...DNSBL,
  ...DNSBL_SCORE,
  ...ETRN,
  ...SERVER_ACCESS,
  ...POLICY_SERVICE,
  ...SASL,
};

/** Resolves old names to current ones. */
const ALIASES: ReadonlyMap<string, string> = new Map(
  Object.entries(RESTRICTIONS).flatMap(([name, f]) =>
    (f.aliases ?? []).map((a) => [a, name] as const)
  ),
);

/**
 * mynetworks, compiled once for every permit_mynetworks.
 * @param loaded the loaded configuration
 * @returns the networks
 * @throws {ConfigError} with file and line for a malformed entry
 */
function compileMynetworks(loaded: LoadedConfig): Network[] {
  try {
    return compileNetworks(loaded.config.mynetworks, "mynetworks");
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    throw new ConfigError(err.message, {
      file: loaded.file,
      line: loaded.lineOf("mynetworks"),
      key: "mynetworks",
    });
  }
}

/**
 * Compiles every restriction list of a configuration.
 * @param loaded the loaded configuration (for file and line in errors)
 * @param warn receives start-up warnings (old names)
 * @returns the compiled lists
 * @throws {ConfigError} for unknown names, missing arguments, bad tables, undefined or cyclic classes
 */
export function compileLists(loaded: LoadedConfig, warn: (msg: string) => void): CompiledLists {
  const config = loaded.config;
  const tables = new Map<string, LookupTable>();
  const classLists = new Map<string, Restriction[]>();
  const compiling: string[] = [];
  const declared = new Set(config.restriction_classes);
  const mynetworks = compileMynetworks(loaded);
  for (const name of declared) {
    if (!loaded.classes.has(name)) {
      throw new ConfigError(
        `restriction_classes: class "${name}" is declared but has no definition`,
        {
          file: loaded.file,
          line: loaded.lineOf("restriction_classes"),
          key: "restriction_classes",
        },
      );
    }
    if (Object.hasOwn(RESTRICTIONS, name) || ALIASES.has(name)) {
      throw new ConfigError(`restriction_classes: "${name}" is the name of a restriction`, {
        file: loaded.file,
        line: loaded.lineOf("restriction_classes"),
      });
    }
  }

  const envFor = (key: string): CompileEnv => ({
    config,
    mynetworks,
    fail(message: string): never {
      throw new ConfigError(`${key}: ${message}`, {
        file: loaded.file,
        line: loaded.lineOf(key),
        key,
      });
    },
    warn,
    table(spec: string): LookupTable {
      let t = tables.get(spec);
      if (!t) {
        try {
          t = openTable(spec, { queueDirectory: config.queue_directory });
        } catch (err) {
          if (err instanceof TableOpenError) this.fail(err.message);
          throw err;
        }
        tables.set(spec, t);
      }
      return t;
    },
    compileList(items: readonly string[], where: string): Restriction[] {
      return compile(items, key, where);
    },
    evaluateList,
  });

  const classRestriction = (name: string, key: string): Restriction => {
    if (compiling.includes(name)) {
      throw new ConfigError(
        `${key}: restriction class "${name}" refers to itself (${
          [...compiling, name].join(" -> ")
        })`,
        { file: loaded.file, line: loaded.lineOf(name) ?? loaded.lineOf(key), key },
      );
    }
    let list = classLists.get(name);
    if (!list) {
      compiling.push(name);
      list = compile(loaded.classes.get(name) ?? [], name, name);
      compiling.pop();
      classLists.set(name, list);
    }
    const body = list;
    return { name, run: (e) => evaluateList(body, e) };
  };

  function compile(items: readonly string[], key: string, where: string): Restriction[] {
    const env: CompileEnv = envFor(key);
    const out: Restriction[] = [];
    let warnNext = false;
    for (let i = 0; i < items.length; i++) {
      let word = items[i] as string;
      if (word === "warn_if_reject") {
        warnNext = true;
        continue;
      }
      const modern = ALIASES.get(word);
      if (modern) {
        warn(`${where}: restriction "${word}" is obsolete; use "${modern}"`);
        word = modern;
      }
      let r: Restriction;
      const factory = RESTRICTIONS[word];
      if (factory) {
        if (factory.replacedBy) {
          warn(`${where}: restriction "${word}" is obsolete; use ${factory.replacedBy}`);
        }
        let arg: string | undefined;
        if (factory.arg) {
          arg = items[i + 1];
          if (arg === undefined || (factory.arg === "table" && !isTableSpec(arg))) {
            const what = { table: "type:table", zone: "zone", service: "policy service" };
            env.fail(`restriction "${word}" needs a ${what[factory.arg]} argument`);
          }
          i++;
        }
        r = factory.make(arg === undefined ? word : `${word} ${arg}`, arg, env);
      } else if (declared.has(word)) {
        r = classRestriction(word, key);
      } else if (isTableSpec(word)) {
        r = impliedAccess(word, env); // Postfix's implied check_<stage>_access
      } else {
        env.fail(`unknown restriction "${word}"${suggest(word)}`);
      }
      if (warnNext) {
        const inner = r;
        r = {
          name: `warn_if_reject ${inner.name}`,
          run: async (e) => {
            const saved = e.deferIfPermit;
            const d = await inner.run(e);
            if (e.deferIfPermit !== saved) {
              e.warn(
                `reject_warning: ${e.deferIfPermit?.code} ${e.deferIfPermit?.text} (${inner.name})`,
              );
              e.deferIfPermit = saved;
            }
            if (d.kind === "reject" || d.kind === "defer") {
              e.warn(`reject_warning: ${d.reply.code} ${d.reply.text} (${inner.name})`);
              return { kind: "dunno" };
            }
            return d;
          },
        };
        warnNext = false;
      }
      out.push(r);
    }
    if (warnNext) env.fail(`"warn_if_reject" must be followed by a restriction`);
    return out;
  }

  const lists = {} as Record<ListParam, Restriction[]>;
  for (const key of LIST_PARAMS) lists[key] = compile(config[key], key, key);
  for (const name of declared) classRestriction(name, "restriction_classes");
  return lists;
}

function suggest(word: string): string {
  const names = [...Object.keys(RESTRICTIONS), ...ALIASES.keys()];
  let best = "";
  let bestScore = 4;
  for (const n of names) {
    const d = distance(word, n);
    if (d < bestScore) {
      bestScore = d;
      best = n;
    }
  }
  return best ? ` (did you mean "${best}"?)` : "";
}

function distance(a: string, b: string): number {
  const dp = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = dp[0] as number;
    dp[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = dp[j] as number;
      dp[j] = Math.min(
        (dp[j] as number) + 1,
        (dp[j - 1] as number) + 1,
        prev + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
      prev = tmp;
    }
  }
  return dp[b.length] as number;
}

/**
 * Warnings `smtpd config --check` prints: a configuration that would relay
 * for untrusted clients, and rules that can never be reached.
 * @param loaded the configuration
 * @returns warning lines
 */
export function auditLists(loaded: LoadedConfig): string[] {
  const c = loaded.config;
  const out: string[] = [];
  const terminal = new Set(["permit", "reject", "defer"]);
  const lists: [string, readonly string[]][] = [
    ...LIST_PARAMS.map((k) => [k, c[k]] as [string, readonly string[]]),
    ...[...loaded.classes].map(([k, v]) => [k, v] as [string, readonly string[]]),
  ];
  for (const [key, items] of lists) {
    const words = items.filter((w) => !w.includes(":") && !w.includes("."));
    const stop = words.findIndex((w) => terminal.has(w));
    if (stop >= 0 && stop < words.length - 1) {
      const where = loaded.lineOf(key);
      out.push(
        `${loaded.file ?? "<config>"}${where ? `:${where}` : ""}: ${key}: "${
          words.slice(stop + 1).join(", ")
        }" can never be reached after "${words[stop]}"`,
      );
    }
  }
  const rcpt = c.smtpd_recipient_restrictions;
  const guard = rcpt.findIndex((w) =>
    ["reject_unauth_destination", "check_relay_domains", "reject", "defer"].includes(w)
  );
  const openAt = rcpt.findIndex((w) => w === "permit" || w === "permit_mx_backup");
  const where = loaded.lineOf("smtpd_recipient_restrictions");
  if (guard < 0 || (openAt >= 0 && openAt < guard)) {
    out.push(
      `${loaded.file ?? "<config>"}${where ? `:${where}` : ""}: smtpd_recipient_restrictions: ` +
        `untrusted clients may relay to any domain: add reject_unauth_destination before any permit`,
    );
  }
  if (c.mynetworks.some((n) => /^(0\.0\.0\.0\/0|\[?::\]?\/0)$/.test(n))) {
    out.push(`mynetworks includes every address: every client may relay`);
  }
  return out;
}

/**
 * Compiles the policy of a configuration.
 * @param loaded the loaded configuration
 * @param options the resolver and a warning sink
 * @returns the policy
 * @throws {ConfigError} for any list problem
 */
export function compilePolicy(
  loaded: LoadedConfig,
  options: { dns: DnsResolver; warn: (text: string) => void },
): CompiledPolicy {
  const dns = dnsReplyFilter(loaded, options.dns, options.warn);
  return new CompiledPolicy(compileLists(loaded, options.warn), {
    delay: loaded.config.smtpd_delay_reject,
    ...options,
    dns,
  });
}
