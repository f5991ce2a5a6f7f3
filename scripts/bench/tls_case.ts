/**
 * The bench's TLS case: one certificate (RSA 2048, made for the run) that
 * both servers serve, each server's TLS settings (STARTTLS offered, level
 * may), and the load command (tls_source.ts, since smtp-source cannot
 * speak TLS).
 *
 * @module
 */

import { join } from "node:path";

/** The certificate both servers serve. */
export interface BenchCert {
  readonly cert: string;
  readonly key: string;
}

/** The name in the certificate, which the load client checks. */
export const TLS_NAME = "bench.localdomain";

/**
 * Makes the run's certificate (self-signed, an end-entity certificate with
 * the name in subjectAltName, as rustls requires) under `dir`.
 * @param dir the run's work directory
 * @returns the files
 */
export async function makeBenchCert(dir: string): Promise<BenchCert> {
  await Deno.mkdir(dir, { recursive: true });
  const cert = join(dir, "cert.pem");
  const key = join(dir, "key.pem");
  const r = await new Deno.Command("openssl", {
    args: [
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-keyout",
      key,
      "-out",
      cert,
      "-days",
      "2",
      "-subj",
      `/CN=${TLS_NAME}`,
      "-addext",
      `subjectAltName=DNS:${TLS_NAME}`,
      "-addext",
      "basicConstraints=critical,CA:FALSE",
    ],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (r.code !== 0) throw new Error(`openssl: ${new TextDecoder().decode(r.stderr)}`);
  await Deno.chmod(key, 0o600);
  return { cert, key };
}

/**
 * Our server's TLS settings.
 * @param c the certificate
 * @param enginePort the TLS engine's loopback port
 * @returns TOML lines
 */
export function ourTlsConfig(c: BenchCert, enginePort: number): string[] {
  return [
    `smtpd_tls_security_level = "may"`,
    `smtpd_tls_cert_file = "${c.cert}"`,
    `smtpd_tls_key_file = "${c.key}"`,
    // The TLS engine, as the README recommends (a free port; --ours
    // smtpd_tls_loopback_listen='""' measures node:tls instead).
    `smtpd_tls_loopback_listen = "127.0.0.1:${enginePort}"`,
  ];
}

/**
 * Postfix's TLS settings: the same certificate, STARTTLS offered, and its
 * defaults otherwise (no session cache; TLS 1.3 tickets on, unused here:
 * the load client resumes no session).
 * @param c the certificate
 * @returns main.cf lines
 */
export function postfixTlsConfig(c: BenchCert): string {
  return [
    "smtpd_tls_security_level = may",
    `smtpd_tls_cert_file = ${c.cert}`,
    `smtpd_tls_key_file = ${c.key}`,
    "smtpd_tls_loglevel = 0",
    "",
  ].join("\n");
}

/**
 * The STARTTLS load command, with smtp-source's options.
 * @param c the certificate the client trusts
 * @param smtpSourceArgs smtp-source's arguments (-s -m -l [-d] -f -t -M host:port)
 * @returns command and arguments
 */
export function tlsSourceCommand(c: BenchCert, smtpSourceArgs: string[]): [string, string[]] {
  const script = new URL("./tls_source.ts", import.meta.url).pathname;
  return [Deno.execPath(), [
    "run",
    "--allow-net=127.0.0.1",
    `--allow-read=${c.cert}`,
    script,
    "--ca",
    c.cert,
    "--name",
    TLS_NAME,
    ...smtpSourceArgs,
  ]];
}

/**
 * The load client's own measure of the run (from its first connection to
 * the last QUIT answered), without its start-up.
 * @param output what it printed
 * @returns seconds, or undefined when it printed none
 */
export function clientElapsedS(output: string): number | undefined {
  const m = /^elapsed_ms=([\d.]+)$/m.exec(output);
  return m ? Number(m[1]) / 1000 : undefined;
}
