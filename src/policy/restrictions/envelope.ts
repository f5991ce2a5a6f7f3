/**
 * Envelope restrictions: `defer_unauth_destination` (reject_unauth_destination
 * with a temporary reply: relay_domains_reject_code less 100, `454 4.7.1
 * <address>: Relay access denied`) and `reject_multi_recipient_bounce` (a
 * null sender with more than one recipient: `550 5.5.3 <name>: Subject
 * rejected: Multi-recipient bounce`, code multi_recipient_bounce_reject_code).
 * At RCPT the bounce is refused once one recipient has been accepted;
 * elsewhere (DATA, where the count is final) when more than one was, as in
 * Postfix.
 *
 * @module
 */

import { reply, type ReplyCode } from "../../protocol/reply.ts";
import { isNullAddress } from "../../protocol/address.ts";
import type { Decision } from "../decision.ts";
import { type EvalEnv, type Factory, refusal, refuse, stageSubject } from "../restriction.ts";
import { isAuthDestination, lookupFailed } from "./relay.ts";

/** The envelope restrictions. */
export const ENVELOPE: Record<string, Factory> = {
  "defer_unauth_destination": {
    make: (name, _arg, env) => {
      const d = env.destinations;
      // Postfix answers relay_domains_reject_code - 100; a 4xx code stays as it is.
      const code = env.config.relay_domains_reject_code;
      const temp = (code >= 500 ? code - 100 : code) as ReplyCode;
      return {
        name,
        run: async (e: EvalEnv): Promise<Decision> => {
          const r = e.ctx.recipient;
          if (!r) return { kind: "dunno" };
          const m = await isAuthDestination(e, d, env.config);
          if (m === "tempfail") return lookupFailed(e, name);
          if (m === "yes") return { kind: "dunno" };
          const who = `${r.local}${r.domain ? "@" + r.domain : ""}`;
          return refuse(reply(temp, "7.1", `<${who}>: Relay access denied`), name);
        },
      };
    },
  },
  "reject_multi_recipient_bounce": {
    make: (name, _arg, env) => ({
      name,
      run: (e: EvalEnv): Promise<Decision> => {
        const s = e.ctx.sender;
        const count = e.ctx.recipientCount ?? 0;
        const atRcpt = e.ctx.command === undefined
          ? e.stage === "recipient"
          : e.ctx.command.toUpperCase() === "RCPT";
        if (!s || !isNullAddress(s) || count <= (atRcpt ? 0 : 1)) {
          return Promise.resolve({ kind: "dunno" });
        }
        e.trace?.add({
          kind: "note",
          text: `null sender with ${count + (atRcpt ? 1 : 0)} recipients`,
        });
        return Promise.resolve(refuse(
          refusal(
            env.config.multi_recipient_bounce_reject_code,
            "5.3",
            stageSubject(e.stage),
            e.ctx,
            "Multi-recipient bounce",
          ),
          name,
        ));
      },
    }),
  },
};
