/**
 * Sender and recipient restrictions: check_sender_access,
 * check_recipient_access, reject_non_fqdn_sender/recipient,
 * reject_unknown_sender/recipient_domain (a null MX, RFC 7505, is refused
 * with 550 5.7.27 for a sender and 556 5.1.10 for a recipient, as in
 * Postfix 3.0+). reject_unlisted_recipient is in unlisted.ts.
 *
 * @module
 */

import { type Address, isNullAddress } from "../../protocol/address.ts";
import { resolveAddress } from "../resolve_address.ts";
import { accessFactory, distrustRoutedPermit, mailAccessKeys } from "../access.ts";
import type { Factory } from "../restriction.ts";
import type { Decision } from "../decision.ts";
import { asciiDomain, isAddressLiteral, isFqdn } from "../hostname.ts";
import { localDomain } from "../destinations.ts";
import { type EvalEnv, refusal, refuse, type Subject, tracedDns } from "../restriction.ts";
import type { PolicyContext } from "../context.ts";
import { member } from "./relay.ts";

function addressOf(subject: "sender" | "recipient", ctx: PolicyContext): Address | undefined {
  return subject === "sender" ? ctx.sender : ctx.recipient;
}

function accessCheck(subject: "sender" | "recipient"): Factory {
  const check = accessFactory(subject, (c, options) => {
    const a = addressOf(subject, c);
    return a && mailAccessKeys(a, options);
  });
  if (subject === "sender") return check;
  return {
    ...check,
    make: (name, arg, env) => {
      const r = check.make(name, arg, env);
      return {
        ...r,
        run: async (e) =>
          await distrustRoutedPermit(await r.run(e), {
            config: env.config,
            destinations: env.destinations,
            env: e,
          }),
      };
    },
  };
}

function nonFqdn(subject: "sender" | "recipient"): Factory {
  return {
    make: (name, _arg, env) => ({
      name,
      run: (e) => {
        const a = addressOf(subject, e.ctx);
        if (!a || (a.local === "" && a.domain === "")) return Promise.resolve({ kind: "dunno" });
        // A UTF-8 domain (SMTPUTF8) is judged by its ASCII form, as Postfix's
        // valid_utf8_hostname does for a transaction with SMTPUTF8.
        if (a.domain && isFqdn(asciiDomain(a.domain))) return Promise.resolve({ kind: "dunno" });
        return Promise.resolve(
          refuse(
            refusal(
              env.config.non_fqdn_reject_code,
              "5.2",
              subject,
              e.ctx,
              "need fully-qualified address",
            ),
            name,
          ),
        );
      },
    }),
  };
}

/**
 * Whether an MX answer is a null MX (RFC 7505): a record whose host is ".".
 * @param records MX records as "preference host"
 * @returns true for a null MX
 */
export function isNullMx(records: readonly string[]): boolean {
  return records.some((r) => (r.split(" ")[1] ?? "").replace(/\.$/, "") === "");
}

/**
 * Postfix's reject_unknown_mailhost lookup: MX first (a null MX ends it), then A and AAAA.
 * @param e the evaluation
 * @param domain the domain
 * @returns the outcome
 */
async function mailhost(
  e: EvalEnv,
  domain: string,
): Promise<"ok" | "nullMx" | "notFound" | "tempfail" | "filtered"> {
  let temp = false;
  let filtered = false;
  for (const type of ["MX", "A", "AAAA"] as const) {
    const a = await tracedDns(e, domain, type, true);
    if (a.kind === "ok") return type === "MX" && isNullMx(a.records) ? "nullMx" : "ok";
    if (a.kind === "tempfail") temp = true;
    if (a.kind === "filtered") filtered = true;
  }
  return temp ? "tempfail" : filtered ? "filtered" : "notFound";
}

function unknownDomain(subject: "sender" | "recipient"): Factory {
  const detail = subject === "sender" ? "1.8" : "1.2";
  return {
    make: (name, _arg, env) => {
      // Our own domains, worked out once here (when the policy is compiled).
      const ours = env.destinations;
      return {
        name,
        run: async (e): Promise<Decision> => {
          const a = addressOf(subject, e.ctx);
          if (!a || isNullAddress(a)) return { kind: "dunno" };
          // The domain as Postfix resolved it: <user> is user@$myorigin,
          // <user%elsewhere@ourdomain> is user@elsewhere.
          const { domain: resolved } = await resolveAddress(a, {
            myorigin: env.config.myorigin,
            destinations: ours,
            env: e,
          });
          // Our own domains are not looked up (Postfix skips local destinations).
          if (
            resolved === "" || isAddressLiteral(resolved) ||
            await member(e, localDomain(resolved, ours, e))
          ) {
            return { kind: "dunno" };
          }
          // U-labels are looked up by their A-labels (Postfix: midna_domain_to_ascii).
          const domain = asciiDomain(resolved);
          const found = domain === "" ? "notFound" : await mailhost(e, domain);
          if (found === "ok") return { kind: "dunno" };
          if (found === "filtered") {
            e.warn(`${domain}: MX or address lookup error: DNS reply filter drops all results`);
            return { kind: "dunno" };
          }
          if (found === "nullMx") {
            // RFC 7505 §4.2/4.3, as Postfix 3.0+ answers.
            return refuse(
              refusal(
                subject === "sender" ? 550 : 556,
                subject === "sender" ? "7.27" : "1.10",
                subject,
                e.ctx,
                `Domain ${domain} does not accept mail (nullMX)`,
              ),
              name,
            );
          }
          const code = found === "tempfail" ? 450 : env.config.unknown_address_reject_code;
          const r = refusal(
            code,
            detail as `${number}.${number}`,
            subject as Subject,
            e.ctx,
            "Domain not found",
          );
          if (found === "tempfail") {
            e.deferIfPermit ??= r;
            return { kind: "dunno" };
          }
          return refuse(r, name);
        },
      };
    },
  };
}

/** The address restrictions. */
export const ADDRESS: Record<string, Factory> = {
  "check_sender_access": accessCheck("sender"),
  "check_recipient_access": accessCheck("recipient"),
  "reject_non_fqdn_sender": nonFqdn("sender"),
  "reject_non_fqdn_recipient": nonFqdn("recipient"),
  // reject_unknown_address: the name smtpd(8)'s unknown_address_reject_code speaks of.
  "reject_unknown_sender_domain": {
    ...unknownDomain("sender"),
    aliases: ["reject_unknown_address"],
  },
  "reject_unknown_recipient_domain": unknownDomain("recipient"),
};
