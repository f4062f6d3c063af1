/**
 * A clock the retry and timeout code waits on, so tests can use fake time (see
 * tests/execution/_fake_clock.ts). The real clock is `setTimeout`/`Date.now`.
 * @module
 */

/** A handle returned by {@linkcode Clock.setTimeout}. */
export type TimerHandle = unknown;

/** Timers and the current time, in ms. */
export interface Clock {
  /** Current time in ms (only differences are used). */
  now(): number;
  /** Calls `fn` once after `ms` ms. */
  setTimeout(fn: () => void, ms: number): TimerHandle;
  /** Cancels a timer (no-op for a fired or unknown one). */
  clearTimeout(handle: TimerHandle): void;
}

/** The real clock: `Date.now`, `setTimeout`, `clearTimeout`. */
export const realClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as number),
};

/**
 * Waits `ms` ms on `clock`, or less if `signal` aborts first.
 * @returns `true` when the full delay passed, `false` when `signal` aborted (never rejects).
 */
export function sleep(
  ms: number,
  signal?: AbortSignal,
  clock: Clock = realClock,
): Promise<boolean> {
  if (signal?.aborted) return Promise.resolve(false);
  if (ms <= 0) return Promise.resolve(true);
  return new Promise<boolean>((resolve) => {
    const onAbort = () => {
      clock.clearTimeout(handle);
      resolve(false);
    };
    const handle = clock.setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve(true);
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
