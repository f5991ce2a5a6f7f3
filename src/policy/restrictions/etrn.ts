/**
 * ETRN restrictions: check_etrn_access (the ETRN domain and its parents).
 *
 * @module
 */

import { accessFactory, hostKeys } from "../access.ts";
import type { Factory } from "../restriction.ts";

/** The ETRN restrictions. */
export const ETRN: Record<string, Factory> = {
  "check_etrn_access": accessFactory(
    "etrn",
    (c) => c.etrnDomain === undefined ? undefined : hostKeys(c.etrnDomain),
  ),
};
