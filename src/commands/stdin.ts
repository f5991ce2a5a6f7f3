/**
 * Stand-alone mode (`smtpd stdin`): one session on stdin/stdout into
 * maildrop/, with the client from the launcher's environment, or refused
 * when stdin is a socket without one.
 *
 * @module
 */

import { runSession } from "../session/mod.ts";
import { peerFromEnv, standAlonePeer, stdinKind, stdioTransport } from "../transport/stdio.ts";
import { writeAll } from "../io/reply_writer.ts";
import { closing, formatReply } from "../protocol/reply.ts";
import { queueDirError, type Runtime } from "../runtime.ts";
import { ConfigError, type LoadedConfig } from "../config/mod.ts";

const encoder = new TextEncoder();

/**
 * Stand-alone mode has no TLS (as Postfix's: STARTTLS is not offered over
 * stdin/stdout), so required TLS there would only mean 530 to every MAIL:
 * it stops the start instead.
 * @param loaded the configuration
 * @throws {ConfigError} naming smtpd_tls_security_level's file and line
 */
export function checkStandAloneTls(loaded: LoadedConfig): void {
  if (loaded.config.smtpd_tls_security_level !== "encrypt") return;
  throw new ConfigError(
    'smtpd_tls_security_level = "encrypt" cannot be met in stand-alone mode (smtpd stdin): ' +
      "there is no TLS over stdin/stdout; run the daemon, or override it " +
      "(-o smtpd_tls_security_level=none)",
    {
      file: loaded.file,
      line: loaded.lineOf("smtpd_tls_security_level"),
      key: "smtpd_tls_security_level",
    },
  );
}

/**
 * Runs one stand-alone session on stdin/stdout.
 * @returns the exit status
 */
export async function runStdin(runtime: Runtime): Promise<number> {
  const { deps, store, wake } = runtime;
  try {
    await store.prepare("maildrop");
  } catch (e) {
    deps.log.logger.error(queueDirError(deps.config.queue_directory, e));
    return 1;
  }
  const who = standAlonePeer(
    peerFromEnv((name) => {
      try {
        return Deno.env.get(name);
      } catch {
        return undefined;
      }
    }),
    stdinKind(),
  );
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
  try {
    await runSession(stdioTransport(who.peer), deps);
  } finally {
    stop();
  }
  await wake.settled();
  return 0;
}

/** The signals that end a stand-alone session (those Postfix's postdrop catches). */
const SIGNALS = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGTERM: 15 } as const;

/**
 * Ends the process on a signal as Postfix's postdrop does: the queue file
 * being written is removed first, since no daemon start may ever come to
 * set it aside (a launcher stopping its instances, a hangup, Ctrl-C).
 * @param runtime the process's runtime
 * @returns removes the listeners
 */
function onSignals({ store, logger, stderr }: Runtime): () => void {
  const listeners = (Object.keys(SIGNALS) as (keyof typeof SIGNALS)[]).map((sig) => {
    const listener = () => {
      store.removeUnfinished();
      logger.info(`terminating on signal ${sig}`);
      stderr.flush();
      Deno.exit(128 + SIGNALS[sig]);
    };
    Deno.addSignalListener(sig, listener);
    return () => Deno.removeSignalListener(sig, listener);
  });
  return () => listeners.forEach((remove) => remove());
}
