/**
 * A bare `type:table` in a restriction list: Postfix's implied
 * check_<stage>_access (smtpd(8) of 1999 documents `maptype:mapname` in the
 * lists). The table is looked up with the keys of the list it runs in: the
 * client in smtpd_client_restrictions, the HELO name in
 * smtpd_helo_restrictions, and so on; in a restriction class, those of the
 * list that called the class, as in Postfix.
 *
 * @module
 */

import { addressKeys, checkAccess, compileActions, emailKeys, hostKeys } from "./access.ts";
import type { PolicyContext } from "./context.ts";
import { normalizeDomain } from "./hostname.ts";
import { type CompileEnv, type Restriction, stageSubject, type Subject } from "./restriction.ts";

const KEYS: Record<
  Exclude<Subject, "reverse_client">,
  (c: PolicyContext, delimiter: string, nullKey: string) => readonly string[] | undefined
> = {
  client: (c) => [
    // A client without a name is looked up as "unknown", as in Postfix.
    ...hostKeys(c.clientName),
    ...addressKeys(c.clientAddress),
  ],
  helo: (c) => c.helo === undefined ? undefined : hostKeys(c.helo),
  sender: (c, delimiter, nullKey) =>
    c.sender && emailKeys(c.sender.local, normalizeDomain(c.sender.domain), delimiter, nullKey),
  recipient: (c, delimiter, nullKey) =>
    c.recipient &&
    emailKeys(c.recipient.local, normalizeDomain(c.recipient.domain), delimiter, nullKey),
  etrn: (c) => c.etrnDomain === undefined ? undefined : hostKeys(c.etrnDomain),
  // DATA and end-of-data have no key of their own (Postfix: no default ACL).
  data: () => undefined,
  eod: () => undefined,
};

/**
 * Compiles a bare table as the access check of the list it runs in.
 * @param spec the `type:name` table
 * @param env the compile environment
 * @returns the restriction
 */
export function impliedAccess(spec: string, env: CompileEnv): Restriction {
  const table = env.table(spec);
  const actions = compileActions(table, env);
  return {
    name: spec,
    run: (e) => {
      const subject = stageSubject(e.stage);
      // recipient_delimiter, except for a pattern table (whole facts only, as Postfix).
      const keys = KEYS[subject](
        e.ctx,
        table.pattern ? "" : env.config.recipient_delimiter,
        env.config.smtpd_null_access_lookup_key,
      );
      if (keys === undefined) return Promise.resolve({ kind: "dunno" });
      e.trace?.add({ kind: "note", text: `bare table: the implied check_${subject}_access` });
      return checkAccess(e, table, keys, actions, subject, `check_${subject}_access`);
    },
  };
}
