/**
 * check_policy_service (Postfix's SMTPD access policy delegation): the
 * session's facts go to a policy server as `name=value` attributes, and its
 * `action=` reply is applied as an access(5) action. A server that cannot
 * be asked (down, slow past the timeout, a malformed or oversized reply)
 * yields smtpd_policy_service_default_action; an action we cannot apply
 * yields Postfix's "451 4.3.5 Server configuration error".
 *
 * The actions on the message (PREPEND, HOLD, DISCARD, FILTER, REDIRECT,
 * BCC, INFO, DEFER_IF_REJECT) apply as from a table; restriction names are
 * not supported and give the 451.
 *
 * @module
 */

import { type Config, ConfigError, retireWith } from "../../config/mod.ts";
import { reply } from "../../protocol/reply.ts";
import { addressText } from "../../protocol/address.ts";
import { VERSION } from "../../version.ts";
import { compileAction, runtimeAction } from "../access.ts";
import type { PolicyContext, PolicyStage } from "../context.ts";
import type { CompileEnv, EvalEnv, Factory } from "../restriction.ts";
import { refuse, stageSubject } from "../restriction.ts";
import { PolicyClient } from "../service/client.ts";
import { mayConnect, socketConnector } from "../service/connection.ts";
import { parseServiceSpec, type ServiceSettings } from "../service/endpoint.ts";
import type { Attributes } from "../service/protocol.ts";

/**
 * One client per endpoint spec and configuration (one per listener thread),
 * retired with its configuration by a reload (retireAll).
 */
const CLIENTS = new WeakMap<Config, Map<string, PolicyClient>>();

/**
 * The policy servers a compiled configuration asks, one per endpoint spec.
 * @param config the configuration its lists were compiled for
 * @returns their settings
 */
export function policyServices(config: Config): ServiceSettings[] {
  return [...(CLIENTS.get(config)?.values() ?? [])].map((c) => c.settings);
}

const STATE: Record<PolicyStage, string> = {
  client: "CONNECT",
  helo: "HELO",
  sender: "MAIL",
  recipient: "RCPT",
  vrfy: "VRFY",
  etrn: "ETRN",
  data: "DATA",
  eod: "END-OF-MESSAGE",
};

/**
 * The request attributes Postfix's smtpd sends (smtpd_check.c), from the
 * session's facts. queue_id is empty (our queue ID is made at DATA);
 * sasl_* come from AUTH; ccert_* and tls_sni are empty (no client certificates).
 * @param ctx the session facts
 * @param stage the stage, when the context does not name the command
 * @param policyContext the policy_context setting
 * @returns the attributes in Postfix's order
 */
export function requestAttributes(
  ctx: PolicyContext,
  stage: PolicyStage,
  policyContext: string,
): Attributes {
  // As Postfix's smtpd: the delayed client, HELO and sender lists name the
  // command at hand (RCPT); the data list says DATA for BDAT too, and the
  // end-of-data list END-OF-MESSAGE, after DATA's dot and at BDAT LAST alike.
  const atData = stage === "data" || stage === "eod";
  const state = atData
    ? STATE[stage]
    : ctx.command && ctx.command !== "UNKNOWN"
    ? ctx.command
    : STATE[stage];
  return [
    ["request", "smtpd_access_policy"],
    ["protocol_state", state],
    ["protocol_name", ctx.protocolName ?? "SMTP"],
    ["client_address", ctx.clientAddress],
    ["client_name", ctx.clientName],
    ["client_port", ctx.clientPort ?? ""],
    ["reverse_client_name", ctx.reverseName],
    ["server_address", ctx.server?.hostname.replace(/^::ffff:(?=\d+\.)/, "") ?? ""],
    ["server_port", ctx.server ? String(ctx.server.port) : ""],
    ["helo_name", ctx.helo ?? ""],
    ["sender", ctx.sender ? addressText(ctx.sender) : ""],
    ["recipient", ctx.recipient ? addressText(ctx.recipient) : ""],
    // As Postfix: the count at DATA, BDAT and the end of the message, 0 before.
    ["recipient_count", atData ? String(ctx.recipientCount ?? 0) : "0"],
    ["queue_id", ctx.queueId ?? ""],
    ["instance", ctx.instance ?? ""],
    ["size", String(ctx.size ?? 0)],
    ["etrn_domain", ctx.etrnDomain ?? ""],
    ["stress", ctx.stress ? "yes" : ""],
    ["sasl_method", ctx.sasl?.method ?? ""],
    ["sasl_username", ctx.sasl?.username ?? ""],
    ["sasl_sender", ctx.saslSender ?? ""],
    ["ccert_subject", ""],
    ["ccert_issuer", ""],
    ["ccert_fingerprint", ""],
    ["ccert_pubkey_fingerprint", ""],
    ["encryption_protocol", ctx.tls?.protocol ?? ""],
    ["encryption_cipher", ctx.tls?.cipher ?? ""],
    ["encryption_keysize", String(ctx.tls?.bits ?? 0)],
    ["tls_sni", ""],
    ["policy_context", policyContext],
    ["compatibility_level", ""],
    ["mail_version", VERSION],
  ];
}

function serviceSettings(arg: string, env: CompileEnv): ServiceSettings {
  let s: ServiceSettings;
  try {
    s = parseServiceSpec(arg, env.config);
  } catch (err) {
    return env.fail((err as Error).message);
  }
  if (!mayConnect(s.endpoint)) {
    env.fail(
      `policy service "${s.name}" is outside the hosts and sockets this program may connect to` +
        ` (smtpd permissions -c FILE prints the flags this configuration needs)`,
    );
  }
  return s;
}

const SERVER_ERROR = reply(451, "3.5", "Server configuration error");

/**
 * Compiles a service's default action; an error says where the action was
 * written: in the service's own settings, or in
 * smtpd_policy_service_default_action (which the list's line does not show).
 */
function defaultActionOf(settings: ServiceSettings, arg: string, env: CompileEnv) {
  const where = `${settings.name} default_action`;
  try {
    return compileAction(settings.defaultAction, env, where);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    let why = err.detail;
    for (const prefix of [`${err.key}: `, `${where}: `]) {
      if (why.startsWith(prefix)) why = why.slice(prefix.length);
    }
    const own = /(^|[\s{,])default_action\s*=/.test(arg);
    const from = own
      ? "its default_action"
      : "its default action (smtpd_policy_service_default_action)";
    return env.fail(
      `check_policy_service ${settings.name}: ${from} "${settings.defaultAction}": ${why}`,
    );
  }
}

/** check_policy_service. */
export const POLICY_SERVICE: Record<string, Factory> = {
  "check_policy_service": {
    arg: "service",
    make: (name, arg, env) => {
      const settings = serviceSettings(arg as string, env);
      const defaultAction = defaultActionOf(settings, arg as string, env);
      let clients = CLIENTS.get(env.config);
      if (!clients) {
        const config = env.config;
        CLIENTS.set(config, clients = new Map());
        // Forgotten once retired. The configuration that replaced this one
        // may still reach it (its closures keep the old values of
        // restart-only parameters), and through this entry it would keep
        // these clients, their compile environment and every table compiled
        // with them: one whole policy more per reload.
        retireWith(config, { retire: () => CLIENTS.delete(config) });
      }
      let client = clients.get(arg as string);
      if (!client) {
        client = new PolicyClient(settings, {
          connect: socketConnector,
          now: Date.now,
          sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
          warn: env.warn,
        });
        clients.set(arg as string, client);
        retireWith(env.config, client);
      }
      const c = client;
      return {
        name,
        run: async (e: EvalEnv) => {
          const attrs = requestAttributes(e.ctx, e.stage, settings.policyContext);
          const state = attrs[1]?.[1];
          e.trace?.add({
            kind: "note",
            text: `policy request to ${settings.name}: protocol_state=${state}, ` +
              attrs.filter(([k, v]) =>
                v && ["sender", "recipient", "client_address", "helo_name"].includes(k)
              )
                .map(([k, v]) => `${k}=${v}`).join(", "),
          });
          const answer = await c.request(attrs);
          const subject = stageSubject(e.stage);
          const by = `${name}`;
          if (answer.kind === "failed") {
            e.trace?.add({
              kind: "note",
              text:
                `policy server failed (${answer.reason}): default_action ${settings.defaultAction}`,
            });
            return await defaultAction(e, subject, by);
          }
          e.trace?.add({ kind: "note", text: `policy reply: action=${answer.action}` });
          const action = runtimeAction(answer.action, env.config);
          if (typeof action === "string") {
            e.warn(`policy server ${settings.name}: ${action}`);
            return refuse(SERVER_ERROR, by);
          }
          return await action(e, subject, by);
        },
      };
    },
  },
};
