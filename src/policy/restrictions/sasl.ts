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
 * checked. The maps are looked up with the whole address, then
 * "user@domain" without the extension (recipient_delimiter), then
 * "@domain" (a pattern table sees only the whole address).
 *
 * @module
 */

import { reply } from "../../protocol/reply.ts";
import type { Decision } from "../decision.ts";
import type { CompileEnv, EvalEnv, Factory, Restriction } from "../restriction.ts";
import { tracedLookup } from "../restriction.ts";
import { recipientKeys } from "../addr_find.ts";
import type { LookupTable } from "../tables/mod.ts";

/** The owners of a sender address, or undefined when no map knows it. */
async function ownersOf(
  e: EvalEnv,
  tables: readonly LookupTable[],
  sender: { readonly local: string; readonly domain: string },
  delimiter: string,
): Promise<string[] | undefined> {
  const address = sender.domain ? `${sender.local}@${sender.domain}` : sender.local;
  // A pattern table sees only the whole address; others also user@domain
  // (recipient_delimiter) and @domain, as Postfix's mail_addr_find.
  const keys = recipientKeys(sender.local, sender.domain, { delimiter, localDomain: false })
    .map((k) => k.toLowerCase());
  for (const table of tables) {
    for (const key of table.pattern ? [address] : keys) {
      const r = await tracedLookup(e, table, key);
      if (r.kind === "found") return r.value.split(/[,\s]+/).filter((n) => n !== "");
    }
  }
  return undefined;
}

type Mode = "both" | "authenticated" | "unauthenticated" | "known";

function mismatch(name: string, mode: Mode, env: CompileEnv): Restriction {
  const tables = env.config.smtpd_sender_login_maps.map((spec) => env.table(spec));
  if (!env.config.smtpd_sasl_auth_enable) {
    env.warn(`restriction \`${name}' ignored: no SASL support`);
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
      const owners = await ownersOf(e, tables, sender, env.config.recipient_delimiter);
      if (login === undefined) {
        return owners === undefined ? { kind: "dunno" } : {
          kind: "reject",
          reply: reply(553, "7.1", `<${address}>: Sender address rejected: not logged in`),
          by: name,
        };
      }
      if (owners === undefined && mode === "known") return { kind: "dunno" };
      if (owners?.some((o) => o.toLowerCase() === login.toLowerCase())) return { kind: "dunno" };
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
