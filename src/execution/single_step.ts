/**
 * Nested runs of one-step flows without the scheduler (issue 17): a `/map` item, an `/eval` or a
 * `flows/evaluate` whose flow is one step feeding the output is the common AI shape ("call this
 * component on every item"), and the general run machinery (a run handle, a scheduler promise,
 * signals for the run and for its step, dependency counters) cost more than the step itself.
 *
 * What stays the same as a scheduled run, so nothing but speed can tell them apart:
 * - the state store sees the same writes: the run (status `running`, its parent, its key
 *   `<parentRunId>/<stepId>[/<item>]`), the step's result, the run's completion;
 * - the step goes through the same pipeline stages ({@linkcode runStep}: skip, input, call with
 *   retry/timeout and plugin limits, onError, the durability rule for steps with side effects),
 *   then the record stage: the output is built on the committed result only;
 * - the run counts against the top-level run's budget (`maxNestedRuns`, `maxRunSteps`), follows
 *   its cancellation (a signal of its own, so thousands of items in flight do not add a listener
 *   each to the parent's), and lets the event loop turn when it is due (src/core/turn.ts);
 * - observers get the same events: run_started, step_started, step_finished, run_finished.
 *
 * Not taken (the engine runs the flow the general way) when the flow has more than one step, its
 * step is not required, overrides are given, the run or its flow has secrets, a step runner
 * replaces the pipeline (tests), or the flow cannot be compiled.
 *
 * A top-level run of a one-step flow takes the same path: src/execution/single_step_top.ts.
 * @module
 */
import { failedFromExecutionError, type FlowResult } from "../core/flow_result.ts";
import { childSignal } from "../core/abort.ts";
import { onNextTurn, turnDue } from "../core/turn.ts";
import { ExecutionError, executionError } from "../errors.ts";
import type { JsonValue } from "../json/exact_json.ts";
import type { Flow } from "../flow/model.ts";
import { resolveTemplate } from "../flow/template.ts";
import type { EngineServices } from "../plugins/plugin.ts";
import type { Logger } from "../log.ts";
import { nowRfc3339, type RunRecord, type StateStore } from "../state/store.ts";
import { type CompiledFlow, type CompiledStep, compileFlow } from "./compile.ts";
import {
  type ComponentResolver,
  InFlight,
  makeScope,
  type RunContext,
  type RunLimits,
  type RunOrigin,
} from "./run_context.ts";
import type { RunBudget } from "./limits.ts";
import { RunEvents, type RunObserver } from "./observers.ts";
import { runStep } from "./pipeline.ts";
import { cancelled } from "./scheduler.ts";
import { storeFailure, templateFailure } from "./step_errors.ts";
import type { NestedRunStart } from "./run_services.ts";

/** What a one-step run needs from the engine. */
export interface OneStepHost {
  readonly store: StateStore;
  readonly resolver: ComponentResolver;
  readonly log: Logger;
  /** The engine's observers now (empty: nobody observes). */
  observers(): ReadonlySet<RunObserver>;
  /** The flow's id (stored as a flow blob the first time). */
  registerFlow(flow: Flow): string;
  /** The engine services of a run. */
  services(runId: string, signal: AbortSignal, depth: number, budget: RunBudget): EngineServices;
  /** The limits of a nested run (no options of its own). */
  limits(): RunLimits | undefined;
}

/** The variables of a run given none (shared). */
export const NO_VARIABLES: ReadonlyMap<string, JsonValue> = new Map();

/**
 * Idle {@linkcode InFlight} tables of one-step flows, by flow: a one-step run's table is its own
 * while it runs and nobody reads it after (it is not registered anywhere), so it is reused
 * instead of allocating two typed arrays per map item (issue 17).
 */
const idleInFlight = new WeakMap<CompiledFlow, InFlight[]>();
/** Most idle tables kept per flow (the concurrency of a map, typically). */
const MAX_IDLE_IN_FLIGHT = 64;

function takeInFlight(compiled: CompiledFlow): InFlight {
  return idleInFlight.get(compiled)?.pop() ?? new InFlight(compiled.steps);
}

function giveInFlight(compiled: CompiledFlow, t: InFlight): void {
  t.startedAt[0] = 0;
  t.attempt[0] = 0;
  let idle = idleInFlight.get(compiled);
  if (idle === undefined) idleInFlight.set(compiled, idle = []);
  if (idle.length < MAX_IDLE_IN_FLIGHT) idle.push(t);
}

/** A one-step flow compiled, and its step. */
export interface OneStep {
  compiled: CompiledFlow;
  step: CompiledStep;
}

/**
 * The one step of `flow` when a nested run of it can skip the scheduler (see the module doc),
 * else undefined.
 */
export function oneStepOf(flow: Flow): OneStep | undefined {
  if (flow.steps?.length !== 1) return undefined;
  let compiled: CompiledFlow;
  try {
    compiled = compileFlow(flow);
  } catch {
    return undefined; // the general path reports it as the run's failure
  }
  const step = compiled.steps[0];
  if (!step.required) return undefined;
  return { compiled, step };
}

/**
 * Runs a nested run of a one-step flow (see {@linkcode oneStepOf}) and returns its FlowResult.
 * Never throws: errors become `failed` results as in a scheduled run.
 * @param options a nested run's options: `parentRunId`, `budget` and `depth` set; no overrides,
 *   no secrets.
 */
export async function runOneStep(
  host: OneStepHost,
  flow: Flow,
  one: { compiled: CompiledFlow; step: CompiledStep },
  input: JsonValue,
  options: NestedRunStart & { parentRunId: string; budget: RunBudget },
): Promise<FlowResult> {
  // a map over 100,000 items keeps the loop busy: timers and signals come first when due
  if (turnDue()) await new Promise<void>((resolve) => onNextTurn(resolve));
  const { compiled, step } = one;
  const { store, log } = host;
  const budget = options.budget;
  const runId = options.runId ?? crypto.randomUUID();
  const flowId = host.registerFlow(flow);
  const origin: RunOrigin = { parentRunId: options.parentRunId };
  if (options.parentStepId !== undefined) {
    origin.stepId = options.parentStepId;
    origin.runKey = `${options.parentRunId}/${options.parentStepId}`;
    if (options.item !== undefined) {
      origin.item = options.item;
      origin.runKey += `/${options.item}`;
    }
  }
  // built by assignment, not with a conditional spread (a slower object to make and copy)
  const record: RunRecord = {
    runId,
    flowId,
    flowName: flow.name,
    status: "running",
    input,
    createdAt: nowRfc3339(),
    parentRunId: options.parentRunId,
  };
  if (origin.runKey !== undefined) record.runKey = origin.runKey;
  store.createRun(record);
  const observers = host.observers();
  const events = observers.size > 0 ? new RunEvents(runId, [...observers], log) : undefined;
  events?.emit({
    type: "run_started",
    runId,
    flowId,
    ...(flow.name !== undefined ? { flowName: flow.name } : {}),
    parentRunId: options.parentRunId,
    rootRunId: budget.rootRunId,
    ...(origin.runKey !== undefined ? { runKey: origin.runKey } : {}),
    at: Date.now(),
  });
  const child = childSignal(options.signal);
  let result: FlowResult;
  try {
    if (!budget.addRun() || !budget.addStep()) result = cancelled(child.signal.reason);
    else {
      const results: (FlowResult | undefined)[] = [undefined];
      const run: RunContext = {
        runId,
        flowId,
        compiled,
        input,
        variables: NO_VARIABLES,
        results,
        scope: makeScope(compiled, input, results, NO_VARIABLES),
        signal: child.signal,
        services: host.services(runId, child.signal, options.depth, budget),
        resolver: host.resolver,
        store,
        log,
        inFlight: takeInFlight(compiled),
        budget,
        origin,
      };
      const limits = host.limits();
      if (limits !== undefined) run.limits = limits;
      if (events !== undefined) run.events = events;
      result = await execute(run, step);
      giveInFlight(compiled, run.inFlight);
    }
  } finally {
    child.dispose();
  }
  const status = result.outcome === "success" ? "completed" : "failed";
  store.completeRun(runId, status, result); // a nested run's commit is awaited by its top run
  events?.finished(result);
  return result;
}

/**
 * The step through the pipeline's stages, its record, and the run's output. `awaitCommit`: the
 * output is built on the committed result (a nested run); else (a top-level run, as the
 * scheduler does) the result's commit is left in `run.commit`, and its failure in
 * `run.storeError`, for the run's end to wait for with its own commit (one group commit).
 */
export async function execute(
  run: RunContext,
  step: CompiledStep,
  awaitCommit = true,
): Promise<FlowResult> {
  const startedAt = Date.now();
  run.inFlight.startedAt[0] = startedAt;
  run.inFlight.attempt[0] = 1;
  run.events?.emit({
    type: "step_started",
    runId: run.runId,
    stepId: step.id,
    stepIndex: 0,
    component: step.component,
    attempt: 1,
    at: startedAt,
  });
  let r: FlowResult;
  try {
    if (run.signal.aborted) throw run.signal.reason;
    r = await runStep(step, run, run.signal);
  } catch (e) {
    run.inFlight.startedAt[0] = 0;
    if (run.signal.aborted) return cancelled(run.signal.reason);
    const err = e instanceof ExecutionError
      ? e
      : executionError(`step "${step.id}" failed`, { cause: e, stepId: step.id });
    return failedFromExecutionError(err);
  }
  if (run.signal.aborted) return cancelled(run.signal.reason);
  // record: the result, then the output on the committed result only
  run.results[0] = r;
  try {
    const write = run.store.recordStepResult(run.runId, {
      stepIndex: 0,
      stepId: step.id,
      result: r,
      component: step.component,
      attempt: run.inFlight.attempt[0],
      durationMs: (Date.now() - startedAt) | 0,
    });
    if (write !== undefined) {
      if (awaitCommit) await write;
      else {
        run.commit = write;
        write.catch((e) => run.storeError ??= e);
      }
    }
  } catch (e) {
    return failedFromExecutionError(storeFailure(step, run, e));
  }
  run.inFlight.startedAt[0] = 0;
  if (run.events !== undefined) {
    const at = Date.now();
    run.events.emit({
      type: "step_finished",
      runId: run.runId,
      stepId: step.id,
      stepIndex: 0,
      outcome: r.outcome,
      durationMs: at - startedAt,
      at,
      result: r,
    });
  }
  if (step.mustExecute && r.outcome === "failed") return r;
  try {
    return resolveTemplate(run.compiled.output, run.scope);
  } catch (e) {
    return failedFromExecutionError(
      templateFailure("failed to resolve workflow output", e, ["output"]),
    );
  }
}
