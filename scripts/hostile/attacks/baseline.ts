/**
 * No attack: the legitimate stream alone, for comparison with every row.
 *
 * @module
 */

import type { Attack, AttackContext, AttackOutcome } from "../attack.ts";

/** The reference row. */
export const baseline: Attack = {
  name: "baseline",
  summary: "no attack: the legitimate stream alone",
  target: "main",
  async run(ctx: AttackContext): Promise<AttackOutcome> {
    ctx.ready();
    await ctx.ended;
    return { checks: [], notes: [] };
  },
};
