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
import { executeRun, type InternalRunOptions, type RunHost } from "./run_lifecycle.ts";
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
 * begins now, or after a turn of the event loop when the loop has been kept busy).
 */
export function startRun(
  host: RunHost,
  flow: Flow,
  input: JsonValue,
  options: RunOptions,
): RunHandle {
  const runId = options.runId ?? crypto.randomUUID();
  let run: RunContext | undefined;
  let link: ChildSignal | undefined;
  let cancelledEarly: { reason: unknown } | undefined;
  // the write of the run's record once issued; a promise is made only when `recorded` is read
  let write: { w: Stored } | undefined;
  let onWrite: ((w: Stored) => void) | undefined;
  let recorded: Promise<void> | undefined;
  const hooks = {
    started: (r: RunContext) => run = r,
    recorded: (w: Stored) => {
      write = { w };
      const hook = options.onRecorded;
      // Registered on the commit now, before the run starts any step: a step with side effects
      // waits for the commit of its start (src/execution/pipeline.ts startedCall), which is this
      // batch (its callbacks run in the order registered) or a later one (commits resolve in
      // order), so the hook runs before that step's call. A promise resolved here would not do:
      // whatever awaits it runs only after the callbacks already queued, the step's among them.
      if (hook !== undefined) {
        if (w === undefined) callHook(hook, runId);
        else w.then(() => callHook(hook, runId), () => {});
      }
      onWrite?.(w);
    },
  };
  const go = () => {
    // Follows options.signal (a parent run's): one listener per parent however many runs
    // follow it.
    const l = link = childSignal(options.signal);
    if (cancelledEarly) l.controller.abort(cancelledEarly.reason);
    const o = options as InternalRunOptions;
    // a top-level run of a one-step flow skips the scheduler (src/execution/single_step_top.ts)
    const one = topLevelOneStep(host, flow, o);
    return (one !== undefined
      ? executeOneStepRun(host, flow, one, input, runId, o, l.controller, hooks)
      : executeRun(host, flow, input, runId, o, l.controller, hooks))
      .finally(() => l.dispose());
  };
  // Nested runs of a large map start here: when the run has kept the event loop busy, the
  // start waits for a turn, so timers and signals come first (src/core/turn.ts).
  const result = turnDue()
    ? new Promise<FlowResult>((resolve, reject) => onNextTurn(() => go().then(resolve, reject)))
    : go();
  return {
    runId,
    result,
    cancel: (reason?: unknown) => {
      if (link) link.controller.abort(reason);
      else cancelledEarly ??= { reason };
    },
    inFlight: () => run?.inFlight.list() ?? [],
    get recorded(): Promise<void> {
      if (recorded !== undefined) return recorded;
      if (write !== undefined) return recorded = Promise.resolve(write.w);
      return recorded = new Promise<void>((resolve, reject) => {
        onWrite = (w) => Promise.resolve(w).then(resolve, reject);
        // a run that ended without writing its record (it could not start) rejects this
        result.then(
          () => write === undefined && reject(new Error(`run ${runId} was not recorded`)),
          reject,
        );
      });
    },
  };
}
