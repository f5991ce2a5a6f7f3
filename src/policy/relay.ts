/**
 * mynetworks parsing (the networks trusted by permit_mynetworks). A network
 * with host bits set ("192.0.2.1/27") is an error, not silently widened:
 * Postfix warns and defers every request such a list decides.
 *
 * @module
 */

import { ConfigError } from "../config/mod.ts";
import { formatIp } from "../protocol/ip.ts";
import { hostBitsProblem, type Network, parseNetwork } from "./cidr.ts";
import { expandListFiles } from "./domain_list.ts";
import { readListFile } from "./tables/mod.ts";

/**
 * The entries of a network list as networks and addresses: a `/file` gives
 * its words, a `cidr:` table its networks, a `texthash:` table its address
 * keys (Postfix looks the client address up in them; any value matches).
 * Other table types cannot be read as networks and stop the start.
 */
function expandNetworkEntries(items: readonly string[], key: string): string[] {
  const read = (path: string) => {
    try {
      return readListFile(path);
    } catch (err) {
      throw new ConfigError(`${key}: ${(err as Error).message}`, { key });
    }
  };
  let words: string[];
  try {
    words = expandListFiles(items, read);
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError(`${key}: ${(err as Error).message}`, { key });
  }
  return words.flatMap((w) => {
    const m = /^([a-z]+):(.+)$/.exec(w);
    if (!m || parseNetwork(w) !== undefined) return [w];
    const [, type, path] = m as unknown as [string, string, string];
    if (type !== "cidr" && type !== "texthash") {
      throw new ConfigError(
        `${key}: "${w}": only cidr: and texthash: tables can be read as networks here`,
        { key },
      );
    }
    const keys = read(path).split("\n")
      .map((line) => line.replace(/#.*$/, "").trim())
      .filter((line) => line !== "" && !/^(if|endif)\b/i.test(line))
      .map((line) => line.split(/\s+/)[0] as string);
    // texthash keys that are not addresses never match a client address.
    return type === "cidr" ? keys : keys.filter((k) => parseNetwork(k) !== undefined);
  });
}

/**
 * Parses a list of networks.
 * @param items the configured networks
 * @param key the parameter, for errors
 * @returns the networks
 * @throws {ConfigError} for a malformed entry or one with host bits set
 */
export function compileNetworks(items: readonly string[], key: string): Network[] {
  return expandNetworkEntries(items, key).map((item) => {
    const net = parseNetwork(item);
    if (!net) throw new ConfigError(`${key}: cannot parse network "${item}"`, { key });
    const problem = hostBitsProblem(item, net);
    if (problem) throw new ConfigError(`${key}: ${problem}`, { key });
    return net;
  });
}

/**
 * The networks mynetworks_style trusts when mynetworks is not set: with
 * "subnet" each interface's own network, with "class" its class A, B or C
 * network (IPv6: its own network).
 * @param style subnet or class
 * @param interfaces the host's interfaces (Deno.networkInterfaces())
 * @returns networks as text ("192.0.2.0/24", "[2001:db8::]/64")
 */
export function styleNetworks(
  style: "subnet" | "class",
  interfaces: readonly { family: string; address: string; cidr: string }[],
): string[] {
  const out = new Set<string>();
  for (const i of interfaces) {
    const net = parseNetwork(
      i.family === "IPv6" ? `[${i.address}]/${i.cidr.split("/")[1]}` : i.cidr,
    );
    if (!net) continue;
    let bits = net.family === 4 ? net.bits - 96 : net.bits;
    if (style === "class" && net.family === 4) {
      const first = Number(i.address.split(".")[0]);
      bits = first < 128 ? 8 : first < 192 ? 16 : 24;
    }
    const base = parseNetwork(
      net.family === 4 ? `${i.address}/${bits}` : `[${i.address}]/${bits}`,
    );
    if (!base) continue;
    // parseNetwork clears the host bits.
    const ip = formatIp(base.base);
    out.add(net.family === 4 ? `${ip}/${bits}` : `[${ip}]/${bits}`);
  }
  return [...out];
}
