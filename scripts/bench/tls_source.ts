/**
 * The bench's STARTTLS load client (smtp-source cannot speak TLS): like
 * `smtp-source -s SESSIONS -m MESSAGES -l SIZE [-d]`, every session says
 * EHLO, STARTTLS, EHLO again, then MAIL, RCPT, DATA in lock step (no
 * pipelining, as smtp-source without -P) and QUIT, with one message per
 * connection or, with -d, many. Each server reply is checked: anything
 * but the expected code ends the run with status 1. It prints
 * `elapsed_ms=N`: from the first connection to the last QUIT answered,
 * without this program's own start-up.
 *
 * Usage: deno run --allow-net --allow-read scripts/bench/tls_source.ts
 *   -s SESSIONS -m MESSAGES -l SIZE [-d] -f FROM -t TO -M HELO
 *   --ca CERT.pem --name TLS-NAME HOST:PORT
 *
 * @module
 */

import { parseArgs } from "node:util";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** One connection's replies, read line by line. */
class Replies {
  #buf = "";
  constructor(private conn: Deno.Conn) {}

  /** Switches to the encrypted connection (nothing is buffered after 220). */
  use(conn: Deno.Conn): void {
    if (this.#buf !== "") throw new Error(`plaintext after STARTTLS's 220: ${this.#buf}`);
    this.conn = conn;
  }

  /** Reads one whole reply; fails unless its code is `want`. */
  async expect(want: string, what: string): Promise<void> {
    for (;;) {
      const m = /^(?:\d{3}-[^\n]*\n)*(\d{3})(?: [^\n]*)?\n/.exec(this.#buf);
      if (m) {
        this.#buf = this.#buf.slice(m[0].length);
        if (m[1] !== want) throw new Error(`${what}: ${m[0].trim()}`);
        return;
      }
      const chunk = new Uint8Array(16384);
      const n = await this.conn.read(chunk);
      if (n === null) throw new Error(`${what}: connection closed`);
      this.#buf += decoder.decode(chunk.subarray(0, n));
    }
  }
}

async function send(conn: Deno.Conn, data: Uint8Array | string): Promise<void> {
  const bytes = typeof data === "string" ? encoder.encode(data) : data;
  let off = 0;
  while (off < bytes.length) off += await conn.write(bytes.subarray(off));
}

/** A message of about `size` bytes, dot-terminated, as smtp-source's: headers and X lines. */
function message(from: string, to: string, size: number): Uint8Array {
  let text = `From: <${from}>\r\nTo: <${to}>\r\nSubject: tls bench\r\n\r\n`;
  const line = "X".repeat(78) + "\r\n";
  while (text.length + line.length <= size) text += line;
  return encoder.encode(text + ".\r\n");
}

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    args: Deno.args,
    options: {
      s: { type: "string", default: "1" },
      m: { type: "string", default: "1" },
      l: { type: "string", default: "4096" },
      d: { type: "boolean", default: false },
      f: { type: "string", default: "from@bench.example" },
      t: { type: "string", default: "to@bench.example" },
      M: { type: "string", default: "bench.localdomain" },
      ca: { type: "string" },
      name: { type: "string", default: "bench.localdomain" },
    },
    allowPositionals: true,
  });
  const [host, port] = (positionals[0] ?? "").split(":");
  if (!host || !port || !values.ca) throw new Error("want --ca CERT.pem and HOST:PORT");
  const sessions = Number(values.s);
  let left = Number(values.m);
  const body = message(values.f, values.t, Number(values.l));
  const caCerts = [Deno.readTextFileSync(values.ca)];
  const tlsName = values.name;
  const helo = `EHLO ${values.M}\r\n`;
  const envelope = `MAIL FROM:<${values.f}>\r\n`;
  const rcpt = `RCPT TO:<${values.t}>\r\n`;

  /** One connection: STARTTLS, then messages while `more()` says so. */
  const connection = async (more: () => boolean) => {
    const plain = await Deno.connect({ hostname: host, port: Number(port) });
    // Without it the EHLO after the handshake waits behind the client's
    // Finished for the server's delayed ACK (Nagle): up to 40 ms per
    // connection, the same for both servers, and the bench measured that.
    plain.setNoDelay(true);
    const r = new Replies(plain);
    let conn: Deno.Conn = plain;
    try {
      await r.expect("220", "greeting");
      await send(conn, helo);
      await r.expect("250", "EHLO");
      await send(conn, "STARTTLS\r\n");
      await r.expect("220", "STARTTLS");
      conn = await Deno.startTls(plain, { hostname: tlsName, caCerts });
      r.use(conn);
      await send(conn, helo);
      await r.expect("250", "EHLO after STARTTLS");
      do {
        await send(conn, envelope);
        await r.expect("250", "MAIL");
        await send(conn, rcpt);
        await r.expect("250", "RCPT");
        await send(conn, "DATA\r\n");
        await r.expect("354", "DATA");
        await send(conn, body);
        await r.expect("250", "end of data");
      } while (more());
      await send(conn, "QUIT\r\n");
      await r.expect("221", "QUIT");
    } finally {
      try {
        conn.close();
      } catch { /* closed */ }
    }
  };
  const take = () => left-- > 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: sessions }, async () => {
    if (values.d) {
      if (take()) await connection(take);
    } else {
      while (take()) await connection(() => false);
    }
  }));
  const elapsed = performance.now() - t0;
  Deno.stdout.writeSync(encoder.encode(`elapsed_ms=${elapsed.toFixed(1)}\n`));
  return 0;
}

if (import.meta.main) {
  try {
    Deno.exit(await main());
  } catch (e) {
    Deno.stderr.writeSync(encoder.encode(`tls_source: ${(e as Error).message}\n`));
    Deno.exit(1);
  }
}
