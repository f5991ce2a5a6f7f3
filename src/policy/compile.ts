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
import { type Reply, replyForLog } from "../protocol/reply.ts";
import type { CompileEnv, Factory, Restriction } from "./restriction.ts";
import {
  type CompiledLists,
  evaluateList,
  type ImplicitChecks,
  LIST_PARAMS,
  type ListParam,
} from "./lists.ts";
import { CompiledPolicy } from "./evaluate.ts";
import type { DnsResolver } from "./resolver.ts";
import type { Network } from "./cidr.ts";
import { compileNetworks, styleNetworks } from "./relay.ts";
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
import { UNLISTED, unlistedCheck } from "./restrictions/unlisted.ts";
import { compileDestinations, type Destinations } from "./destinations.ts";
import { readListFile } from "./tables/mod.ts";
import { expandListFiles } from "./domain_list.ts";
import { inNetwork, parseIp } from "./cidr.ts";
import { compilePeerList, type PeerMatcher } from "./peer_match.ts";
import { DNSWL } from "./restrictions/dnswl.ts";
import { ENVELOPE } from "./restrictions/envelope.ts";
import { RHSBL } from "./restrictions/rhsbl.ts";
import { SLEEP } from "./restrictions/sleep.ts";
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
  ...UNLISTED,
  ...RHSBL,
  ...DNSWL,
  ...ENVELOPE,
  ...SLEEP,
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
export function compileMynetworks(loaded: LoadedConfig): Network[] {
  const style = loaded.config.mynetworks_style;
  try {
    // Without mynetworks, mynetworks_style "subnet" or "class" trusts the
    // networks of this host's interfaces (Postfix); "host" trusts loopback.
    if (!loaded.explicit.has("mynetworks") && style !== "host") {
      let interfaces: Deno.NetworkInterfaceInfo[];
      try {
        interfaces = Deno.networkInterfaces();
      } catch (e) {
        // Deno asks the kernel over an AF_NETLINK socket, which a systemd
        // unit's RestrictAddressFamilies= may forbid.
        throw new ConfigError(
          `mynetworks_style = "${style}": cannot list this host's network interfaces: ` +
            `${(e as Error).message} (a systemd unit needs AF_NETLINK in ` +
            `RestrictAddressFamilies=); or set mynetworks`,
          { file: loaded.file, line: loaded.lineOf("mynetworks_style"), key: "mynetworks_style" },
        );
      }
      return compileNetworks(
        [...loaded.config.mynetworks, ...styleNetworks(style, interfaces)],
        "mynetworks_style",
      );
    }
    return compileNetworks(loaded.config.mynetworks, "mynetworks");
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    if (err.key === "mynetworks_style") throw err;
    throw new ConfigError(err.message, {
      file: loaded.file,
      line: loaded.lineOf("mynetworks"),
      key: "mynetworks",
    });
  }
}

/**
 * smtpd_forbid_bare_newline_exclusions: the clients a bare LF is never
 * refused from. Its default, `$mynetworks`, is mynetworks as
 * permit_mynetworks trusts it (mynetworks_style included); a list that is
 * set holds addresses, networks, domain names (matching their
 * subdomains), `/file`s and `type:name` tables looked up by client name
 * and address, as Postfix's namadr lists.
 * @param loaded the loaded configuration
 * @returns whether a client (name, address) is excluded
 * @throws {ConfigError} with file and line for a bad entry or table
 */
export function compileBareNewlineExclusions(loaded: LoadedConfig): PeerMatcher {
  const key = "smtpd_forbid_bare_newline_exclusions";
  if (!loaded.explicit.has(key)) {
    const nets = compileMynetworks(loaded);
    return (_name, address) => {
      const ip = parseIp(address);
      return Promise.resolve(ip !== undefined && nets.some((n) => inNetwork(n, ip)));
    };
  }
  const where = { file: loaded.file, line: loaded.lineOf(key), key };
  let items: string[];
  try {
    items = expandListFiles(loaded.config[key], readListFile);
  } catch (err) {
    throw new ConfigError(`${key}: ${(err as Error).message}`, where);
  }
  try {
    return compilePeerList(items, key, loaded.config);
  } catch (err) {
    if (err instanceof ConfigError) throw new ConfigError(err.message, where);
    throw err;
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
  const declared = new Set([...config.smtpd_restriction_classes, ...config.restriction_classes]);
  const classKey = config.smtpd_restriction_classes.length
    ? "smtpd_restriction_classes"
    : "restriction_classes";
  const mynetworks = compileMynetworks(loaded);
  const openFor = (key: string) => (spec: string): LookupTable => {
    let t = tables.get(spec);
    if (!t) {
      try {
        // Opened again by a reload: retired with this configuration.
        t = openTable(spec, { queueDirectory: config.queue_directory, owner: config });
      } catch (err) {
        if (err instanceof TableOpenError) {
          throw new ConfigError(`${key}: ${err.message}`, {
            file: loaded.file,
            line: loaded.lineOf(key, spec),
            key,
          });
        }
        throw err;
      }
      tables.set(spec, t);
    }
    return t;
  };
  const destinations = compileDestinationsOf(loaded, openFor);
  for (const name of declared) {
    if (!loaded.classes.has(name)) {
      throw new ConfigError(
        `${classKey}: class "${name}" is declared but has no definition`,
        { file: loaded.file, line: loaded.lineOf(classKey), key: classKey },
      );
    }
    const lower = name.toLowerCase();
    if (Object.hasOwn(RESTRICTIONS, lower) || ALIASES.has(lower)) {
      throw new ConfigError(`${classKey}: "${name}" is the name of a restriction`, {
        file: loaded.file,
        line: loaded.lineOf(classKey),
      });
    }
  }

  // The item of a parameter's own list being compiled (a table's spec for
  // its argument): a problem found inside it, a table value say, is
  // reported at its line.
  let at: string | undefined;
  const lineIn = (key: string, item?: string): number | undefined => {
    const own = loaded.lineOf(key, item);
    return own !== loaded.lineOf(key) ? own : loaded.lineOf(key, at);
  };
  const envFor = (key: string): CompileEnv => ({
    config,
    mynetworks,
    destinations,
    fail(message: string, item?: string): never {
      throw new ConfigError(`${key}: ${message}`, {
        file: loaded.file,
        line: lineIn(key, item),
        key,
      });
    },
    warn,
    table: openFor(key),
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
      const given = items[i] as string;
      if (where === key) at = given;
      // Restriction names in any case, as Postfix (strcasecmp); a class
      // name or a table argument is taken as written.
      let word = Object.hasOwn(RESTRICTIONS, given.toLowerCase()) ||
          ALIASES.has(given.toLowerCase()) || given.toLowerCase() === "warn_if_reject"
        ? given.toLowerCase()
        : given;
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
      const factory = Object.hasOwn(RESTRICTIONS, word) ? RESTRICTIONS[word] : undefined;
      if (factory) {
        if (factory.replacedBy) {
          warn(`${where}: restriction "${word}" is obsolete; use ${factory.replacedBy}`);
        }
        let arg: string | undefined;
        if (factory.arg) {
          arg = items[i + 1];
          if (arg === undefined || (factory.arg === "table" && !isTableSpec(arg))) {
            const what = {
              table: "type:table",
              zone: "zone",
              service: "policy service",
              seconds: "number of seconds",
            };
            env.fail(`restriction "${word}" needs a ${what[factory.arg]} argument`, word);
          }
          i++;
        }
        if (where === key && arg !== undefined) at = arg;
        r = factory.make(arg === undefined ? word : `${word} ${arg}`, arg, env);
      } else if (declared.has(word)) {
        r = classRestriction(word, key);
      } else if (isTableSpec(word)) {
        r = impliedAccess(word, env); // Postfix's implied check_<stage>_access
      } else {
        env.fail(`unknown restriction "${word}"${suggest(word)}`, word);
      }
      if (warnNext) {
        const inner = r;
        r = {
          name: `warn_if_reject ${inner.name}`,
          run: async (e) => {
            const saved = e.deferIfPermit;
            const d = await inner.run(e);
            // Logged as Postfix logs it: "NOQUEUE: reject_warning: RCPT from ...".
            const warned = (r: Reply) =>
              (e.effects ??= []).push({ kind: "reject_warning", text: replyForLog(r) });
            if (e.deferIfPermit !== saved) {
              if (e.deferIfPermit) warned(e.deferIfPermit);
              e.deferIfPermit = saved;
            }
            if (d.kind === "reject" || d.kind === "defer") {
              warned(d.reply);
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

  // Opened first, under their own name: a mistake there names
  // smtpd_sender_login_maps and its line (not the list of the restriction
  // that uses them), and is found when no restriction does.
  for (const spec of config.smtpd_sender_login_maps) openFor("smtpd_sender_login_maps")(spec);
  const lists = {} as Record<ListParam, Restriction[]>;
  for (const key of LIST_PARAMS) lists[key] = compile(config[key], key, key);
  for (const name of declared) classRestriction(name, classKey);
  at = undefined;
  // After the lists, as Postfix's smtpd_check_rcpt and smtpd_check_mail.
  // Each recipient table is opened for its own parameter, so an error
  // names that parameter and its line.
  const mapKeys = [
    "virtual_alias_maps",
    "local_recipient_maps",
    "relay_recipient_maps",
    "virtual_mailbox_maps",
  ] as const;
  const mapsEnv = (): CompileEnv => ({
    ...envFor("local_recipient_maps"),
    table: (spec) =>
      openFor(mapKeys.find((k) => config[k].includes(spec)) ?? "local_recipient_maps")(spec),
  });
  const implicit: ImplicitChecks = {
    ...(config.smtpd_reject_unlisted_recipient
      ? {
        recipient: unlistedCheck(
          mapsEnv(),
          "recipient",
          "smtpd_reject_unlisted_recipient",
        ),
      }
      : {}),
    ...(config.smtpd_reject_unlisted_sender
      ? {
        sender: unlistedCheck(
          mapsEnv(),
          "sender",
          "smtpd_reject_unlisted_sender",
        ),
      }
      : {}),
  };
  return { ...lists, implicit };
}

/**
 * mydestination, relay_domains and the virtual domain lists, each with
 * its files read and tables opened; an error names the parameter's line.
 */
function compileDestinationsOf(
  loaded: LoadedConfig,
  openFor: (key: string) => (spec: string) => LookupTable,
): Destinations {
  const keys = [
    "mydestination",
    "relay_domains",
    "virtual_alias_domains",
    "virtual_mailbox_domains",
  ];
  // Which list a table or file belongs to, for the error's line.
  let key = "mydestination";
  const c = loaded.config;
  try {
    return compileDestinations(c, {
      table: (spec) => {
        key = keys.find((k) => (c[k as keyof typeof c] as readonly string[]).includes(spec)) ?? key;
        // virtual_alias_domains left to its default ($virtual_alias_maps):
        // the table is the maps' own, so an error names that line.
        if (
          key === "virtual_alias_domains" && loaded.lineOf(key) === undefined &&
          c.virtual_alias_maps.includes(spec)
        ) return openFor("virtual_alias_maps")(spec);
        return openFor(key)(spec);
      },
      readFile: (path) => {
        key = keys.find((k) => (c[k as keyof typeof c] as readonly string[]).includes(path)) ?? key;
        return readListFile(path);
      },
    });
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError(`${key}: ${(err as Error).message}`, {
      file: loaded.file,
      line: loaded.lineOf(key),
      key,
    });
  }
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
      out.push(
        `${loaded.placeOf(key)}${key}: "${
          words.slice(stop + 1).join(", ")
        }" can never be reached after "${words[stop]}"`,
      );
    }
  }
  // Postfix refuses to start when neither the relay nor the recipient list
  // has a guard; we warn here (config --check).
  const guarded = (items: readonly string[]): boolean => {
    const guard = items.findIndex((w) =>
      [
        "reject_unauth_destination",
        "defer_unauth_destination",
        "check_relay_domains",
        "reject",
        "defer",
      ].includes(w)
    );
    const openAt = items.findIndex((w) => w === "permit" || w === "permit_mx_backup");
    return guard >= 0 && (openAt < 0 || openAt > guard);
  };
  if (!guarded(c.smtpd_relay_restrictions) && !guarded(c.smtpd_recipient_restrictions)) {
    const listName = c.smtpd_relay_restrictions.length
      ? "smtpd_relay_restrictions"
      : "smtpd_recipient_restrictions";
    out.push(
      `${loaded.placeOf(listName)}${listName}: ` +
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
