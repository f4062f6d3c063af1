/**
 * A top-level run of a one-step flow without the scheduler (issue 17, goal 2): one `engine.run`
 * per request is the common shape of a service or a CI step, and the scheduler's machinery cost
 * more than the step. The run takes src/execution/single_step.ts's path for its step (the same
 * pipeline stages, records and events as a scheduled run), with a top-level run's own parts as
 * `executeRun` (src/execution/run_lifecycle.ts) has them: the record of its `createRun`, its
 * budget, timeout and limits, the engine's set of executing runs, the `onRecorded` hook, and its
 * end queued behind its step's result and waited for (one group commit; issue 10). Started by
 * src/execution/run_handle.ts.
 *
 * Not taken (the scheduler runs it) besides single_step.ts's cases: with run variables,
 * overrides, a resumed run, debug mode, a step gate, or secrets given by the caller.
 * @module
 */
import type { FlowResult } from "../core/flow_result.ts";
import type { JsonValue } from "../json/exact_json.ts";
import type { Flow } from "../flow/model.ts";
import { nowRfc3339, type RunRecord } from "../state/store.ts";
import { InFlight, makeScope, NO_VARIABLES, type RunContext } from "./run_context.ts";
import { RunEvents } from "./observers.ts";
import { cancelled } from "./scheduler.ts";
import { flowHasSecrets } from "./secrets.ts";
import {
  endRun,
  type InternalRunOptions,
  runBudget,
  runDeadline,
  type RunHooks,
  type RunHost,
  runLimits,
} from "./run_lifecycle.ts";
import { execute, type OneStep, oneStepOf } from "./single_step.ts";
import { runOptionsToStore } from "./resume.ts";

/**
 * The one step of `flow` when a top-level run of it with `options` can skip the scheduler (see
 * the module doc), else undefined.
 */
export function topLevelOneStep(
  host: RunHost,
  flow: Flow,
  options: InternalRunOptions,
): OneStep | undefined {
  if (
    options.parentRunId !== undefined || options.budget !== undefined ||
    options.resume !== undefined || options.gate !== undefined || options.debugMode === true ||
    options.secrets !== undefined || host.stepRunner !== undefined ||
    (options.overrides !== undefined && options.overrides !== null) ||
    hasEntries(options.variables) || flowHasSecrets(flow)
  ) {
    return undefined;
  }
  return oneStepOf(flow);
}

function hasEntries(
  v: Record<string, JsonValue> | ReadonlyMap<string, JsonValue> | undefined,
): boolean {
  if (v === undefined) return false;
  if (v instanceof Map) return v.size > 0;
  for (const _ in v) return true;
  return false;
}

/**
 * A top-level run of a one-step flow (see {@linkcode topLevelOneStep}): what
 * `executeRun` (src/execution/run_lifecycle.ts) does for it, the same store writes, events and
 * result, without the scheduler. Never throws for problems of the flow or its step; what the store
 * throws is thrown (the caller turns it into a rejection). Not an `async` function: `then`s cost
 * less than async frames on the path of every one-step run (issue 17, goal 2).
 */
export function executeOneStepRun(
  host: RunHost,
  flow: Flow,
  one: OneStep,
  input: JsonValue,
  runId: string,
  options: InternalRunOptions,
  controller: AbortController,
  hooks: RunHooks,
): Promise<FlowResult> {
  const { compiled, step } = one;
  const store = host.store;
  const flowId = host.registerFlow(flow);
  host.executing.add(runId);
  if (!options.existing) {
    // the record of executeRun's createRun, field for field (built by assignment: a
    // conditional spread makes a slower object to build and to copy)
    const record: RunRecord = {
      runId,
      flowId,
      flowName: flow.name,
      status: "running",
      input,
      overrides: options.overrides,
      variables: undefined,
      createdAt: nowRfc3339(),
      parentRunId: undefined,
      runOptions: runOptionsToStore(host.config, options),
    };
    if (options.runKey !== undefined) record.runKey = options.runKey;
    hooks.written(store.createRun(record, true)); // (its own literal)
  } else {
    hooks.written(undefined);
  }
  const budget = runBudget(host.config, options, controller, runId);
  const observers = host.observers();
  const events = observers.size > 0 ? new RunEvents(runId, [...observers], host.log) : undefined;
  events?.emit({
    type: "run_started",
    runId,
    flowId,
    ...(flow.name !== undefined ? { flowName: flow.name } : {}),
    rootRunId: budget.rootRunId,
    at: Date.now(),
  });
  const cancelTimer = runDeadline(host.config, options, controller);
  let call: Promise<FlowResult>;
  let ctx: RunContext | undefined;
  try {
    if (!budget.addStep()) call = Promise.resolve(cancelled(controller.signal.reason));
    else {
      const results: (FlowResult | undefined)[] = [undefined];
      const signal = controller.signal;
      const run: RunContext = {
        runId,
        flowId,
        compiled,
        input,
        variables: NO_VARIABLES,
        results,
        scope: makeScope(compiled, input, results, NO_VARIABLES),
        signal,
        services: host.services(runId, signal, 0, budget),
        resolver: host.resolver,
        store,
        log: host.log,
        // its own (the handle lists the steps in flight from it)
        inFlight: new InFlight(compiled.steps),
        budget,
        limits: runLimits(host.config, options),
      };
      if (events !== undefined) run.events = events;
      hooks.started(run);
      ctx = run;
      call = execute(run, step, false);
    }
  } catch (e) {
    cancelTimer?.();
    throw e;
  }
  const finish = (result: FlowResult): FlowResult => {
    host.executing.delete(runId);
    events?.finished(result);
    return result;
  };
  return call.then((result) => {
    cancelTimer?.();
    // as executeRun: the end queued behind the step's result, reported once both are stored
    const end = endRun(store, runId, result, controller.signal, ctx, true);
    // the step is over (a step cut short kept its start for endRun to record: single_step.ts)
    if (ctx !== undefined) ctx.inFlight.startedAt[0] = 0;
    return end instanceof Promise ? end.then(finish) : finish(end);
  }, (e) => {
    cancelTimer?.();
    throw e;
  });
}
