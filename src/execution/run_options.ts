/**
 * The options and handles of the engine's API (src/execution/engine.ts): what `Engine.create`,
 * `engine.run` and `engine.start` take, and the handle of a run in progress.
 * @module
 */
import type { Flow } from "../flow/model.ts";
import type { JsonValue } from "../json/exact_json.ts";
import type { FlowResult } from "../core/flow_result.ts";
import type { StateStore } from "../state/store.ts";
import type { StepGate, StepRunner } from "./run_context.ts";

/** A flow as loaded from a file (src/flow/load.ts): the model plus where it came from. */
export interface FlowLike {
  flow: Flow;
}

/** Options of `Engine.create`. */
export interface EngineOptions {
  /** Use this store instead of the config's `stateStore`. The engine closes it. */
  store?: StateStore;
  /**
   * Replaces the stages of every step before its record stage (skip, input, call, onError; see
   * src/execution/pipeline.ts): a seam for tests. Results are still recorded by the pipeline.
   */
  stepRunner?: StepRunner;
  /**
   * Cancels `Engine.create` while plugins start (Ctrl-C during a slow handshake): the
   * plugins started so far and the ones still starting are closed (their processes stopped), and
   * `create` rejects with the signal's reason.
   */
  signal?: AbortSignal;
}

/** Options of `Engine.run` and `Engine.start`. */
export interface RunOptions {
  /** Run variables (§1.8); `$from: {variable}` reads them. */
  variables?: Record<string, JsonValue> | ReadonlyMap<string, JsonValue>;
  /** Step overrides (§1.7). */
  overrides?: JsonValue;
  /** Cancels the run: in-flight steps are told to stop and the result is `failed` (410). */
  signal?: AbortSignal;
  /**
   * Run id to use (hyphenated UUID); a new one by default. An id is used once: the id of a run
   * executing in this engine throws a `UsageError`, and the id of a run already in the state
   * store (finished, or executed by another engine) makes the result reject with one (before:
   * the new run silently replaced the old run's record). A stored run is continued with
   * `engine.resume(runId)` instead. Every store takes a new id atomically (the in-memory one
   * too, when two engines share it): of two engines given it at the same instant, one runs it,
   * the other gets the `UsageError`.
   */
  runId?: string;
  /** The run that started this one (nested runs). */
  parentRunId?: string;
  /**
   * The run's record exists already (a run claimed from the store's queue, issue 14): the engine
   * does not create it again. Its `runId` must be given and this engine must hold its lease.
   */
  existing?: boolean;
  /**
   * A key stored with a top-level run (`RunRecord.runKey`, unique in the store), e.g. the service's
   * `idempotency:<Idempotency-Key>`; `StateStore.findRunByKey` finds the run by it. Nested runs
   * get theirs from the engine (`<parentRunId>/<stepId>[/<item>]`).
   */
  runKey?: string;
  /**
   * Stored with a top-level run (`RunRecord.debugMode`, stepflow 0.8's `debug_mode`): the caller
   * holds its steps with `gate` (the service's debug mode), and holds them again after a resume.
   */
  debugMode?: boolean;
  /**
   * Most steps of this run in flight at once (issue 5): a positive integer; default the config's
   * `maxConcurrency`, else no limit (0.8).
   */
  maxConcurrency?: number;
  /**
   * A limit on the whole run in ms (issue 5): when it passes, running steps are cancelled and the
   * result is `failed` with code 524 (`RUN_TIMEOUT`). Default: the config's `runTimeout` for
   * top-level runs; nested runs end with their parent.
   */
  timeoutMs?: number;
  /**
   * Most nested runs under this run, at any depth; default the config's `maxNestedRuns`, else
   * 100,000 (`DEFAULT_MAX_NESTED_RUNS`). More stops the run with `RUN_LIMIT` (508).
   */
  maxNestedRuns?: number;
  /**
   * Most steps started by this run and its nested runs; default the config's `maxRunSteps`, else
   * 1,000,000 (`DEFAULT_MAX_RUN_STEPS`). More stops the run with `RUN_LIMIT` (508).
   */
  maxRunSteps?: number;
  /**
   * Decides when each ready step may start (debug mode, human in the loop): `undefined` = now,
   * a promise = when it resolves. Not passed on to nested runs.
   */
  gate?: StepGate;
  /**
   * Called synchronously once the store has committed the run's record (at once for the
   * in-memory store and for a run whose record exists already), and before any step of the run
   * with side effects (a step service's, an MCP tool's) makes its call: such a step waits for
   * the commit of its start, queued after the record and resolved after it
   * (src/execution/run_handle.ts). `stepflow run --store` prints the run id here, so a printed id
   * is always resumable and a run whose steps had effects always had its id printed. Not called
   * when the record could not be written. Its exceptions are logged and otherwise ignored.
   */
  onRecorded?: () => void;
}

/** A run in progress (see `Engine.start`). */
export interface RunHandle {
  /** The run's id. */
  readonly runId: string;
  /** The run's FlowResult (never rejects for problems of the flow or its steps). */
  readonly result: Promise<FlowResult>;
  /** Cancels the run: running steps are told to stop; the result is `failed` (410). */
  cancel(reason?: unknown): void;
  /**
   * The steps running now (started, past any concurrency wait, result not yet recorded), with
   * their attempt and start time (ms since the epoch), in flow order. Empty before the run has
   * started its steps and after it ended.
   */
  inFlight(): { stepId: string; attempt: number; startedAt: number }[];
  /**
   * Resolves once the store has committed the run's record (at once for the in-memory store):
   * from then on the run can be found, and resumed from a database, by its id. Rejects when
   * that write failed or the run ended without a record.
   */
  readonly recorded: Promise<void>;
}
