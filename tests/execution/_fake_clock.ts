/**
 * Fake time for retry/timeout tests: timers fire only when the test advances the clock.
 * @module
 */
import type { Clock, TimerHandle } from "../../src/core/clock.ts";

interface Timer {
  id: number;
  at: number;
  fn: () => void;
}

/** Lets pending promise callbacks run (one real macrotask turn). */
export function flush(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

/** A {@linkcode Clock} whose time moves only through {@linkcode FakeClock.advance}. */
export class FakeClock implements Clock {
  #now = 0;
  #seq = 0;
  #timers: Timer[] = [];
  /** Every delay passed to setTimeout, in call order. */
  readonly requested: number[] = [];

  now(): number {
    return this.#now;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const id = ++this.#seq;
    this.requested.push(ms);
    this.#timers.push({ id, at: this.#now + Math.max(0, ms), fn });
    this.#timers.sort((a, b) => a.at - b.at || a.id - b.id);
    return id;
  }

  clearTimeout(handle: TimerHandle): void {
    this.#timers = this.#timers.filter((t) => t.id !== handle);
  }

  /** Pending timers. */
  get pending(): number {
    return this.#timers.length;
  }

  /** Moves time forward by `ms`, firing due timers in order (flushing promises between). */
  async advance(ms: number): Promise<void> {
    const end = this.#now + ms;
    await flush();
    while (this.#timers.length > 0 && this.#timers[0].at <= end) {
      const t = this.#timers.shift()!;
      this.#now = t.at;
      t.fn();
      await flush();
    }
    this.#now = end;
    await flush();
  }

  /**
   * Runs `p` to completion, jumping to the next timer whenever nothing else can happen.
   * @throws if `p` is still pending with no timer left (it would hang).
   */
  async run<T>(p: Promise<T>): Promise<T> {
    let done = false;
    let value: T | undefined;
    let error: unknown;
    let failedFlag = false;
    p.then((v) => {
      done = true;
      value = v;
    }, (e) => {
      done = true;
      failedFlag = true;
      error = e;
    });
    for (;;) {
      await flush();
      if (done) break;
      const t = this.#timers.shift();
      if (!t) throw new Error("FakeClock.run: promise pending and no timer left");
      this.#now = t.at;
      t.fn();
    }
    if (failedFlag) throw error;
    return value as T;
  }
}

/** A random source returning the given values in turn (then repeating the last). */
export function sequenceRandom(values: number[]): () => number {
  let i = 0;
  return () => values[Math.min(i++, values.length - 1)];
}
