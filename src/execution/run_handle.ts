/**
 * Starting a run and its handle ({@linkcode RunHandle}): the id, the result, cancellation before
 * and after the run has begun, the steps in flight, and when the run's record is committed.
 * @module
 */
import type { Flow } from "../flow/model.ts";
import type { JsonValue } from "../json/exact_json.ts";
import type { FlowResult } from "../core/flow_result.ts";
import { type ChildSignal, childSignal } from "../core/abort.ts";
import { onNextTurn, turnDue } from "../core/turn.ts";
import type { Stored } from "../state/store.ts";
import type { RunContext } from "./run_context.ts";
import type { RunHandle, RunOptions } from "./run_options.ts";
import {
  executeRun,
  type InternalRunOptions,
  type RunHooks,
  type RunHost,
} from "./run_lifecycle.ts";
import { executeOneStepRun, topLevelOneStep } from "./single_step_top.ts";
import { describeError } from "../errors.ts";
import { logger } from "../log.ts";

const log = logger("engine");

/** Calls a run's `onRecorded` hook; what it throws is logged, never let out. */
function callHook(hook: () => void, runId: string): void {
  try {
    hook();
  } catch (e) {
    log.warn(`run ${runId}: the onRecorded hook failed: ${describeError(e)}`);
  }
}

/**
 * Starts a run of `flow` on `input` on `host` and returns its handle at once (the run itself
 * begins now, or after a turn of the event loop when the loop has been kept busy, or once
 * `before` resolved: its rejection is the result's, and the run does not begin).
 */
export function startRun(
  host: RunHost,
  flow: Flow,
  input: JsonValue,
  options: RunOptions,
  before?: Promise<void>,
): RunHandle {
  const handle = new StartedRun(options.runId ?? crypto.randomUUID(), options.onRecorded);
  const go = () => {
    // Follows options.signal (a parent run's): one listener per parent however many runs
    // follow it.
    const l = handle.link = childSignal(options.signal);
    if (handle.cancelledEarly) l.controller.abort(handle.cancelledEarly.reason);
    const o = options as InternalRunOptions;
    // a top-level run of a one-step flow skips the scheduler (src/execution/single_step_top.ts)
    const one = topLevelOneStep(host, flow, o);
    let run: Promise<FlowResult>;
    try {
      run = one !== undefined
        ? executeOneStepRun(host, flow, one, input, handle.runId, o, l.controller, handle)
        : executeRun(host, flow, input, handle.runId, o, l.controller, handle);
    } catch (e) {
      run = Promise.reject(e); // (neither path is async: what their start throws)
    }
    // (one `then`, not `finally`: a hop less per run)
    return run.then((r) => {
      l.dispose();
      return r;
    }, (e) => {
      l.dispose();
      throw e;
    });
  };
  // Nested runs of a large map start here: when the run has kept the event loop busy, the
  // start waits for a turn, so timers and signals come first (src/core/turn.ts).
  // `before`: a check that must pass first (its rejection is the result's)
  handle.result = before !== undefined
    ? before.then(go)
    : turnDue()
    ? new Promise<FlowResult>((resolve, reject) => onNextTurn(() => go().then(resolve, reject)))
    : go();
  return handle;
}

/**
 * A run's handle, and the hooks its execution calls (`RunHooks`). A class, not an object
 * literal: a literal with a getter (`recorded`) closing over the run gets a hidden class of its
 * own per run, allocated in V8's old space, which kept every run's objects through young
 * collections until the next full one (measured: 6-30% of a run's allocations promoted).
 */
class StartedRun implements RunHandle, RunHooks {
  result!: Promise<FlowResult>;
  link: ChildSignal | undefined;
  cancelledEarly: { reason: unknown } | undefined;
  #onRecorded: (() => void) | undefined;
  #run: RunContext | undefined;
  /** The write of the run's record once issued; a promise is made only when `recorded` is read. */
  #write: { w: Stored } | undefined;
  #onWrite: ((w: Stored) => void) | undefined;
  #recorded: Promise<void> | undefined;

  constructor(readonly runId: string, onRecorded: (() => void) | undefined) {
    this.#onRecorded = onRecorded;
  }

  started(run: RunContext): void {
    this.#run = run;
  }

  written(w: Stored): void {
    this.#write = { w };
    const hook = this.#onRecorded;
    // Registered on the commit now, before the run starts any step: a step with side effects
    // waits for the commit of its start (src/execution/pipeline.ts startedCall), which is this
    // batch (its callbacks run in the order registered) or a later one (commits resolve in
    // order), so the hook runs before that step's call. A promise resolved here would not do:
    // whatever awaits it runs only after the callbacks already queued, the step's among them.
    if (hook !== undefined) {
      const runId = this.runId;
      if (w === undefined) callHook(hook, runId);
      else w.then(() => callHook(hook, runId), () => {});
    }
    this.#onWrite?.(w);
  }

  cancel(reason?: unknown): void {
    if (this.link) this.link.controller.abort(reason);
    else this.cancelledEarly ??= { reason };
  }

  inFlight(): { stepId: string; attempt: number; startedAt: number }[] {
    return this.#run?.inFlight.list() ?? [];
  }

  get recorded(): Promise<void> {
    if (this.#recorded !== undefined) return this.#recorded;
    if (this.#write !== undefined) return this.#recorded = Promise.resolve(this.#write.w);
    return this.#recorded = new Promise<void>((resolve, reject) => {
      this.#onWrite = (w) => Promise.resolve(w).then(resolve, reject);
      // a run that ended without writing its record (it could not start) rejects this
      this.result.then(
        () => this.#write === undefined && reject(new Error(`run ${this.runId} was not recorded`)),
        reject,
      );
    });
  }
}
