/**
 * The step pipeline: everything that happens to one step once the scheduler lets it start,
 * stage by stage (stepflow 0.8 §1.6 points 5-7, with this engine's extensions):
 *
 * 1. **skip**: `skipIf` resolved; truthy → `skipped`;
 * 2. **input**: the input template resolved (a skipped reference skips the step);
 * 3. **call**: the component routed and called, under the run's step limit;
 * 4. **retry/timeout**: the step's compiled policy and the plugin's limits
 *    (src/execution/step_policy.ts), unless none applies: then one plain call;
 * 5. **onError**: `skip`, `useDefault`, `fail`, or a retry's `fallback`;
 * 6. **record**: the result is written to the state store and dependents are unblocked. This
 *    is the only place that writes a step's result or unblocks a dependent. A store that commits
 *    in groups returns a promise per write; the durability rule is applied with it: a step with
 *    side effects (a plugin that is not `replayable`: step services, MCP tools) starts its call
 *    only once every result recorded so far in the run is committed, and the run's result is
 *    given only once its results and its end are committed (the output is built at once and the
 *    end queued behind the results: one group commit for a short run). Built-in and mock steps may start on a result still being
 *    committed: after a crash they are run again with the same outcome. A rejected write fails
 *    the run (507 `STORE_FAILED`, naming the database). An in-memory store returns nothing and
 *    pays no microtask.
 *
 * Errors that abort the run (stepflow 0.8: unresolvable templates, routing errors, plugin
 * errors) are thrown by the stages as {@linkcode ExecutionError}s and reported to the scheduler.
 *
 * One file on purpose (over 400 lines): the stages of a step read in order here, as the
 * architecture promises (docs/architecture.md); their errors are in step_errors.ts.
 * @module
 */
import { type FlowResult, skipped, success } from "../core/flow_result.ts";
import { LazyChildSignal, signalOf } from "../core/abort.ts";
import type { Release } from "../core/limiter.ts";
import { describeError, ExecutionError, executionError } from "../errors.ts";
import type { JsonObject, JsonValue } from "../json/exact_json.ts";
import { type CompiledTemplate, isTruthy, resolveTemplate } from "../flow/template.ts";
import type { EngineServices, ExecuteContext } from "../plugins/plugin.ts";
import type { CompiledStep } from "./compile.ts";
import { attemptBase, type RoutedComponent, type RunContext, stepNumbers } from "./run_context.ts";
import { applyErrorAction, boundFailure, checkOutputSize, runWithPolicy } from "./step_policy.ts";
import { DEFAULT_MAX_OUTPUT_BYTES } from "./limits.ts";
import { redactStepResult } from "./secrets.ts";
import { componentError, resolutionFailure, storeFailure, templateFailure } from "./step_errors.ts";

const SKIPPED: FlowResult = Object.freeze(skipped()) as FlowResult;

/** What the pipeline tells the scheduler. */
export interface StepSink {
  /** True once the run has ended: nothing more is recorded. */
  readonly ended: boolean;
  /** The step's result is recorded and committed: unblock its dependents. */
  recorded(step: CompiledStep): void;
  /** The run must abort (an ExecutionError, a failed store write, a bug). */
  failed(error: unknown, step: CompiledStep): void;
}

/**
 * Runs `step` of `run` through every stage and reports to `sink`. Never throws; returns before
 * the step is done.
 */
export function runPipeline(step: CompiledStep, run: RunContext, sink: StepSink): void {
  const limiter = run.limits?.steps;
  if (limiter === undefined) {
    launch(step, run, sink, undefined);
    return;
  }
  // the run's step limit (--max-concurrency): steps wait first come, first served
  const now = limiter.tryAcquire();
  if (now !== undefined) {
    launch(step, run, sink, now);
    return;
  }
  limiter.acquire(run.signal).then(
    (release) => launch(step, run, sink, release),
    (e) => sink.failed(e, step), // aborted while waiting: the run has ended already
  );
}

function launch(
  step: CompiledStep,
  run: RunContext,
  sink: StepSink,
  release: Release | undefined,
): void {
  if (sink.ended) {
    release?.();
    return;
  }
  const i = step.index;
  const startedAt = Date.now();
  const attempt = run.resume === undefined ? 1 : attemptBase(run, i) + 1;
  run.inFlight.startedAt[i] = startedAt;
  run.inFlight.attempt[i] = attempt;
  run.events?.emit({
    type: "step_started",
    runId: run.runId,
    stepId: step.id,
    stepIndex: i,
    component: step.component,
    attempt,
    at: startedAt,
  });
  // Each step gets its own signal following the run's (src/core/abort.ts): one AbortSignal with
  // a listener per in-flight step is quadratic. It is made when the component first reads it.
  const launched = new LaunchedStep(step, run, sink, release, startedAt);
  if (run.runner !== undefined) {
    let p: Promise<FlowResult>;
    try {
      p = run.runner(step, { ...run, signal: launched.signal });
    } catch (e) {
      p = Promise.reject(e);
    }
    settle(p, launched);
    return;
  }
  try {
    stages(step, run, launched, launched);
  } catch (e) {
    settle(Promise.reject(e), launched);
  }
}

/**
 * A launched step: its signal (made when a component first reads it), and what happens when its
 * stages are done. One object a step: the stages report to it directly, instead of through one
 * more promise and its two closures (~300 bytes a step, issue 17).
 */
class LaunchedStep extends LazyChildSignal {
  constructor(
    readonly step: CompiledStep,
    readonly run: RunContext,
    readonly sink: StepSink,
    readonly release: Release | undefined,
    readonly startedAt: number,
  ) {
    super(run.signal);
  }

  /** The stages gave the step's result: the record stage. */
  done(r: FlowResult): void {
    const run = this.run;
    this.dispose();
    this.release?.();
    record(
      this.step,
      run,
      this.sink,
      run.secrets ? redactStepResult(this.step, run.secrets, r) : r,
      this.startedAt,
    );
  }

  /** The stages failed: the run aborts. */
  fail(e: unknown): void {
    this.dispose();
    this.release?.();
    this.run.inFlight.startedAt[this.step.index] = 0;
    this.sink.failed(e, this.step);
  }
}

/** Reports the promise of a step's stages to `to` (a microtask later, as a promise does). */
function settle(p: Promise<FlowResult>, to: LaunchedStep): void {
  p.then((r) => to.done(r), (e) => to.fail(e));
}

/**
 * The record stage: stores the result and unblocks the step's dependents. A store that commits
 * in groups returns a promise for the write: it becomes the run's pending commit, which a step
 * with side effects waits for before its call (and the run before giving its result), and a
 * rejected commit fails the run with an error naming the store and the cause.
 */
function record(
  step: CompiledStep,
  run: RunContext,
  sink: StepSink,
  result: FlowResult,
  startedAt: number,
): void {
  if (sink.ended) {
    run.inFlight.startedAt[step.index] = 0;
    return;
  }
  try {
    run.results[step.index] = result;
    noteWrite(
      step,
      run,
      sink,
      run.store.recordStepResult(run.runId, {
        stepIndex: step.index,
        stepId: step.id,
        result,
        component: step.component,
        attempt: run.inFlight.attempt[step.index],
        durationMs: (Date.now() - startedAt) | 0,
      }),
    );
    committed(step, run, sink, result, startedAt);
  } catch (e) {
    // A bug here (or a store that throws) must fail the run, not become an unhandled rejection.
    sink.failed(storeFailure(step, run, e), step);
  }
}

/**
 * Records that attempt `attempt` of the step's component call starts (step_info, journal): for
 * steps with side effects only, whose attempt numbers matter after a crash; a replayable step's
 * status is recorded with its result. Returns the commit to wait for before the call (commits
 * are in order: it also holds every result recorded before), or undefined when the store
 * applied the write at once.
 */
function startedCall(
  step: CompiledStep,
  run: RunContext,
  attempt: number,
): Promise<void> | undefined {
  const write = run.store.recordStepStarted(run.runId, {
    stepIndex: step.index,
    stepId: step.id,
    component: step.component,
    attempt,
  });
  const f = run.inFlight;
  (f.recorded ??= stepNumbers(f.steps.length))[step.index] = 1;
  if (write === undefined) return undefined;
  // its failure fails the run through the step's result write, committed after it
  write.catch(() => {});
  return write;
}

/** Tracks a store write of the run: the latest pending commit; a rejection fails the run. */
function noteWrite(
  step: CompiledStep,
  run: RunContext,
  sink: StepSink,
  write: void | Promise<void>,
): void {
  if (write === undefined) return;
  run.commit = write;
  write.then(() => {
    if (run.commit === write) run.commit = undefined;
  }, (e) => {
    run.storeError ??= e; // seen by the run's end when the run has finished already
    sink.failed(storeFailure(step, run, e), step);
  });
}

function committed(
  step: CompiledStep,
  run: RunContext,
  sink: StepSink,
  result: FlowResult,
  startedAt: number,
): void {
  run.inFlight.startedAt[step.index] = 0;
  if (run.events !== undefined) {
    const at = Date.now();
    run.events.emit({
      type: "step_finished",
      runId: run.runId,
      stepId: step.id,
      stepIndex: step.index,
      outcome: result.outcome,
      durationMs: at - startedAt,
      at,
      result,
    });
  }
  sink.recorded(step);
}

/**
 * Runs the stages before the record: skip, input, call (with retry/timeout and limits), onError.
 * @param signal the step's signal (aborted when the run ends early), possibly made on first use.
 * @returns the step's result.
 * @throws {ExecutionError} when the run must abort (stepflow 0.8): a template that cannot be
 * resolved (`failed to resolve input for step 'S'`, `failed to resolve skip_if ...`), an input
 * referencing a failed step, a routing error, or a plugin error (`step "S" failed`).
 */
export function runStep(
  step: CompiledStep,
  run: RunContext,
  signal: AbortSignal | LazyChildSignal = run.signal,
): Promise<FlowResult> {
  return stages(step, run, signal, undefined)!;
}

/**
 * {@linkcode runStep}, reporting to `to` when given (and then returning nothing): the call's
 * `then` gives the result to the launched step itself. Throws what `runStep` throws.
 */
function stages(
  step: CompiledStep,
  run: RunContext,
  signal: AbortSignal | LazyChildSignal,
  to: LaunchedStep | undefined,
): Promise<FlowResult> | undefined {
  // Not an `async` function: the common step makes no await before its call, and a `then`
  // costs less than an async frame per step (issue 17). Its callers await it in a `try`, so
  // what it throws synchronously is handled as a rejection.
  // skip
  if (step.skipIf !== undefined) {
    const s = resolveOrThrow(step, run, "skipIf");
    if (s.outcome === "success" && isTruthy(s.result)) return out(Promise.resolve(SKIPPED), to);
  }
  // input
  const r = resolveOrThrow(step, run, "input");
  if (r.outcome === "skipped") return out(Promise.resolve(SKIPPED), to);
  if (r.outcome === "failed") {
    throw resolutionFailure(`step "${step.id}" failed`, r.error, step.id);
  }
  const input = r.result;
  // call
  let routed: RoutedComponent;
  try {
    routed = run.resolver.resolve(step.component, input);
  } catch (e) {
    throw executionError("error routing component", {
      attachments: [`Step: ${step.id}`, `Component: ${step.component}`, describeError(e)],
      cause: e,
      detail: null,
      stepId: step.id,
    });
  }
  const policy = step.policy;
  if (policy.invalid) throw policy.invalid;
  if (!routed.replayable) {
    // The durability rule: a step with side effects starts only on committed results, and its
    // start is committed first (after a crash it runs again with the next attempt number).
    const pending = run.commit;
    const started = startedCall(step, run, attemptBase(run, step.index) + 1);
    if (pending !== undefined || started !== undefined) {
      return out(
        committedFirst(step, run, signal, pending, started).then(() =>
          callStage(step, run, routed, input, signal, undefined)!
        ),
        to,
      );
    }
  }
  return callStage(step, run, routed, input, signal, to);
}

/** `p`, or nothing once it is reported to `to`. */
function out(
  p: Promise<FlowResult>,
  to: LaunchedStep | undefined,
): Promise<FlowResult> | undefined {
  if (to === undefined) return p;
  settle(p, to);
  return undefined;
}

/** Waits for the run's pending commit and the step's start (the durability rule). */
async function committedFirst(
  step: CompiledStep,
  run: RunContext,
  signal: AbortSignal | LazyChildSignal,
  pending: Promise<void> | undefined,
  started: Promise<void> | undefined,
): Promise<void> {
  try {
    if (pending !== undefined) await pending;
    if (started !== undefined) await started;
  } catch (e) {
    throw storeFailure(step, run, e);
  }
  if (signal.aborted) throw signal.reason;
}

/**
 * The call (with its policy) and the onError stage. The plain call (no retry, no timeout, no
 * plugin limit: the hot path of large flows, with no timers, per-call signals or promise races)
 * is the plugin's promise and one `then` for its output bound and `onError` (one `then` a step
 * instead of two, issue 17); a component that throws synchronously is handled as one that
 * rejects.
 */
function callStage(
  step: CompiledStep,
  run: RunContext,
  routed: RoutedComponent,
  input: JsonValue,
  signal: AbortSignal | LazyChildSignal,
  to: LaunchedStep | undefined,
): Promise<FlowResult> | undefined {
  const plain = step.policy.plain && routed.limits === undefined;
  let call: Promise<FlowResult>;
  try {
    call = plain
      ? routed.plugin.execute(
        routed.component,
        input,
        executeContext(step, run, attemptBase(run, step.index) + 1, signal),
      )
      : policyCall(step, run, routed, input, signal);
  } catch (e) {
    call = Promise.reject(e);
  }
  if (to === undefined) {
    return call.then(
      (result) => afterCall(step, run, routed, plain, result),
      (e) => {
        throw callFailure(step, routed, e);
      },
    );
  }
  call.then((result) => {
    let r: FlowResult;
    try {
      r = afterCall(step, run, routed, plain, result);
    } catch (e) {
      to.fail(e);
      return;
    }
    to.done(r);
  }, (e) => to.fail(callFailure(step, routed, e)));
  return undefined;
}

/** A call's result after its output bound (a plain call) and the onError stage. */
function afterCall(
  step: CompiledStep,
  run: RunContext,
  routed: RoutedComponent,
  plain: boolean,
  result: FlowResult,
): FlowResult {
  if (plain) {
    try {
      result = bounded(step, run, result);
    } catch (e) {
      throw callFailure(step, routed, e);
    }
  }
  // onError (a retry's fallback was applied by the retry stage, through applyErrorAction)
  if (result.outcome !== "failed") return result;
  if (step.onError.action === "retry") return result;
  return applyErrorAction(
    step.onError,
    result,
    () => resolveDefault(step, step.errorDefault, run, "default", ["onError", "defaultValue"]),
  );
}

/** A call's error as the run's: an ExecutionError as is, anything else a component error. */
function callFailure(step: CompiledStep, routed: RoutedComponent, e: unknown): ExecutionError {
  return e instanceof ExecutionError ? e : componentError(step.id, routed.component, e);
}

/** A plain call's result with the output size limit applied (a failure's data bounded). */
function bounded(step: CompiledStep, run: RunContext, result: FlowResult): FlowResult {
  if (result.outcome === "failed") return boundFailure(result);
  if (result.outcome !== "success") return result;
  return checkOutputSize(
    step.id,
    result.result,
    run.limits?.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES,
  ) ?? result;
}

/** The execute context of a step's call. */
function executeContext(
  step: CompiledStep,
  run: RunContext,
  attempt: number,
  signal: AbortSignal | LazyChildSignal,
): ExecuteContext {
  const ctx: ExecuteContext = signal instanceof LazyChildSignal
    ? new LazyExecuteContext(run.runId, run.flowId, step.id, attempt, signal, run.services)
    : {
      runId: run.runId,
      flowId: run.flowId,
      stepId: step.id,
      attempt,
      signal,
      engine: run.services,
    };
  if (run.events !== undefined) ctx.progress = run.events.progressOf(step.id);
  return ctx;
}

/**
 * An execute context whose signal is made when a component first reads it. A class, not an
 * object literal with a getter: such a literal gets a hidden class of its own per call, in V8's
 * old space, which kept each step's objects through young collections until the next full one
 * (src/execution/run_handle.ts says more).
 */
class LazyExecuteContext implements ExecuteContext {
  readonly #signal: LazyChildSignal;
  progress?: (data: JsonObject) => void;

  constructor(
    readonly runId: string,
    readonly flowId: string,
    readonly stepId: string,
    readonly attempt: number,
    signal: LazyChildSignal,
    readonly engine: EngineServices,
  ) {
    this.#signal = signal;
  }

  get signal(): AbortSignal {
    return this.#signal.signal;
  }
}

/**
 * The call under the step's policy (retry, timeout) and its plugin's limits (default timeout,
 * calls in flight). A plugin that enforces a limit itself (`plugin.enforces`) gets the step's
 * timeout in its context and the engine does not race it.
 * @returns the step's result before `onError` (a retry `fallback` already applied).
 */
async function policyCall(
  step: CompiledStep,
  run: RunContext,
  routed: RoutedComponent,
  input: JsonValue,
  stepSignal: AbortSignal | LazyChildSignal,
): Promise<FlowResult> {
  const signal = signalOf(stepSignal); // retries and timeouts listen to it
  const policy = step.policy;
  const pl = routed.limits;
  const timeoutMs = policy.timeoutMs ?? pl?.timeoutMs;
  const enforcedByPlugin = routed.plugin.enforces?.timeout === true;
  const limiter = pl?.limiter;
  const limits = run.limits;
  const base = attemptBase(run, step.index);
  const outcome = await runWithPolicy(
    (attempt, attemptSignal) => {
      const ctx = executeContext(step, run, base + attempt, attemptSignal);
      if (timeoutMs !== undefined) ctx.timeoutMs = timeoutMs;
      if (policy.retry !== undefined) ctx.engineRetries = true;
      return routed.plugin.execute(routed.component, input, ctx);
    },
    {
      retry: policy.retry,
      timeoutMs: enforcedByPlugin ? undefined : timeoutMs,
      maxOutputBytes: limits?.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES,
    },
    {
      stepId: step.id,
      signal,
      clock: limits?.clock,
      random: limits?.random,
      acquire: limiter ? (s) => limiter.acquire(s) : undefined,
      onRetry: (e) =>
        run.log.info(
          `step '${e.stepId}': attempt ${e.attempt} failed (${e.category}: ${e.error.message}); ` +
            `retrying in ${e.delayMs} ms`,
        ),
      onAttempt: (n) => {
        const attempt = base + n;
        run.inFlight.attempt[step.index] = attempt;
        if (!routed.replayable) startedCall(step, run, attempt);
        run.events?.emit({
          type: "step_started",
          runId: run.runId,
          stepId: step.id,
          stepIndex: step.index,
          component: step.component,
          attempt,
          at: Date.now(),
        });
      },
      resolveDefault: () =>
        resolveDefault(step, policy.fallbackDefault, run, "fallback", [
          "onError",
          "fallback",
          "defaultValue",
        ]),
    },
  );
  return outcome.result;
}

/**
 * The value of a `useDefault` error action: its `defaultValue` template resolved (none → null;
 * a skipped reference → null).
 * @throws {ExecutionError} `failed to resolve <what> for error in step 'S'` when it cannot be.
 */
function resolveDefault(
  step: CompiledStep,
  template: CompiledTemplate | undefined,
  run: RunContext,
  what: "default" | "fallback",
  at: string[],
): FlowResult {
  if (template === undefined) return success(null);
  const top = `failed to resolve ${what} for error in step '${step.id}'`;
  let d: FlowResult;
  try {
    d = resolveTemplate(template, run.scope);
  } catch (e) {
    throw templateFailure(top, e, ["steps", step.index, ...at], step.id);
  }
  if (d.outcome === "success") return d;
  if (d.outcome === "skipped") return success(null);
  throw resolutionFailure(top, d.error, step.id);
}

function resolveOrThrow(step: CompiledStep, run: RunContext, what: "input" | "skipIf"): FlowResult {
  try {
    return resolveTemplate(what === "input" ? step.input : step.skipIf!, run.scope);
  } catch (e) {
    const label = what === "input" ? "input" : "skip_if";
    throw templateFailure(
      `failed to resolve ${label} for step '${step.id}'`,
      e,
      ["steps", step.index, what],
      step.id,
    );
  }
}
