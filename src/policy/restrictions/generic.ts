/**
 * permit, reject, defer, dunno (warn_if_reject wraps the next restriction
 * in compile.ts). The generic refusals name the subject of the list they
 * are in: "<x@y>: Recipient address rejected: Access denied". defer says
 * 4.3.2 (system not accepting messages), as Postfix does.
 *
 * @module
 */

import type { Factory } from "../restriction.ts";
import { refusal, refuse, stageSubject } from "../restriction.ts";

/** The generic restrictions. */
export const GENERIC: Record<string, Factory> = {
  permit: { make: (name) => ({ name, run: () => Promise.resolve({ kind: "permit", by: name }) }) },
  dunno: { make: (name) => ({ name, run: () => Promise.resolve({ kind: "dunno" }) }) },
  reject: {
    make: (name, _arg, env) => ({
      name,
      run: (e) =>
        Promise.resolve(refuse(
          refusal(env.config.reject_code, "7.1", stageSubject(e.stage), e.ctx, "Access denied"),
          name,
        )),
    }),
  },
  defer: {
    make: (name, _arg, env) => ({
      name,
      run: (e) =>
        Promise.resolve(refuse(
          refusal(env.config.defer_code, "3.2", stageSubject(e.stage), e.ctx, "Try again later"),
          name,
        )),
    }),
  },
};
