/**
 * tls_server_sni_maps: the certificate chain served for the name a client
 * sends in TLS's Server Name Indication. As Postfix's: the lookup key is
 * the name itself, then each ancestor domain with a leading dot
 * (".example.com" for "mx.example.com"); the value is a file (or files,
 * read as one) holding the private key first, then the chain, leaf first,
 * in PEM. A
 * name that matches nothing gets the default chain (smtpd_tls_cert_file).
 * Tables are read whole at start (texthash: and inline: only), every chain
 * is checked then; several chains for one name (RSA and ECDSA) are refused:
 * Deno's node:tls serves only the first.
 *
 * @module
 */

import type { SecureContext } from "node:tls";
import { ConfigError, type LoadedConfig, readRegularFile, unreadableReason } from "./config/mod.ts";
import { parseInline, parseTextTable, TableSyntaxError } from "./policy/tables/text_table.ts";

/** A name → value map from a table spec read whole. */
export type SniEntries = Map<string, string>;

/**
 * Reads one SNI table whole.
 * @param spec "texthash:/path" or "inline:{ name=file, ... }"
 * @param readText reads a file
 * @param origins filled with "file:line" for each name of a texthash: table
 * @returns the entries, names in lower case
 * @throws {Error} for another table type or a file that cannot be read
 */
export function readSniTable(
  spec: string,
  readText: (path: string) => string,
  origins?: Map<string, string>,
): SniEntries {
  const colon = spec.indexOf(":");
  const type = spec.slice(0, colon);
  const arg = spec.slice(colon + 1);
  let entries: Map<string, string>;
  if (type === "texthash") {
    const keyLines = new Map<string, number>();
    try {
      entries = parseTextTable(readText(arg).replace(/^\uFEFF/, ""), keyLines);
    } catch (e) {
      if (!(e instanceof TableSyntaxError)) throw e;
      throw new Error(`${arg}${e.line ? `:${e.line}` : ""}: ${e.message}`);
    }
    for (const [key, line] of keyLines) {
      origins?.set(key.toLowerCase(), `${arg}:${line}`);
    }
  } else if (type === "inline" && /^\{.*\}$/s.test(arg.trim())) {
    entries = parseInline(arg.trim().slice(1, -1));
  } else {
    throw new Error(`"${spec}": only texthash: and inline:{...} tables are supported here`);
  }
  return new Map([...entries].map(([k, v]) => [k.toLowerCase(), v]));
}

/**
 * Looks a name up as Postfix does: the name, then ".parent" for each ancestor.
 * @param entries the tables' entries, first table first
 * @param name the SNI name
 * @returns the value, or undefined
 */
export function sniLookup(entries: readonly SniEntries[], name: string): string | undefined {
  const labels = name.toLowerCase().replace(/\.$/, "").split(".");
  const keys = [
    labels.join("."),
    ...labels.slice(1).map((_, i) => `.${labels.slice(i + 1).join(".")}`),
  ];
  for (const key of keys) {
    for (const t of entries) {
      const v = t.get(key);
      if (v !== undefined) return v;
    }
  }
  return undefined;
}

/**
 * The files a value names (comma or space separated).
 * @param value a table value
 * @returns the paths
 */
export function chainFiles(value: string): string[] {
  return value.split(/[\s,]+/).filter((f) => f !== "");
}

/**
 * Builds the SNI lookup for one protocol range: every chain is read and
 * checked now.
 * @param loaded the configuration
 * @param build makes a context from a key and a chain (PEM)
 * @returns name → context, or undefined when tls_server_sni_maps is empty
 * @throws {ConfigError} naming tls_server_sni_maps's file and line
 */
export function sniContexts(
  loaded: LoadedConfig,
  build: (key: string, cert: string) => SecureContext,
): ((name: string) => SecureContext | undefined) | undefined {
  const specs = loaded.config.tls_server_sni_maps;
  if (specs.length === 0) return undefined;
  const at = {
    file: loaded.file,
    line: loaded.lineOf("tls_server_sni_maps"),
    key: "tls_server_sni_maps",
  };
  const fail = (text: string): never => {
    throw new ConfigError(`tls_server_sni_maps: ${text}`, at);
  };
  const read = (path: string): string => {
    try {
      return readRegularFile(path);
    } catch (e) {
      return fail(`cannot read "${path}": ${unreadableReason(path, e, (e as Error).message)}`);
    }
  };
  const tables: SniEntries[] = [];
  // Per table: "file:line" of each name (texthash:), for the messages below.
  const origins: Map<string, string>[] = [];
  for (const spec of specs) {
    const lines = new Map<string, string>();
    origins.push(lines);
    try {
      tables.push(readSniTable(spec, read, lines));
    } catch (e) {
      if (e instanceof ConfigError) throw e;
      fail((e as Error).message);
    }
  }
  const byValue = new Map<string, SecureContext>();
  for (const [i, t] of tables.entries()) {
    for (const [name, value] of t) {
      if (byValue.has(value)) continue;
      // "file:line: name" of the table entry that names the chain.
      const entry = origins[i]?.has(name) ? `${origins[i]?.get(name)}: ${name}` : name;
      // Postfix's value: files that hold the key, then the chain, leaf
      // first (one file with all, or the key's file and the chain's).
      const files = chainFiles(value);
      let pem = "";
      for (const file of files) {
        try {
          pem += `${readRegularFile(file)}\n`;
        } catch (e) {
          return fail(
            `${entry}: cannot read "${file}": ` +
              unreadableReason(file, e, (e as Error).message),
          );
        }
      }
      const named = files.map((f) => `"${f}"`).join(" + ");
      const keys = pem.match(
        /-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]+?-----END [A-Z ]*PRIVATE KEY-----/g,
      );
      const key = keys?.[0];
      const certs = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g);
      if (!key || !certs) {
        fail(`${entry}: ${named} must hold a private key and a chain (PEM)`);
      }
      if ((keys?.length ?? 0) > 1) {
        fail(
          `${entry}: ${named}: ${keys?.length} private keys: one chain per name is supported ` +
            "(several chains, RSA and ECDSA, cannot be served)",
        );
      }
      try {
        byValue.set(value, build(key as string, (certs as string[]).join("\n")));
      } catch (e) {
        fail(`${entry}: ${named}: ${(e as Error).message}`);
      }
    }
  }
  return (name) => {
    const value = sniLookup(tables, name);
    return value === undefined ? undefined : byValue.get(value);
  };
}
