/**
 * Where the Dovecot authentication server listens, from `smtpd_sasl_path`:
 * `inet:host:port` (`inet:[::1]:port` for IPv6) for TCP, otherwise a UNIX
 * socket path, with an optional `unix:` prefix. As in Postfix, where smtpd
 * runs inside the queue directory, a relative path ("private/auth", the
 * usual Dovecot `unix_listener /var/spool/postfix/private/auth`) is taken
 * relative to `queue_directory`; an absolute path is used as it is.
 *
 * @module
 */

import { isAbsolute, join } from "node:path";

/** A connectable endpoint. */
export type SaslEndpoint =
  | { readonly transport: "unix"; readonly path: string }
  | { readonly transport: "tcp"; readonly hostname: string; readonly port: number };

/**
 * Resolves `smtpd_sasl_path`.
 * @param value the parameter's value
 * @param queueDirectory the queue directory, for relative socket paths
 * @returns the endpoint, or why the value is unusable
 */
export function parseSaslPath(
  value: string,
  queueDirectory: string,
): { ok: true; endpoint: SaslEndpoint } | { ok: false; error: string } {
  const text = value.trim();
  if (text.startsWith("inet:")) {
    const m = /^inet:(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]\s]+)):(\d{1,5})$/.exec(text);
    const port = Number(m?.[3]);
    if (!m || port < 1 || port > 65535) {
      return { ok: false, error: `expected inet:host:port, got "${value}"` };
    }
    return { ok: true, endpoint: { transport: "tcp", hostname: m[1] ?? m[2] ?? "", port } };
  }
  const path = text.startsWith("unix:") ? text.slice(5) : text;
  if (path === "") return { ok: false, error: "empty socket path" };
  if (path.includes("\0")) return { ok: false, error: "NUL in socket path" };
  return {
    ok: true,
    endpoint: { transport: "unix", path: isAbsolute(path) ? path : join(queueDirectory, path) },
  };
}

/**
 * The endpoint as a log line names it: the socket path, or host:port.
 * @param endpoint the endpoint
 * @returns a short description
 */
export function describeEndpoint(endpoint: SaslEndpoint): string {
  if (endpoint.transport === "unix") return endpoint.path;
  const host = endpoint.hostname.includes(":") ? `[${endpoint.hostname}]` : endpoint.hostname;
  return `inet:${host}:${endpoint.port}`;
}
