/**
 * The scheduler of one run (stepflow 0.8 §1.6): starts every ready required step at once, keeps a
 * count of unfinished dependencies per step (O(steps + edges), no scanning), aborts the run on the
 * first execution error, then checks `mustExecute` failures and resolves `output`.
 *
 * Before a step starts, three things may hold it back, each free when it does not apply:
 * - the run's budget (src/execution/limits.ts): over `maxRunSteps`, the whole run stops;
 * - the run's step gate (debug mode, human-in-the-loop), when there is one;
 * - a turn of the event loop (src/core/turn.ts) when the run has kept it busy for a while, so a
 *   run timeout or a Ctrl-C is handled within milliseconds even on 100,000 built-in steps.
 * What happens to a started step is the step pipeline's business (src/execution/pipeline.ts).
 * @module
 */
import { failedFromExecutionError, type FlowResult } from "../core/flow_result.ts";
import { engineFailure } from "../core/error_codes.ts";
import { onNextTurn, turnDue } from "../core/turn.ts";
import { ExecutionError, executionError } from "../errors.ts";
import { resolveTemplate } from "../flow/template.ts";
import type { CompiledStep } from "./compile.ts";
import { type RunContext, stepNumbers } from "./run_context.ts";
import { runPipeline, type StepSink } from "./pipeline.ts";
import { templateFailure } from "./step_errors.ts";
import { RunLimitError } from "./limits.ts";
import { setImmediate } from "node:timers";

/** Steps started in one synchronous stretch before the next ones wait for a macrotask. */
const BURST = 256;

/**
 * The count of steps started is reset a microtask after it reaches this: a chain (one start per
 * microtask) queues one reset per this many steps instead of one per step (Deno's
 * `queueMicrotask` allocates ~130 bytes a call, issue 17). The count may so include up to this
 * many starts of earlier microtasks: a stretch starts at least BURST - RESET_AT steps.
 */
const RESET_AT = 32;

/**
 * Executes the required steps of `run.compiled` and returns the run's FlowResult. Never throws:
 * an execution error becomes `failed` with code 500 and `data.stack` (§10).
 * @param abort aborts `run.signal` (called when the run ends early so in-flight steps stop).
 */
export function executeFlow(
  run: RunContext,
  abort: (reason: unknown) => void,
): Promise<FlowResult> {
  const { compiled, gate, budget } = run;
  const steps = compiled.steps;
  const waiting = stepNumbers(steps.length);
  // indexed loops, not `for...of`: this code runs once per run, unoptimized, where each step of
  // an array iterator allocates a result object (80 bytes a step of a fan-out, issue 17)
  for (let i = 0; i < steps.length; i++) {
    const s = steps[i];
    if (s.required) waiting[s.index] = s.deps.length;
  }
  let outstanding = compiled.requiredCount;

  return new Promise<FlowResult>((resolve) => {
    let done = false;
    const finish = (r: FlowResult) => {
      if (done) return;
      done = sink.ended = true;
      resolve(r);
    };
    // `ended` is a data property, not a getter: an object literal with a getter gets a hidden
    // class of its own per run, in V8's old space, which kept the run's objects through young
    // collections (src/execution/run_handle.ts says more).
    const sink: { -readonly [K in keyof StepSink]: StepSink[K] } = {
      ended: false,
      recorded(step) {
        if (done) return;
        const deps = step.dependents;
        for (let k = 0; k < deps.length; k++) {
          const d = deps[k];
          if (--waiting[d] === 0) start(steps[d]);
        }
        // The output is built at once, on results that may still be committing: the run's end
        // is queued right behind them (src/execution/run_lifecycle.ts), and the run's result is
        // given only once both are committed (a failed commit fails the run there).
        if (--outstanding === 0) finish(finalize(run));
      },
      failed(e, step) {
        if (done) return;
        const err = e instanceof ExecutionError
          ? e
          : executionError(`step "${step.id}" failed`, { cause: e, stepId: step.id });
        finish(failedFromExecutionError(err));
        abort(err);
      },
    };
    const launch = (step: CompiledStep) => {
      if (!done) runPipeline(step, run, sink);
    };
    // Steps started in one synchronous stretch (a fan-out's roots, the dependents of a join):
    // past BURST of them, the rest start a macrotask later, BURST at a time, so the steps
    // started so far can finish first (built-ins finish in microtasks). Started all at once,
    // 100,000 steps keep 100,000 promise chains alive together and garbage collection copies
    // them from one young generation to the next (it was 40% of the run). Nothing waits on it:
    // the steps still start in flow order, each as soon as the loop is free, and a step waiting
    // on I/O does not hold the next ones back.
    let burst = 0;
    const later: CompiledStep[] = [];
    let laterHead = 0;
    const endBurst = () => burst = 0;
    const drainLater = () => {
      let n = 0;
      while (laterHead < later.length && n++ < BURST && !done) {
        const step = later[laterHead];
        later[laterHead++] = undefined as unknown as CompiledStep;
        if (++burst === RESET_AT) queueMicrotask(endBurst);
        launchNow(step);
      }
      if (laterHead < later.length && !done) setImmediate(drainLater);
      else later.length = laterHead = 0;
    };
    const launchNow = (step: CompiledStep) => {
      if (turnDue()) {
        onNextTurn(() => launch(step));
        return;
      }
      runPipeline(step, run, sink);
    };
    // A resumed run (src/execution/resume.ts): a step with a committed result is replayed — its
    // result given to its dependents as stored, nothing executed or written — in a loop, not by
    // recursion (a 10,000-step chain replays without growing the stack).
    const prior = run.resume?.prior;
    const replay: CompiledStep[] = [];
    let replaying = false;
    const drainReplay = () => {
      replaying = true;
      while (replay.length > 0 && !done) {
        const step = replay.pop()!;
        run.results[step.index] = prior![step.index];
        sink.recorded(step);
      }
      replaying = false;
    };
    const start = (step: CompiledStep) => {
      if (prior !== undefined && prior[step.index] !== undefined) {
        replay.push(step);
        if (!replaying) drainReplay();
        return;
      }
      if (!budget.addStep()) return; // the run is being stopped
      if (gate !== undefined) {
        const wait = gate(step);
        if (wait !== undefined) {
          wait.then(() => launch(step), (e) => sink.failed(e, step));
          return;
        }
      }
      if (laterHead < later.length || burst >= BURST) {
        if (later.push(step) - laterHead === 1) setImmediate(drainLater);
        return;
      }
      if (++burst === RESET_AT) queueMicrotask(endBurst);
      launchNow(step);
    };
    if (run.signal.aborted) {
      finish(cancelled(run.signal.reason));
      return;
    }
    run.signal.addEventListener("abort", () => {
      if (!done) finish(cancelled(run.signal.reason));
    }, { once: true });
    if (outstanding === 0) {
      finish(finalize(run));
      return;
    }
    const roots = compiled.roots;
    for (let i = 0; i < roots.length; i++) start(steps[roots[i]]);
  });
}

/** The result of a run stopped by its signal. */
export function cancelled(reason: unknown): FlowResult {
  if (reason instanceof ExecutionError) return failedFromExecutionError(reason);
  // A whole-run timeout (issue 5): `RUN_TIMEOUT` (524) naming the limit.
  if (reason instanceof DOMException && reason.name === "TimeoutError") {
    return engineFailure("RUN_TIMEOUT", reason.message);
  }
  // Over maxRunSteps / maxNestedRuns: `RUN_LIMIT` (508) naming the limit.
  if (reason instanceof RunLimitError) {
    return engineFailure("RUN_LIMIT", reason.message, { limit: reason.limit, value: reason.value });
  }
  return failedFromExecutionError(executionError("Run was cancelled", { code: 410 }));
}

/** After every required step: the first failed `mustExecute` step, else the resolved output. */
function finalize(run: RunContext): FlowResult {
  for (const i of run.compiled.mustExecute) {
    const r = run.results[i];
    if (r?.outcome === "failed") return r;
  }
  try {
    return resolveTemplate(run.compiled.output, run.scope);
  } catch (e) {
    return failedFromExecutionError(
      templateFailure("failed to resolve workflow output", e, ["output"]),
    );
  }
}
