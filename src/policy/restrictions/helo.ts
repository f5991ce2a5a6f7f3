/**
 * HELO restrictions: check_helo_access, reject_invalid_helo_hostname,
 * reject_non_fqdn_helo_hostname, reject_unknown_helo_hostname.
 *
 * @module
 */

import { accessFactory, hostKeys } from "../access.ts";
import type { Factory } from "../restriction.ts";
import { isAddressLiteral, isFqdn, isValidHostname } from "../hostname.ts";
import { type EvalEnv, refusal, refuse, tracedDns } from "../restriction.ts";
import type { Decision } from "../decision.ts";

/**
 * Whether a domain has an A, AAAA or MX record.
 * @param e the evaluation
 * @param domain the name
 * @returns "ok", "notFound" or "tempfail"
 */
export async function domainExists(
  e: EvalEnv,
  domain: string,
): Promise<"ok" | "notFound" | "tempfail"> {
  let temp = false;
  for (const type of ["MX", "A", "AAAA"] as const) {
    const a = await tracedDns(e, domain.replace(/\.$/, ""), type);
    if (a.kind === "ok") return "ok";
    if (a.kind === "tempfail") temp = true;
  }
  return temp ? "tempfail" : "notFound";
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
        if (h === undefined || isAddressLiteral(h) || isValidHostname(h)) {
          return Promise.resolve({ kind: "dunno" });
        }
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
        if (h === undefined || isFqdn(h)) return Promise.resolve({ kind: "dunno" });
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
        if (h === undefined || isAddressLiteral(h) || !isValidHostname(h)) return { kind: "dunno" };
        const found = await domainExists(e, h);
        if (found === "ok") return { kind: "dunno" };
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
};
