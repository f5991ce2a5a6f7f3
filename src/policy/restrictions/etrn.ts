/**
 * ETRN restrictions: check_etrn_access (the ETRN domain and its parents).
 *
 * @module
 */

import { checkAccess, compileActions, hostKeys } from "../access.ts";
import type { Factory } from "../compile.ts";

/** The ETRN restrictions. */
export const ETRN: Record<string, Factory> = {
  "check_etrn_access": {
    arg: "table",
    make: (name, arg, env) => {
      const table = env.table(arg as string);
      const actions = compileActions(table, env);
      return {
        name,
        run: (e) =>
          e.ctx.etrnDomain === undefined
            ? Promise.resolve({ kind: "dunno" })
            : checkAccess(e, table, hostKeys(e.ctx.etrnDomain), actions, "etrn", name),
      };
    },
  },
};
