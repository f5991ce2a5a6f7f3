/**
 * The SMTP AUTH restrictions, as Postfix's smtpd_check.c has them:
 * permit_sasl_authenticated (a client that logged in with AUTH, any
 * mechanism but ANONYMOUS), and the sender login checks over
 * smtpd_sender_login_maps (MAIL FROM address → the login names that own
 * it, separated by commas or spaces):
 *
 * - reject_authenticated_sender_login_mismatch: a logged-in client must
 *   own the sender (an address the maps do not know is refused too);
 * - reject_unauthenticated_sender_login_mismatch: a client that did not
 *   log in may not use an address the maps give an owner;
 * - reject_known_sender_login_mismatch: both, but an address the maps do
 *   not know is let through for a logged-in client;
 * - reject_sender_login_mismatch: the authenticated and the
 *   unauthenticated checks together (Postfix defines it as that class).
 *
 * Refusals are Postfix's: 553 5.7.1 "<addr>: Sender address rejected: not
 * owned by user NAME" and "... not logged in". The null sender is never
 * checked. An owner is the login when the two are equal case folded in
 * full (Postfix's strcasecmp_utf8: "STRASSE" owns for "straße"). The
 * address is looked up as Postfix resolves it: one without a
 * domain gets @$myorigin (as the queue will have it), a trailing dot is
 * dropped; the keys are the whole address, then "user@domain" without the
 * extension (recipient_delimiter), then "@domain", each tried in every map
 * before the next (a pattern table sees only the whole address). A map
 * that cannot answer makes it 451 4.3.0 "<addr>: Temporary lookup failure",
 * as Postfix's reject_dict_retry, never a pass.
 *
 * @module
 */

import { reply } from "../../protocol/reply.ts";
import type { Decision } from "../decision.ts";
import type { CompileEnv, EvalEnv, Factory, Restriction } from "../restriction.ts";
import { refuse, tracedLookup } from "../restriction.ts";
import { bothForms, recipientKeys } from "../addr_find.ts";
import type { Address } from "../../protocol/address.ts";
import type { Destinations } from "../destinations.ts";
import { resolveAddress } from "../resolve_address.ts";
import { foldCase } from "../fold_case.ts";
import type { LookupTable } from "../tables/mod.ts";

/** What the maps say about a sender address. */
type Owners =
  | { kind: "found"; names: string[] }
  | { kind: "unknown" }
  | { kind: "tempfail" };

/**
 * The owners of a sender address, looked up as Postfix's mail_addr_find
 * looks up the address trivial-rewrite resolved: an unqualified address
 * gets @$myorigin, a trailing dot leaves the domain, routing off one of our
 * domains is followed (<alice%ourdomain@ourdomain> is alice@ourdomain; see
 * ../resolve_address.ts); each key is tried in
 * every map before the next key (a pattern table sees only the whole
 * address); a map that cannot answer stops the search.
 */
async function ownersOf(
  e: EvalEnv,
  tables: readonly LookupTable[],
  sender: Address,
  options: {
    readonly config: { readonly recipient_delimiter: string; readonly myorigin: string };
    readonly destinations: Destinations;
  },
): Promise<Owners> {
  const { config, destinations } = options;
  const { local, domain } = await resolveAddress(sender, {
    myorigin: config.myorigin,
    destinations,
    env: e,
  });
  const keys = recipientKeys(local, domain, {
    delimiter: config.recipient_delimiter,
    localDomain: false,
  });
  const whole = new Set(bothForms(local, `@${domain}`));
  for (const key of keys) {
    for (const table of tables) {
      if (table.pattern && !whole.has(key)) continue;
      const r = await tracedLookup(e, table, table.pattern ? key : key.toLowerCase());
      if (r.kind === "tempfail") return { kind: "tempfail" };
      if (r.kind === "found") {
        return { kind: "found", names: r.value.split(/[,\s]+/).filter((n) => n !== "") };
      }
    }
  }
  return { kind: "unknown" };
}

type Mode = "both" | "authenticated" | "unauthenticated" | "known";

function mismatch(name: string, mode: Mode, env: CompileEnv): Restriction {
  const tables = env.config.smtpd_sender_login_maps.map((spec) => env.table(spec));
  if (!env.config.smtpd_sasl_auth_enable) {
    env.warn(`restriction \`${name}' ignored: no SASL support`);
  } else if (tables.length === 0) {
    // Postfix lets every sender through then, and says nothing.
    env.warn(`restriction \`${name}' does nothing: smtpd_sender_login_maps is empty`);
  }
  return {
    name,
    run: async (e): Promise<Decision> => {
      const sender = e.ctx.sender;
      if (!env.config.smtpd_sasl_auth_enable || tables.length === 0) return { kind: "dunno" };
      if (!sender || (sender.local === "" && sender.domain === "")) return { kind: "dunno" };
      const address = sender.domain ? `${sender.local}@${sender.domain}` : sender.local;
      const login = e.ctx.sasl?.username;
      if (login === undefined && mode === "authenticated") return { kind: "dunno" };
      if (login !== undefined && mode === "unauthenticated") return { kind: "dunno" };
      const found = await ownersOf(e, tables, sender, env);
      // Postfix's reject_dict_retry: 451 4.3.0, never a pass.
      if (found.kind === "tempfail") {
        return refuse(reply(451, "3.0", `<${address}>: Temporary lookup failure`), name);
      }
      const owners = found.kind === "found" ? found.names : undefined;
      if (login === undefined) {
        return owners === undefined ? { kind: "dunno" } : {
          kind: "reject",
          reply: reply(553, "7.1", `<${address}>: Sender address rejected: not logged in`),
          by: name,
        };
      }
      if (owners === undefined && mode === "known") return { kind: "dunno" };
      if (owners?.some((o) => foldCase(o) === foldCase(login))) return { kind: "dunno" };
      return {
        kind: "reject",
        reply: reply(
          553,
          "7.1",
          `<${address}>: Sender address rejected: not owned by user ${login}`,
        ),
        by: name,
      };
    },
  };
}

/** The AUTH restrictions. */
export const SASL: Record<string, Factory> = {
  "permit_sasl_authenticated": {
    make: (name) => ({
      name,
      run: (e) =>
        Promise.resolve(
          e.ctx.sasl && e.ctx.sasl.method.toUpperCase() !== "ANONYMOUS"
            ? { kind: "permit", by: name }
            : { kind: "dunno" },
        ),
    }),
  },
  "reject_sender_login_mismatch": {
    make: (name, _arg, env) => mismatch(name, "both", env),
  },
  "reject_known_sender_login_mismatch": {
    make: (name, _arg, env) => mismatch(name, "known", env),
  },
  "reject_authenticated_sender_login_mismatch": {
    make: (name, _arg, env) => mismatch(name, "authenticated", env),
  },
  "reject_unauthenticated_sender_login_mismatch": {
    make: (name, _arg, env) => mismatch(name, "unauthenticated", env),
  },
};
