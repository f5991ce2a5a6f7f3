/**
 * One listener thread's accept side: the connection limiter (global cap,
 * per-client cap, stress mode), idle sessions giving way at the cap, the
 * refusals, and the session each admitted connection runs.
 *
 * @module
 */

import { configuredClientRange } from "../transport/client_range.ts";
import { throttled } from "../log/throttle.ts";
import { type Config, retireAll } from "../config/mod.ts";
import type { Runtime } from "../runtime.ts";
import { runSession, type SessionDeps } from "../session/mod.ts";
import {
  type Evicted,
  type ListenAddress,
  type RoomPurpose,
  serveTcp,
  type TcpServer,
} from "../transport/tcp_listener.ts";
import type { RoomParty } from "./room.ts";
import type { Transport } from "../transport/types.ts";
import { ConnectionLedger, ConnectionLimiter } from "../transport/limits.ts";
import { writeAll } from "../io/reply_writer.ts";
import { closing, formatReply, type Reply, tooManyConnections } from "../protocol/reply.ts";

/**
 * Sends a refusal and closes, without a session: one write, bounded to
 * half a second (a 421 fits any fresh socket's buffer), no DNS lookup.
 * A wrapper-mode (implicit TLS) connection is closed without it: its
 * client speaks TLS first and would read a plaintext 421 as a broken TLS
 * record, and a handshake only to refuse would cost what the limit
 * protects (as Postfix drops a wrapper-mode client over its TLS rate
 * before the handshake; the log line says why).
 * @param t the connection
 * @param bytes the formatted reply
 */
async function refuseConnection(t: Transport, bytes: Uint8Array): Promise<void> {
  if (t.implicitTls) {
    t.close();
    return;
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([
      writeAll(t, bytes),
      new Promise((r) => (timer = setTimeout(r, 500))),
    ]);
  } catch {
    /* gone */
  } finally {
    clearTimeout(timer);
    t.close();
  }
}

/** What a listener thread needs to serve. */
export interface ListenerSetup {
  /** The thread's runtime: session dependencies, queue store, TLS, the limiter's exceptions. */
  runtime: Runtime;
  listen: readonly ListenAddress[];
  /** Shared connection counters (from the main thread's limiter). */
  shared?: SharedArrayBuffer;
  /** This thread's own share of them (a listener thread's, released if it dies). */
  ledger?: ConnectionLedger;
  reusePort: boolean;
  /** The main thread's first listeners: ports another process holds are refused (serveTcp). */
  exclusive?: boolean;
  /** This thread's TLS engine address (smtpd_tls_loopback_listen, its ports moved by the thread's index). */
  tlsEngine?: { hostname: string; port: number; ecdsaPort?: number };
  /**
   * With no connection of its own to close at the cap (or out of
   * descriptors): asks the other listener threads to close one of theirs
   * (room.ts); resolves to whether one did.
   */
  roomElsewhere?: (purpose: RoomPurpose, newcomerHeld?: number) => Promise<boolean>;
}

/**
 * How long a connection over default_process_limit waits for a session to
 * end before it is refused (ms): Postfix's master leaves such a client in
 * the listen queue until an smtpd process is free; here the wait is short,
 * so that a flood cannot hold descriptors.
 */
const SLOT_WAIT_MS = 250;

/** Refusals at the global cap are logged at most this often (per thread). */

const REFUSAL_LOG_MS = 10_000;

/**
 * Starts one thread's listeners with its connection limiter. The global
 * cap (default_process_limit) is applied at accept: a connection over it
 * takes an idle session's place, or waits up to SLOT_WAIT_MS for a slot,
 * or gets 421; it costs no session, no DNS lookup (but for a client judged
 * at connect: it makes room only once let in, see seat). A session's slots go
 * back before its last reply is written (SessionDeps.ending). Near the cap
 * (smtpd_stress_threshold) new sessions get the stress limits. The
 * per-client cap is applied to the client's address at accept or, behind
 * a PROXY balancer, to the address in the header (through
 * {@linkcode SessionDeps.admitClient}).
 * @param setup dependencies, addresses, TLS, shared counters
 * @returns the server and its limiter
 */
export async function startListening(
  setup: ListenerSetup,
): Promise<Listening> {
  const { runtime } = setup;
  const { config, logger, store } = runtime;
  const limit = config.default_process_limit;
  // A load that hovers near the threshold enters and leaves stress often:
  // each direction is logged at most once every 10 s, with the count.
  const since = (n: number, text: string) => n > 0 ? ` (${n} ${text} since the last report)` : "";
  const stressEntered = throttled((held: number, sessions: number) =>
    logger.warning(
      `service under stress: ${sessions} of ${limit} sessions (smtpd_stress_threshold ` +
        `${config.smtpd_stress_threshold}%): new sessions get the smtpd_stress_* limits` +
        since(held, "more times"),
    ), REFUSAL_LOG_MS);
  const stressLeft = throttled((held: number, sessions: number) =>
    logger.info(
      `service no longer under stress: ${sessions} of ${limit} sessions` +
        since(held, "more times"),
    ), REFUSAL_LOG_MS);
  const limiter = new ConnectionLimiter({
    global: limit,
    perClient: config.smtpd_client_connection_count_limit,
    exempt: runtime.limitExempt,
    range: configuredClientRange(config),
    stressPercent: config.smtpd_stress_threshold,
    onStress: (stressed, sessions) => (stressed ? stressEntered : stressLeft)(sessions),
  }, setup.shared);
  const busyReply = closing(
    config.myhostname,
    "3.2",
    "Error: too many connections, try again later",
  );
  const perClient = (address: string): Reply => {
    logger.warning(
      // As Postfix: the count this connection would make, and the service.
      `Connection concurrency limit exceeded: ${
        limiter.clientCount(address) + 1
      } from [${address}] for service smtp`,
    );
    return tooManyConnections(config.myhostname, address);
  };
  // Refusals at the cap come in floods: one log line, then a count now and then.
  const logRefusal = throttled((held: number, address: string) =>
    logger.warning(
      `Connection limit exceeded: ${limit} sessions; refused [${address}]` +
        (held > 0 ? ` and ${held} more since the last report` : ""),
    ), REFUSAL_LOG_MS);
  // What a crowding client was counted as: its address, or its network block.
  const crowdingUnit = (address: string) => {
    const unit = limiter.unit(address);
    return unit === address ? "that address" : unit;
  };
  // Idle sessions closed to make room: one line, then a count now and then.
  const logEviction = throttled(
    (held: number, victim: Evicted, why: string) =>
      logger.warning(
        (victim.slow?.unreadMs !== undefined
          ? `closed the slow session of [${victim.address}] (its replies unread for ` +
            `${victim.slow.unreadMs} ms) to make room: `
          : victim.slow?.dnsMs !== undefined
          ? `closed the slow session of [${victim.address}] (waiting ${victim.slow.dnsMs} ms ` +
            `on DNS for its command) to make room: `
          : victim.slow
          ? `closed the slow session of [${victim.address}] (${victim.slow.bytes} bytes in ` +
            `${victim.slow.waitedMs} ms of waiting) to make room: `
          : victim.crowding
          ? `closed a session of [${victim.address}] (${victim.crowding.held} sessions from ` +
            `${crowdingUnit(victim.address)}) to make room: `
          : `closed the idle session of [${victim.address}] (silent ${victim.idleMs} ms) to make ` +
            `room: `) + why + since(held, "more"),
      ),
    REFUSAL_LOG_MS,
  );
  // Set once listening; sessions that arrive before cannot evict anyone.
  const listening: { server?: TcpServer } = {};
  const proxied = config.smtpd_upstream_proxy_protocol === "haproxy";
  // What new sessions run with: replaced on reload, while sessions in
  // progress keep the dependencies they started with.
  let live = runtime;
  let stressedDeps: SessionDeps = { ...live.deps, stressed: () => true };
  const ledger = setup.ledger;
  // Sessions of this thread: a lone one may fsync without a hand-off.
  let active = 0;
  store.inlineSync = () => active === 1;
  // Connections that came at the cap and hold no session slot yet: behind
  // a balancer, until their PROXY header has named their client; with the
  // client restrictions run at connect, until those have judged it (seat).
  let unseated = 0;
  const onTransport = async (t: Transport) => {
    const address = t.peer.kind === "network" ? t.peer.address : "127.0.0.1";
    // The address holding a per-client slot, released when the session ends.
    let counted: string | undefined;
    const deps = live.deps;
    const stressedNow = stressedDeps;
    // With smtpd_delay_reject = no the client restrictions judge the client
    // at connect, and with smtpd_greeting_delay its patience: one refused
    // is refused whatever room there is. At the cap, room is made for a
    // client only once it has been let in (seat). Made first, a client
    // refused every time (a REJECT in an access table, a DNS list, an early
    // talker) closed a session at each connection.
    const judged = (!deps.config.smtpd_delay_reject &&
      deps.config.smtpd_client_restrictions.length > 0) || deps.config.smtpd_greeting_delay > 0;
    // At the cap, a session that has long waited for its client gives its
    // place to the new one; without one, the new client is refused. A
    // client already at its own limit, or over its connection rate, makes
    // no room for itself: both are counted before anyone is closed for it.
    // Counts the client against smtpd_client_connection_count_limit and its
    // connection rate; undefined once it holds its per-client slot, else its
    // refusal (and no slot). As Postfix's anvil, a connection refused for
    // the count is counted in the rate too: a client that keeps connecting
    // at its limit is over its rate soon.
    const enterClient = (client: string): Reply | undefined => {
      if (!limiter.enterClient(client)) {
        deps.overRate?.("connection", client, undefined, "count");
        return perClient(client);
      }
      const overRate = deps.overRate?.("connection", client);
      if (overRate) {
        limiter.leaveClient(client);
        return overRate;
      }
      counted = client;
      ledger?.clientEntered(limiter.clientSlot(client));
      return undefined;
    };
    // The per-client slot, once: when the session ends, or sooner when the
    // listener closes the connection to make room (Transport.sessionBegun).
    const releaseClient = () => {
      if (counted === undefined) return;
      limiter.leaveClient(counted);
      ledger?.clientLeft(limiter.clientSlot(counted));
      counted = undefined;
    };
    // enterClient for a client at the cap. On a wrapper-mode address, a
    // client over its new TLS session rate is refused before its handshake
    // (startImplicitTls): it makes no room either, or it would close a
    // session at every connection.
    const enterClientAtCap = (client: string): Reply | undefined => {
      const refused = enterClient(client);
      if (refused) return refused;
      const overTls = t.implicitTls
        ? deps.overRate?.("newTls", client, undefined, "peek")
        : undefined;
      if (overTls) {
        releaseClient();
        logger.warning(`Refusing TLS service request from [${client}] for service smtp`);
        return overTls;
      }
      return undefined;
    };
    // For a client holding its per-client slot at the cap: resolves to
    // undefined once it holds a global slot too, else to the refusal (and
    // its per-client slot given back).
    const makeRoom = async (client: string): Promise<Reply | undefined> => {
      const asked = Date.now();
      // What the client's address held before it came (its own slot is
      // taken already): an address holding two more may have to give one up.
      const before = limiter.clientCount(client) - 1;
      const victim = listening.server?.evictIdle(before);
      if (victim) {
        logEviction(victim, `${limit} sessions (default_process_limit)`);
        limiter.enterInPlaceOfIdle();
      } else if (listening.server && await setup.roomElsewhere?.("session", before)) {
        // Another listener thread closed one of its sessions for this client.
        limiter.enterInPlaceOfIdle();
      } else if (await limiter.enterWithin(SLOT_WAIT_MS - (Date.now() - asked)) === "global") {
        // As in Postfix's listen queue, the client waited a moment for a
        // session to end; none did.
        releaseClient();
        logRefusal(client);
        return busyReply;
      }
      return undefined;
    };
    // Resolves to undefined once the client holds a global and a
    // per-client slot, else to its refusal.
    const roomFor = async (client: string): Promise<Reply | undefined> =>
      enterClientAtCap(client) ?? await makeRoom(client);
    // Whether this connection holds a global slot. Behind a balancer at
    // the cap, room is made only once the PROXY header has named the
    // client (admitClient), and with judged only once the client
    // restrictions have let it in (seat): until then the connection holds
    // none.
    let held = true;
    // Counted in unseated until it holds a slot or it ends.
    let waiting = false;
    const seated = () => {
      if (waiting) unseated--;
      waiting = false;
    };
    // The global slot is taken: the session has its place from now on.
    const takeSeat = () => {
      seated();
      held = true;
      ledger?.entered();
      // Closing the connection frees a session slot from now on (crowding may pick it).
      t.sessionBegun?.(releaseClient, counted);
    };
    if (limiter.enter() === "global") {
      if (proxied || judged) {
        // Its count and rates first: a client over them gets its own refusal.
        const refusal = proxied ? undefined : enterClientAtCap(address);
        if (refusal) return await refuseConnection(t, encodeReply(refusal));
        // At most default_process_limit of them at once on this thread
        // (each for smtpd_upstream_proxy_timeout, or its judgement, at
        // most): past that, refused.
        if (unseated >= limit) {
          releaseClient();
          logRefusal(address);
          return await refuseConnection(t, encodeReply(busyReply));
        }
        held = false;
        waiting = true;
        unseated++;
      } else {
        const refusal = await roomFor(address);
        if (refusal) return await refuseConnection(t, encodeReply(refusal));
      }
    }
    if (held) ledger?.entered();
    const stressed = limiter.stressed;
    const admitClient = async (client: string): Promise<Reply | undefined> => {
      if (!held) {
        // Behind a balancer at the cap: its client is known now. Judged at
        // connect, it takes its place only once judged (seat).
        if (judged) return enterClientAtCap(client);
        seated();
        const refusal = await roomFor(client);
        if (refusal) return refusal;
        takeSeat();
        return undefined;
      }
      // smtpd_client_connection_rate_limit too, once the client is known.
      const refused = enterClient(client);
      if (refused) return refused;
      // Room-making counts it with its client's sessions from now on.
      if (proxied) t.sessionBegun?.(releaseClient, client);
      return undefined;
    };
    // After the client restrictions at connect: a connection that came at
    // the cap takes its place now; refused, it makes no room (it takes a
    // place only if one is free) and the session sends it its refusal.
    const seat = async (refused: boolean): Promise<Reply | undefined> => {
      if (held) return undefined;
      const client = counted ?? address;
      if (limiter.enter() === "ok") {
        takeSeat();
        return undefined;
      }
      if (refused) {
        releaseClient();
        seated();
        return busyReply;
      }
      const refusal = await makeRoom(client);
      if (refusal) {
        seated();
        return refusal;
      }
      takeSeat();
      return undefined;
    };
    // The slots go back once the session is over but for its last reply
    // (the session says so), or when it has ended, whichever comes first.
    const ending = () => {
      releaseClient();
      if (!held) return;
      held = false;
      t.sessionOver?.();
      limiter.leave();
      ledger?.left();
    };
    // From now on closing the connection frees a session slot (crowding may pick it).
    if (held) t.sessionBegun?.(releaseClient);
    active++;
    try {
      if (proxied) {
        // The client is known only after the PROXY header: the session asks.
        await runSession(t, { ...deps, stressed: () => stressed, admitClient, seat, ending });
      } else {
        // At the cap the client was admitted (and its rate counted) above.
        const refusal = counted === undefined ? await admitClient(address) : undefined;
        if (refusal) {
          ending();
          return await refuseConnection(t, encodeReply(refusal));
        }
        await runSession(t, { ...(stressed ? stressedNow : deps), seat, ending });
      }
    } catch (e) {
      logger.error(`session failed: ${(e as Error).message}`);
    } finally {
      active--;
      seated();
      ending();
    }
  };
  const server = await serveTcp(setup.listen, onTransport, {
    reusePort: setup.reusePort,
    exclusive: setup.exclusive === true,
    log: logger,
    farewell: {
      idle: encodeReply(
        closing(config.myhostname, "3.2", "Error: idle session closed to make room for others"),
      ),
      // A slow client may be in a mail transaction: not "idle".
      slow: encodeReply(
        closing(config.myhostname, "3.2", "Error: slow session closed to make room for others"),
      ),
      crowding: encodeReply(
        closing(
          config.myhostname,
          "7.0",
          "Error: too many sessions from your address, one closed to make room for others",
        ),
      ),
    },
    onEvict: (victim, why) => logEviction(victim, why),
    ...(setup.roomElsewhere ? { roomElsewhere: setup.roomElsewhere } : {}),
    // Read at each use: a reload may change them.
    slowClient: () => ({
      waitMs: live.config.smtpd_slow_client_wait * 1000,
      bytesPerSecond: live.config.smtpd_slow_client_rate,
    }),
    // The client's connections across threads, so that every thread ranks alike.
    held: (address) => limiter.clientCount(address),
    // Trusted clients (smtpd_client_event_limit_exceptions) keep their sessions.
    exempt: (address) => limiter.exempt(address),
    // STARTTLS with the context of the latest reload (new certificates).
    ...(runtime.tls ? { tls: () => live.tls ?? runtime.tls! } : {}),
    ...(setup.tlsEngine ? { tlsEngine: setup.tlsEngine, buffers: runtime.buffers } : {}),
  });
  listening.server = server;
  store.makeRoom = () => {
    const victim = server.evictIdleNow();
    if (victim) logEviction(victim, "no descriptor for a queue file");
    return victim !== undefined;
  };
  // What this thread offers the others when they need room (room.ts).
  const room: RoomParty = {
    candidate: (purpose, newcomerHeld) => server.candidate(purpose, newcomerHeld),
    evict: (id, purpose, claim, newcomerHeld) => {
      // Not when a session slot came free meanwhile: the client takes that.
      const needed = () => purpose === "descriptor" || limiter.total >= limit;
      const victim = server.evictCandidate(
        id,
        purpose,
        () => needed() && claim(),
        newcomerHeld,
      );
      if (victim) {
        logEviction(
          victim,
          purpose === "session"
            ? `${limit} sessions (default_process_limit), for a client of another listener thread`
            : "no descriptor free, for another listener thread",
        );
      }
      return victim !== undefined;
    },
  };
  const swap = (next: Runtime) => {
    // The replaced configuration's policy clients and socketmap tables keep
    // no idle connection: sessions that began before the reload may still
    // use them.
    if (next.config !== live.config) retireAll(live.config);
    live = next;
    stressedDeps = { ...next.deps, stressed: () => true };
  };
  return { server, limiter, swap, room };
}

/** A thread's running listeners. */
export interface Listening {
  readonly server: TcpServer;
  readonly limiter: ConnectionLimiter;
  /** Its connections, as other threads may ask it to close one. */
  readonly room: RoomParty;
  /** Serves new sessions with a reloaded runtime ({@linkcode rebuildRuntime}). */
  readonly swap: (next: Runtime) => void;
}

/**
 * Where a listener thread's TLS engine listens: smtpd_tls_loopback_listen
 * with its port moved up by the thread's index (0 for the main thread);
 * port 0 stays 0 (any free port).
 * @param runtime the thread's runtime
 * @param index the thread's index
 * @returns the address, or undefined without the engine
 */
export function tlsEngineAddress(
  runtime: Runtime,
  index: number,
): { hostname: string; port: number; ecdsaPort?: number } | undefined {
  const at = runtime.tls?.engine;
  if (!at) return undefined;
  const moved = (p: number) => p === 0 ? 0 : p + index;
  return {
    hostname: at.hostname,
    port: moved(at.port),
    ...(at.ecdsaPort !== undefined ? { ecdsaPort: moved(at.ecdsaPort) } : {}),
  };
}

/**
 * A reply as the bytes that go on the wire.
 * @param r the reply
 * @returns its bytes
 */
function encodeReply(r: Reply): Uint8Array {
  return new TextEncoder().encode(formatReply(r));
}

/**
 * How many listener threads to run: smtpd_listen_threads, or one per two
 * CPUs (at least 1, at most 8) when it is 0. A listener thread's sessions
 * keep more than its own core busy: the kernel's socket and file work and
 * the fsyncs and creates on Deno's blocking pool run beside it. On 2 CPUs
 * one thread takes 4 KiB and 1 MiB messages at 2-3x Postfix's rate, with
 * 17 MiB less memory than two. Every thread builds its own TLS context
 * (buildRuntime), so STARTTLS and implicit TLS are served by all of them.
 * @param config the configuration
 * @returns the thread count
 */
export function listenerThreads(config: Config): number {
  const n = config.smtpd_listen_threads;
  return n > 0 ? n : Math.max(1, Math.min(8, Math.floor((navigator.hardwareConcurrency || 1) / 2)));
}
