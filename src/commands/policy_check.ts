/**
 * The policy server check of `smtpd config --check` (the units run it
 * before each start and reload): one connection to each
 * `check_policy_service` endpoint, closed at once, tells whether it is
 * there. Postfix checks nothing until a request; an operator who names a
 * socket that does not exist (a typo, the policy daemon not started)
 * learns it here rather than from every RCPT getting
 * `smtpd_policy_service_default_action` (451 4.3.5 by default). Not at the
 * daemon's start: a policy daemon started after it is no mistake.
 *
 * @module
 */

import type { LoadedConfig } from "../config/mod.ts";
import {
  type Endpoint,
  LIST_PARAMS,
  mayConnect,
  policyServices,
  socketConnector,
} from "../policy/mod.ts";

/** How long the check waits for one server to accept. */
const CHECK_TIMEOUT_MS = 3_000;

/**
 * Runs the check on the servers the compiled lists ask.
 * @param loaded the configuration, as compiled (its lists made the clients)
 * @returns a warning for each server that cannot be reached
 */
export async function checkPolicyServices(loaded: LoadedConfig): Promise<string[]> {
  const services = policyServices(loaded.config).filter((s) => mayConnect(s.endpoint));
  const answers = await Promise.all(services.map(async (s) => {
    const why = await unreachable(s.endpoint);
    if (why === undefined) return undefined;
    const e = s.endpoint;
    const path = e.kind === "unix" && !s.name.endsWith(`:${e.path}`) ? `, at ${e.path}` : "";
    return `${placeOf(loaded, s.name)}check_policy_service ${s.name} cannot be reached ` +
      `(${why}${path}); until it can, its requests get the default action "${s.defaultAction}"`;
  }));
  return answers.filter((w) => w !== undefined);
}

/**
 * One connection to a server, closed at once.
 * @param endpoint the server
 * @returns why it could not be made (within 3 s), or undefined when it was
 */
export async function unreachable(endpoint: Endpoint): Promise<string | undefined> {
  const abort = new AbortController();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<string>((resolve) => {
    timer = setTimeout(() => {
      abort.abort();
      resolve(`no answer within ${CHECK_TIMEOUT_MS / 1000} s`);
    }, CHECK_TIMEOUT_MS);
  });
  const attempt = socketConnector(endpoint, abort.signal).then(
    (conn) => {
      conn.close();
      return undefined;
    },
    (e: unknown) => e instanceof Error ? e.message : String(e),
  );
  try {
    return await Promise.race([attempt, late]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Where an endpoint is named: the restriction list (or class) that holds
 * it, at its line; a table's endpoint, the configuration file.
 */
function placeOf(loaded: LoadedConfig, name: string): string {
  const lists: [string, readonly string[]][] = [
    ...LIST_PARAMS.map((k) => [k, loaded.config[k]] as [string, readonly string[]]),
    ...loaded.classes,
  ];
  for (const [key, items] of lists) {
    const item = items.find((i) => i.includes(name));
    if (item !== undefined) return `${loaded.placeOf(key, item)}${key}: `;
  }
  return `${loaded.file ?? "<config>"}: `;
}
