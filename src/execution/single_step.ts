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
  endStatus,
  InFlight,
  makeScope,
  NO_VARIABLES,
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
  if (t.recorded !== undefined) t.recorded[0] = 0; // (a one-step flow's table)
  let idle = idleInFlight.get(compiled);
  if (idle === undefined) idleInFlight.set(compiled, idle = []);
  if (idle.length < MAX_IDLE_IN_FLIGHT) idle.push(t);
}

let keyParent = "";
let keyStep = "";
let keyPrefix = "";

/**
 * The run key `<parentRunId>/<stepId>/<item>` of an item run, on the prefix shared by the items of
 * the same step: one string of the item's own (its run keeps it), not four (a template literal of
 * five parts is a tree of four concatenations: 128 bytes per map item kept; issue 17).
 */
function itemKey(parentRunId: string, stepId: string, item: number): string {
  if (parentRunId !== keyParent || stepId !== keyStep) {
    keyParent = parentRunId;
    keyStep = stepId;
    keyPrefix = `${parentRunId}/${stepId}/`;
  }
  return keyPrefix + item;
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
export function runOneStep(
  host: OneStepHost,
  flow: Flow,
  one: OneStep,
  input: JsonValue,
  options: NestedRunStart & { parentRunId: string; budget: RunBudget },
): Promise<FlowResult> {
  // a map over 100,000 items keeps the loop busy: timers and signals come first when due
  if (turnDue()) {
    return new Promise<void>((resolve) => onNextTurn(resolve))
      .then(() => startOneStep(host, flow, one, input, options));
  }
  return startOneStep(host, flow, one, input, options);
}

/**
 * {@linkcode runOneStep} now. Not an `async` function: `then`s cost less than an async frame per
 * map item (issue 17).
 */
function startOneStep(
  host: OneStepHost,
  flow: Flow,
  one: OneStep,
  input: JsonValue,
  options: NestedRunStart & { parentRunId: string; budget: RunBudget },
): Promise<FlowResult> {
  const { compiled, step } = one;
  const { store, log } = host;
  const budget = options.budget;
  const runId = options.runId ?? crypto.randomUUID();
  const flowId = host.registerFlow(flow);
  const { parentRunId, parentStepId: stepId, item } = options;
  // One literal per case, every field in it: a property added to a literal afterwards costs a
  // property array and a hidden-class transition (a map item makes these objects 10,000 times).
  let origin: RunOrigin;
  let record: RunRecord;
  if (stepId === undefined) {
    origin = { parentRunId };
    record = {
      runId,
      flowId,
      flowName: flow.name,
      status: "running",
      input,
      createdAt: nowRfc3339(),
      parentRunId,
    };
  } else {
    const runKey = item === undefined
      ? `${parentRunId}/${stepId}`
      : itemKey(parentRunId, stepId, item);
    origin = item === undefined
      ? { parentRunId, stepId, runKey }
      : { parentRunId, stepId, item, runKey };
    record = {
      runId,
      flowId,
      flowName: flow.name,
      status: "running",
      input,
      createdAt: nowRfc3339(),
      parentRunId,
      runKey,
      // What the in-memory store sets on its copy now and at the run's end, given here so that
      // the copy has a field for each: set afterwards, they went into a property array of their
      // own (64 bytes more per map item kept, and a hidden-class transition per field; issue 17).
      // Stores set or ignore them (store.ts: the store fills in `rootRunId`, `ownerId`, ...).
      rootRunId: budget.rootRunId,
      ownerId: undefined,
      leaseEpoch: undefined,
      result: undefined,
      completedAt: undefined,
    };
  }
  store.createRun(record, true); // (a literal of its own, never touched again)
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
  let inFlight: InFlight | undefined;
  let results: (FlowResult | undefined)[] | undefined;
  let done: Promise<FlowResult>;
  try {
    if (!budget.addRun() || !budget.addStep()) {
      done = Promise.resolve(cancelled(child.signal.reason));
    } else {
      results = [undefined];
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
        limits: host.limits(),
        events,
      };
      inFlight = run.inFlight;
      done = execute(run, step);
    }
  } catch (e) {
    child.dispose();
    return Promise.reject(e);
  }
  return done.then((result) => {
    // as a scheduled nested run ends (run_lifecycle.ts endRun): `cancelled` when its parent was,
    // and the start of its step cut short recorded when the store was not told of it (a built-in
    // such as /builtin/wait_for), so that it reads `failed`; it read `failed` with no step
    const status = endStatus(result, child.signal);
    if (status !== "completed" && inFlight !== undefined) {
      inFlight.recordCutShort(store, runId, results);
    }
    child.dispose();
    if (inFlight !== undefined) giveInFlight(compiled, inFlight);
    store.completeRun(runId, status, result); // a nested run's commit is awaited by its top run
    events?.finished(result);
    return result;
  }, (e) => {
    child.dispose();
    throw e;
  });
}

/**
 * The step through the pipeline's stages, its record, and the run's output. `awaitCommit`: the
 * output is built on the committed result (a nested run); else (a top-level run, as the
 * scheduler does) the result's commit is left in `run.commit`, and its failure in
 * `run.storeError`, for the run's end to wait for with its own commit (one group commit).
 */
export function execute(
  run: RunContext,
  step: CompiledStep,
  awaitCommit = true,
): Promise<FlowResult> {
  // Not an `async` function: a `then` costs less than an async frame per run (issue 17).
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
  let call: Promise<FlowResult>;
  try {
    call = run.signal.aborted ? Promise.reject(run.signal.reason) : runStep(step, run, run.signal);
  } catch (e) {
    call = Promise.reject(e);
  }
  return call.then(
    (r) => recordOne(run, step, r, startedAt, awaitCommit),
    (e) => {
      // cancelled: the start is kept for the run's end, which records it when the store was not
      // told (a built-in such as /builtin/wait_for: InFlight.recordCutShort), so the
      // step reads `failed` as in a scheduled run (it read `blocked`)
      if (run.signal.aborted) return cancelled(run.signal.reason);
      run.inFlight.startedAt[0] = 0;
      const err = e instanceof ExecutionError
        ? e
        : executionError(`step "${step.id}" failed`, { cause: e, stepId: step.id });
      return failedFromExecutionError(err);
    },
  );
}

/** The record stage of the one step: its result, then the run's output on the committed result. */
function recordOne(
  run: RunContext,
  step: CompiledStep,
  r: FlowResult,
  startedAt: number,
  awaitCommit: boolean,
): FlowResult | Promise<FlowResult> {
  if (run.signal.aborted) return cancelled(run.signal.reason);
  run.results[0] = r;
  let write: void | Promise<void>;
  try {
    write = run.store.recordStepResult(run.runId, {
      stepIndex: 0,
      stepId: step.id,
      result: r,
      component: step.component,
      attempt: run.inFlight.attempt[0],
      durationMs: (Date.now() - startedAt) | 0,
    });
  } catch (e) {
    return failedFromExecutionError(storeFailure(step, run, e));
  }
  if (write !== undefined) {
    if (awaitCommit) {
      return write.then(
        () => outputOf(run, step, r, startedAt),
        (e) => failedFromExecutionError(storeFailure(step, run, e)),
      );
    }
    run.commit = write;
    write.catch((e) => run.storeError ??= e);
  }
  return outputOf(run, step, r, startedAt);
}

/** The step is recorded: its `step_finished` event and the run's output. */
function outputOf(
  run: RunContext,
  step: CompiledStep,
  r: FlowResult,
  startedAt: number,
): FlowResult {
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
