/**
 * The server's TLS contexts, built once from the configuration: the
 * certificate chain and key (smtpd_tls_cert_file, smtpd_tls_key_file), the
 * protocol range (smtpd_tls_protocols, or smtpd_tls_mandatory_protocols
 * when TLS is required: security level encrypt, and every wrapper-mode
 * address) and the cipher grade (smtpd_tls_ciphers,
 * smtpd_tls_mandatory_ciphers). The TLS library (rustls, behind Deno's
 * node:tls) offers only AEAD suites of 128 bits and more, which OpenSSL
 * grades "high": every grade but "null" is met as it is; "null" (no
 * encryption) cannot be, and is refused. Each mistake stops the start
 * with file and line.
 *
 * @module
 */

import type { SecureContext } from "node:tls";
import {
  type Config,
  ConfigError,
  type LoadedConfig,
  readRegularFile,
  unreadableReason,
} from "./config/mod.ts";
import { parseTlsProtocols } from "./transport/tls_protocols.ts";
import type { ServerTls } from "./transport/node_socket.ts";
import { sniContexts } from "./tls_sni.ts";
import { parseListenAddress } from "./transport/tcp_listener.ts";

/** One PEM certificate, whole. */
const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** One PEM private key (PKCS#8, RSA or EC), whole. */
const PEM_PRIVATE_KEY = /-----BEGIN ([A-Z ]*)PRIVATE KEY-----[\s\S]+?-----END \1PRIVATE KEY-----/;

/** A problem of the private key alone (not of the certificate or the pair). */
class KeyProblem extends Error {}

/** The key file holds no key (checkPair's message). */
const NO_KEY = "the key file holds no PEM private key";

/**
 * A key problem's message, saying where the key was looked for when the
 * key parameter is empty (Postfix's default: the certificate file).
 */
function keyMessage(e: unknown, keyParam: string, certParam: string): string {
  const text = (e as Error).message;
  return e instanceof KeyProblem && text === NO_KEY && keyParam === ""
    ? `${certParam} holds no PEM private key, and the key is looked for there: ` +
      `${certParam.replace("cert", "key")} is empty (as in Postfix, it then means ${certParam})`
    : text;
}

/** The key parameters and the certificate parameters they default to, as in Postfix. */
const KEY_OF = {
  smtpd_tls_key_file: "smtpd_tls_cert_file",
  smtpd_tls_eckey_file: "smtpd_tls_eccert_file",
} as const;

/**
 * The private key of a key file, which may hold the certificate chain too
 * (Postfix's default: smtpd_tls_key_file = $smtpd_tls_cert_file).
 * @param pem the file's text
 * @returns the key block, or the whole text when it has none (the check
 *   that follows then says what is wrong)
 */
export function privateKeyPart(pem: string): string {
  return PEM_PRIVATE_KEY.exec(pem)?.[0] ?? pem;
}

/**
 * The certificates of a certificate file, which may hold the key too.
 * @param pem the file's text
 * @returns the certificate blocks, leaf first, or the whole text when it has none
 */
export function certificatePart(pem: string): string {
  const certs = pem.match(PEM_CERTIFICATE);
  return certs ? certs.join("\n") + "\n" : pem;
}

/** The contexts the listeners use. */
export interface TlsContexts {
  /** For STARTTLS on the plain addresses; undefined when it is not offered (level none). */
  readonly starttls: ServerTls | undefined;
  /** For the wrapper-mode addresses (TLS required: the mandatory settings). */
  readonly wrapper: ServerTls;
  /**
   * The TLS engine's loopback address (smtpd_tls_loopback_listen), for the
   * main thread; thread N listens on port + N, and on ecdsaPort + N for the
   * ECDSA chain when there is one. Undefined: node:tls.
   */
  readonly engine?: {
    readonly hostname: string;
    readonly port: number;
    readonly ecdsaPort?: number;
  };
}

/**
 * Why the program needs a TLS context: STARTTLS offered, or a wrapper-mode
 * address.
 * @param c the configuration
 * @returns the reason, starting with the parameter's name, or undefined
 */
export function tlsNeededBy(c: Config): string | undefined {
  if (c.smtpd_tls_security_level !== "none") {
    return `smtpd_tls_security_level is "${c.smtpd_tls_security_level}"`;
  }
  if (c.smtpd_tls_wrappermode) return "smtpd_tls_wrappermode is true";
  if (c.smtpd_tls_wrappermode_listen.length > 0) return "smtpd_tls_wrappermode_listen is set";
  return undefined;
}

/**
 * Builds the TLS contexts.
 * @param loaded the configuration
 * @param warn receives what is served though it is likely a mistake (a
 *   certificate out of its validity period)
 * @returns the contexts, or undefined when TLS is off
 * @throws {ConfigError} for missing or unreadable files, a bad key/certificate
 *   pair, or a protocol list or cipher grade that cannot be enforced
 */
export async function tlsContext(
  loaded: LoadedConfig,
  warn?: (text: string) => void,
): Promise<TlsContexts | undefined> {
  const c = loaded.config;
  const because = tlsNeededBy(c);
  if (!because) return undefined;
  const at = (key: string) => ({
    file: loaded.file,
    line: loaded.lineOf(key) ?? loaded.lineOf(because.split(" ")[0] as string),
    key,
  });
  const read = (
    key:
      | "smtpd_tls_cert_file"
      | "smtpd_tls_key_file"
      | "smtpd_tls_eccert_file"
      | "smtpd_tls_eckey_file",
  ): string => {
    // An empty key file parameter means the certificate file (Postfix's default).
    const path = c[key] || (key in KEY_OF ? c[KEY_OF[key as keyof typeof KEY_OF]] : "");
    if (!path) throw new ConfigError(`${key} is required when ${because}`, at(key));
    try {
      const text = readRegularFile(path);
      return key in KEY_OF ? privateKeyPart(text) : certificatePart(text);
    } catch (e) {
      const why = unreadableReason(path, e, "outside the paths this program may read");
      throw new ConfigError(`${key}: cannot read "${path}": ${why}`, at(key));
    }
  };
  const settings = (mandatory: boolean) => {
    const protoKey = mandatory ? "smtpd_tls_mandatory_protocols" : "smtpd_tls_protocols";
    const cipherKey = mandatory ? "smtpd_tls_mandatory_ciphers" : "smtpd_tls_ciphers";
    const range = parseTlsProtocols(c[protoKey]);
    if ("error" in range) throw new ConfigError(`${protoKey}: ${range.error}`, at(protoKey));
    if (c[cipherKey] === "null") {
      throw new ConfigError(
        `${cipherKey}: "null" (no encryption) is not supported: the TLS library offers only ` +
          `encrypting cipher suites`,
        at(cipherKey),
      );
    }
    return range;
  };
  const opportunistic = settings(c.smtpd_tls_security_level === "encrypt");
  const mandatory = settings(true);
  // An ECDSA-only server names its chain in smtpd_tls_eccert_file alone
  // (Postfix allows each of its chains on its own): it is then the one chain.
  const ecdsaOnly = onlyEcdsaChain(c);
  const [certKey, keyKey] = ecdsaOnly
    ? ["smtpd_tls_eccert_file", "smtpd_tls_eckey_file"] as const
    : ["smtpd_tls_cert_file", "smtpd_tls_key_file"] as const;
  const cert = read(certKey);
  const key = read(keyKey);
  // node:tls is loaded only when TLS is on: it costs every isolate memory.
  const { createSecureContext } = await import("node:tls");
  const { createPrivateKey, X509Certificate } = await import("node:crypto");
  // createSecureContext takes a key that is not the certificate's, or a
  // certificate cut short (a file half written at a reload), without a word.
  const checkPair = (k: string, chain: string): void => {
    const blocks = chain.match(PEM_CERTIFICATE) ?? [];
    const begun = chain.split("-----BEGIN CERTIFICATE-----").length - 1;
    if (blocks.length === 0 || blocks.length !== begun) {
      throw new Error("the certificate file does not hold whole PEM certificates");
    }
    if (!PEM_PRIVATE_KEY.test(k)) throw new KeyProblem(NO_KEY);
    // OpenSSL's own words ("interrupted or cancelled", "DECODER routines::
    // unsupported", "nom error: Eof") do not say which file is wrong, nor how.
    if (/^-----BEGIN ENCRYPTED PRIVATE KEY-----|^Proc-Type: 4,ENCRYPTED/m.test(k)) {
      throw new KeyProblem(
        "the private key is encrypted: nothing can give its passphrase at start; store it " +
          "unencrypted (openssl pkey -in KEY -out NEW), readable by this program only",
      );
    }
    const certs = blocks.map((b, i) => {
      try {
        return new X509Certificate(b);
      } catch (e) {
        throw new Error(
          `certificate ${i + 1} of the file cannot be read (damaged PEM?): ${(e as Error).message}`,
        );
      }
    });
    let privateKey: ReturnType<typeof createPrivateKey>;
    try {
      privateKey = createPrivateKey(k);
    } catch (e) {
      throw new KeyProblem(
        `the private key cannot be read (damaged PEM?): ${(e as Error).message}`,
      );
    }
    if (!(certs[0] as InstanceType<typeof X509Certificate>).checkPrivateKey(privateKey)) {
      throw new Error("the private key does not match the certificate");
    }
    // What OpenSSL (Postfix) serves but rustls, which does every handshake
    // here, cannot: found now, not as a failed handshake with every client
    // (node:tls) or a chain the engine does not take (at start or reload).
    const refused = unservableKey(
      privateKey.asymmetricKeyType,
      privateKey.asymmetricKeyDetails ?? {},
    );
    if (refused) throw new KeyProblem(refused);
    if (engine && x509Version(blocks[0] as string) !== 3) {
      throw new Error(
        `the certificate is X.509 version ${x509Version(blocks[0] as string)}: the TLS engine ` +
          "(rustls) serves version 3 certificates only (reissue it with extensions, e.g. " +
          "basicConstraints; without the engine, node:tls serves it)",
      );
    }
  };
  type Range = { minVersion: string; maxVersion: string };
  const context = (k: string, chain: string, range: Range): SecureContext => {
    checkPair(k, chain);
    return createSecureContext(
      { cert: chain, key: k, ...range } as Parameters<typeof createSecureContext>[0],
    );
  };
  const build = (range: Range): ServerTls => {
    let main: SecureContext;
    try {
      main = context(key, cert, range);
    } catch (e) {
      // A problem of the key alone names the key's line when it has one.
      const where = e instanceof KeyProblem && c[keyKey] ? keyKey : certKey;
      throw new ConfigError(
        `${certKey}/${keyKey}: ${keyMessage(e, c[keyKey], certKey)}`,
        at(where),
      );
    }
    const sni = sniContexts(loaded, (k, chain) => context(k, chain, range));
    return sni ? { context: main, sni } : { context: main };
  };
  const engine = engineAddress(loaded, [opportunistic, mandatory]);
  const ec = ecdsaChain(loaded, engine, read);
  if (ec) {
    try {
      checkPair(ec.key, ec.cert);
      // The engine gives this chain to clients that list ECDSA signature
      // schemes: another key there (RSA, Ed25519) fails their handshakes.
      const type = createPrivateKey(ec.key).asymmetricKeyType;
      if (type !== "ec") {
        throw new Error(
          `the private key is of type ${type ?? "unknown"}, not ECDSA: this chain goes to ` +
            "clients that list ECDSA signature schemes (the first chain, smtpd_tls_cert_file, " +
            "serves the others)",
        );
      }
    } catch (e) {
      throw new ConfigError(
        `smtpd_tls_eccert_file/smtpd_tls_eckey_file: ${
          keyMessage(e, c.smtpd_tls_eckey_file, "smtpd_tls_eccert_file")
        }`,
        at(
          e instanceof KeyProblem && c.smtpd_tls_eckey_file
            ? "smtpd_tls_eckey_file"
            : "smtpd_tls_eccert_file",
        ),
      );
    }
  }
  const pem = engine ? { pem: { cert, key }, ...(ec ? { ecPem: ec } : {}) } : {};
  const wrapper = { ...build(mandatory), ...pem };
  // Served all the same, as Postfix serves it (a client that does not check,
  // most MTAs, still gets TLS), but said at start, in config --check and at
  // a reload: clients that check refuse it.
  const chains: [string, string][] = [
    [certKey, cert],
    ...(ec ? [["smtpd_tls_eccert_file", ec.cert] as [string, string]] : []),
  ];
  for (const [k, chain] of warn ? chains : []) {
    const dated = validityProblem(
      new X509Certificate(chain.match(PEM_CERTIFICATE)?.[0] ?? ""),
      new Date(),
    );
    if (dated) warn?.(`${loaded.placeOf(k)}${k}: ${dated}`);
  }
  const same = opportunistic.minVersion === mandatory.minVersion &&
    opportunistic.maxVersion === mandatory.maxVersion;
  const starttls = c.smtpd_tls_security_level === "none"
    ? undefined
    : same
    ? wrapper
    : { ...build(opportunistic), ...pem };
  return { starttls, wrapper, ...(engine ? { engine } : {}) };
}

/**
 * Whether a certificate is out of its validity period.
 * @param cert the leaf certificate
 * @param now the time
 * @returns what is wrong, or undefined
 */
export function validityProblem(
  cert: { validFrom: string; validTo: string },
  now: Date,
): string | undefined {
  const served = "clients that check certificates refuse it (it is served, as Postfix serves it)";
  if (now.getTime() > Date.parse(cert.validTo)) {
    return `the certificate expired on ${cert.validTo}: ${served}`;
  }
  if (now.getTime() < Date.parse(cert.validFrom)) {
    return `the certificate is not valid before ${cert.validFrom}: ${served}`;
  }
  return undefined;
}

/**
 * Why rustls cannot sign with a key that OpenSSL takes: its types are RSA
 * of 2048 to 8192 bits (not RSA-PSS keys), ECDSA on P-256, P-384 and
 * P-521, and Ed25519.
 * @param type the key's type (node:crypto's asymmetricKeyType)
 * @param details its details (modulusLength, namedCurve)
 * @returns why not, or undefined when it can
 */
export function unservableKey(
  type: string | undefined,
  details: { modulusLength?: number; namedCurve?: string },
): string | undefined {
  const supported = "RSA (2048 to 8192 bits), ECDSA (P-256, P-384, P-521) and Ed25519";
  if (type === "rsa") {
    const bits = details.modulusLength ?? 0;
    if (bits >= 2048 && bits <= 8192) return undefined;
    return `the private key is RSA of ${bits} bits: the TLS library (rustls) signs with ${supported} keys`;
  }
  if (type === "ec") {
    const curve = details.namedCurve ?? "unknown";
    if (["prime256v1", "secp384r1", "secp521r1"].includes(curve)) return undefined;
    return `the private key is ECDSA on ${curve}: the TLS library (rustls) signs with ${supported} keys`;
  }
  if (type === "ed25519") return undefined;
  return `the private key is of type ${
    type ?? "unknown"
  }: the TLS library (rustls) signs with ${supported} keys`;
}

/**
 * The X.509 version of a PEM certificate, read from its DER: the
 * TBSCertificate's optional [0] version field (absent: version 1).
 * @param pem one PEM certificate, already parsed once (well formed)
 * @returns 1, 2 or 3
 */
export function x509Version(pem: string): number {
  const base64 = pem.replace(/-----[A-Z ]+-----/g, "").replace(/\s+/g, "");
  const der = Uint8Array.from(atob(base64), (ch) => ch.charCodeAt(0));
  let i = 0;
  // Skips a tag and its length, leaving i at the contents.
  const enter = () => {
    i++;
    const len = der[i++] ?? 0;
    if (len & 0x80) i += len & 0x7f;
  };
  enter(); // Certificate ::= SEQUENCE
  enter(); // tbsCertificate ::= SEQUENCE
  if (der[i] !== 0xa0) return 1; // no [0] EXPLICIT Version: v1
  enter();
  if (der[i] !== 0x02 || der[i + 1] !== 1) return 1;
  return (der[i + 2] ?? 0) + 1; // INTEGER 0, 1, 2 for v1, v2, v3
}

/**
 * How many loopback ports the TLS engine takes from smtpd_tls_loopback_listen's
 * port on: one per listener thread for each chain (8 counted when
 * smtpd_listen_threads is 0, the most it starts then), the ECDSA chain's run
 * right after the first. The start checks them; `smtpd permissions` grants them.
 * @param c the configuration
 * @returns the ports of one chain, and of all
 */
export function enginePorts(c: Config): { perChain: number; total: number } {
  const perChain = c.smtpd_listen_threads > 0 ? c.smtpd_listen_threads : 8;
  return { perChain, total: perChain * (secondChain(c) ? 2 : 1) };
}

/**
 * Whether there is a second chain: smtpd_tls_eccert_file beside the first.
 * @param c the configuration
 * @returns true when there is
 */
export function secondChain(c: Config): boolean {
  return c.smtpd_tls_eccert_file !== "" && !onlyEcdsaChain(c);
}

/**
 * Whether the ECDSA chain is the only one: smtpd_tls_eccert_file without
 * smtpd_tls_cert_file (nor smtpd_tls_key_file).
 * @param c the configuration
 * @returns true when it is
 */
function onlyEcdsaChain(c: Config): boolean {
  return c.smtpd_tls_eccert_file !== "" && c.smtpd_tls_cert_file === "" &&
    c.smtpd_tls_key_file === "";
}

/**
 * smtpd_tls_eccert_file and smtpd_tls_eckey_file: a second chain, which only
 * the TLS engine can serve beside the first.
 * @returns the chain, or undefined when not configured
 * @throws {ConfigError} with file and line
 */
function ecdsaChain(
  loaded: LoadedConfig,
  engine: { port: number } | undefined,
  read: (key: "smtpd_tls_eccert_file" | "smtpd_tls_eckey_file") => string,
): { cert: string; key: string } | undefined {
  const c = loaded.config;
  if (!c.smtpd_tls_eccert_file && !c.smtpd_tls_eckey_file) return undefined;
  const at = (k: string) => ({ file: loaded.file, line: loaded.lineOf(k), key: k });
  // An empty smtpd_tls_eckey_file means the key is in smtpd_tls_eccert_file.
  if (!c.smtpd_tls_eccert_file) {
    throw new ConfigError(
      "smtpd_tls_eccert_file is required with smtpd_tls_eckey_file (a second chain needs both)",
      at("smtpd_tls_eckey_file"),
    );
  }
  if (onlyEcdsaChain(c)) return undefined; // the one chain, not a second
  if (!engine) {
    throw new ConfigError(
      "smtpd_tls_eccert_file: a second chain needs the TLS engine (smtpd_tls_loopback_listen): " +
        "node:tls serves only the first chain it is given",
      at("smtpd_tls_eccert_file"),
    );
  }
  return { cert: read("smtpd_tls_eccert_file"), key: read("smtpd_tls_eckey_file") };
}

/**
 * smtpd_tls_loopback_listen, checked: a loopback address (the engine takes
 * connections from this process only), and settings the engine can keep:
 * one chain (no SNI map) and the protocols it speaks, TLSv1.2 and TLSv1.3.
 * @returns the address, or undefined when the parameter is empty
 * @throws {ConfigError} with the parameter's file and line
 */
function engineAddress(
  loaded: LoadedConfig,
  ranges: readonly { minVersion: string; maxVersion: string }[],
): { hostname: string; port: number } | undefined {
  const c = loaded.config;
  const text = c.smtpd_tls_loopback_listen.trim();
  if (!text) return undefined;
  const key = "smtpd_tls_loopback_listen";
  const at = { file: loaded.file, line: loaded.lineOf(key), key };
  const a = parseListenAddress(text);
  if (!a || !/^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|::1)$/.test(a.hostname)) {
    throw new ConfigError(
      `${key}: cannot use "${text}": expected a loopback address and port (127.0.0.1:PORT or [::1]:PORT); ` +
        `only this program connects to it`,
      at,
    );
  }
  const ports = enginePorts(c);
  if (a.port !== 0 && a.port + ports.total - 1 > 65535) {
    throw new ConfigError(
      `${key}: port ${a.port}: the listener threads (and an ECDSA chain) need the ports up to ` +
        `port + ${ports.total - 1}`,
      at,
    );
  }
  if (c.tls_server_sni_maps.length > 0) {
    throw new ConfigError(
      `${key}: cannot be used with tls_server_sni_maps: the TLS engine serves one certificate chain; ` +
        "leave it empty to serve SNI names through node:tls",
      at,
    );
  }
  for (const r of ranges) {
    if (r.minVersion !== "TLSv1.2" || r.maxVersion !== "TLSv1.3") {
      throw new ConfigError(
        `${key}: the TLS engine speaks TLSv1.2 and TLSv1.3 and cannot be limited to ${r.minVersion}` +
          `${r.minVersion === r.maxVersion ? "" : `-${r.maxVersion}`} ` +
          `(smtpd_tls_protocols, smtpd_tls_mandatory_protocols); leave it empty for node:tls`,
        at,
      );
    }
  }
  const ecdsaPort = secondChain(c) ? (a.port === 0 ? 0 : a.port + ports.perChain) : undefined;
  return { hostname: a.hostname, port: a.port, ...(ecdsaPort !== undefined ? { ecdsaPort } : {}) };
}
