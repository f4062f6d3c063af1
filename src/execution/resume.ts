/**
 * Resuming a run (issue 12): what a run's committed state says about how to continue it.
 *
 * A resumed run is executed again by the same scheduler and pipeline, with its committed step
 * results **replayed** (given to dependents as they were, never executed again) and the attempt
 * numbers of steps that started but whose result was not committed carried on (`attempt + 1`).
 * Two modes:
 * - `interrupted` (an engine stopped, crashed or was killed while the run was `running` or
 *   `paused`): every committed result is kept, failed ones too, so the run ends as it would have
 *   without the crash;
 * - `failed` (re-drive a `failed` or `cancelled` run): committed failures, and every step that
 *   depends on one, run again; successful results elsewhere are kept.
 *
 * Nested runs (`eval`, `map`, `iterate`) of a resumed run are found by their deterministic key
 * (`<parentRunId>/<stepId>[/<item>]`) before being created: a completed one gives its stored
 * result, an unfinished one is resumed in turn.
 * @module
 */
import type { FlowResult } from "../core/flow_result.ts";
import { RUN_INTERRUPTED } from "../core/error_codes.ts";
import { RunNotResumableError } from "../errors.ts";
import type { RunRecord, StateStore } from "../state/store.ts";
import type { CompiledFlow, CompiledStep } from "./compile.ts";
import type { Flow } from "../flow/model.ts";

/** How a run is resumed: keep every committed result, or run committed failures again. */
export type ResumeMode = "interrupted" | "failed";

/** Options of `engine.resume`. */
export interface ResumeOptions {
  /**
   * `interrupted`: continue from the steps that did not finish, keeping every committed result;
   * `failed`: run failed steps (and the steps depending on them) again, keeping successful
   * results. Default: `failed` for a run that failed or was cancelled on its own, `interrupted`
   * for one whose engine stopped (`running`, `paused`, `queued`, or failed with code 503
   * `RUN_INTERRUPTED`).
   */
  from?: ResumeMode;
  /** Cancels the resumed run (as `RunOptions.signal`). */
  signal?: AbortSignal;
  /**
   * This engine holds the run's lease already (it took the run over with `store.claimRuns`, issue
   * 14): it is not claimed again (no second `run_resumed`, no second epoch).
   */
  claimed?: boolean;
  /** Holds the resumed run's ready steps (as `RunOptions.gate`: a debug run, `debugMode`). */
  gate?: (step: CompiledStep) => Promise<void> | undefined;
}

/** The committed state a resumed run starts from. */
export interface ResumeState {
  mode: ResumeMode;
  /** Committed results kept, by step index (replayed, not executed). */
  prior: (FlowResult | undefined)[];
  /** The last attempt started of each step (0 = none): a step runs again with this + 1. */
  attempts: number[];
}

/** True when `run` ended because its engine stopped (code 503 `RUN_INTERRUPTED`). */
export function wasInterrupted(run: RunRecord): boolean {
  const r = run.result;
  return r?.outcome === "failed" && r.error.code === RUN_INTERRUPTED;
}

/**
 * The mode a run needs (`requested` wins).
 * @throws {RunNotResumableError} for a completed run.
 */
export function resumeModeOf(run: RunRecord, requested?: ResumeMode): ResumeMode {
  if (run.status === "completed") {
    throw new RunNotResumableError(
      `run ${run.runId} completed; there is nothing to resume (start a new run instead)`,
      run.runId,
      "completed",
    );
  }
  if (requested !== undefined) return requested;
  if (run.status === "failed" || run.status === "cancelled") {
    return wasInterrupted(run) ? "interrupted" : "failed";
  }
  return "interrupted";
}

/**
 * Reads what run `run` committed: its step results by index (checked against `flow`'s step ids)
 * and the attempt each step reached.
 */
export async function loadResumeState(
  store: StateStore,
  run: RunRecord,
  flow: Flow,
  mode: ResumeMode,
): Promise<ResumeState> {
  const steps = flow.steps ?? [];
  const prior: (FlowResult | undefined)[] = new Array(steps.length);
  const attempts: number[] = new Array(steps.length).fill(0);
  const [results, infos] = await Promise.all([
    store.getStepResults(run.runId),
    store.getStepInfo(run.runId),
  ]);
  for (const r of results) {
    if (steps[r.stepIndex]?.id === r.stepId) prior[r.stepIndex] = r.result;
  }
  for (const i of infos) {
    if (steps[i.stepIndex]?.id === i.stepId) attempts[i.stepIndex] = i.attempt;
  }
  return { mode, prior, attempts };
}

/**
 * In `failed` mode, drops the committed failures and the results of every step depending on
 * them (directly or not) from `state.prior`, so they run again. Returns `state`.
 */
export function applyResumeMode(compiled: CompiledFlow, state: ResumeState): ResumeState {
  if (state.mode !== "failed") return state;
  const prior = state.prior;
  const stack: number[] = [];
  for (let i = 0; i < prior.length; i++) {
    if (prior[i]?.outcome === "failed") stack.push(i);
  }
  const dropped = new Uint8Array(prior.length);
  while (stack.length > 0) {
    const i = stack.pop()!;
    if (dropped[i]) continue;
    dropped[i] = 1;
    prior[i] = undefined;
    for (const d of compiled.steps[i]?.dependents ?? []) stack.push(d);
  }
  return state;
}

/** The deterministic key of a nested run. */
export function nestedRunKey(parentRunId: string, stepId: string, item?: number): string {
  return item === undefined ? `${parentRunId}/${stepId}` : `${parentRunId}/${stepId}/${item}`;
}
