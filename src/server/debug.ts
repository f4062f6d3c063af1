/**
 * Debug mode (stepflow 0.8 §8: `POST /runs` with `debug: true`, then `/debug/runnable`,
 * `/debug/step`, `/debug/continue`): a run that stops before each step and goes on when told.
 *
 * Built on the engine's step gate (`RunOptions.gate`, src/execution/run_context.ts): the gate of
 * a debug run holds every step whose inputs are ready until `/debug/step` names it or
 * `/debug/continue` lets the run go to its end. While the run waits for a command (steps ready,
 * none running) it is stored `paused` (journal `run_paused`); stepping sets it `running` again
 * (`run_resumed`). Cancelling a debug run works as for any run.
 *
 * Beyond 0.8: stepping a step that is not ready is refused with 409 naming the ready ones (0.8
 * answered an empty result); a step is answered with its stored result once it is recorded.
 * @module
 */
import type { CompiledStep } from "../execution/compile.ts";
import type { StepGate } from "../execution/engine.ts";
import type { FlowResult } from "../core/flow_result.ts";
import { ApiError } from "./api_error.ts";
import type { LiveEvents } from "./live_events.ts";
import type { ActiveRun, ResumeGate, RunOutcome } from "./run_model.ts";
import type { ServiceStore } from "./store_adapter.ts";

interface Held {
  step: CompiledStep;
  release: () => void;
  fail: (e: unknown) => void;
}

/** The debug state of one run: the steps its gate holds. */
export class DebugSession {
  /** Steps held at the gate, by step id. */
  #held = new Map<string, Held>();
  /** After `continue`: the gate holds nothing any more. */
  #free = false;
  #paused = false;
  #run?: ActiveRun;
  #check = false;

  constructor(
    readonly runId: string,
    readonly stepIds: readonly string[],
    private readonly store: ServiceStore,
  ) {}

  /** Attaches the run (once submitted). */
  attach(run: ActiveRun): void {
    this.#run = run;
    // steps held before the run was attached (a resumed run's first ready steps)
    if (this.#held.size > 0) this.#schedulePause();
  }

  /** Set by {@linkcode fail}: every step held, or coming to the gate, fails with it. */
  #failure: { error: unknown } | undefined;

  /** The engine's step gate of the run. */
  readonly gate: StepGate = (step) => {
    if (this.#failure !== undefined) return Promise.reject(this.#failure.error);
    if (this.#free) return undefined;
    return new Promise<void>((release, fail) => {
      this.#held.set(step.id, { step, release, fail });
      this.#schedulePause();
    });
  };

  /**
   * Ends the run with `error` without running another step: its record could not be stored
   * (the run cannot go on; held, it would wait for a command for ever).
   */
  fail(error: unknown): void {
    this.#failure = { error };
    const held = [...this.#held.values()];
    this.#held.clear();
    for (const h of held) h.fail(error);
  }

  /** Ids of the steps ready to run (held at the gate), in flow order. */
  runnable(): string[] {
    return [...this.#held.values()].sort((a, b) => a.step.index - b.step.index).map((h) =>
      h.step.id
    );
  }

  /**
   * Runs the steps `stepIds` (each must be ready) and resolves with their results once they are
   * recorded (a step that did not get a result because the run ended has the run's result).
   * @throws {ApiError} 400 for a step the flow does not have, 409 for a step that is not ready.
   */
  async step(stepIds: string[]): Promise<Record<string, FlowResult>> {
    const unknown = stepIds.filter((id) => !this.stepIds.includes(id));
    if (unknown.length > 0) {
      throw new ApiError(
        400,
        `The flow has no step ${unknown.map((id) => `'${id}'`).join(", ")} (steps: ${
          this.stepIds.join(", ")
        })`,
      );
    }
    const notReady = stepIds.filter((id) => !this.#held.has(id));
    if (notReady.length > 0) {
      const ready = this.runnable();
      throw new ApiError(
        409,
        `Step ${
          notReady.map((id) => `'${id}'`).join(", ")
        } of run '${this.runId}' cannot run now ` +
          `(not ready, already run, or running); runnable steps: ${
            ready.length > 0 ? ready.join(", ") : "none"
          } (GET /api/v1/runs/${this.runId}/debug/runnable)`,
      );
    }
    const wanted = new Set(stepIds);
    const results: Record<string, FlowResult> = {};
    let left = wanted.size;
    let allDone!: () => void;
    const recorded = new Promise<void>((r) => allDone = r);
    const waiter = (stepId: string, result: FlowResult) => {
      if (!wanted.has(stepId)) return;
      if (results[stepId] === undefined && --left === 0) allDone();
      results[stepId] = result;
    };
    this.#waiters.add(waiter);
    const stop = () => this.#waiters.delete(waiter);
    // (the commits from here on carry the steps' results)
    const mark = this.store.commitMark();
    try {
      this.#resume();
      for (const id of stepIds) {
        const h = this.#held.get(id)!;
        this.#held.delete(id);
        h.release();
      }
      const end: Promise<RunOutcome | undefined> = this.#run?.done ?? new Promise(() => {});
      let outcome = await Promise.race([recorded.then(() => undefined), end]);
      // the results of this turn are stored before they are answered; when a commit since the
      // steps started failed, they may not be: the run ends with the store's error (507), and
      // each step is answered with it (they were answered with their results, as if stored)
      const unstored = await this.store.committed(mark).then(() => undefined, (e) => ({ e }));
      if (unstored !== undefined && this.#run !== undefined) {
        this.fail(unstored.e);
        outcome = await this.#run.done;
        if (outcome.status !== "completed") {
          for (const id of stepIds) results[id] = outcome.result;
        }
      }
      for (const id of stepIds) {
        if (results[id] === undefined && outcome !== undefined) results[id] = outcome.result;
      }
      return results;
    } finally {
      stop();
    }
  }

  /** Lets the run go on to its end: every held step starts, and no later step is held. */
  continue(): void {
    this.#free = true;
    this.#resume();
    const held = [...this.#held.values()];
    this.#held.clear();
    for (const h of held) h.release();
  }

  /** Marks the run `running` again when it was stored `paused`. */
  #resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.store.setRunStatus(this.runId, "running", "run_resumed", { debug: true });
  }

  /**
   * When steps are held and none is running, the run waits for a command: stored `paused`.
   * Checked after a step is held or finishes (in a microtask: the run is attached by then).
   */
  #schedulePause(): void {
    if (this.#check) return;
    this.#check = true;
    queueMicrotask(() => {
      this.#check = false;
      if (this.#paused || this.#free || this.#held.size === 0) return;
      const run = this.#run;
      if (run === undefined || run.state === "ended" || run.inFlight().length > 0) return;
      this.#paused = true;
      this.store.setRunStatus(this.runId, "paused", "run_paused", { debug: true });
    });
  }

  /** Results of the steps being stepped, by step id (see {@linkcode step}). */
  #waiters = new Set<(stepId: string, result: FlowResult) => void>();

  /** A step's result was recorded (from the service's run observer). */
  recorded(stepId: string, result: FlowResult): void {
    for (const w of this.#waiters) w(stepId, result);
    this.#schedulePause();
  }
}

/** Debug sessions of the service's runs (while they run), and which runs were debug runs. */
export class DebugSessions {
  #sessions = new Map<string, { session: DebugSession; stop: () => void }>();
  /** Runs started in debug mode by this service (the last 10,000), for `debugMode`. */
  #debugRuns = new Set<string>();

  constructor(private readonly store: ServiceStore, private readonly live: LiveEvents) {}

  /** A new session for run `runId` of a flow with steps `stepIds`. */
  open(runId: string, stepIds: readonly string[]): DebugSession {
    const s = new DebugSession(runId, stepIds, this.store);
    const stop = this.live.listen(runId, (e) => {
      if (e.type === "step_finished" && e.runId === runId) s.recorded(e.stepId, e.result);
    });
    this.#sessions.set(runId, { session: s, stop });
    this.#debugRuns.add(runId);
    if (this.#debugRuns.size > 10_000) {
      this.#debugRuns.delete(this.#debugRuns.values().next().value!);
    }
    return s;
  }

  /** Ends the session of a run (it finished). */
  close(runId: string): void {
    this.#sessions.get(runId)?.stop();
    this.#sessions.delete(runId);
  }

  /** The session of a run in progress, if it is a debug run. */
  get(runId: string): DebugSession | undefined {
    return this.#sessions.get(runId)?.session;
  }

  /** Whether `runId` was started in debug mode by this service. */
  isDebug(runId: string): boolean {
    return this.#debugRuns.has(runId);
  }

  /**
   * The gate of a debug run that is resumed (`RunRecord.debugMode`: after a restart of the
   * service, or taken over from a dead engine): a new session holds its ready steps again, so
   * it waits for `/debug/step` or `/debug/continue` instead of running freely.
   */
  resumeGate(stepIdsOf: (flowId: string) => Promise<string[]>): ResumeGate {
    return async (record) => {
      if (!record.debugMode) return undefined;
      const runId = record.runId;
      const session = this.open(runId, await stepIdsOf(record.flowId));
      return {
        gate: session.gate,
        attach: (run) => {
          session.attach(run);
          run.done.then(() => this.close(runId));
        },
        cancel: () => this.close(runId),
      };
    };
  }
}
