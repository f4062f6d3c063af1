/**
 * The live feed of the service's event streams: one engine observer (`engine.observe`) that hands
 * the events of runs executing in this process to the streams following them, so a stream is
 * woken the moment a step starts or finishes instead of polling the journal.
 *
 * Cost: with no stream open, a step event costs one `Map.size` check; each run costs one map
 * entry while it runs (its top-level run, so a top-level run's stream gets its nested runs'
 * events).
 * @module
 */
import type { RunEvent, RunObserver } from "../execution/engine.ts";

/** Receives the events of one run (and its nested runs, for a top-level run). */
export type LiveListener = (event: RunEvent, rootRunId: string) => void;

/** Hands run events of this process to the streams that follow them. */
export class LiveEvents implements RunObserver {
  /** Top-level run of every run in progress in this process. */
  #roots = new Map<string, string>();
  /** Listeners by the run they follow. */
  #listeners = new Map<string, Set<LiveListener>>();

  /** Whether run `runId` is executing in this process now (started, not finished). */
  running(runId: string): boolean {
    return this.#roots.has(runId);
  }

  /**
   * Calls `listener` with every event of run `runId` (and, when it is a top-level run, of its
   * nested runs) from now on. Returns the function that stops it.
   */
  listen(runId: string, listener: LiveListener): () => void {
    let set = this.#listeners.get(runId);
    if (!set) this.#listeners.set(runId, set = new Set());
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0 && this.#listeners.get(runId) === set) this.#listeners.delete(runId);
    };
  }

  onEvent(event: RunEvent): void {
    const runId = event.runId;
    if (event.type === "run_started") this.#roots.set(runId, event.rootRunId);
    if (this.#listeners.size > 0) {
      const root = this.#roots.get(runId) ?? runId;
      this.#deliver(runId, event, root);
      if (root !== runId) this.#deliver(root, event, root);
    }
    if (event.type === "run_finished") this.#roots.delete(runId);
  }

  #deliver(key: string, event: RunEvent, root: string): void {
    const set = this.#listeners.get(key);
    if (set === undefined) return;
    for (const l of set) l(event, root);
  }
}
