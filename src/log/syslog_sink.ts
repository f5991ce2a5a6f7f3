/**
 * Sends log lines to a syslog daemon (RFC 3164 format, the one Postfix's
 * syslog(3) lines have), over UDP or TCP (RFC 6587 newline framing), beside
 * stderr. It never blocks or fails a session: lines that cannot be sent
 * are dropped (TCP keeps a small bounded backlog while it reconnects).
 * /dev/log is not supported: Deno has no stable UNIX datagram API.
 *
 * @module
 */

import type { Socket } from "node:dgram";
import type { LineSink } from "./logger.ts";

/** Syslog facility codes (RFC 5424 §6.2.1). */
export const FACILITY: Record<string, number> = {
  user: 1,
  mail: 2,
  daemon: 3,
  local0: 16,
  local1: 17,
  local2: 18,
  local3: 19,
  local4: 20,
  local5: 21,
  local6: 22,
  local7: 23,
};

/** A parsed syslog_server value. */
export interface SyslogTarget {
  readonly transport: "udp" | "tcp";
  readonly host: string;
  readonly port: number;
}

/**
 * Parses "udp://host:port" or "tcp://host:port" (port defaults to 514).
 * @param text the syslog_server value
 * @returns the target, or undefined when malformed
 */
export function parseSyslogServer(text: string): SyslogTarget | undefined {
  const m = /^(udp|tcp):\/\/(?:\[([^\]]+)\]|([^:/]+))(?::(\d{1,5}))?$/.exec(text.trim());
  if (!m) return undefined;
  const port = m[4] ? Number(m[4]) : 514;
  if (port < 1 || port > 65535) return undefined;
  return { transport: m[1] as "udp" | "tcp", host: (m[2] ?? m[3]) as string, port };
}

/**
 * The local address a UDP syslog socket binds (port 0). Bound explicitly:
 * Deno's permissions cover the local address we bind (loopback for a
 * loopback server), never an implicit 0.0.0.0:0.
 * @param host the syslog server's address
 * @returns the local address
 */
export function udpBindAddress(host: string): string {
  return /^127\./.test(host)
    ? "127.0.0.1"
    : host === "::1"
    ? "::1"
    : host.includes(":")
    ? "::"
    : "0.0.0.0";
}

const encoder = new TextEncoder();
const TCP_BACKLOG = 1000;

/** The least time between two warnings that lines cannot be sent. */
const WARN_INTERVAL_MS = 60_000;

/** How long lines to a UDP server are dropped after its socket could not be bound. */
const UDP_RETRY_MS = 10_000;

/** A syslog sink, and a way to wait for the lines it still holds. */
export interface SyslogSink extends LineSink {
  /**
   * Resolves when every line given so far has been sent or dropped, or after
   * `ms`: a process that ends at once (`smtpd stdin`) loses the lines still
   * waiting for their socket, its last ones (the disconnect line) first.
   */
  settled(ms: number): Promise<void>;
}

/** How often {@linkcode SyslogSink.settled} looks again. */
const SETTLE_POLL_MS = 5;

/**
 * Waits until `busy()` is false, at most `ms`.
 * @param busy whether lines are still on their way
 * @param ms the longest wait
 */
async function until(busy: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (busy() && Date.now() < end) {
    await new Promise((r) => setTimeout(r, SETTLE_POLL_MS));
  }
}

/**
 * Builds a syslog sink.
 * @param target where to send
 * @param facility the facility name (syslog_facility)
 * @param warn says, elsewhere than to the syslog server (stderr), that lines
 *   cannot be sent (once until they can again) and when they can again
 * @returns the sink
 */
export function syslogSink(
  target: SyslogTarget,
  facility: string,
  warn: (message: string) => void = () => {},
): SyslogSink {
  const fac = FACILITY[facility] ?? 2;
  const name = `${target.transport}://${
    target.host.includes(":") ? `[${target.host}]` : target.host
  }:${target.port}`;
  // Lines are dropped while the server cannot be reached; the operator is
  // told once, not once a line, and at most once a minute: a server that
  // takes each connection and then closes it fails and recovers with every
  // line, and would turn each into two warnings.
  let failing = false;
  let lastSaid = -Infinity;
  const failed = (e: unknown) => {
    if (failing) return;
    if (Date.now() - lastSaid < WARN_INTERVAL_MS) return;
    failing = true;
    lastSaid = Date.now();
    warn(
      `syslog_server ${name}: cannot send log lines (${(e as Error)?.message ?? e}); ` +
        "they are dropped there until it answers",
    );
  };
  const sent = () => {
    if (!failing) return;
    failing = false;
    warn(`syslog_server ${name}: sending log lines again`);
  };
  const frame = (line: string, severity: number) => `<${fac * 8 + severity}>${line}`;
  if (target.transport === "udp") {
    let bound: Promise<Socket> | undefined;
    // After a failed bind, lines are dropped until then, and a bind is tried again.
    let dropUntil = 0;
    const v6 = target.host.includes(":");
    const local = udpBindAddress(target.host);
    // node:dgram is loaded on first use (it costs memory in every isolate).
    const open = () =>
      import("node:dgram").then(({ createSocket }) =>
        new Promise<Socket>((resolve, reject) => {
          const s = createSocket(v6 ? "udp6" : "udp4");
          s.once("error", (e) => {
            try {
              s.close();
            } catch { /* not open */ }
            reject(e);
          });
          s.bind(0, local, () => {
            s.removeAllListeners("error");
            // Dropped: logging must never fail a session.
            s.on("error", (e) => failed(e));
            resolve(s);
          });
        })
      );
    // Lines handed to the socket and not yet sent or dropped.
    let inFlight = 0;
    const udp = (line: string, severity: number) => {
      try {
        if (!bound && Date.now() < dropUntil) return;
        // A socket that cannot be bound (no such local address: IPv6 off)
        // settles the wait: each line waiting on it would be kept for good.
        bound ??= open().catch((e) => {
          bound = undefined;
          dropUntil = Date.now() + UDP_RETRY_MS;
          failed(e);
          throw e;
        });
        const bytes = encoder.encode(frame(line, severity).replace(/\n$/, ""));
        inFlight++;
        void bound.then(
          (s) =>
            s.send(bytes, target.port, target.host, (e) => {
              inFlight--;
              e ? failed(e) : sent();
            }),
          () => {
            inFlight--; // dropped, said once
          },
        );
      } catch { /* dropped */ }
    };
    return Object.assign(udp, { settled: (ms: number) => until(() => inFlight > 0, ms) });
  }
  let conn: Deno.TcpConn | undefined;
  let connecting = false;
  // backlog[0] is the line being written while `writing`.
  const backlog: Uint8Array[] = [];
  let writing = false;
  // Lines dropped because a connected server took them slower than they
  // came; said when it starts (at most once a minute) and, with the count,
  // when the backlog is empty again.
  let overflowing = false;
  let overflowSaid = -Infinity;
  let overflowed = 0;
  const overflow = () => {
    overflowed++;
    if (overflowing || Date.now() - overflowSaid < WARN_INTERVAL_MS) return;
    overflowing = true;
    overflowSaid = Date.now();
    warn(
      `syslog_server ${name}: the server takes log lines slower than they come; ` +
        `past ${TCP_BACKLOG} waiting, the oldest are dropped`,
    );
  };
  const pump = async () => {
    if (writing || !conn) return;
    writing = true;
    try {
      while (conn && backlog.length > 0) {
        const b = backlog[0] as Uint8Array;
        let off = 0;
        while (off < b.length) off += await conn.write(b.subarray(off));
        backlog.shift();
        // Said when a line got through, not at the connect: a server that
        // accepts and then closes would get the two warnings once a line.
        sent();
      }
      if (overflowing && backlog.length === 0) {
        overflowing = false;
        warn(`syslog_server ${name}: ${overflowed} log lines were dropped`);
        overflowed = 0;
      }
    } catch (e) {
      try {
        conn?.close();
      } catch { /* closed */ }
      conn = undefined;
      failed(e);
    } finally {
      writing = false;
    }
  };
  const connect = async () => {
    if (connecting || conn) return;
    connecting = true;
    try {
      conn = await Deno.connect({ hostname: target.host, port: target.port });
      void pump();
    } catch (e) {
      conn = undefined;
      failed(e);
    } finally {
      connecting = false;
    }
  };
  const tcp = (line: string, severity: number) => {
    if (backlog.length >= TCP_BACKLOG) {
      // Never the line being written: the writer drops it once it is sent.
      backlog.splice(writing ? 1 : 0, 1);
      if (conn) overflow();
    }
    backlog.push(encoder.encode(frame(line, severity)));
    if (conn) void pump();
    else void connect();
  };
  // Lines wait while a connection is open or being made; without one they
  // wait for the next line, which a process that ends never logs.
  return Object.assign(tcp, {
    settled: (ms: number) => until(() => backlog.length > 0 && (!!conn || connecting), ms),
  });
}
