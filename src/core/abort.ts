/**
 * Child abort signals without one listener per child.
 *
 * Thousands of steps or nested runs in flight, each adding an `abort` listener to the same
 * parent `AbortSignal`, cost quadratic time: Deno's `EventTarget` scans its listeners on every
 * `addEventListener` (10,000 listeners ≈ 0.4 s). Here a parent signal gets one listener, shared by
 * all its children, which are kept in a Set.
 * @module
 */

interface Fanout {
  children: Set<AbortController>;
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
  if (!parent) return { signal: controller.signal, controller, dispose: () => {} };
  if (parent.aborted) {
    controller.abort(parent.reason);
    return { signal: controller.signal, controller, dispose: () => {} };
  }
  let f = fanouts.get(parent);
  if (!f) {
    const created: Fanout = { children: new Set() };
    f = created;
    fanouts.set(parent, created);
    parent.addEventListener("abort", () => {
      fanouts.delete(parent);
      const children = [...created.children];
      created.children.clear();
      for (const c of children) c.abort(parent.reason);
    }, { once: true });
  }
  const children = f.children;
  children.add(controller);
  return { signal: controller.signal, controller, dispose: () => children.delete(controller) };
}
