/**
 * `cidr:/path` tables (Postfix cidr_table(5)): "network/len value" lines,
 * tried in file order, the first match wins. Keys that are not IP
 * addresses never match.
 *
 * @module
 */

import { hostBitsProblem, inNetwork, type Network, parseIp, parseNetwork } from "../cidr.ts";
import { splitKeyValue, TableSyntaxError } from "./text_table.ts";
import { eachLine, LINES_PER_STEP, runSteps, type Steps } from "./prepared.ts";
import type { LookupResult, LookupTable } from "./types.ts";

/**
 * Parses a CIDR table.
 * @param name the spec
 * @param text the file content
 * @param file the file's path, for {@linkcode LookupTable.origin}
 * @returns the table
 * @throws {TableSyntaxError} with the line number
 */
export function cidrTable(name: string, text: string, file?: string): LookupTable {
  return cidrTableOf(name, runSteps(cidrRulesSteps(text)), file);
}

/** One rule of a CIDR table. */
export interface CidrRule {
  readonly net: Network;
  readonly value: string;
  readonly line: number;
}

/**
 * The rules of a CIDR table, as steps ({@linkcode Steps}), for a reload to
 * parse a large table in slices.
 * @param text the file content
 * @returns the steps, whose result is the rules in file order
 * @throws {TableSyntaxError} with the line number
 */
export function* cidrRulesSteps(text: string): Steps<CidrRule[]> {
  const rules: CidrRule[] = [];
  let i = -1;
  for (const raw of eachLine(text)) {
    if (++i % LINES_PER_STEP === 0 && i > 0) yield;
    const line = raw.replace(/\r$/, "");
    if (/^\s*(#|$)/.test(line)) continue;
    const m = splitKeyValue(line);
    if (!m) throw new TableSyntaxError(`missing value for "${line.trim()}"`, i + 1);
    const net = parseNetwork(m[1] as string);
    if (!net) throw new TableSyntaxError(`cannot parse network "${m[1]}"`, i + 1);
    // "10.0.0.1/8": Postfix skips the rule with a warning; taken as written
    // it would match all of 10.0.0.0/8. Refused, as in mynetworks.
    const problem = hostBitsProblem(m[1] as string, net);
    if (problem) throw new TableSyntaxError(problem, i + 1);
    rules.push({ net, value: m[2] as string, line: i + 1 });
  }
  return rules;
}

/**
 * A CIDR table of parsed rules.
 * @param name the spec
 * @param rules its rules ({@linkcode cidrRulesSteps})
 * @param file the file's path, for {@linkcode LookupTable.origin}
 * @returns the table
 */
export function cidrTableOf(name: string, rules: readonly CidrRule[], file?: string): LookupTable {
  return {
    name,
    values: rules.map((r) => r.value),
    origin(value: string): string | undefined {
      const rule = rules.find((r) => r.value === value);
      return file !== undefined && rule ? `${file}:${rule.line}` : undefined;
    },
    lookup(key: string): Promise<LookupResult> {
      const ip = parseIp(key);
      if (ip === undefined) return Promise.resolve({ kind: "notFound" });
      const hit = rules.find((r) => inNetwork(r.net, ip));
      return Promise.resolve(hit ? { kind: "found", value: hit.value } : { kind: "notFound" });
    },
  };
}
