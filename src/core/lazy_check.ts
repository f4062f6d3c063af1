/**
 * Checks whose full form is loaded on demand (issue 17, goal 5: cold start). A synchronous check
 * (a flow's or config's shape) first tries its fast, zod-free reader; when that declines and the
 * zod model is not loaded yet, it throws {@linkcode CheckNotLoaded}, which says how to load it.
 * An asynchronous caller runs the check through {@linkcode withChecks}, which loads what was
 * missing and runs it again. The library API (src/flow/load.ts, src/config/load.ts) loads the zod
 * models up front, so its synchronous functions never throw this.
 * @module
 */

/** A check needed a module that is not loaded; `load()` loads (and registers) it. */
export class CheckNotLoaded extends Error {
  constructor(what: string, readonly load: () => Promise<unknown>) {
    super(`internal: the ${what} check is not loaded (run it through withChecks)`);
    this.name = "CheckNotLoaded";
  }
}

/**
 * Runs `fn`; when it throws {@linkcode CheckNotLoaded}, loads that check and runs `fn` again
 * (so `fn` must be safe to repeat: a pure check, or one whose effects repeat harmlessly).
 * @throws whatever `fn` throws otherwise.
 */
export async function withChecks<T>(fn: () => T | Promise<T>): Promise<T> {
  const loaded = new Set<() => Promise<unknown>>();
  for (;;) {
    try {
      return await fn();
    } catch (e) {
      if (!(e instanceof CheckNotLoaded) || loaded.has(e.load)) throw e;
      loaded.add(e.load);
      await e.load();
    }
  }
}
