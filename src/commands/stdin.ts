/**
 * Stand-alone mode (`smtpd stdin`): one session on stdin/stdout into
 * maildrop/, with the client from the launcher's environment, or refused
 * when stdin is a socket without one. A network client gets STARTTLS (or
 * implicit TLS) when the configuration offers it.
 *
 * @module
 */

import { runSession } from "../session/mod.ts";
import {
  peerFromEnv,
  type StandAlonePeer,
  standAlonePeer,
  stdinKind,
  type StdioTls,
  stdioTransport,
} from "../transport/stdio.ts";
import type { PeerInfo } from "../transport/types.ts";
import { writeAll } from "../io/reply_writer.ts";
import { closing, formatReply } from "../protocol/reply.ts";
import { queueDirError, type Runtime } from "../runtime.ts";
import { ConfigError, type LoadedConfig } from "../config/mod.ts";

const encoder = new TextEncoder();
/** The longest the end of a session's TLS may keep the process (node_socket.ts gives it 1 s). */
const CLOSE_WAIT_MS = 2000;

/**
 * Who the stand-alone session is with, from the launcher's environment and
 * what is on stdin.
 * @returns the peer, or why the session must be refused
 */
export function standAloneClient(): StandAlonePeer {
  return standAlonePeer(
    peerFromEnv((name) => {
      try {
        return Deno.env.get(name);
      } catch {
        return undefined;
      }
    }),
    stdinKind(),
  );
}

/**
 * TLS in stand-alone mode runs over stdin and stdout when they are the
 * client's connection (a network client: tcpserver, systemd Accept=yes,
 * inetd). A local submission (a pipe or terminal, as for `sendmail -bs`)
 * has none, as in Postfix: required TLS there would only mean 530 to every
 * MAIL, and implicit TLS a handshake nobody starts, so either stops the
 * start instead.
 * @param loaded the configuration
 * @param client who the session is with
 * @throws {ConfigError} naming the parameter's file and line
 */
export function checkStandAloneTls(loaded: LoadedConfig, client: StandAlonePeer): void {
  if (client.kind !== "ok" || client.peer.kind !== "local") return;
  const c = loaded.config;
  const required = c.smtpd_tls_wrappermode
    ? { key: "smtpd_tls_wrappermode", what: "= true", off: "false" }
    : c.smtpd_tls_security_level === "encrypt"
    ? { key: "smtpd_tls_security_level", what: '= "encrypt"', off: "none" }
    : undefined;
  if (!required) return;
  const { key, what, off } = required;
  throw new ConfigError(
    `${key} ${what} cannot be met in stand-alone mode (smtpd stdin) for a local submission: ` +
      "stdin is not a network connection (a pipe or terminal), and there is no TLS over it; " +
      `run it with the client's connection on stdin, or override it (-o ${key}=${off})`,
    { file: loaded.file, line: loaded.lineOf(key), key },
  );
}

/**
 * STARTTLS, or implicit TLS, for a stand-alone session with a network
 * client, when the configuration offers it (node:tls, loaded only then).
 * @param runtime the process's runtime
 * @param peer who the session is with
 * @returns how to encrypt the session, or undefined
 */
async function standAloneTls(runtime: Runtime, peer: PeerInfo): Promise<StdioTls | undefined> {
  if (peer.kind !== "network" || !runtime.tls) return undefined;
  const implicit = runtime.config.smtpd_tls_wrappermode;
  const context = implicit ? runtime.tls.wrapper : runtime.tls.starttls;
  if (!context) return undefined;
  const { nodeStartTls } = await import("../transport/node_socket.ts");
  return { handshake: nodeStartTls(() => context), implicit };
}

/** The longest wait at the end for log lines still on their way to syslog_server. */
const LOG_SETTLE_MS = 1000;

/**
 * Runs one stand-alone session on stdin/stdout.
 * @returns the exit status
 */
export async function runStdin(runtime: Runtime): Promise<number> {
  try {
    return await serveStdin(runtime);
  } finally {
    // The process ends right after: lines still on their way to syslog_server
    // (under inetd its only log) would be lost, the disconnect line first.
    await runtime.logSettled(LOG_SETTLE_MS);
  }
}

/**
 * {@linkcode runStdin} but for the log lines it waits for.
 * @param runtime the process's runtime
 * @returns the exit status
 */
async function serveStdin(runtime: Runtime): Promise<number> {
  const { deps, store, wake } = runtime;
  try {
    await store.prepare("maildrop");
  } catch (e) {
    deps.log.logger.error(queueDirError(runtime.loaded, e));
    return 1;
  }
  const who = standAloneClient();
  if (who.kind === "refused") {
    // Fail closed: a socket without a known peer could be anyone on the network.
    deps.log.logger.error(
      `stand-alone mode: refusing the session: ${who.reason}. A network connection on stdin ` +
        "needs its client address in the environment: run smtpd stdin under tcpserver " +
        "(TCPREMOTEIP), a systemd socket with Accept=yes (REMOTE_ADDR) or xinetd (REMOTE_HOST); " +
        "a pipe or terminal on stdin is a local submission",
    );
    const t = stdioTransport({ kind: "local" });
    const text = closing(deps.config.myhostname, "3.0", "Error: server configuration error");
    try {
      await Promise.race([
        writeAll(t, encoder.encode(formatReply(text))),
        new Promise((r) => setTimeout(r, 1000)),
      ]);
    } catch { /* gone */ }
    t.close();
    return 1;
  }
  const stop = onSignals(runtime);
  const transport = stdioTransport(who.peer, await standAloneTls(runtime, who.peer));
  try {
    await runSession(transport, deps);
  } finally {
    stop();
  }
  // After TLS, the close_notify goes out before the process ends.
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([
    transport.closed,
    new Promise((r) => (timer = setTimeout(r, CLOSE_WAIT_MS))),
  ]);
  clearTimeout(timer);
  await wake.settled();
  return 0;
}

/** The signals that end a stand-alone session (those Postfix's postdrop catches). */
const SIGNALS = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGTERM: 15 } as const;

/**
 * Ends the process on a signal as Postfix's postdrop does: the queue file
 * being written is removed as it ends, since no daemon start may ever come
 * to set it aside (a launcher stopping its instances, a hangup, Ctrl-C).
 * @param runtime the process's runtime
 * @returns removes the listeners
 */
function onSignals({ store, logger, stderr }: Runtime): () => void {
  const listeners = (Object.keys(SIGNALS) as (keyof typeof SIGNALS)[]).map((sig) => {
    const listener = () => {
      logger.info(`terminating on signal ${sig}`);
      // Bounded: a stderr that takes nothing must not keep the process alive.
      // The session goes on meanwhile (a client that sends on writes its
      // queue file, or begins one): what is unfinished is removed in the
      // same turn as the exit, so that none is left half-written. (Removed
      // before, a file whose creation was still to come was no longer
      // tracked, then written and left behind.)
      void stderr.settled(1000).then(() => {
        store.removeUnfinished();
        Deno.exit(128 + SIGNALS[sig]);
      });
    };
    Deno.addSignalListener(sig, listener);
    return () => Deno.removeSignalListener(sig, listener);
  });
  // A file size limit (ulimit -f, systemd's LimitFSIZE=) the message
  // crosses kills the process with SIGXFSZ by default, the queue file half
  // written and no reply sent. Caught, it makes the write fail (EFBIG)
  // instead: the client gets the queue write error and the file is removed,
  // as Postfix's postdrop ignores the signal for the same reason.
  const fileTooBig = () => {};
  Deno.addSignalListener("SIGXFSZ", fileTooBig);
  listeners.push(() => Deno.removeSignalListener("SIGXFSZ", fileTooBig));
  return () => listeners.forEach((remove) => remove());
}
