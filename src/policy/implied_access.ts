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

import {
  addressKeys,
  checkAccess,
  compileActions,
  distrustRoutedPermit,
  hostKeys,
  mailAccessKeys,
} from "./access.ts";
import type { PolicyContext } from "./context.ts";
import { type CompileEnv, type Restriction, stageSubject, type Subject } from "./restriction.ts";

const KEYS: Record<
  Exclude<Subject, "reverse_client" | "sender" | "recipient">,
  (c: PolicyContext) => readonly string[] | undefined
> = {
  client: (c) => [
    // A client without a name is looked up as "unknown", as in Postfix.
    ...hostKeys(c.clientName),
    ...addressKeys(c.clientAddress),
  ],
  helo: (c) => c.helo === undefined ? undefined : hostKeys(c.helo),
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
    run: async (e) => {
      const subject = stageSubject(e.stage);
      // An address as check_sender/recipient_access looks it up: resolved,
      // recipient_delimiter except for a pattern table (whole facts only).
      const options = {
        config: env.config,
        pattern: table.pattern === true,
        destinations: env.destinations,
        env: e,
      };
      const address = subject === "sender"
        ? e.ctx.sender
        : subject === "recipient"
        ? e.ctx.recipient
        : undefined;
      const keys = subject === "sender" || subject === "recipient"
        ? address && await mailAccessKeys(address, options)
        : KEYS[subject](e.ctx);
      if (keys === undefined) return { kind: "dunno" };
      e.trace?.add({ kind: "note", text: `bare table: the implied check_${subject}_access` });
      const d = await checkAccess(e, table, keys, actions, subject, `check_${subject}_access`);
      return subject === "recipient" ? await distrustRoutedPermit(d, options) : d;
    },
  };
}
