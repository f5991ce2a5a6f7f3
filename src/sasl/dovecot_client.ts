/**
 * The client of Dovecot's authentication server that `smtpd_sasl_type =
 * dovecot` uses. One connection per process, shared by all sessions (as
 * Postfix keeps one per smtpd process), opened on first use and opened
 * again after it drops. A server that is down, stuck or hostile costs a
 * session at most the timeout per step and ends in a temporary failure
 * (the SMTP side answers 454 4.7.0); it never hangs a session.
 *
 * @module
 */

import { type ConnectionLimits, DovecotConnection } from "./_dovecot_connection.ts";
import {
  encodeAuth,
  encodeCont,
  printable,
  printableName,
  RequestTooLongError,
  type SaslClientInfo,
  type SaslMechanism,
} from "./dovecot_protocol.ts";
import { describeEndpoint, type SaslEndpoint } from "./sasl_path.ts";
import type { SaslExchange, SaslServer, SaslStep } from "./sasl_server.ts";

/** Options for {@linkcode DovecotAuthClient}. */
export interface DovecotClientOptions {
  /** Where the server listens. */
  endpoint: SaslEndpoint;
  /** The service name Dovecot sees (smtpd_sasl_service). @default {"smtp"} */
  service?: string;
  /** Bound on every wait (connect + handshake, a write, a reply), in ms. @default {10000} */
  timeoutMs?: number;
  /** Longest line accepted from the server, in bytes. @default {16384} */
  maxLineLength?: number;
  /** Our process id for CPID. @default {Deno.pid} */
  pid?: number;
  /**
   * After a failed connect, requests within this many ms fail at once
   * without a new attempt (and without a new warning), so a dead server
   * does not cost every EHLO a connect timeout. @default {1000}
   */
  retryDelayMs?: number;
  /** Receives warnings (connect failures, lost connections); never credentials. */
  onWarning?: (text: string) => void;
}

const CANNOT_CONNECT = "Can't connect to authentication server";
const TOO_LONG = "Authentication response too long";

/** A Dovecot auth client shared by the sessions of a process. */
export class DovecotAuthClient implements SaslServer {
  #endpoint: SaslEndpoint;
  #service: string;
  #limits: ConnectionLimits;
  #pid: number;
  #warn: (text: string) => void;
  #conn: DovecotConnection | undefined;
  #opening: Promise<DovecotConnection | undefined> | undefined;
  #closed = false;
  #retryDelayMs: number;
  #failedAt = -Infinity;

  /** @param options endpoint, service and limits */
  constructor(options: DovecotClientOptions) {
    this.#endpoint = options.endpoint;
    this.#service = options.service ?? "smtp";
    this.#limits = {
      timeoutMs: options.timeoutMs ?? 10_000,
      maxLineLength: options.maxLineLength ?? 16_384,
      maxMechanisms: 64,
    };
    this.#pid = options.pid ?? Deno.pid;
    this.#warn = options.onWarning ?? (() => {});
    this.#retryDelayMs = options.retryDelayMs ?? 1_000;
  }

  /**
   * The server's mechanisms (connecting if needed).
   * @returns the mechanisms, or undefined when the server cannot be reached
   */
  async mechanisms(): Promise<readonly SaslMechanism[] | undefined> {
    return (await this.connection())?.mechanisms;
  }

  /**
   * Starts an exchange.
   * @param mechanism the mechanism the client asked for
   * @param info facts about the SMTP connection
   * @returns the exchange
   */
  start(mechanism: string, info: SaslClientInfo): SaslExchange {
    return new DovecotExchange(this, { mechanism, info, service: this.#service });
  }

  /** Closes the connection; later calls fail at once. */
  close(): void {
    this.#closed = true;
    this.#conn?.close("client closed");
    this.#conn = undefined;
  }

  /**
   * The open connection, or a new one (one attempt shared by concurrent callers).
   * @param fresh drop the current connection first (its ids are used up or it failed)
   * @returns the connection, or undefined when none can be had
   */
  async connection(fresh = false): Promise<DovecotConnection | undefined> {
    if (this.#closed) return undefined;
    if (fresh && this.#conn) {
      this.#conn.close("reconnecting");
      this.#conn = undefined;
    }
    if (this.#conn?.open) return this.#conn;
    if (!this.#opening && performance.now() - this.#failedAt < this.#retryDelayMs) {
      return undefined;
    }
    this.#opening ??= this.#open().finally(() => {
      this.#opening = undefined;
    });
    return await this.#opening;
  }

  async #open(): Promise<DovecotConnection | undefined> {
    const where = describeEndpoint(this.#endpoint);
    let conn: DovecotConnection | undefined;
    try {
      conn = await DovecotConnection.open(this.#endpoint, {
        limits: this.#limits,
        pid: this.#pid,
        onClose: (reason) => {
          if (this.#conn === conn) this.#conn = undefined;
          if (reason !== "client closed" && reason !== "reconnecting") {
            this.#warn(`SASL: connection to Dovecot auth socket '${where}' ended: ${reason}`);
          }
        },
      });
      if (this.#closed) {
        conn.close("client closed");
        return undefined;
      }
      this.#conn = conn;
      return conn;
    } catch (err) {
      this.#failedAt = performance.now();
      const why = err instanceof Error ? err.message : String(err);
      this.#warn(`SASL: Connect to Dovecot auth socket '${where}' failed: ${why}`);
      return undefined;
    }
  }
}

class DovecotExchange implements SaslExchange {
  #client: DovecotAuthClient;
  #mechanism: string;
  #info: SaslClientInfo;
  #service: string;
  #conn: DovecotConnection | undefined;
  #id: number | undefined;
  #finished = false;

  constructor(
    client: DovecotAuthClient,
    init: { mechanism: string; info: SaslClientInfo; service: string },
  ) {
    this.#client = client;
    this.#mechanism = init.mechanism;
    this.#info = init.info;
    this.#service = init.service;
  }

  async begin(initialResponse: string | undefined): Promise<SaslStep> {
    if (this.#id !== undefined || this.#finished) {
      return this.#fail("exchange already begun", false);
    }
    // Like Postfix: a connection that turns out dead when we write gets one
    // fresh attempt, so a Dovecot restart between sessions costs nothing.
    for (let attempt = 0; attempt < 2; attempt++) {
      let conn = await this.#client.connection();
      const mech = conn?.mechanisms.find((m) => m.name === this.#mechanism.toUpperCase());
      // Dovecot drops the whole connection for a mechanism it does not offer.
      if (conn && !mech) return this.#fail("Invalid authentication mechanism", false);
      let id = conn?.newId();
      if (conn && id === undefined) {
        conn = await this.#client.connection(true);
        id = conn?.newId();
      }
      if (!conn || !mech || id === undefined) return this.#fail(CANNOT_CONNECT, true);
      let line: string;
      try {
        line = encodeAuth(id, mech.name, {
          service: this.#service,
          info: this.#info,
          initialResponse,
        });
      } catch (err) {
        return this.#fail(
          err instanceof RequestTooLongError ? TOO_LONG : "Invalid base64 data in initial response",
          false,
        );
      }
      this.#conn = conn;
      this.#id = id;
      const answer = await conn.request(id, line);
      if (answer.kind === "lost" && answer.unsent && attempt === 0) {
        this.#id = undefined;
        continue;
      }
      return this.#settle(answer);
    }
    return this.#fail(CANNOT_CONNECT, true);
  }

  async respond(response: string): Promise<SaslStep> {
    if (this.#finished || !this.#conn || this.#id === undefined) {
      return this.#fail("no authentication in progress", false);
    }
    let line: string;
    try {
      line = encodeCont(this.#id, response);
    } catch (err) {
      // Not sent: Dovecot would drop the connection every session shares.
      this.abandon();
      return this.#fail(
        err instanceof RequestTooLongError ? TOO_LONG : "Invalid base64 data in continued response",
        false,
      );
    }
    return this.#settle(await this.#conn.request(this.#id, line));
  }

  abandon(): void {
    if (this.#finished) return;
    this.#finished = true;
    if (this.#conn && this.#id !== undefined) this.#conn.cancel(this.#id);
  }

  #settle(answer: Awaited<ReturnType<DovecotConnection["request"]>>): SaslStep {
    switch (answer.kind) {
      case "cont":
        return { kind: "challenge", challenge: answer.challenge };
      case "ok": {
        this.#finished = true;
        const user = answer.fields.get("user");
        if (!user) return this.#fail("Authentication backend error", false);
        // OK says only that the credentials passed. With "nologin" (a passdb
        // that disables the account, or with host= sends it elsewhere) or
        // "proxy" (its mail is served by another host; often with
        // nopassword, so nothing was checked) Dovecot's own login processes
        // refuse the login, and so do we.
        if (answer.fields.has("nologin") || answer.fields.has("proxy")) {
          return {
            kind: "failure",
            reason: printable(answer.fields.get("reason") || "Login disabled"),
            temporary: false,
            username: printableName(user),
          };
        }
        return { kind: "success", username: printableName(user) };
      }
      case "fail": {
        this.#finished = true;
        const user = answer.fields.get("user");
        return {
          kind: "failure",
          reason: printable(answer.fields.get("reason") ?? ""),
          // Dovecot 2.3 says "code=temp_fail" (a password database that
          // cannot be reached), older versions "temp".
          temporary: answer.fields.has("temp") || answer.fields.get("code") === "temp_fail",
          // An empty "user=" (Dovecot's "Empty username" for LOGIN) is a
          // name, logged empty as Postfix logs it; "(unavailable)" is for
          // a FAIL without the field.
          ...(user !== undefined ? { username: printableName(user) } : {}),
        };
      }
      case "lost":
        return this.#fail(answer.reason, true);
      default: {
        const unreachable: never = answer;
        throw new TypeError(`Cannot handle answer: ${JSON.stringify(unreachable)}`);
      }
    }
  }

  #fail(reason: string, temporary: boolean): SaslStep {
    this.#finished = true;
    return { kind: "failure", reason, temporary };
  }
}
