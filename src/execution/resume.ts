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
 *
 * **Stored run options** ({@linkcode StoredRunOptions}, `RunRecord.runOptions`): a top-level run
 * is recorded with its config file (absolute path, SHA-256 of its bytes), its run timeout and
 * its limits, so that a resume continues it as it was started ({@linkcode resumedRunLimits}):
 * - the run timeout is a budget of **time spent executing**: a run whose engine stopped
 *   (`running`, `paused`, interrupted) gets what is left of it — the time from each start or
 *   takeover to the last journal event of the run (or of its nested runs) before the engine
 *   stopped counts, the time no engine ran it does not; a run that failed or was cancelled on its
 *   own is re-driven with the whole timeout again (a new attempt, as Step Functions' redrive);
 * - `maxConcurrency`, `maxNestedRuns`, `maxRunSteps` are kept as stored;
 * - what the caller gives (`ResumeOptions.timeoutMs`, `maxConcurrency`) wins: a given timeout is
 *   a fresh limit for the resumed part.
 * @module
 */
import { createHash } from "node:crypto";
import type { FlowResult } from "../core/flow_result.ts";
import { RUN_INTERRUPTED } from "../core/error_codes.ts";
import { parseDuration } from "../core/duration.ts";
import { RunNotResumableError } from "../errors.ts";
import type { LoadedConfig } from "../config/model.ts";
import type { RunRecord, StateStore, StoredRunOptions } from "../state/store.ts";
import { isFinished } from "../state/store.ts";
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
  /**
   * A new run timeout, ms, for the resumed part (`stepflow resume --timeout`). Default: what is
   * left of the timeout stored with the run (see the module docs), else the config's.
   */
  timeoutMs?: number;
  /** Most steps in flight at once. Default: the run's stored limit, else the config's. */
  maxConcurrency?: number;
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

// ---------------------------------------------------------------------------------------------
// stored run options

const fingerprints = new WeakMap<LoadedConfig, StoredRunOptions>();

/**
 * What is stored with a top-level run started on `config` with `options` (`RunRecord.runOptions`):
 * the config file's absolute path and SHA-256 (read once per config object), and the run timeout
 * and limits in effect (the option, else the config's). The file is hashed the first time (a
 * file that cannot be read is stored by its path alone).
 */
export function runOptionsToStore(
  config: LoadedConfig,
  options: Pick<StoredRunOptions, "timeoutMs" | "maxConcurrency" | "maxNestedRuns" | "maxRunSteps">,
): StoredRunOptions {
  let base = fingerprints.get(config);
  if (base === undefined) {
    base = {};
    if (config.path !== undefined) {
      base.configPath = config.path;
      try {
        base.configSha256 = sha256OfBytes(Deno.readFileSync(config.path));
      } catch {
        // not readable now (permissions, removed): a resume cannot check it, only find it
      }
    } else base.workingDirectory = config.workingDirectory;
    const c = config.config;
    if (c.runTimeout !== undefined) {
      try {
        base.timeoutMs = parseDuration(c.runTimeout, { what: "runTimeout" });
      } catch {
        // an invalid runTimeout fails the run itself (src/execution/run_lifecycle.ts)
      }
    }
    if (c.maxConcurrency !== undefined) base.maxConcurrency = c.maxConcurrency;
    fingerprints.set(config, Object.freeze(base));
  }
  const { timeoutMs, maxConcurrency, maxNestedRuns, maxRunSteps } = options;
  if (
    timeoutMs === undefined && maxConcurrency === undefined && maxNestedRuns === undefined &&
    maxRunSteps === undefined
  ) {
    return base;
  }
  const out = { ...base };
  if (timeoutMs !== undefined) out.timeoutMs = timeoutMs;
  if (maxConcurrency !== undefined) out.maxConcurrency = maxConcurrency;
  if (maxNestedRuns !== undefined) out.maxNestedRuns = maxNestedRuns;
  if (maxRunSteps !== undefined) out.maxRunSteps = maxRunSteps;
  return out;
}

/** Lowercase hex SHA-256 of `bytes` (a config file's, `StoredRunOptions.configSha256`). */
export function sha256OfBytes(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** The limits a resumed run gets (see the module docs); all optional. */
export interface ResumedRunLimits {
  timeoutMs?: number;
  /** Of `timeoutMs`, the time the run already spent executing before (ms). */
  timeoutUsedMs?: number;
  maxConcurrency?: number;
  maxNestedRuns?: number;
  maxRunSteps?: number;
}

/**
 * The limits of resumed run `record` from its stored options and `options` (which win). Reads the
 * run's journal when the run continues a stored timeout ({@linkcode executedMs}).
 */
export async function resumedRunLimits(
  store: StateStore,
  record: RunRecord,
  options: Pick<ResumeOptions, "timeoutMs" | "maxConcurrency">,
): Promise<ResumedRunLimits> {
  const stored = record.runOptions ?? {};
  const out: ResumedRunLimits = {};
  if (options.timeoutMs !== undefined) out.timeoutMs = options.timeoutMs;
  else if (stored.timeoutMs !== undefined) {
    out.timeoutMs = stored.timeoutMs;
    // an engine stopped: the same run goes on, with what is left of its time
    if (!isFinished(record.status) || wasInterrupted(record)) {
      out.timeoutUsedMs = await executedMs(store, record);
    }
  }
  const max = options.maxConcurrency ?? stored.maxConcurrency;
  if (max !== undefined) out.maxConcurrency = max;
  if (stored.maxNestedRuns !== undefined) out.maxNestedRuns = stored.maxNestedRuns;
  if (stored.maxRunSteps !== undefined) out.maxRunSteps = stored.maxRunSteps;
  return out;
}

/** Journal events that do not show the run executing (written by others, or when found dead). */
const NOT_EXECUTING = new Set(["run_queued", "run_interrupted", "signal_received"]);

/** Events read per page by {@linkcode executedMs}. */
const EVENT_PAGE = 5000;

/**
 * How long top-level run `record` has been executed so far, ms, from its journal (its events and
 * its nested runs'): for each stretch from its start (or a takeover: `run_resumed` with a
 * `leaseEpoch`) to the last event before the next takeover. The time between an engine's last
 * journaled event and its death is not known, so it is not counted. 0 without a journal.
 */
export async function executedMs(store: StateStore, record: RunRecord): Promise<number> {
  const runId = record.runId;
  let start = Date.parse(record.createdAt);
  let last = start;
  let used = 0;
  let after = 0;
  for (;;) {
    const page = await store.getEvents({ rootRunId: runId, afterId: after, limit: EVENT_PAGE });
    for (const e of page) {
      const at = Date.parse(e.at);
      if (Number.isNaN(at) || NOT_EXECUTING.has(e.type)) continue;
      const takeover = e.type === "run_resumed" && e.runId === runId &&
        typeof e.data === "object" && e.data !== null && !Array.isArray(e.data) &&
        "leaseEpoch" in e.data;
      if (takeover || (e.type === "run_started" && e.runId === runId)) {
        if (takeover) used += Math.max(0, last - start);
        start = last = at;
      } else if (at > last) last = at;
    }
    if (page.length < EVENT_PAGE) break;
    after = page[page.length - 1].id;
  }
  return used + Math.max(0, last - start);
}
