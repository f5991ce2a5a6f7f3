/**
 * `sleep seconds`: pauses the evaluation, then goes on with the next
 * restriction (Postfix's sleep, meant with reject_unauth_pipelining to catch
 * clients that talk before they are answered). The pause is a timer: other
 * sessions go on meanwhile. The seconds must be a whole number no larger
 * than smtpd_timeout, checked at start.
 *
 * @module
 */

import type { Decision } from "../decision.ts";
import type { EvalEnv, Factory } from "../restriction.ts";

const timer = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The sleep restriction. */
export const SLEEP: Record<string, Factory> = {
  "sleep": {
    arg: "seconds",
    make: (name, arg, env) => {
      const text = arg as string;
      if (!/^\d{1,9}$/.test(text)) {
        env.fail(`restriction "sleep" needs a number of seconds, not "${text}"`);
      }
      const seconds = Number(text);
      if (seconds > env.config.smtpd_timeout) {
        env.fail(
          `sleep ${seconds}: longer than smtpd_timeout (${env.config.smtpd_timeout}s)`,
        );
      }
      return {
        name,
        run: async (e: EvalEnv): Promise<Decision> => {
          e.trace?.add({ kind: "note", text: `pause ${seconds} seconds, then go on` });
          await (e.sleep ?? timer)(seconds * 1000);
          return { kind: "dunno" };
        },
      };
    },
  },
};
