/**
 * The life of one run from its start to its stored result (src/execution/engine.ts starts it):
 * the run record, the `run_started` / `run_finished` events, secrets redaction, the nesting limit,
 * the run's budget, timeout and limits, its {@linkcode RunContext}, the scheduler, and the stored
 * completion a top-level run waits for (issue 10: never report a result whose state was not
 * stored).
 * @module
 */
import type { Flow } from "../flow/model.ts";
import type { LoadedConfig } from "../config/model.ts";
import type { JsonValue } from "../json/exact_json.ts";
import { failedFromExecutionError, type FlowResult } from "../core/flow_result.ts";
import { parseDuration } from "../core/duration.ts";
import { Limiter } from "../core/limiter.ts";
import { setDeadline } from "../core/turn.ts";
import { ExecutionError, executionError } from "../errors.ts";
import type { EngineServices } from "../plugins/plugin.ts";
import type { Logger } from "../log.ts";
import { redactLogs } from "../log.ts";
import type { RunRecord, RunStatus, StateStore, Stored } from "../state/store.ts";
import { nowRfc3339, storeFailedResult } from "../state/store.ts";
import { compileFlow } from "./compile.ts";
import { cancelled, executeFlow } from "./scheduler.ts";
import { applyOverrides } from "./overrides.ts";
import {
  type ComponentResolver,
  endStatus,
  InFlight,
  makeScope,
  NO_VARIABLES,
  type RunContext,
  type RunLimits,
  type RunOrigin,
  type StepRunner,
} from "./run_context.ts";
import {
  DEFAULT_MAX_NESTED_RUNS,
  DEFAULT_MAX_RUN_STEPS,
  MAX_NESTING_DEPTH,
  RunBudget,
} from "./limits.ts";
import { runTimeoutReason } from "./timeout.ts";
import { RunEvents, type RunObserver } from "./observers.ts";
import { type Redactor, runRedactor } from "./secrets.ts";
import type { RunOptions } from "./run_options.ts";
import { applyResumeMode, type ResumeMode, type ResumeState, runOptionsToStore } from "./resume.ts";
import type { IdSet } from "../core/id_map.ts";

/** Run options the engine passes to nested runs. */
export interface InternalRunOptions extends RunOptions {
  /** 0 for a top-level run, parent's + 1 for a nested one. */
  depth?: number;
  /** The top-level run's budget (nested runs). */
  budget?: RunBudget;
  /** The secrets of the parent run (its nested runs redact them too). */
  secrets?: Redactor;
  parentStepId?: string;
  item?: number;
  /** Resume this (existing) run from its committed state instead of creating it. */
  resume?: ResumeState;
  /** The parent run is resumed: look this nested run up by its key first. */
  resumeMode?: ResumeMode;
  /** Of `timeoutMs`, the time a resumed run already spent executing (ms). */
  timeoutUsedMs?: number;
  /**
   * The caller made `runId` itself just now (a new UUID, or the service's own queued run): the
   * engine does not ask the store whether a run has it (a read that waits for a commit:
   * src/execution/engine.ts).
   */
  newRunId?: boolean;
}

/** What a run needs from its engine. */
export interface RunHost {
  readonly config: LoadedConfig;
  readonly store: StateStore;
  readonly resolver: ComponentResolver;
  readonly log: Logger;
  readonly stepRunner: StepRunner | undefined;
  /** The engine's observers now (a run sees those registered before it started). */
  observers(): ReadonlySet<RunObserver>;
  /** Top-level runs executing in this engine. */
  readonly executing: IdSet;
  /** The flow's id, stored as a flow blob the first time. */
  registerFlow(flow: Flow): string;
  /** The engine services of run `runId` (what its components get). */
  services(
    runId: string,
    signal: AbortSignal,
    depth: number,
    budget: RunBudget,
    secrets?: Redactor,
    resumeMode?: ResumeMode,
  ): EngineServices;
}

/** Where a run is in its life, for its handle. */
export interface RunHooks {
  /** The run's context exists (its steps can be listed). */
  started(run: RunContext): void;
  /**
   * The write of the run's record was issued (`createRun`, or the status of a resumed or claimed
   * run): resolved once the store has committed it.
   */
  written(write: Stored): void;
}

/**
 * Runs `flow` on `input` as run `runId` and returns its FlowResult (stored with the run's
 * completion). Never throws for problems of the flow or its steps; what the store throws at the
 * run's start is thrown (the caller, src/execution/run_handle.ts, turns it into a rejection). Not
 * an `async` function: `then`s cost less than two async frames per nested run (issue 17: every
 * item of a map over a multi-step flow is one).
 */
export function executeRun(
  host: RunHost,
  flow: Flow,
  input: JsonValue,
  runId: string,
  options: InternalRunOptions,
  controller: AbortController,
  hooks: RunHooks,
): Promise<FlowResult> {
  const store = host.store;
  const flowId = host.registerFlow(flow);
  const depth = options.depth ?? 0;
  const topLevel = options.parentRunId === undefined;
  if (topLevel) host.executing.add(runId);
  const origin = originOf(options);
  // Not awaited: the store commits writes in order, so a later commit of this run (a step
  // result, its completion) fails when this one did (src/state/store.ts). A run claimed from
  // the queue exists already.
  if (options.resume !== undefined) {
    // claimed already (engine.resume): running again
    hooks.written(store.setRunStatus(runId, "running"));
  } else if (!options.existing) {
    // built by assignment: a conditional spread makes a slower object to build and to copy
    // (every nested run of a multi-step map item flow makes one)
    const record: RunRecord = {
      runId,
      flowId,
      flowName: flow.name,
      status: "running",
      input,
      overrides: options.overrides,
      variables: variablesObject(options.variables),
      createdAt: nowRfc3339(),
      parentRunId: options.parentRunId,
    };
    if (origin?.runKey !== undefined) record.runKey = origin.runKey;
    else if (options.runKey !== undefined && topLevel) record.runKey = options.runKey;
    if (options.debugMode === true && topLevel) record.debugMode = true;
    if (topLevel) record.runOptions = runOptionsToStore(host.config, options);
    hooks.written(store.createRun(record, true)); // (its own literal)
  } else {
    hooks.written(undefined);
  }
  const budget = options.budget ?? runBudget(host.config, options, controller, runId);
  const observers = host.observers();
  const events = observers.size > 0 ? new RunEvents(runId, [...observers], host.log) : undefined;
  events?.emit({
    type: "run_started",
    runId,
    flowId,
    ...(flow.name !== undefined ? { flowName: flow.name } : {}),
    ...(options.parentRunId !== undefined ? { parentRunId: options.parentRunId } : {}),
    rootRunId: budget.rootRunId,
    ...(origin?.runKey !== undefined ? { runKey: origin.runKey } : {}),
    at: Date.now(),
  });
  // Secrets (`is_secret` in the flow's schemas) are redacted from logs and failed results
  // while the run lasts (src/execution/secrets.ts).
  const secrets = runRedactor(
    flow,
    input,
    options.variables instanceof Map ? options.variables : Object.entries(options.variables ?? {}),
    options.secrets,
  );
  const stopRedacting = secrets ? redactLogs(secrets) : undefined;
  let call: FlowResult | Promise<FlowResult>;
  let ctx: RunContext | undefined;
  try {
    if (depth > MAX_NESTING_DEPTH) {
      const top = `Nested flows are more than ${MAX_NESTING_DEPTH} deep`;
      call = failedFromExecutionError(executionError(top, {
        attachments: [
          `Run ${runId} of flow ${flowId} was not started: does a flow evaluate itself without end?`,
        ],
      }));
    } else if (options.budget !== undefined && !budget.addRun()) {
      call = cancelled(controller.signal.reason);
    } else {
      call = execute(host, flow, flowId, runId, input, options, depth, {
        controller,
        budget,
        events,
        origin,
        secrets,
        started: (r) => {
          ctx = r;
          hooks.started(r);
        },
      });
    }
  } catch (e) {
    stopRedacting?.();
    throw e;
  }
  const finish = (result: FlowResult): FlowResult => {
    if (topLevel) host.executing.delete(runId);
    events?.finished(result);
    return result;
  };
  const end = (result: FlowResult): FlowResult | Promise<FlowResult> => {
    stopRedacting?.();
    if (secrets) result = secrets.redactResult(result);
    const ended = endRun(store, runId, result, controller.signal, ctx, topLevel);
    return ended instanceof Promise ? ended.then(finish) : finish(ended);
  };
  if (!(call instanceof Promise)) {
    const ended = end(call);
    return ended instanceof Promise ? ended : Promise.resolve(ended);
  }
  return call.then(end, (e) => {
    stopRedacting?.();
    throw e;
  });
}

/**
 * Queues the end of run `runId` and gives the result to report. The end is queued right behind the
 * run's last step results, which may still be committing (the scheduler builds the output at
 * once): both usually share one group commit. Never reports a result whose run state was not
 * stored (issue 10): it waits for the step results' commit and, for a top-level run, the end's
 * commit too (which also fails when an earlier write of the run or its nested runs failed); then
 * the result is 507, and an end queued as `completed` is corrected to `failed`. A run cancelled
 * by its signal (Ctrl-C, SIGTERM: code 410) is stored `cancelled`, as the service stores the runs
 * it cancels (`stepflow runs list --status cancelled` finds it).
 *
 * Returns the result itself when there is nothing to wait for (a store that applies writes at
 * once), else a promise of it: no async frame and no promise hop on the in-memory store's path
 * (issue 17: a one-step run's end).
 */
export function endRun(
  store: StateStore,
  runId: string,
  result: FlowResult,
  signal: AbortSignal,
  ctx: RunContext | undefined,
  topLevel: boolean,
): FlowResult | Promise<FlowResult> {
  const status = endStatus(result, signal);
  const pending = ctx?.commit;
  if (status !== "completed" && ctx !== undefined) {
    ctx.inFlight.recordCutShort(store, runId, ctx.results);
  }
  const stored = store.completeRun(runId, status, result);
  const waitEnd = stored !== undefined && topLevel;
  if (pending === undefined && !waitEnd && ctx?.storeError === undefined) return result;
  return endCommitted(store, runId, result, status, ctx, pending, waitEnd ? stored : undefined);
}

/** {@linkcode endRun} once the run's pending commit and its end's commit (`stored`) are in. */
async function endCommitted(
  store: StateStore,
  runId: string,
  result: FlowResult,
  status: RunStatus,
  ctx: RunContext | undefined,
  pending: Promise<void> | undefined,
  stored: Promise<void> | undefined,
): Promise<FlowResult> {
  let failure: unknown;
  try {
    if (pending !== undefined) await pending;
  } catch (e) {
    failure = e;
  }
  try {
    if (stored !== undefined) await stored;
  } catch (e) {
    failure = e; // the end's error says what becomes of this run (the store knows it best)
  }
  failure ??= ctx?.storeError;
  if (failure === undefined) return result;
  const failedResult = storeFailedResult(failure);
  if (status === "completed") correctEnd(store, runId, failedResult);
  return failedResult;
}

/**
 * Stores `failed` as the end of run `runId`, best effort: the store may refuse it (its database
 * is failing, the run was taken over), which changes nothing for the run's result.
 */
function correctEnd(store: StateStore, runId: string, failed: FlowResult): void {
  try {
    store.completeRun(runId, "failed", failed)?.catch(() => {});
  } catch {
    // the result says the run failed; its stored end stays what the store could keep
  }
}

/** The budget of a top-level run; going over it aborts the run. */
export function runBudget(
  config: LoadedConfig,
  options: RunOptions,
  controller: AbortController,
  runId: string,
): RunBudget {
  const c = config.config;
  return new RunBudget(
    options.maxRunSteps ?? c.maxRunSteps ?? DEFAULT_MAX_RUN_STEPS,
    options.maxNestedRuns ?? c.maxNestedRuns ?? DEFAULT_MAX_NESTED_RUNS,
    (reason) => controller.abort(reason),
    runId,
  );
}

/**
 * The run's steps through the scheduler; the result itself when the flow cannot be compiled. Not
 * an `async` function (see {@linkcode executeRun}).
 */
function execute(
  host: RunHost,
  flow: Flow,
  flowId: string,
  runId: string,
  input: JsonValue,
  options: InternalRunOptions,
  depth: number,
  parts: {
    controller: AbortController;
    budget: RunBudget;
    events?: RunEvents;
    origin?: RunOrigin;
    secrets?: Redactor;
    started: (run: RunContext) => void;
  },
): FlowResult | Promise<FlowResult> {
  let compiled;
  try {
    compiled = compileFlow(applyOverrides(flow, options.overrides));
  } catch (e) {
    if (e instanceof ExecutionError) return failedFromExecutionError(e);
    throw e;
  }
  const { controller, budget } = parts;
  const cancelTimer = runDeadline(host.config, options, controller);
  const variables = options.variables instanceof Map
    ? options.variables
    : options.variables === undefined
    ? NO_VARIABLES
    : new Map(Object.entries(options.variables));
  const results: (FlowResult | undefined)[] = new Array(compiled.steps.length);
  const run: RunContext = {
    runId,
    flowId,
    compiled,
    input,
    variables,
    results,
    scope: makeScope(compiled, input, results, variables),
    signal: controller.signal,
    services: host.services(
      runId,
      controller.signal,
      depth,
      budget,
      parts.secrets,
      options.resume?.mode,
    ),
    resolver: host.resolver,
    store: host.store,
    log: host.log,
    inFlight: new InFlight(compiled.steps),
    budget,
    limits: runLimits(host.config, options),
  };
  if (parts.events !== undefined) run.events = parts.events;
  if (options.gate !== undefined) run.gate = options.gate;
  if (host.stepRunner !== undefined) run.runner = host.stepRunner;
  if (parts.origin !== undefined) run.origin = parts.origin;
  if (parts.secrets !== undefined) run.secrets = parts.secrets;
  if (options.resume !== undefined) run.resume = applyResumeMode(compiled, options.resume);
  parts.started(run);
  let flowDone: Promise<FlowResult>;
  try {
    flowDone = executeFlow(run, (reason) => controller.abort(reason));
  } catch (e) {
    cancelTimer?.();
    throw e;
  }
  if (cancelTimer === undefined) return flowDone;
  return flowDone.then((r) => {
    cancelTimer();
    return r;
  }, (e) => {
    cancelTimer();
    throw e;
  });
}

/**
 * The run's timeout (`timeoutMs`, or the config's `runTimeout` for a top-level run; less what a
 * resumed run used before) as a deadline that aborts `controller`; returns its cancel function, or undefined without a timeout. A
 * deadline, not a plain timer: busy built-in work cannot keep it from firing (core/turn.ts).
 */
export function runDeadline(
  config: LoadedConfig,
  options: InternalRunOptions,
  controller: AbortController,
): (() => void) | undefined {
  const runTimeout = config.config.runTimeout;
  const runTimeoutMs = options.timeoutMs ??
    (options.parentRunId === undefined && runTimeout !== undefined
      ? parseDuration(runTimeout, { what: "runTimeout" })
      : undefined);
  // A resumed run has what is left of its timeout; none left: it times out before any step.
  const left = runTimeoutMs === undefined ? undefined : runTimeoutMs - (options.timeoutUsedMs ?? 0);
  if (left !== undefined && left <= 0) controller.abort(runTimeoutReason(runTimeoutMs!));
  return left !== undefined && left > 0
    ? setDeadline(left, () => controller.abort(runTimeoutReason(runTimeoutMs!)))
    : undefined;
}

/** The limits of one run (issue 5): steps in flight, output size. */
export function runLimits(config: LoadedConfig, options: RunOptions): RunLimits | undefined {
  const max = options.maxConcurrency ?? config.config.maxConcurrency;
  const maxOutput = config.config.maxOutputSize;
  if (max === undefined && maxOutput === undefined) return undefined;
  const limits: RunLimits = {};
  if (max !== undefined) limits.steps = new Limiter(max);
  if (maxOutput !== undefined) limits.maxOutputBytes = maxOutput;
  return limits;
}

/** Where a nested run comes from, with its deterministic key when its step is known. */
function originOf(options: InternalRunOptions): RunOrigin | undefined {
  if (options.parentRunId === undefined) return undefined;
  const origin: RunOrigin = { parentRunId: options.parentRunId };
  if (options.parentStepId !== undefined) {
    origin.stepId = options.parentStepId;
    origin.runKey = `${options.parentRunId}/${options.parentStepId}`;
    if (options.item !== undefined) {
      origin.item = options.item;
      origin.runKey += `/${options.item}`;
    }
  }
  return origin;
}

/** Run variables as the state store keeps them (undefined when there are none). */
function variablesObject(
  v: Record<string, JsonValue> | ReadonlyMap<string, JsonValue> | undefined,
): Record<string, JsonValue> | undefined {
  if (v === undefined) return undefined;
  const o = v instanceof Map ? Object.fromEntries(v) : v as Record<string, JsonValue>;
  return Object.keys(o).length > 0 ? o : undefined;
}
