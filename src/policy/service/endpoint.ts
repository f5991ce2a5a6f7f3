/**
 * The argument of `check_policy_service`: an endpoint (`inet:host:port`,
 * `unix:/path`, `unix:private/name` relative to the queue directory;
 * `local:` is a synonym of `unix:`), or Postfix 3.0's per-client form
 * `{ inet:host:port, timeout=10s, { default_action = 451 4.3.5 text } }`,
 * whose settings override the `smtpd_policy_service_*` parameters.
 *
 * @module
 */

import { isAbsolute, join } from "node:path";
import { type Config, MAX_TIME_SECONDS, parseTime, splitList } from "../../config/mod.ts";

/** Where a policy server listens. */
export type Endpoint =
  | { kind: "inet"; hostname: string; port: number }
  | { kind: "unix"; path: string };

/** One policy client's settings (times in seconds). */
export interface ServiceSettings {
  readonly endpoint: Endpoint;
  /** The endpoint as written ("inet:127.0.0.1:9998"), for logs. */
  readonly name: string;
  readonly timeout: number;
  readonly maxIdle: number;
  readonly maxTtl: number;
  readonly requestLimit: number;
  readonly tryLimit: number;
  readonly retryDelay: number;
  readonly defaultAction: string;
  readonly policyContext: string;
}

/**
 * Parses an endpoint.
 * @param text "inet:host:port", "unix:path" or "local:path"
 * @param queueDirectory the base of relative UNIX socket paths
 * @returns the endpoint
 * @throws {SyntaxError} when it is neither
 */
export function parseEndpoint(text: string, queueDirectory: string): Endpoint {
  const colon = text.indexOf(":");
  const type = text.slice(0, colon);
  const rest = text.slice(colon + 1);
  if (colon > 0 && (type === "unix" || type === "local") && rest) {
    return { kind: "unix", path: isAbsolute(rest) ? rest : join(queueDirectory, rest) };
  }
  if (colon > 0 && type === "inet") {
    const m = /^(?:\[([^\]]+)\]|([^:\s]+)):(\d{1,5})$/.exec(rest);
    const port = Number(m?.[3]);
    if (m && port >= 1 && port <= 65535) {
      return { kind: "inet", hostname: (m[1] ?? m[2]) as string, port };
    }
    throw new SyntaxError(`Cannot parse policy service "${text}": expected inet:host:port`);
  }
  throw new SyntaxError(
    `Cannot parse policy service "${text}": expected inet:host:port or unix:/path`,
  );
}

const TIMES = ["timeout", "max_idle", "max_ttl", "retry_delay"] as const;
const INTS = ["request_limit", "try_limit"] as const;
const STRINGS = ["default_action", "policy_context"] as const;

/**
 * Parses a check_policy_service argument with the configured defaults.
 * @param arg the endpoint or the `{ endpoint, name=value, ... }` form
 * @param config the configuration (smtpd_policy_service_* and queue_directory)
 * @returns the settings
 * @throws {SyntaxError} for a bad endpoint, an unknown setting or a bad value
 */
export function parseServiceSpec(arg: string, config: Config): ServiceSettings {
  const values = {
    "timeout": config.smtpd_policy_service_timeout,
    "max_idle": config.smtpd_policy_service_max_idle,
    "max_ttl": config.smtpd_policy_service_max_ttl,
    "retry_delay": config.smtpd_policy_service_retry_delay,
    "request_limit": config.smtpd_policy_service_request_limit,
    "try_limit": config.smtpd_policy_service_try_limit,
    "default_action": config.smtpd_policy_service_default_action,
    "policy_context": config.smtpd_policy_service_policy_context,
  };
  let name = arg.trim();
  const braced = /^\{(.*)\}$/s.exec(name);
  if (braced) {
    const [first, ...settings] = splitList(braced[1] as string);
    if (first === undefined || first.startsWith("{")) {
      throw new SyntaxError(`Cannot parse policy service "${arg}": no endpoint`);
    }
    name = first;
    for (const item of settings) {
      const setting = item.replace(/^\{\s*(.*?)\s*\}$/s, "$1");
      const eq = setting.indexOf("=");
      const key = setting.slice(0, eq).trim();
      const value = setting.slice(eq + 1).trim();
      if (eq <= 0) throw new SyntaxError(`Cannot parse policy setting "${item}": needs name=value`);
      if ((TIMES as readonly string[]).includes(key)) {
        const t = parseTime(value);
        if (t === undefined) throw new SyntaxError(`Cannot parse ${key} "${value}": not a time`);
        // As the smtpd_policy_service_* parameters: a longer timer fires at once.
        if (t > MAX_TIME_SECONDS) {
          throw new SyntaxError(
            `Cannot use ${key} "${value}": must be at most ${MAX_TIME_SECONDS} seconds (24 days)`,
          );
        }
        values[key as (typeof TIMES)[number]] = t;
      } else if ((INTS as readonly string[]).includes(key)) {
        if (!/^\d+$/.test(value)) throw new SyntaxError(`Cannot parse ${key} "${value}"`);
        values[key as (typeof INTS)[number]] = Number(value);
      } else if ((STRINGS as readonly string[]).includes(key)) {
        values[key as (typeof STRINGS)[number]] = value;
      } else {
        throw new SyntaxError(
          `Cannot parse policy setting "${key}": expected one of ${
            [...TIMES, ...INTS, ...STRINGS].join(", ")
          }`,
        );
      }
    }
  }
  if (values.timeout < 1) throw new SyntaxError(`Cannot use timeout 0: must be at least 1s`);
  if (values.try_limit < 1) throw new SyntaxError(`Cannot use try_limit 0: must be at least 1`);
  return {
    endpoint: parseEndpoint(name, config.queue_directory),
    name,
    timeout: values.timeout,
    maxIdle: values.max_idle,
    maxTtl: values.max_ttl,
    requestLimit: values.request_limit,
    tryLimit: values.try_limit,
    retryDelay: values.retry_delay,
    defaultAction: values.default_action,
    policyContext: values.policy_context,
  };
}
