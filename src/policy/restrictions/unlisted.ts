/**
 * Recipient validation, as Postfix's check_rcpt_maps: an address is
 * refused at RCPT (not bounced later) when its domain's class has a table
 * of valid users and the user is not in it:
 *
 * | class (domain in)       | tables that know the user                      | reply text                             |
 * | ----------------------- | ---------------------------------------------- | -------------------------------------- |
 * | mydestination           | virtual_alias_maps, local_recipient_maps        | User unknown in local recipient table  |
 * | virtual_alias_domains   | virtual_alias_maps                              | User unknown in virtual alias table    |
 * | virtual_mailbox_domains | virtual_alias_maps, virtual_mailbox_maps        | User unknown in virtual mailbox table  |
 * | relay_domains           | virtual_alias_maps, relay_recipient_maps        | User unknown in relay recipient table  |
 *
 * An empty local_recipient_maps or relay_recipient_maps turns the check
 * off for its class, as in Postfix. Keys (Postfix's mail_addr_find, see
 * ../addr_find.ts): `user+ext@domain`, `user@domain` (with
 * recipient_delimiter), then `user+ext` and `user` for a local domain,
 * then `@domain`. In a local domain, `postmaster`, `MAILER-DAEMON` and
 * `double-bounce` (any case, no extension) are never refused by
 * local_recipient_maps, as in Postfix's check_rcpt_maps (the queue manager
 * and the bounce daemon take them). A table that cannot answer defers with
 * 451 4.3.0. reject_unlisted_recipient and reject_unlisted_sender are the
 * restrictions; smtpd_reject_unlisted_recipient (default yes) and
 * smtpd_reject_unlisted_sender (default no) run the same check after the
 * lists (src/policy/evaluate.ts).
 *
 * @module
 */

import { reply } from "../../protocol/reply.ts";
import type { Address } from "../../protocol/address.ts";
import type { Decision } from "../decision.ts";
import { recipientKeys } from "../addr_find.ts";
import { resolveAddress } from "../resolve_address.ts";
import { type AddressClass, addressClass } from "../destinations.ts";
import {
  type CompileEnv,
  type EvalEnv,
  type Factory,
  refusal,
  refuse,
  type Restriction,
  tracedLookup,
} from "../restriction.ts";
import type { LookupTable } from "../tables/mod.ts";

/** Which tables know the users of a class, with the reply code and text. */
interface ClassRule {
  readonly tables: readonly LookupTable[];
  /** The local parts known without a lookup of the class's own table (the alias tables still count). */
  readonly always?: { readonly names: ReadonlySet<string>; readonly alias: readonly LookupTable[] };
  readonly code: number;
  readonly text: string;
  /** The class's own table is empty: no check (local and relay classes). */
  readonly off: boolean;
}

/** Local users Postfix's check_rcpt_maps lets through in a local domain. */
const SYSTEM_USERS: ReadonlySet<string> = new Set(["postmaster", "mailer-daemon", "double-bounce"]);

function rules(env: CompileEnv): Partial<Record<AddressClass, ClassRule>> {
  const c = env.config;
  const open = (specs: readonly string[]) => specs.map((s) => env.table(s));
  const alias = open(c.virtual_alias_maps);
  const local = open(c.local_recipient_maps);
  const relay = open(c.relay_recipient_maps);
  const mailbox = open(c.virtual_mailbox_maps);
  return {
    local: {
      tables: [...alias, ...local],
      always: { names: SYSTEM_USERS, alias },
      code: c.unknown_local_recipient_reject_code,
      text: "User unknown in local recipient table",
      off: local.length === 0,
    },
    virtualAlias: {
      tables: alias,
      code: c.unknown_virtual_alias_reject_code,
      text: "User unknown in virtual alias table",
      off: false,
    },
    virtualMailbox: {
      tables: [...alias, ...mailbox],
      code: c.unknown_virtual_mailbox_reject_code,
      text: "User unknown in virtual mailbox table",
      off: false,
    },
    relay: {
      tables: [...alias, ...relay],
      code: c.unknown_relay_recipient_reject_code,
      text: "User unknown in relay recipient table",
      off: relay.length === 0,
    },
  };
}

/**
 * The check of one address, compiled once.
 * @param env the compile environment
 * @param who which address of the context
 * @param name the restriction's name (for the decision)
 * @returns the restriction
 */
export function unlistedCheck(
  env: CompileEnv,
  who: "sender" | "recipient",
  name: string,
): Restriction {
  const byClass = rules(env);
  const d = env.destinations;
  return {
    name,
    run: async (e: EvalEnv): Promise<Decision> => {
      const a: Address | undefined = who === "sender" ? e.ctx.sender : e.ctx.recipient;
      // The null sender has no user to look up.
      if (!a || (who === "sender" && a.local === "" && a.domain === "")) return { kind: "dunno" };
      // The address as Postfix resolved it: <user> is user@$myorigin,
      // <user%elsewhere@ourdomain> is user@elsewhere.
      const { local, domain } = await resolveAddress(a, {
        myorigin: env.config.myorigin,
        destinations: d,
        env: e,
      });
      const cls = await addressClass(domain, d, e);
      const text = `<${a.local}${a.domain ? `@${a.domain}` : ""}>`;
      if (cls === "tempfail") {
        return refuse(reply(451, "3.0", `${text}: Temporary lookup failure`), name);
      }
      const rule = byClass[cls as AddressClass];
      if (!rule || rule.off) return { kind: "dunno" };
      const keys = recipientKeys(local, domain, {
        delimiter: env.config.recipient_delimiter,
        localDomain: cls === "local",
      });
      // Postfix looks the alias tables up first, so their failure still defers.
      const always = rule.always?.names.has(local.toLowerCase()) ? rule.always : undefined;
      for (const table of always ? always.alias : rule.tables) {
        for (const key of keys) {
          const r = await tracedLookup(e, table, key);
          if (r.kind === "found") return { kind: "dunno" };
          if (r.kind === "tempfail") {
            return refuse(reply(451, "3.0", `${text}: Temporary lookup failure`), name);
          }
        }
      }
      if (always) return { kind: "dunno" };
      // Postfix: 5.1.0 for a sender, 5.1.1 for a recipient.
      return refuse(
        refusal(rule.code, who === "sender" ? "1.0" : "1.1", who, e.ctx, rule.text),
        name,
      );
    },
  };
}

/** The recipient validation restrictions. */
export const UNLISTED: Record<string, Factory> = {
  "reject_unlisted_recipient": {
    // Postfix 2.0's name.
    aliases: ["check_recipient_maps"],
    make: (name, _arg, env) => unlistedCheck(env, "recipient", name),
  },
  "reject_unlisted_sender": {
    make: (name, _arg, env) => unlistedCheck(env, "sender", name),
  },
};
