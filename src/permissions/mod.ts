/**
 * Deno permissions derived from the configuration: what it needs
 * (needs.ts), the flags that grant it (flags.ts), and the start-up check
 * (check.ts).
 *
 * @module
 */

export {
  deriveNeeds,
  DNS_LIST_RESTRICTIONS,
  DNS_RESTRICTIONS,
  dnsServers,
  dnsUse,
  ENV_VARS,
  fileTableSpecs,
  netTarget,
  programCodeDir,
  RESOLV_CONF,
  resolvConfNameServers,
  TABLE_WORDS,
  tableWordsSteps,
} from "./needs.ts";
export type { Need, NeedKind, NeedsOptions } from "./needs.ts";
export { flagFor, flagsFor, RUNTIME_FLAGS } from "./flags.ts";
export { type DnsProbe, probeDns } from "./dns_probe.ts";
export { grantAdvice, missingMessage, missingNeeds } from "./check.ts";
