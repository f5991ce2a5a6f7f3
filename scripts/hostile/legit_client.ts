/**
 * The well-behaved client whose experience the hostile harness measures,
 * run as a process of its own (so the attackers' load in the harness
 * cannot delay its clocks):
 *
 *     deno run --allow-net=127.0.0.1 scripts/hostile/legit_client.ts PORT SESSIONS [PROXY_CLIENT]
 *
 * Each session sends 4 KiB messages one after another (no pipelining, a
 * 20 ms pause between messages); session 0 reconnects after every 10
 * messages, the others keep their connection (up to 500 messages). With
 * PROXY_CLIENT it first sends a PROXY v1 header naming that address. It
 * prints one line per event, times in epoch milliseconds:
 *
 *     greet SESSION CONNECT_AT GREET_AT CODE
 *     ack SESSION QUEUE_ID DOT_AT ACK_AT
 *     fail SESSION AT DOT_AT|- REASON
 *
 * It stops when its stdin closes (finishing the message in hand), and in
 * any case after 30 minutes. Every wait for a reply is bounded (30 s).
 *
 * @module
 */

const REPLY_TIMEOUT_MS = 30_000;
const MAX_RUN_MS = 30 * 60_000;
const PAUSE_MS = 20;
const encoder = new TextEncoder();
const decoder = new TextDecoder("latin1");

/** Epoch milliseconds with sub-millisecond precision. */
function now(): number {
  return performance.timeOrigin + performance.now();
}

function emit(line: string): void {
  const bytes = encoder.encode(line + "\n");
  let off = 0;
  while (off < bytes.length) off += Deno.stdout.writeSync(bytes.subarray(off));
}

/** A plain line-oriented SMTP connection (Deno.connect). */
class Conn {
  #conn: Deno.TcpConn;
  #buf = "";
  #eof = false;
  #pending: Promise<number | null> | undefined;
  #chunk = new Uint8Array(16384);

  constructor(conn: Deno.TcpConn) {
    this.#conn = conn;
  }

  async send(text: string | Uint8Array): Promise<void> {
    const bytes = typeof text === "string" ? encoder.encode(text) : text;
    let off = 0;
    while (off < bytes.length) off += await this.#conn.write(bytes.subarray(off));
  }

  async reply(): Promise<string> {
    const end = Date.now() + REPLY_TIMEOUT_MS;
    for (;;) {
      const m = /^(?:\d{3}-[^\n]*\n)*\d{3}(?: [^\n]*)?\r?\n/.exec(this.#buf);
      if (m) {
        this.#buf = this.#buf.slice(m[0].length);
        return m[0].trimEnd();
      }
      if (this.#eof) throw new Error("connection closed");
      const left = end - Date.now();
      if (left <= 0) throw new Error("reply timeout");
      this.#pending ??= this.#conn.read(this.#chunk);
      let timer: ReturnType<typeof setTimeout> | undefined;
      const got = await Promise.race([
        this.#pending,
        new Promise<"timeout">((r) => timer = setTimeout(() => r("timeout"), left)),
      ]);
      clearTimeout(timer);
      if (got === "timeout") continue;
      this.#pending = undefined;
      if (got === null) this.#eof = true;
      else this.#buf += decoder.decode(this.#chunk.subarray(0, got));
    }
  }

  close(): void {
    try {
      this.#conn.close();
    } catch { /* closed */ }
  }
}

function expect(reply: string, code: string, what: string): void {
  if (!reply.startsWith(code)) throw new Error(`${what}: ${reply.split("\r\n").at(-1)}`);
}

function message(session: number, n: number): Uint8Array {
  const head = `From: <legit@legit.example>\r\nTo: <u@hostile.example>\r\n` +
    `Subject: legit ${session}.${n}\r\nMessage-Id: <legit.${session}.${n}.${Date.now()}@legit.example>\r\n\r\n`;
  const line = "The quick brown fox jumps over the lazy dog, as ever, 0123456789.\r\n";
  return encoder.encode(
    head + line.repeat(Math.ceil((4096 - head.length) / line.length)) + ".\r\n",
  );
}

let stopping = false;

async function session(id: number, port: number, proxyClient: string | undefined): Promise<void> {
  const perConnection = id === 0 ? 10 : 500;
  let n = 0;
  const started = Date.now();
  while (!stopping && Date.now() - started < MAX_RUN_MS) {
    let conn: Conn | undefined;
    let dotAt: number | undefined;
    try {
      const connectAt = now();
      const tcp = await Deno.connect({ hostname: "127.0.0.1", port });
      conn = new Conn(tcp);
      if (proxyClient) {
        const local = tcp.localAddr as Deno.NetAddr;
        await conn.send(`PROXY TCP4 ${proxyClient} 127.0.0.1 ${local.port} ${port}\r\n`);
      }
      const greeting = await conn.reply();
      emit(`greet ${id} ${connectAt.toFixed(1)} ${now().toFixed(1)} ${greeting.slice(0, 3)}`);
      expect(greeting, "220", "greeting");
      await conn.send("EHLO legit.example\r\n");
      expect(await conn.reply(), "250", "EHLO");
      for (let i = 0; i < perConnection && !stopping; i++) {
        dotAt = undefined;
        await conn.send("MAIL FROM:<legit@legit.example>\r\n");
        expect(await conn.reply(), "250", "MAIL");
        await conn.send("RCPT TO:<u@hostile.example>\r\n");
        expect(await conn.reply(), "250", "RCPT");
        await conn.send("DATA\r\n");
        expect(await conn.reply(), "354", "DATA");
        await conn.send(message(id, n++));
        dotAt = now();
        const done = await conn.reply();
        expect(done, "250", "end of data");
        const queueId = /queued as (\S+)/.exec(done)?.[1] ?? "?";
        emit(`ack ${id} ${queueId} ${dotAt.toFixed(1)} ${now().toFixed(1)}`);
        dotAt = undefined;
        await new Promise((r) => setTimeout(r, PAUSE_MS));
      }
      await conn.send("QUIT\r\n");
      await conn.reply().catch(() => "");
    } catch (e) {
      const why = (e as Error).message.replace(/\s+/g, " ").slice(0, 200);
      emit(`fail ${id} ${now().toFixed(1)} ${dotAt === undefined ? "-" : dotAt.toFixed(1)} ${why}`);
      await new Promise((r) => setTimeout(r, 100));
    } finally {
      conn?.close();
    }
  }
}

if (import.meta.main) {
  const port = Number(Deno.args[0]);
  const sessions = Number(Deno.args[1] ?? "2");
  const proxyClient = Deno.args[2];
  if (!(port > 0) || !(sessions >= 1 && sessions <= 16)) {
    emit("usage: legit_client.ts PORT SESSIONS [PROXY_CLIENT]");
    Deno.exit(2);
  }
  // Stop when the harness closes our stdin.
  (async () => {
    const buf = new Uint8Array(64);
    while ((await Deno.stdin.read(buf)) !== null) { /* ignore input */ }
    stopping = true;
  })();
  await Promise.all(Array.from({ length: sessions }, (_, i) => session(i, port, proxyClient)));
  Deno.exit(0);
}
