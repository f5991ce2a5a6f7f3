/**
 * Reset flood: connections that complete the TCP handshake and are reset
 * (SO_LINGER 0, then close) before the server takes them, 100 a second
 * from each of two loops. Each waits in the listen queue already dead:
 * the server's accept gets it and fails (the peer's address is gone). That
 * failure is the client's doing, not the listener's: it must not make the
 * server wait between accepts or close and reopen its listening socket,
 * which would refuse every other client meanwhile. Deno cannot reset a
 * connection, so the loops are Python's (bounded in count and time).
 *
 * @module
 */

import { type Attack, type AttackContext, type AttackOutcome, pause } from "../attack.ts";

const LOOPS = 2;
/** Per loop, at most (and at most 100 a second: the failure shows at 40). */
const MAX_RESETS = 20_000;

/** One loop: connect, reset, until the time is up or the count reached; prints the count. */
const RESET_LOOP = `
import signal, socket, struct, sys, time
port, source, seconds, most = int(sys.argv[1]), sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
stop = []
signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
end = time.time() + seconds
n = 0
while n < most and time.time() < end and not stop:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.bind((source, 0))
    try:
        s.connect(("127.0.0.1", port))
        n += 1
    except OSError:
        pass
    s.close()
    time.sleep(0.01)
print(n)
`;

/** The attack. */
export const resetFlood: Attack = {
  name: "reset-flood",
  summary: `${LOOPS} loops that connect and reset before the server accepts`,
  target: "main",
  // A listener closed and reopened (after 5 s of failing accepts) refuses the stream.
  quickMinMs: 7000,
  async run(ctx: AttackContext): Promise<AttackOutcome> {
    const mark = ctx.server.logMark;
    // Until the window ends; bounded anyway (the harness's longest window is minutes).
    const seconds = ctx.quick ? 30 : 300;
    const loops = Array.from({ length: LOOPS }, (_, i) =>
      new Deno.Command("python3", {
        args: [
          "-c",
          RESET_LOOP,
          String(ctx.port),
          ctx.address(i),
          String(seconds),
          String(MAX_RESETS),
        ],
        stdout: "piped",
        stderr: "piped",
      }).spawn());
    ctx.ready();
    await Promise.race([ctx.ended, pause(seconds * 1000, ctx.signal)]);
    for (const p of loops) {
      try {
        p.kill("SIGTERM");
      } catch { /* ended */ }
    }
    const outputs = await Promise.all(loops.map((p) => p.output()));
    const resets = outputs.map((o) => Number(new TextDecoder().decode(o.stdout).trim()) || 0)
      .reduce((a, b) => a + b, 0);
    const reopened = ctx.server.logSince(mark).filter((l) => /opening it again/.test(l));
    return {
      checks: [{
        name: "the listener is never closed and opened again for a client's reset",
        ok: reopened.length === 0,
        detail: reopened.length === 0 ? "no reopen" : `${reopened.length}: ${reopened[0]}`,
      }],
      notes: [`${resets} connections reset by ${LOOPS} loops`],
    };
  },
};
