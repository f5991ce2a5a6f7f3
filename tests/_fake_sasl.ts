/**
 * A fake authentication server for the dialogs (tests/_dialog.ts, "# sasl:
 * user:password ..."): it offers PLAIN, LOGIN and ANONYMOUS (with Dovecot's
 * flags, so the security options filter them as they would Dovecot's), and
 * checks names and passwords from the directive. The user "tempfail" gets
 * a temporary failure (as a Dovecot whose password database is down). The
 * real Dovecot is tested in tests/smtpd_auth_test.ts.
 *
 * @module
 */

import type { SaslExchange, SaslMechanism, SaslServer, SaslStep } from "../src/sasl/mod.ts";

const b64 = (text: string) => btoa(text);

/** A SASL server with fixed users. */
export class FakeSaslServer implements SaslServer {
  readonly #users: ReadonlyMap<string, string>;

  /** @param users name → password */
  constructor(users: ReadonlyMap<string, string>) {
    this.#users = users;
  }

  mechanisms(): Promise<readonly SaslMechanism[]> {
    return Promise.resolve([
      { name: "PLAIN", flags: new Set(["plaintext"]) },
      { name: "LOGIN", flags: new Set(["plaintext"]) },
      { name: "ANONYMOUS", flags: new Set(["anonymous"]) },
    ]);
  }

  start(mechanism: string): SaslExchange {
    let user: string | undefined;
    const decide = (name: string, password: string): SaslStep => {
      if (name === "tempfail") {
        return { kind: "failure", reason: "password lookup failed", temporary: true };
      }
      return this.#users.get(name) === password
        ? { kind: "success", username: name }
        : { kind: "failure", reason: "authentication failure", temporary: false, username: name };
    };
    const plain = (response: string): SaslStep => {
      const [, name = "", password = ""] = atob(response).split("\0");
      return decide(name, password);
    };
    return {
      begin: (initial) => {
        if (mechanism === "PLAIN") {
          return Promise.resolve(
            initial === undefined || initial === ""
              ? { kind: "challenge", challenge: "" }
              : plain(initial),
          );
        }
        if (mechanism === "ANONYMOUS") {
          return Promise.resolve({ kind: "success", username: "anon" });
        }
        if (initial !== undefined && initial !== "") user = atob(initial);
        return Promise.resolve({
          kind: "challenge",
          challenge: b64(user === undefined ? "Username:" : "Password:"),
        });
      },
      respond: (response) => {
        if (mechanism === "PLAIN") return Promise.resolve(plain(response));
        if (user === undefined) {
          user = atob(response);
          return Promise.resolve({ kind: "challenge", challenge: b64("Password:") });
        }
        return Promise.resolve(decide(user, atob(response)));
      },
      abandon: () => {},
    };
  }
}
