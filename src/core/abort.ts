/**
 * Abort signals and bounded waits: child signals without one listener per child, waits with a
 * time limit ({@linkcode settlesWithin}), promises raced against signals ({@linkcode abortable})
 * and signals with a deadline ({@linkcode deadline}).
 *
 * Thousands of steps or nested runs in flight, each adding an `abort` listener to the same
 * parent `AbortSignal`, cost quadratic time: Deno's `EventTarget` scans its listeners on every
 * `addEventListener` (10,000 listeners ≈ 0.4 s). {@linkcode childSignal} gives a parent signal one
 * listener, shared by all its children, which are kept in a Set.
 * @module
 */

/**
 * The children of one parent signal: a list with free slots, not a Set (a new controller's first
 * use as a Set key makes V8 give it an identity hash: ~0.3 µs per map item; issue 17).
 */
interface Fanout {
  kids: (AbortController | undefined)[];
  /** Indexes of emptied slots, reused first. */
  free: number[];
}

const fanouts = new WeakMap<AbortSignal, Fanout>();

/** A child of a parent signal: aborted when the parent aborts, until disposed. */
export interface ChildSignal {
  /** Aborted with the parent's reason when the parent aborts (or by `controller.abort()`). */
  readonly signal: AbortSignal;
  readonly controller: AbortController;
  /** Stops following the parent (call when the child's work is done). */
  dispose(): void;
}

/**
 * A new signal that follows `parent` (immediately aborted if `parent` already is). Without a
 * parent, a plain controller.
 */
export function childSignal(parent: AbortSignal | undefined): ChildSignal {
  const controller = new AbortController();
  if (!parent) return new Child(controller, undefined, 0);
  if (parent.aborted) {
    controller.abort(parent.reason);
    return new Child(controller, undefined, 0);
  }
  let f = fanouts.get(parent);
  if (!f) {
    const created: Fanout = { kids: [], free: [] };
    f = created;
    fanouts.set(parent, created);
    parent.addEventListener("abort", () => {
      fanouts.delete(parent);
      const kids = created.kids;
      created.kids = [];
      created.free = [];
      for (let i = 0; i < kids.length; i++) kids[i]?.abort(parent.reason);
    }, { once: true });
  }
  const i = f.free.length > 0 ? f.free.pop()! : f.kids.length;
  f.kids[i] = controller;
  return new Child(controller, f, i);
}

/** A {@linkcode ChildSignal}: an object of a class, no closure per child (a map item makes one). */
class Child implements ChildSignal {
  readonly signal: AbortSignal;
  constructor(
    readonly controller: AbortController,
    readonly siblings: Fanout | undefined,
    readonly slot: number,
  ) {
    this.signal = controller.signal;
  }

  dispose(): void {
    const f = this.siblings;
    // (once the parent aborted, the fanout's lists are new: the slot is not ours any more)
    if (f === undefined || f.kids[this.slot] !== this.controller) return;
    f.kids[this.slot] = undefined;
    f.free.push(this.slot);
  }
}

/**
 * Waits for `p` to settle, at most `ms` milliseconds; its timer is cleared either way, so no
 * timer outlives the wait.
 * @returns true if `p` settled (fulfilled or rejected) in time.
 */
export async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<false>((r) => timer = setTimeout(() => r(false), ms));
  try {
    return await Promise.race([p.then(() => true, () => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Resolves or rejects as `p`, or rejects with the reason of the first of `signals` that aborts
 * (then `onAbort` runs, to release what `p` holds; `p`'s own late rejection is observed). The
 * listeners are removed either way.
 */
export function abortable<T>(
  p: Promise<T>,
  signals: AbortSignal | undefined | readonly (AbortSignal | undefined)[],
  onAbort?: () => void,
): Promise<T> {
  const list = (Array.isArray(signals) ? signals : [signals]).filter((s): s is AbortSignal =>
    s !== undefined
  );
  for (const s of list) {
    if (s.aborted) {
      p.catch(() => {});
      onAbort?.();
      return Promise.reject(s.reason);
    }
  }
  if (list.length === 0) return p;
  return new Promise<T>((resolve, reject) => {
    const listeners = list.map((s) => {
      const l = () => {
        cleanup();
        p.catch(() => {});
        onAbort?.();
        reject(s.reason);
      };
      s.addEventListener("abort", l, { once: true });
      return l;
    });
    const cleanup = () => list.forEach((s, i) => s.removeEventListener("abort", listeners[i]));
    p.then((v) => {
      cleanup();
      resolve(v);
    }, (e) => {
      cleanup();
      reject(e);
    });
  });
}

/** A signal with a deadline: see {@linkcode deadline}. */
export interface Deadline {
  /** Aborted when `parent` aborts (its reason) or the time is up (`reason()`). */
  readonly signal: AbortSignal;
  /** Clears the timer (call when the guarded work is over). */
  dispose(): void;
}

/**
 * A signal aborted after `ms` milliseconds with `reason()` (e.g. a TransportError naming what did
 * not answer), or earlier when `parent` aborts. The timer does not keep the process alive.
 */
export function deadline(ms: number, reason: () => unknown, parent?: AbortSignal): Deadline {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(reason()), ms);
  Deno.unrefTimer(timer);
  const signal = parent ? AbortSignal.any([parent, ac.signal]) : ac.signal;
  return { signal, dispose: () => clearTimeout(timer) };
}

/**
 * A {@linkcode childSignal} made on first use: a step whose component never reads its signal
 * (most built-ins) costs no AbortController (issue 17: per-step allocations of 100,000-step
 * fan-outs). Until then `aborted` and `reason` are the parent's, which is what the child would
 * say: only the parent aborts it.
 */
export class LazyChildSignal {
  readonly #parent: AbortSignal;
  #child: ChildSignal | undefined;
  #disposed = false;

  constructor(parent: AbortSignal) {
    this.#parent = parent;
  }

  /** The child signal (made now if it was not yet). */
  get signal(): AbortSignal {
    if (this.#child === undefined) {
      // after dispose, a late reader gets a signal that follows nothing (as a disposed child)
      this.#child = this.#disposed ? childSignal(undefined) : childSignal(this.#parent);
      if (this.#disposed && this.#parent.aborted) {
        this.#child.controller.abort(this.#parent.reason);
      }
    }
    return this.#child.signal;
  }

  get aborted(): boolean {
    return this.#child === undefined ? this.#parent.aborted : this.#child.signal.aborted;
  }

  get reason(): unknown {
    return this.#child === undefined ? this.#parent.reason : this.#child.signal.reason;
  }

  /** Stops following the parent. */
  dispose(): void {
    this.#disposed = true;
    this.#child?.dispose();
  }
}

/** The signal itself, made now when it is a {@linkcode LazyChildSignal}. */
export function signalOf(s: AbortSignal | LazyChildSignal): AbortSignal {
  return s instanceof LazyChildSignal ? s.signal : s;
}
