/**
 * A socketmap table server for tests, on loopback.
 *
 * @module
 */

/** A running socketmap server. */
export interface SocketmapServer {
  readonly port: number;
  /** Each query it got ("name key"), in order. */
  readonly queries: string[];
  /** Connections accepted so far. */
  connections(): number;
  /** Connections still open. */
  open(): number;
  /** Stops listening and closes the connections it still holds. */
  stop(): void;
}

/** A socketmap server: netstring "name key" in, "OK value"/"NOTFOUND "/"TEMP why" out. */
export function socketmapServer(map: Record<string, string>): SocketmapServer {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const queries: string[] = [];
  let connections = 0;
  // Connections the server holds: down by one when the daemon closes one.
  let open = 0;
  const enc = new TextEncoder();
  const ns = (s: string) => enc.encode(`${enc.encode(s).length}:${s},`);
  const held = new Set<Deno.Conn>();
  (async () => {
    for await (const conn of listener) {
      connections++;
      open++;
      held.add(conn);
      (async () => {
        let buf = "";
        const chunk = new Uint8Array(4096);
        for (;;) {
          const n = await conn.read(chunk).catch(() => null);
          if (n === null) break;
          buf += new TextDecoder().decode(chunk.subarray(0, n));
          let m: RegExpExecArray | null;
          while ((m = /^(\d+):/.exec(buf)) && buf.length > m[0].length + Number(m[1])) {
            const q = buf.slice(m[0].length, m[0].length + Number(m[1]));
            buf = buf.slice(m[0].length + Number(m[1]) + 1);
            queries.push(q);
            const key = q.slice(q.indexOf(" ") + 1);
            const v = map[key];
            await conn.write(
              ns(v === undefined ? "NOTFOUND " : v.startsWith("TEMP") ? v : `OK ${v}`),
            );
          }
        }
        open--;
        held.delete(conn);
        conn.close();
      })().catch(() => {});
    }
  })().catch(() => {});
  return {
    port: (listener.addr as Deno.NetAddr).port,
    queries,
    connections: () => connections,
    open: () => open,
    stop() {
      listener.close();
      for (const c of held) {
        try {
          c.close();
        } catch { /* closed */ }
      }
    },
  };
}
