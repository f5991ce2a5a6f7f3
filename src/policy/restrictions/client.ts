/**
 * Client restrictions: permit_mynetworks, check_client_access,
 * reject_unknown_client_hostname, reject_unknown_reverse_client_hostname.
 * A temporary failure of the name lookups answers 450 at once, as in
 * Postfix: these two never wait for a later restriction (defer_if_permit).
 *
 * @module
 */

import { accessFactory, addressKeys, hostKeys } from "../access.ts";
import { inNetwork, parseIp } from "../cidr.ts";
import type { Factory } from "../restriction.ts";
import { reply, type ReplyCode } from "../../protocol/reply.ts";
import { refuse } from "../restriction.ts";

/** The client restrictions. */
export const CLIENT: Record<string, Factory> = {
  "permit_mynetworks": {
    make: (name, _arg, env) => {
      const nets = env.mynetworks;
      return {
        name,
        run: (e) => {
          if (e.ctx.local) return Promise.resolve({ kind: "permit", by: name });
          const ip = parseIp(e.ctx.clientAddress);
          const hit = ip !== undefined && nets.some((n) => inNetwork(n, ip));
          return Promise.resolve(hit ? { kind: "permit", by: name } : { kind: "dunno" });
        },
      };
    },
  },
  "check_client_access": accessFactory("client", (c) => [
    // A client without a name is looked up as "unknown", as in Postfix.
    ...hostKeys(c.clientName),
    ...addressKeys(c.clientAddress),
  ]),
  "reject_unknown_client_hostname": {
    aliases: ["reject_unknown_client"],
    make: (name, _arg, env) => ({
      name,
      run: (e) => {
        const c = e.ctx;
        if (c.local || c.nameStatus === "ok") return Promise.resolve({ kind: "dunno" });
        // Postfix's text has no "<name>:" prefix here; log parsers expect it so.
        const r = reply(
          (c.nameStatus === "tempfail" ? 450 : env.config.unknown_client_reject_code) as ReplyCode,
          "7.25", // RFC 7372, as Postfix says
          `Client host rejected: cannot find your hostname, [${c.clientAddress}]`,
        );
        // A temporary failure answers 450 at once, as in Postfix (no defer_if_permit).
        return Promise.resolve(refuse(r, name));
      },
    }),
  },
  "reject_unknown_reverse_client_hostname": {
    make: (name, _arg, env) => ({
      name,
      run: (e) => {
        const c = e.ctx;
        if (c.local || c.reverseStatus === "ok") return Promise.resolve({ kind: "dunno" });
        // Postfix's text has no "<name>:" prefix here; log parsers expect it so.
        const r = reply(
          (c.reverseStatus === "tempfail"
            ? 450
            : env.config.unknown_client_reject_code) as ReplyCode,
          "7.1",
          `Client host rejected: cannot find your reverse hostname, [${c.clientAddress}]`,
        );
        return Promise.resolve(refuse(r, name));
      },
    }),
  },
};
