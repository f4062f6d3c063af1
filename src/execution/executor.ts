/**
 * The scheduler of one run (stepflow 0.8 §1.6): starts every ready required step at once, keeps a
 * count of unfinished dependencies per step (O(steps + edges), no scanning), aborts the run on the
 * first execution error, then checks `mustExecute` failures and resolves `output`.
 * @module
 */
import { failedFromExecutionError, type FlowResult } from "../flow/flow_result.ts";
import { resolveTemplate } from "../flow/template.ts";
import { describeError, ExecutionError } from "../errors.ts";
import type { CompiledStep } from "./compile.ts";
import type { RunContext } from "./run_context.ts";
import { runStep, templateFailure } from "./run_step.ts";
import { childSignal } from "./abort_fanout.ts";
import { engineFailure } from "./error_codes.ts";

/** Runs one step; {@linkcode runStep} unless wrapped (retries, timeouts, limits). */
export type StepRunner = (step: CompiledStep, run: RunContext) => Promise<FlowResult>;

/**
 * Executes the required steps of `run.compiled` and returns the run's FlowResult. Never throws:
 * an execution error becomes `failed` with code 500 and `data.stack` (§10). Step results are
 * written to `run.results` and the state store as they finish.
 * @param abort aborts `run.signal` (called when the run ends early so in-flight steps stop).
 */
export function executeFlow(
  run: RunContext,
  abort: (reason: unknown) => void,
  stepRunner: StepRunner = runStep,
): Promise<FlowResult> {
  const { compiled, results, store, runId } = run;
  const steps = compiled.steps;
  const waiting = new Int32Array(steps.length);
  for (const s of steps) if (s.required) waiting[s.index] = s.deps.length;
  let outstanding = compiled.requiredCount;

  return new Promise<FlowResult>((resolve) => {
    let done = false;
    const finish = (r: FlowResult) => {
      if (done) return;
      done = true;
      resolve(r);
    };
    const fail = (e: unknown, step: CompiledStep) => {
      if (done) return;
      const err = e instanceof ExecutionError ? e : new ExecutionError(
        `step "${step.id}" failed`,
        [{ error: `step "${step.id}" failed` }, { error: describeError(e) }],
        500,
        step.id,
        { cause: e },
      );
      finish(failedFromExecutionError(err));
      abort(err);
    };
    const complete = (step: CompiledStep, r: FlowResult) => {
      if (done) return;
      try {
        results[step.index] = r;
        store.recordStepResult(runId, {
          stepIndex: step.index,
          stepId: step.id,
          result: r,
          component: step.component,
        });
        const deps = step.dependents;
        for (let k = 0; k < deps.length; k++) {
          const d = deps[k];
          if (--waiting[d] === 0) start(steps[d]);
        }
        if (--outstanding === 0) finish(finalize(run));
      } catch (e) {
        // A bug here must fail the run, not become an unhandled rejection (which ends Deno).
        fail(e, step);
      }
    };
    // Each step gets its own signal following the run's (src/execution/abort_fanout.ts): one
    // AbortSignal with a listener per in-flight step is quadratic.
    const start = (step: CompiledStep) => {
      const child = childSignal(run.signal);
      let p: Promise<FlowResult>;
      try {
        p = stepRunner(step, { ...run, signal: child.signal });
        if (typeof p?.then !== "function") p = Promise.resolve(p);
      } catch (e) {
        child.dispose();
        fail(e, step);
        return;
      }
      p.then((r) => {
        child.dispose();
        complete(step, r);
      }, (e) => {
        child.dispose();
        fail(e, step);
      });
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
    for (const i of compiled.roots) start(steps[i]);
  });
}

function cancelled(reason: unknown): FlowResult {
  if (reason instanceof ExecutionError) return failedFromExecutionError(reason);
  // A whole-run timeout (issue 5): `RUN_TIMEOUT` (524) naming the limit.
  if (reason instanceof DOMException && reason.name === "TimeoutError") {
    return engineFailure("RUN_TIMEOUT", reason.message);
  }
  return failedFromExecutionError(
    new ExecutionError("Run was cancelled", [{ error: "Run was cancelled" }], 410),
  );
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
