/**
 * Policy: the restriction lists every SMTP stage consults, compiled at
 * start; lookup tables; DNS; tracing for `smtpd explain`.
 *
 * @module
 */

export { CompiledPolicy, listsFor } from "./evaluate.ts";
export type { CheckOptions, Policy } from "./evaluate.ts";
export {
  auditLists,
  compileBareNewlineExclusions,
  compileLists,
  compileMynetworks,
  compilePolicy,
  RESTRICTIONS,
} from "./compile.ts";
export { LIST_PARAMS } from "./lists.ts";
export type { ClientNameStatus, PolicyContext, PolicyStage } from "./context.ts";
export type { Decision, MessageEffect } from "./decision.ts";
export { inNetwork, parseIp, parseNetwork } from "./cidr.ts";
export type { Network } from "./cidr.ts";
export { compileNetworks } from "./relay.ts";
export { cachingResolver, denoResolver, parseDnsServer, reverseName } from "./resolver.ts";
export type { DnsAnswer, DnsResolver, DnsType } from "./resolver.ts";
export { describeTraceEvent, Trace } from "./trace.ts";
export type { TraceEvent } from "./trace.ts";
export { lookupClientName } from "./client_name.ts";
export type { ClientName } from "./client_name.ts";
export { compilePeerList } from "./peer_match.ts";
export { compileForbiddenCommands, isHeaderLabel } from "./forbidden_commands.ts";
export type { CommandMatcher } from "./forbidden_commands.ts";
export { openTable } from "./tables/mod.ts";
export { policyServices } from "./restrictions/policy_service.ts";
export { mayConnect, socketConnector } from "./service/connection.ts";
export { type Endpoint, parseEndpoint } from "./service/endpoint.ts";
export type { PeerMatcher } from "./peer_match.ts";
