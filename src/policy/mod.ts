/**
 * Policy: the decision seam every SMTP stage calls.
 *
 * @module
 */

export { compileDefaultPolicy, compileNetworks, isOurDomain } from "./relay.ts";
export type { Policy } from "./relay.ts";
export type { PolicyContext, PolicyStage } from "./context.ts";
export type { Decision } from "./decision.ts";
export { inNetwork, parseIp, parseNetwork } from "./cidr.ts";
export type { Network } from "./cidr.ts";
