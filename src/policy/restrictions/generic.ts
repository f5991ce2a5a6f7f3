/**
 * permit, reject, defer, dunno, defer_if_permit, defer_if_reject
 * (warn_if_reject wraps the next restriction in compile.ts). The generic
 * refusals name the subject of the list they are in: "<x@y>: Recipient
 * address rejected: Access denied". defer says 4.3.2 (system not
 * accepting messages), as Postfix does. defer_if_permit and
 * defer_if_reject go on to the next restriction, as their access(5)
 * actions do: a permit of the list (or of the stage), or a reject of the
 * list, then becomes `450 4.7.0 <x@y>: Recipient address rejected:
 * defer_if_permit requested` (`defer_if_reject requested`), Postfix's
 * words.
 *
 * @module
 */

import type { EvalEnv, Factory } from "../restriction.ts";
import { refusal, refuse, stageSubject } from "../restriction.ts";

/** Postfix's reply for defer_if_permit and defer_if_reject. */
function requested(e: EvalEnv, name: string) {
  return refusal(450, "7.0", stageSubject(e.stage), e.ctx, `${name} requested`);
}

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
  "defer_if_permit": {
    make: (name) => ({
      name,
      run: (e) => {
        e.deferIfPermit ??= requested(e, name);
        return Promise.resolve({ kind: "dunno" });
      },
    }),
  },
  "defer_if_reject": {
    make: (name) => ({
      name,
      run: (e) => {
        e.deferIfReject ??= requested(e, name);
        return Promise.resolve({ kind: "dunno" });
      },
    }),
  },
};
