/**
 * Keeps the daemon's listener threads alive, as Postfix's master(8) keeps
 * its smtpd processes: a thread that dies (an uncaught error ends a Worker)
 * or stops answering (its heartbeat stalls: an endless loop) is logged, its
 * connection slots are given back to the shared limiter, and another thread
 * takes its place. Threads that keep dying (5 in a minute) are not started
 * again: the supervisor gives up, and the daemon exits non-zero for its own
 * supervisor (systemd) to restart it.
 *
 * @module
 */

/** One running listener thread, as its starter made it. */
export interface SupervisedThread {
  /** The thread (terminate() ends it; "error" says it died). */
  readonly worker: Pick<Worker, "terminate" | "addEventListener">;
  /** Cell [0] is bumped by the thread every second or so. */
  readonly heartbeat: Int32Array;
  /** Gives the slots of the thread's sessions back; returns how many. */
  release(): number;
}

/** How the supervisor starts, watches and gives up. */
export interface SupervisorOptions<T extends SupervisedThread> {
  /** Starts one thread; resolves once it serves. */
  start: (index: number) => Promise<T>;
  /** Where deaths and the giving up are logged. */
  log: { warning(text: string): void; error(text: string): void };
  /** Deaths within {@linkcode windowMs} that make it give up. Default 5. */
  maxDeaths?: number;
  /** Default 60 s. */
  windowMs?: number;
  /** A heartbeat still for this long is a hung thread (ms). Default 30 s. */
  heartbeatTimeoutMs?: number;
  /** How often heartbeats are checked (ms). Default 1 s. */
  checkEveryMs?: number;
  /** Wait before a replacement is started (ms). Default 1 s. */
  restartDelayMs?: number;
}

interface Slot<T> {
  thread: T | undefined;
  beat: number;
  beatAt: number;
}

/**
 * Starts and supervises a fixed number of listener threads.
 */
export class ThreadSupervisor<T extends SupervisedThread = SupervisedThread> {
  #o: Required<SupervisorOptions<T>>;
  #slots: Slot<T>[] = [];
  #deaths: number[] = [];
  #timer: ReturnType<typeof setInterval> | undefined;
  #stopped = false;
  #giveUp: (why: string) => void = () => {};
  /** Resolves with the reason when threads keep dying; never resolves otherwise. */
  readonly gaveUp: Promise<string>;

  /** @param options how to start threads, where to log, the limits */
  constructor(options: SupervisorOptions<T>) {
    this.#o = {
      maxDeaths: 5,
      windowMs: 60_000,
      heartbeatTimeoutMs: 30_000,
      checkEveryMs: 1000,
      restartDelayMs: 1000,
      ...options,
    };
    this.gaveUp = new Promise((r) => (this.#giveUp = r));
  }

  /**
   * Starts `count` threads (numbered 1..count: the main thread is 0).
   * @param count how many
   * @throws when one of them cannot start (the caller stops the others)
   */
  async start(count: number): Promise<void> {
    for (let i = 0; i < count; i++) {
      this.#slots.push({ thread: undefined, beat: 0, beatAt: Date.now() });
      this.#adopt(i, await this.#o.start(i + 1));
    }
    this.#timer = setInterval(() => this.#check(), this.#o.checkEveryMs);
  }

  /** The threads running now. */
  get threads(): T[] {
    return this.#slots.flatMap((s) => (s.thread ? [s.thread] : []));
  }

  /** Stops watching (the daemon is stopping): threads ended from now on are not replaced. */
  stop(): void {
    this.#stopped = true;
    clearInterval(this.#timer);
  }

  #adopt(i: number, thread: T): void {
    const slot = this.#slots[i] as Slot<T>;
    slot.thread = thread;
    slot.beat = Atomics.load(thread.heartbeat, 0);
    slot.beatAt = Date.now();
    thread.worker.addEventListener("error", (e: Event) => {
      e.preventDefault(); // not the main thread's error: this thread is replaced
      const message = (e as ErrorEvent).message ?? "error";
      this.#died(i, thread, `uncaught exception: ${message}`);
    });
  }

  #check(): void {
    const now = Date.now();
    this.#slots.forEach((slot, i) => {
      const t = slot.thread;
      if (!t) return;
      const beat = Atomics.load(t.heartbeat, 0);
      if (beat !== slot.beat) {
        slot.beat = beat;
        slot.beatAt = now;
      } else if (now - slot.beatAt >= this.#o.heartbeatTimeoutMs) {
        this.#died(i, t, `not responding for ${Math.round((now - slot.beatAt) / 1000)} s`);
      }
    });
  }

  #died(i: number, thread: T, why: string): void {
    const slot = this.#slots[i] as Slot<T>;
    if (this.#stopped || slot.thread !== thread) return;
    slot.thread = undefined;
    try {
      thread.worker.terminate();
    } catch { /* already ended */ }
    const released = thread.release();
    const now = Date.now();
    this.#deaths = this.#deaths.filter((t) => now - t < this.#o.windowMs);
    this.#deaths.push(now);
    const freed = released ? `; ${released} connection slots released` : "";
    if (this.#deaths.length >= this.#o.maxDeaths) {
      this.#o.log.error(
        `listener thread ${i + 1} died: ${why}${freed}; ${this.#deaths.length} deaths in ${
          Math.round(this.#o.windowMs / 1000)
        } s: giving up`,
      );
      this.stop();
      this.#giveUp(
        `listener threads keep dying (${this.#deaths.length} in ${
          Math.round(this.#o.windowMs / 1000)
        } s)`,
      );
      return;
    }
    this.#o.log.warning(`listener thread ${i + 1} died: ${why}${freed}; starting another`);
    this.#restart(i);
  }

  #restart(i: number): void {
    setTimeout(async () => {
      if (this.#stopped) return;
      let thread: T;
      try {
        thread = await this.#o.start(i + 1);
      } catch (e) {
        // Counted as a death: a thread that cannot start keeps failing.
        const dummy = {
          worker: { terminate() {}, addEventListener() {} },
          heartbeat: new Int32Array(1),
          release: () => 0,
        };
        (this.#slots[i] as Slot<T>).thread = dummy as unknown as T;
        this.#died(i, dummy as unknown as T, `cannot start: ${(e as Error).message}`);
        return;
      }
      if (this.#stopped) {
        thread.worker.terminate();
        return;
      }
      this.#adopt(i, thread);
    }, this.#o.restartDelayMs);
  }
}
