/**
 * Waiting for signals (human in the loop, issue 12): the engine side of `/builtin/wait_for`.
 *
 * A waiting step takes the oldest pending signal of its name from the state store
 * (`consumeSignal`, keyed `<runId>/<stepId>` so a step executed again gets the same signal).
 * While none is there the run is `paused` (a `run_paused` event per waiting step, data
 * `{stepId, name, timeoutAt?}`), and the step looks again when this engine is told of a signal
 * ({@linkcode SignalWaits.notify}: `stepflow serve`'s signal route) and every
 * {@linkcode SIGNAL_POLL_MS} (a signal stored by another process: `stepflow signal`). Once the
 * last waiting step of a run has its signal, the run is `running` again.
 *
 * A timeout counts from the step's first wait, kept in its first `run_paused` event, so a run
 * resumed after a restart does not start the clock again.
 * @module
 */
import type { JsonValue } from "../json/exact_json.ts";
import { isJsonObject } from "../json/exact_json.ts";
import type { StateStore } from "../state/store.ts";
import type { Logger } from "../log.ts";

/** How often a waiting step reads the store for a signal stored by another process, ms. */
export const SIGNAL_POLL_MS = 200;

/** The waits of one engine. */
export class SignalWaits {
  #paused = new Map<string, number>();
  #wakers = new Map<string, Set<() => void>>();

  constructor(readonly store: StateStore, readonly log: Logger) {}

  /** Wakes the steps of `runId` waiting for a signal (one was just stored). */
  notify(runId: string): void {
    for (const w of this.#wakers.get(runId) ?? []) w();
  }

  /**
   * Waits for signal `name` of run `runId` for step `stepId` (see the module doc).
   * @returns the signal, or undefined when the timeout passed.
   * @throws the abort reason of `signal`; a {@linkcode StoreError} when the store fails.
   */
  async wait(
    runId: string,
    name: string,
    options: { stepId: string; signal: AbortSignal; timeoutMs?: number },
  ): Promise<{ id: number; data: JsonValue } | undefined> {
    const { stepId, signal } = options;
    const consumer = `${runId}/${stepId}`;
    const take = async () => {
      const s = await this.store.consumeSignal(runId, name, consumer);
      return s === undefined ? undefined : { id: s.id, data: s.data };
    };
    const first = await take();
    if (first !== undefined) return first;
    signal.throwIfAborted();
    let deadline: number | undefined;
    if (options.timeoutMs !== undefined) {
      deadline = (await this.#firstTimeoutAt(runId, stepId)) ?? Date.now() + options.timeoutMs;
    }
    const data: Record<string, JsonValue> = { stepId, name };
    if (deadline !== undefined) data.timeoutAt = new Date(deadline).toISOString();
    this.#enter(runId, data);
    this.log.warn(
      `run ${runId} paused: step '${stepId}' waits for signal '${name}'` +
        (this.store.kind === "inMemory"
          // no other process can reach an in-memory run: `stepflow signal` would not find it
          ? `, but the run's state is in memory: only this process can send it (the service's ` +
            `POST /api/v1/runs/${runId}/signals/${name}, or the library); from the command ` +
            `line, run with --store FILE and use 'stepflow signal'`
          : ` (stepflow signal ${runId} ${name} --data-json '...')`),
    );
    let wake: (() => void) | undefined;
    const wakers = this.#wakers.get(runId) ?? new Set();
    this.#wakers.set(runId, wakers);
    try {
      while (true) {
        const left = deadline === undefined ? SIGNAL_POLL_MS : deadline - Date.now();
        if (left <= 0) return undefined;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(done, Math.min(left, SIGNAL_POLL_MS));
          function done() {
            clearTimeout(timer);
            signal.removeEventListener("abort", done);
            wakers.delete(done);
            resolve();
          }
          wake = done;
          wakers.add(done);
          signal.addEventListener("abort", done, { once: true });
        });
        signal.throwIfAborted();
        // a cheap read first: taking a signal is a write
        const pending = (await this.store.getSignals(runId)).some((s) =>
          s.name === name && (s.consumedAt === undefined || s.consumedBy === consumer)
        );
        if (!pending) continue;
        const got = await take();
        if (got !== undefined) return got;
      }
    } finally {
      if (wake !== undefined) wakers.delete(wake);
      if (wakers.size === 0) this.#wakers.delete(runId);
      this.#leave(runId, signal.aborted);
    }
  }

  /** The `timeoutAt` of the step's first wait in this run, if it had one (ms epoch). */
  async #firstTimeoutAt(runId: string, stepId: string): Promise<number | undefined> {
    const events = await this.store.getEvents({ runId });
    for (const e of events) {
      if (e.type !== "run_paused" || !isJsonObject(e.data) || e.data.stepId !== stepId) continue;
      const at = e.data.timeoutAt;
      if (typeof at === "string") return Date.parse(at);
    }
    return undefined;
  }

  #enter(runId: string, data: JsonValue): void {
    this.#paused.set(runId, (this.#paused.get(runId) ?? 0) + 1);
    const w = this.store.setRunStatus(runId, "paused", "run_paused", data);
    if (w !== undefined) w.catch(() => {}); // a failed commit fails the run's later writes
  }

  #leave(runId: string, aborted: boolean): void {
    const n = (this.#paused.get(runId) ?? 1) - 1;
    if (n > 0) {
      this.#paused.set(runId, n);
      return;
    }
    this.#paused.delete(runId);
    // a cancelled run is finished by the engine; one that goes on runs again
    if (!aborted) {
      const w = this.store.setRunStatus(runId, "running");
      if (w !== undefined) w.catch(() => {});
    }
  }
}
