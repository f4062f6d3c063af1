/**
 * A fair async semaphore (extension, issue 5): at most `limit` holders at once; waiters are
 * served first come, first served, and a released permit goes straight to the oldest waiter
 * (no barging). Waiting work is only a queue of resolver callbacks: callers that have not
 * started are never materialised as promises of their work.
 *
 * Used for the per-run step limit (`--max-concurrency`, config `maxConcurrency`), the per-plugin
 * call limit (plugin `maxConcurrency`) and `map`'s `max_concurrency`.
 * @module
 */

/** Releases a permit; calling it again does nothing. */
export type Release = () => void;

interface Waiter {
  grant: (release: Release) => void;
  reject: (reason: unknown) => void;
  next?: Waiter;
  done: boolean;
}

/**
 * A counting semaphore.
 *
 * @example
 * ```ts ignore
 * const limiter = new Limiter(4);
 * const out = await limiter.run(() => fetchSomething(), signal);
 * ```
 */
export class Limiter {
  #active = 0;
  #waiting = 0;
  #peak = 0;
  #head?: Waiter;
  #tail?: Waiter;

  /**
   * @param limit most permits held at once: a positive integer, or `Infinity` for no limit.
   * @throws {RangeError} for 0, negative, fractional or NaN limits.
   */
  constructor(readonly limit: number) {
    if (!(limit === Infinity || (Number.isInteger(limit) && limit > 0))) {
      throw new RangeError(`Limiter: limit must be a positive integer, got ${limit}`);
    }
  }

  /** Permits held now. */
  get active(): number {
    return this.#active;
  }

  /** Callers waiting for a permit. */
  get waiting(): number {
    return this.#waiting;
  }

  /** The most permits ever held at once. */
  get peak(): number {
    return this.#peak;
  }

  /** A permit now if one is free (and nobody waits), else `undefined`. */
  tryAcquire(): Release | undefined {
    if (this.#active < this.limit && this.#waiting === 0) return this.#grant();
    return undefined;
  }

  /**
   * Waits for a permit.
   * @returns the release function; call it exactly when done (extra calls are ignored).
   * @throws the signal's reason (rejects) if `signal` aborts before a permit was granted.
   */
  acquire(signal?: AbortSignal): Promise<Release> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    const now = this.tryAcquire();
    if (now) return Promise.resolve(now);
    return new Promise<Release>((resolve, reject) => {
      const onAbort = () => {
        if (waiter.done) return;
        waiter.done = true;
        this.#waiting--;
        reject(signal!.reason);
      };
      const waiter: Waiter = {
        grant: (release) => {
          signal?.removeEventListener("abort", onAbort);
          resolve(release);
        },
        reject,
        done: false,
      };
      if (this.#tail) this.#tail.next = waiter;
      else this.#head = waiter;
      this.#tail = waiter;
      this.#waiting++;
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  /**
   * Runs `fn` holding a permit, releasing it when `fn` settles.
   * @throws what `fn` throws; the signal's reason if it aborts while waiting.
   */
  async run<T>(fn: () => Promise<T> | T, signal?: AbortSignal): Promise<T> {
    const release = await this.acquire(signal);
    try {
      return await fn();
    } finally {
      release();
    }
  }

  #grant(): Release {
    this.#active++;
    if (this.#active > this.#peak) this.#peak = this.#active;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#active--;
      this.#handOff();
    };
  }

  #handOff(): void {
    while (this.#head && this.#active < this.limit) {
      const w = this.#head;
      this.#head = w.next;
      if (!this.#head) this.#tail = undefined;
      w.next = undefined;
      if (w.done) continue; // aborted while waiting
      w.done = true;
      this.#waiting--;
      w.grant(this.#grant());
    }
  }
}

/** A limiter that never waits (`Infinity` permits), for callers that need no limit. */
export function unlimited(): Limiter {
  return new Limiter(Infinity);
}
