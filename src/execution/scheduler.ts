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
import { type RunContext, type StepNumbers, stepNumbers } from "./run_context.ts";
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
  return new Promise<FlowResult>((resolve) => new FlowExecution(run, abort, resolve).begin());
}

/** The options of the run's `abort` listener (shared). */
const ONCE: AddEventListenerOptions = { once: true };

/**
 * One run's scheduling: the step sink the pipeline reports to, and the `abort` listener of the
 * run's signal (`handleEvent`). An object of a class, not a dozen closures per run (issue 17: a
 * nested run of a multi-step map item flow made them per item); the few functions handed to
 * timers are made when first needed.
 */
class FlowExecution implements StepSink {
  /**
   * True once the run has ended. A data property, not a getter: an object with a getter gets a
   * hidden class of its own per run, in V8's old space, which kept the run's objects through
   * young collections (src/execution/run_handle.ts says more).
   */
  ended = false;
  readonly #run: RunContext;
  readonly #abort: (reason: unknown) => void;
  readonly #resolve: (r: FlowResult) => void;
  readonly #steps: readonly CompiledStep[];
  /** Unfinished dependencies of each required step, by step index. */
  readonly #waiting: StepNumbers;
  /** Required steps not yet recorded. */
  #outstanding: number;
  /**
   * Steps started in one synchronous stretch (a fan-out's roots, the dependents of a join): past
   * BURST of them, the rest start a macrotask later, BURST at a time, so the steps started so far
   * can finish first (built-ins finish in microtasks). Started all at once, 100,000 steps keep
   * 100,000 promise chains alive together and garbage collection copies them from one young
   * generation to the next (it was 40% of the run). Nothing waits on it: the steps still start
   * in flow order, each as soon as the loop is free, and a step waiting on I/O does not hold the
   * next ones back.
   */
  #burst = 0;
  /** Steps waiting for the next stretch (from {@linkcode #laterHead} on). */
  #later: CompiledStep[] | undefined;
  #laterHead = 0;
  /** A resumed run's steps with a committed result, to replay (see {@linkcode #start}). */
  #replay: CompiledStep[] | undefined;
  #replaying = false;
  /** Bound once, when first needed. */
  #endBurstFn: (() => void) | undefined;
  #drainLaterFn: (() => void) | undefined;

  constructor(
    run: RunContext,
    abort: (reason: unknown) => void,
    resolve: (r: FlowResult) => void,
  ) {
    this.#run = run;
    this.#abort = abort;
    this.#resolve = resolve;
    const steps = this.#steps = run.compiled.steps;
    const waiting = this.#waiting = stepNumbers(steps.length);
    // indexed loops, not `for...of`: this code runs once per run, unoptimized, where each step of
    // an array iterator allocates a result object (80 bytes a step of a fan-out, issue 17)
    for (let i = 0; i < steps.length; i++) {
      const s = steps[i];
      if (s.required) waiting[s.index] = s.deps.length;
    }
    this.#outstanding = run.compiled.requiredCount;
  }

  /** Starts the roots (or ends at once: an aborted signal, no required step). */
  begin(): void {
    const run = this.#run;
    if (run.signal.aborted) {
      this.#finish(cancelled(run.signal.reason));
      return;
    }
    run.signal.addEventListener("abort", this, ONCE);
    if (this.#outstanding === 0) {
      this.#finish(finalize(run));
      return;
    }
    const steps = this.#steps;
    const roots = run.compiled.roots;
    for (let i = 0; i < roots.length; i++) this.#start(steps[roots[i]]);
  }

  /** The run's signal aborted: the run ends cancelled. */
  handleEvent(): void {
    if (!this.ended) this.#finish(cancelled(this.#run.signal.reason));
  }

  recorded(step: CompiledStep): void {
    if (this.ended) return;
    const deps = step.dependents;
    const waiting = this.#waiting;
    for (let k = 0; k < deps.length; k++) {
      const d = deps[k];
      if (--waiting[d] === 0) this.#start(this.#steps[d]);
    }
    // The output is built at once, on results that may still be committing: the run's end is
    // queued right behind them (src/execution/run_lifecycle.ts), and the run's result is given
    // only once both are committed (a failed commit fails the run there).
    if (--this.#outstanding === 0) this.#finish(finalize(this.#run));
  }

  failed(e: unknown, step: CompiledStep): void {
    if (this.ended) return;
    const err = e instanceof ExecutionError
      ? e
      : executionError(`step "${step.id}" failed`, { cause: e, stepId: step.id });
    this.#finish(failedFromExecutionError(err));
    this.#abort(err);
  }

  #finish(r: FlowResult): void {
    if (this.ended) return;
    this.ended = true;
    this.#resolve(r);
  }

  #launch(step: CompiledStep): void {
    if (!this.ended) runPipeline(step, this.#run, this);
  }

  #launchNow(step: CompiledStep): void {
    if (turnDue()) {
      onNextTurn(() => this.#launch(step));
      return;
    }
    runPipeline(step, this.#run, this);
  }

  #drainLater(): void {
    const later = this.#later!;
    let n = 0;
    while (this.#laterHead < later.length && n++ < BURST && !this.ended) {
      const step = later[this.#laterHead];
      later[this.#laterHead++] = undefined as unknown as CompiledStep;
      if (++this.#burst === RESET_AT) queueMicrotask(this.#endBurst());
      this.#launchNow(step);
    }
    if (this.#laterHead < later.length && !this.ended) setImmediate(this.#drainLaterBound());
    else later.length = this.#laterHead = 0;
  }

  #endBurst(): () => void {
    return this.#endBurstFn ??= () => this.#burst = 0;
  }

  #drainLaterBound(): () => void {
    return this.#drainLaterFn ??= () => this.#drainLater();
  }

  /**
   * A resumed run (src/execution/resume.ts): a step with a committed result is replayed (its
   * result given to its dependents as stored, nothing executed or written) in a loop, not by
   * recursion (a 10,000-step chain replays without growing the stack).
   */
  #drainReplay(): void {
    const replay = this.#replay!;
    const prior = this.#run.resume!.prior;
    this.#replaying = true;
    while (replay.length > 0 && !this.ended) {
      const step = replay.pop()!;
      this.#run.results[step.index] = prior[step.index];
      this.recorded(step);
    }
    this.#replaying = false;
  }

  #start(step: CompiledStep): void {
    const run = this.#run;
    const prior = run.resume?.prior;
    if (prior !== undefined && prior[step.index] !== undefined) {
      (this.#replay ??= []).push(step);
      if (!this.#replaying) this.#drainReplay();
      return;
    }
    if (!run.budget.addStep()) return; // the run is being stopped
    const gate = run.gate;
    if (gate !== undefined) {
      const wait = gate(step);
      if (wait !== undefined) {
        wait.then(() => this.#launch(step), (e) => this.failed(e, step));
        return;
      }
    }
    const later = this.#later;
    if ((later !== undefined && this.#laterHead < later.length) || this.#burst >= BURST) {
      const list = this.#later ??= [];
      if (list.push(step) - this.#laterHead === 1) setImmediate(this.#drainLaterBound());
      return;
    }
    if (++this.#burst === RESET_AT) queueMicrotask(this.#endBurst());
    this.#launchNow(step);
  }
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
