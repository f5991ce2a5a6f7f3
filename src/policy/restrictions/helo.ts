/**
 * HELO restrictions: check_helo_access, reject_invalid_helo_hostname,
 * reject_non_fqdn_helo_hostname, reject_unknown_helo_hostname and the old
 * permit_naked_ip_address. As in Postfix, a name in brackets is judged as
 * an address literal by all three reject_* checks (`[::1]` without the
 * `IPv6:` tag, `[0.1.2.3]` or `[1.2.3]` get 501 "invalid ip address"), and
 * a bare address passes reject_invalid_helo_hostname ("back compat").
 *
 * @module
 */

import { accessFactory, hostKeys } from "../access.ts";
import type { Factory } from "../restriction.ts";
import {
  isNumericForm,
  isValidAddressLiteral,
  isValidHostAddress,
  isValidHostname,
  isValidMailhostAddress,
  withoutTrailingDot,
} from "../../protocol/hostname.ts";
import { type EvalEnv, refusal, refuse, tracedDns } from "../restriction.ts";
import type { Decision } from "../decision.ts";
import type { Config } from "../../config/mod.ts";

/**
 * Whether a domain has an A, AAAA or MX record (a null MX counts: a host
 * name may have one).
 * @param e the evaluation
 * @param domain the name
 * @returns "ok", "notFound", "tempfail", or "filtered" (smtpd_dns_reply_filter dropped every record)
 */
export async function domainExists(
  e: EvalEnv,
  domain: string,
): Promise<"ok" | "notFound" | "tempfail" | "filtered"> {
  let temp = false;
  let filtered = false;
  for (const type of ["MX", "A", "AAAA"] as const) {
    const a = await tracedDns(e, domain.replace(/\.$/, ""), type, true);
    if (a.kind === "ok") return "ok";
    if (a.kind === "tempfail") temp = true;
    if (a.kind === "filtered") filtered = true;
  }
  return temp ? "tempfail" : filtered ? "filtered" : "notFound";
}

/** 501 "invalid ip address" for a malformed address literal (or naked address). */
function invalidAddress(config: Config, e: EvalEnv, by: string): Decision {
  return refuse(
    refusal(config.invalid_hostname_reject_code, "5.2", "helo", e.ctx, "invalid ip address"),
    by,
  );
}

/** The literal check every reject_*_helo_hostname does for "[...]". */
function literal(config: Config, e: EvalEnv, h: string, by: string): Decision {
  return isValidAddressLiteral(h) ? { kind: "dunno" } : invalidAddress(config, e, by);
}

/** The HELO restrictions. */
export const HELO: Record<string, Factory> = {
  "check_helo_access": accessFactory(
    "helo",
    (c) => c.helo === undefined ? undefined : hostKeys(c.helo),
  ),
  "reject_invalid_helo_hostname": {
    aliases: ["reject_invalid_hostname"],
    make: (name, _arg, env) => ({
      name,
      run: (e) => {
        const h = e.ctx.helo;
        if (h === undefined) return Promise.resolve({ kind: "dunno" });
        if (h.startsWith("[")) return Promise.resolve(literal(env.config, e, h, name));
        const n = withoutTrailingDot(h);
        if (isValidHostname(n) || isValidHostAddress(n)) return Promise.resolve({ kind: "dunno" });
        return Promise.resolve(
          refuse(
            refusal(env.config.invalid_hostname_reject_code, "5.2", "helo", e.ctx, "Invalid name"),
            name,
          ),
        );
      },
    }),
  },
  "reject_non_fqdn_helo_hostname": {
    aliases: ["reject_non_fqdn_hostname"],
    make: (name, _arg, env) => ({
      name,
      run: (e) => {
        const h = e.ctx.helo;
        if (h === undefined) return Promise.resolve({ kind: "dunno" });
        if (h.startsWith("[")) return Promise.resolve(literal(env.config, e, h, name));
        const n = withoutTrailingDot(h);
        if (isValidHostname(n) && n.includes(".")) return Promise.resolve({ kind: "dunno" });
        return Promise.resolve(
          refuse(
            refusal(
              env.config.non_fqdn_reject_code,
              "5.2",
              "helo",
              e.ctx,
              "need fully-qualified hostname",
            ),
            name,
          ),
        );
      },
    }),
  },
  "reject_unknown_helo_hostname": {
    aliases: ["reject_unknown_hostname"],
    make: (name, _arg, env) => ({
      name,
      run: async (e): Promise<Decision> => {
        const h = e.ctx.helo;
        if (h === undefined) return { kind: "dunno" };
        if (h.startsWith("[")) return literal(env.config, e, h, name);
        // Postfix looks any name up; one that cannot be a DNS name is not found.
        const n = withoutTrailingDot(h);
        const found = isValidHostname(n) || isValidHostAddress(n)
          ? await domainExists(e, n)
          : "notFound";
        if (found === "ok") return { kind: "dunno" };
        if (found === "filtered") {
          e.warn(`${n}: address or MX lookup error: DNS reply filter drops all results`);
          return { kind: "dunno" };
        }
        const r = refusal(
          found === "tempfail" ? 450 : env.config.unknown_hostname_reject_code,
          "7.1",
          "helo",
          e.ctx,
          "Host not found",
        );
        if (found === "tempfail") {
          e.deferIfPermit ??= r;
          return { kind: "dunno" };
        }
        return refuse(r, name);
      },
    }),
  },
  "permit_naked_ip_address": {
    replacedBy: "permit_mynetworks (or an access table)",
    make: (name, _arg, env) => ({
      name,
      run: (e) => {
        const h = e.ctx.helo;
        if (h === undefined || !isNumericForm(h)) return Promise.resolve({ kind: "dunno" });
        // Digits and dots that are no valid address get 501, as in Postfix.
        return Promise.resolve(
          isValidMailhostAddress(h)
            ? { kind: "permit", by: name }
            : invalidAddress(env.config, e, name),
        );
      },
    }),
  },
};
