/**
 * Stand-alone mode's transport: one session over stdin/stdout. The peer
 * comes from the environment (DESIGN.md §1): REMOTE_ADDR/REMOTE_PORT
 * (systemd Accept=yes), TCPREMOTEIP/TCPREMOTEPORT (ucspi-tcp's tcpserver), or REMOTE_HOST (xinetd, which puts the
 * client's address there and passes no port).
 *
 * It fails closed. A session is a trusted local submission only when
 * stdin is not a socket (a pipe or a terminal, as for `sendmail -bs`). A
 * socket on stdin with no client in the environment (plain inetd,
 * `systemd-socket-activate`) could be anyone on the network, so
 * it is refused with 421 rather than trusted. Values in the environment
 * are checked before use: an address must be an IP address to the
 * program's one parser, a port plain digits 0-65535; a bad one refuses
 * the session. Nothing unchecked reaches the log or a queue file.
 *
 * tcpserver's TCPREMOTEHOST is not read: it is the PTR name, which the
 * client's own DNS controls and tcpserver does not confirm (without -p).
 * The session looks the name up and confirms it itself
 * (smtpd_peername_lookup), as Postfix does; otherwise the name is "unknown".
 *
 * @module
 */

import { fstatSync } from "node:fs";
import { Socket } from "node:net";
import { isatty, ReadStream } from "node:tty";
import { canonicalIp } from "../protocol/ip.ts";
import type { ByteConn } from "./conn_duplex.ts";
import { nodeTransport } from "./node_socket.ts";
import type { PeerInfo, Transport } from "./types.ts";

/** Environment variables consulted for the peer. */
export const PEER_ENV = [
  "REMOTE_ADDR",
  "REMOTE_PORT",
  "TCPREMOTEIP",
  "TCPREMOTEPORT",
  "REMOTE_HOST",
] as const;

/** What the environment says about the peer. */
export type EnvPeer =
  | PeerInfo
  | { kind: "invalid"; reason: string };

/** Who the stand-alone session is with, or why it must be refused. */
export type StandAlonePeer =
  | { kind: "ok"; peer: PeerInfo }
  | { kind: "refused"; reason: string };

/** What is on stdin: a socket, something else (pipe, terminal, file), or unknown. */
export type StdinKind = "socket" | "other" | "unknown";

/**
 * Works out the peer from environment values. REMOTE_ADDR goes with
 * REMOTE_PORT, TCPREMOTEIP with TCPREMOTEPORT, and
 * REMOTE_HOST (xinetd) stands alone; the sets are never mixed.
 * @param env a lookup of environment variables
 * @returns a network peer, "local" when none is named, or why the values are unusable
 */
export function peerFromEnv(env: (name: string) => string | undefined): EnvPeer {
  const [addrVar, portVar] = env("REMOTE_ADDR")
    ? ["REMOTE_ADDR", "REMOTE_PORT"]
    : env("TCPREMOTEIP")
    ? ["TCPREMOTEIP", "TCPREMOTEPORT"]
    : env("REMOTE_HOST")
    ? ["REMOTE_HOST", undefined]
    : [undefined, undefined];
  if (!addrVar) return { kind: "local" };
  const address = canonicalIp(env(addrVar) as string);
  if (address === undefined) {
    return { kind: "invalid", reason: `${addrVar} is not an IP address` };
  }
  const portText = (portVar && env(portVar)) || "0";
  if (!/^[0-9]{1,5}$/.test(portText) || Number(portText) > 65535) {
    return { kind: "invalid", reason: `${portVar} is not a port number` };
  }
  return {
    kind: "network",
    address,
    port: String(Number(portText)),
    name: "unknown",
  };
}

/**
 * Decides who a stand-alone session is with: the environment's peer, a
 * local submission when stdin is not a socket, or a refusal.
 * @param env the peer from {@linkcode peerFromEnv}
 * @param stdin what is on stdin (from {@linkcode stdinKind})
 * @returns the peer, or why the session is refused
 */
export function standAlonePeer(env: EnvPeer, stdin: StdinKind): StandAlonePeer {
  if (env.kind === "invalid") return { kind: "refused", reason: env.reason };
  if (env.kind === "network") return { kind: "ok", peer: env };
  if (stdin === "other") return { kind: "ok", peer: env };
  return {
    kind: "refused",
    reason: stdin === "socket"
      ? "stdin is a socket but no REMOTE_ADDR, TCPREMOTEIP or REMOTE_HOST names the client"
      : "cannot tell what stdin is, and no REMOTE_ADDR, TCPREMOTEIP or REMOTE_HOST names the client",
  };
}

/**
 * What is on file descriptor 0 (fstat through node:fs: no permission needed).
 * @returns "socket", "other", or "unknown" when fstat fails
 */
export function stdinKind(): StdinKind {
  try {
    return fstatSync(0).isSocket() ? "socket" : "other";
  } catch {
    return "unknown";
  }
}

/**
 * Whether stderr is the client's connection itself (inetd and xinetd hand
 * the socket over as descriptors 0, 1 and 2): log lines written there would
 * go to the client, in the middle of the SMTP dialog.
 * @returns true when descriptors 0 and 2 are the same socket
 */
export function stderrIsClient(): boolean {
  try {
    const i = fstatSync(0);
    const e = fstatSync(2);
    return i.isSocket() && e.isSocket() && i.dev === e.dev && i.ino === e.ino;
  } catch {
    return false;
  }
}

/**
 * TLS for a stand-alone session whose stdin is the client's connection
 * (tcpserver, systemd Accept=yes, inetd): node:tls over a stream on stdin
 * and stdout (node_socket.ts's nodeStartTls).
 */
export interface StdioTls {
  /** Runs the server handshake over the connection, within timeoutMs. */
  readonly handshake: (conn: ByteConn, peer: PeerInfo, timeoutMs: number) => Promise<Transport>;
  /** Implicit TLS (smtpd_tls_wrappermode): the handshake comes before the greeting. */
  readonly implicit: boolean;
}

/** The stdin/stdout transport, and when it is closed for good. */
export interface StdioTransport extends Transport {
  /**
   * Resolves once stdin and stdout are closed: after STARTTLS, once the TLS
   * session's close_notify is written (or could not be). The process waits
   * for it before it exits, or the alert would be cut off.
   */
  readonly closed: Promise<void>;
}

/**
 * Builds the stdin/stdout transport.
 * @param peer the peer identity
 * @param tls STARTTLS or implicit TLS, when offered
 * @returns the transport
 */
export function stdioTransport(peer: PeerInfo, tls?: StdioTls): StdioTransport {
  const conn = stdioConn();
  return {
    peer,
    read: (p) => conn.read(p),
    write: (p) => conn.write(p),
    close: () => conn.close(),
    closed: conn.closed,
    ...(tls
      ? {
        startTls: (timeoutMs: number) => tls.handshake(conn, peer, timeoutMs),
        ...(tls.implicit ? { implicitTls: true } : {}),
      }
      : {}),
  };
}

/** Where the session's bytes come from: stdin, read as its kind allows. */
interface StdinReader {
  read(p: Uint8Array): Promise<number | null>;
  close(): void;
}

/**
 * Opens stdin for reading. Deno.stdin cannot wait for input on a descriptor
 * in non-blocking mode: Deno 2.9 (ext/io) retries a read that fails with
 * EAGAIN at once, without end, so a silent client cost a whole CPU until it
 * spoke or smtpd_timeout ran out. A launcher may hand stdin over that way
 * (O_NONBLOCK belongs to the open file, which the launcher shares: an event
 * loop's accepted socket, a terminal a program left non-blocking).
 *
 * So stdin is read through node:net and node:tty, which wait for
 * readability (epoll) and read only then, whatever the mode: no CPU while
 * the client is silent, no delay once it speaks.
 * - A terminal: node:tty opens it again, and reads through its own open file
 *   (a terminal is shared with the shell): nothing shared changes.
 * - A socket or pipe: node:net reads descriptor 0 itself, and sets
 *   O_NONBLOCK when it was not set. The flags cannot be read first (fcntl
 *   or /proc/self/fdinfo, which Deno grants only with --allow-all), nor
 *   the descriptor opened again (/proc/self/fd/0: --allow-all too). It is
 *   safe here: what a launcher hands over is this session's alone (inetd,
 *   xinetd, tcpserver and systemd close their copy of the connection, or
 *   the client would not see it end with the session; a shell keeps no end
 *   of the pipe it makes), and this program's own descriptors on it cope:
 *   stdout is written through node:net too (openStdout), stderr is not
 *   written to when it is the client (stderrIsClient).
 * - Anything else (a file, /dev/null: never EAGAIN) goes through Deno.stdin.
 * @returns the reader
 */
function openStdin(): StdinReader {
  const stream = stdinStream();
  if (!stream) return DENO_STDIN;
  const t = nodeTransport(stream, { kind: "local" });
  return { read: (p) => t.read(p), close: () => t.close() };
}

/**
 * stdin as a node stream, when it is a terminal, a socket or a pipe.
 * @returns the stream, or undefined for anything else
 */
function stdinStream(): Socket | undefined {
  try {
    if (isatty(0)) return new ReadStream(0);
    const st = fstatSync(0);
    if (!st.isSocket() && !st.isFIFO()) return undefined;
    return new Socket({ fd: 0, readable: true, writable: false, allowHalfOpen: true });
  } catch {
    return undefined; // fstat failed, or a socket node:net cannot take (datagrams)
  }
}

/** stdin through Deno.stdin. */
const DENO_STDIN: StdinReader = {
  read: (p) => Deno.stdin.read(p),
  close: () => {
    try {
      Deno.stdin.close();
    } catch { /* closed */ }
  },
};

/** Where the session's bytes go: stdout, written as its kind allows. */
interface StdoutWriter {
  write(p: Uint8Array): Promise<number>;
  /** Closes stdout; the promise settles once it is closed. */
  close(): Promise<void>;
}

/**
 * Opens stdout for writing. Deno.stdout cannot write to a descriptor in
 * non-blocking mode: Deno 2.9 writes the whole buffer in a loop and, when
 * the socket fills up part way, fails with EAGAIN without saying how much
 * went out, so a retry sent those bytes again (a client that read slowly
 * got replies twice over, and after STARTTLS records that failed their
 * MAC). A socket on stdout is non-blocking whenever it is stdin too
 * (inetd, tcpserver, systemd: openStdin sets the mode).
 *
 * So a socket is written through node:net, which waits for writability and
 * counts what each write took (node:net sets O_NONBLOCK: a socket is the
 * connection handed over, this session's alone). Anything else goes through
 * Deno.stdout: a file or terminal, and a pipe, whose mode is left as it is
 * (a shell script's stdout is shared with the commands after this one); a
 * pipe the launcher made non-blocking is waited out when full.
 * @returns the writer
 */
function openStdout(): StdoutWriter {
  const out = stdoutStream();
  if (!out) return DENO_STDOUT;
  // A failed write is reported to its callback; the event must be listened
  // to, or the process ends.
  out.on("error", () => {});
  const gone = new Promise<void>((r) => out.once("close", () => r()));
  return {
    write: (p) =>
      new Promise((resolve, reject) => {
        if (out.destroyed) {
          reject(new Deno.errors.BrokenPipe("stdout closed"));
          return;
        }
        // node:net's errors (EPIPE, ECONNRESET) as Deno's, which the session
        // knows for a client gone.
        out.write(p, (err) =>
          err ? reject(new Deno.errors.BrokenPipe(err.message)) : resolve(p.length));
      }),
    close: () => {
      // Every write was waited for (or timed out): nothing queued is kept.
      out.destroy();
      return gone;
    },
  };
}

/**
 * stdout as a node stream, when it is a socket.
 * @returns the stream, or undefined for anything else
 */
function stdoutStream(): Socket | undefined {
  try {
    if (!fstatSync(1).isSocket()) return undefined;
    return new Socket({ fd: 1, readable: false, writable: true });
  } catch {
    return undefined;
  }
}

/** The longest pause before another write to a full non-blocking pipe. */
const NONBLOCK_PAUSE_MS = 50;

/** stdout through Deno.stdout. */
const DENO_STDOUT: StdoutWriter = {
  write: async (p) => {
    for (let pause = 1;; pause = Math.min(pause * 2, NONBLOCK_PAUSE_MS)) {
      try {
        return await Deno.stdout.write(p);
      } catch (err) {
        if (!(err instanceof Deno.errors.WouldBlock)) throw err;
      }
      await new Promise((r) => setTimeout(r, pause));
    }
  },
  close: () => {
    try {
      Deno.stdout.close();
    } catch { /* closed */ }
    return Promise.resolve();
  },
};

/** stdin and stdout as one connection: closeWrite() closes stdout, close() both. */
function stdioConn(): ByteConn & { readonly closed: Promise<void> } {
  let done: () => void = () => {};
  const closed = new Promise<void>((r) => (done = r));
  let outOpen = true;
  let inOpen = true;
  // Opened at the first read: a session refused before it reads leaves stdin as it was.
  let stdin: StdinReader | undefined;
  let stdout: StdoutWriter | undefined;
  let outClosed = Promise.resolve();
  const closeOut = () => {
    if (!outOpen) return;
    outOpen = false;
    outClosed = (stdout ?? DENO_STDOUT).close();
  };
  return {
    read: (p) => {
      if (!inOpen) return Promise.resolve(null);
      stdin ??= openStdin();
      return stdin.read(p);
    },
    write: (p) => {
      if (!outOpen) return Promise.reject(new Deno.errors.BrokenPipe("stdout closed"));
      stdout ??= openStdout();
      return stdout.write(p);
    },
    closeWrite: () => {
      closeOut();
      return Promise.resolve();
    },
    close: () => {
      closeOut();
      if (inOpen) {
        inOpen = false;
        (stdin ?? DENO_STDIN).close();
      }
      void outClosed.then(done);
    },
    closed,
  };
}
