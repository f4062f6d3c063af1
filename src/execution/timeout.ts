/**
 * Runs one step call with a timeout and the run's cancellation signal (extension, issue 5).
 *
 * The call gets its own `AbortSignal`, aborted when the timeout fires or the parent signal
 * aborts, so plugins stop waiting (MCP calls are cancelled). The abandoned call is not awaited;
 * its late result or rejection is swallowed, so it can never surface as an unhandled rejection.
 * @module
 */
import type { FlowFailed, FlowResult } from "../core/flow_result.ts";
import { type Clock, realClock } from "../core/clock.ts";
import { formatDuration } from "../core/duration.ts";
import { engineFailure } from "../core/error_codes.ts";
import { RunLimitError } from "./limits.ts";

/** Options of {@linkcode callWithTimeout}. */
export interface CallWithTimeoutOptions {
  /** The step, named in timeout and cancellation messages. */
  stepId: string;
  /** Limit in ms; none when undefined. */
  timeoutMs?: number;
  /** The run's signal: aborting it abandons the call with a cancellation result. */
  signal?: AbortSignal;
  /** @default realClock */
  clock?: Clock;
}

/** The abort reason the engine uses for a whole-run timeout (a `TimeoutError` DOMException). */
export function runTimeoutReason(timeoutMs: number): DOMException {
  return new DOMException(
    `The run timed out after ${formatDuration(timeoutMs)} (timeout: ${timeoutMs} ms)`,
    "TimeoutError",
  );
}

/**
 * The failed result for a step stopped by its run's abort: `RUN_TIMEOUT` when the reason is a
 * `TimeoutError` (see {@linkcode runTimeoutReason}), `RUN_LIMIT` for a {@linkcode RunLimitError},
 * else `CANCELLED`.
 */
export function cancellationResult(signal: AbortSignal, stepId: string): FlowFailed {
  const reason = signal.reason;
  if (reason instanceof DOMException && reason.name === "TimeoutError") {
    return engineFailure("RUN_TIMEOUT", `Step '${stepId}' was cancelled: ${reason.message}`, {
      step: stepId,
    });
  }
  if (reason instanceof RunLimitError) {
    return engineFailure("RUN_LIMIT", `Step '${stepId}' was cancelled: ${reason.message}`, {
      step: stepId,
      limit: reason.limit,
      value: reason.value,
    });
  }
  const why = reason instanceof Error && reason.message ? `: ${reason.message}` : "";
  return engineFailure("CANCELLED", `Step '${stepId}' was cancelled${why}`, { step: stepId });
}

/** The failed result of a step attempt that ran past `timeoutMs`. */
export function timeoutResult(stepId: string, timeoutMs: number): FlowFailed {
  return engineFailure(
    "TIMEOUT",
    `Step '${stepId}' timed out after ${formatDuration(timeoutMs)} (timeout: ${timeoutMs} ms)`,
    { step: stepId, timeoutMs },
  );
}

/**
 * Calls `call(signal)` and waits for it, for at most `timeoutMs`, and no longer than the parent
 * `signal` stays un-aborted.
 * @returns the call's result; a `TIMEOUT` failure naming the step and the limit when the timeout
 *   fired first; a `CANCELLED`/`RUN_TIMEOUT` failure when the parent signal aborted first.
 * @throws whatever `call` throws (or rejects with) while it is still awaited.
 */
export async function callWithTimeout(
  call: (signal: AbortSignal) => Promise<FlowResult>,
  options: CallWithTimeoutOptions,
): Promise<FlowResult> {
  const { stepId, timeoutMs, signal: parent, clock = realClock } = options;
  if (parent?.aborted) return cancellationResult(parent, stepId);
  const ctrl = new AbortController();
  let settle!: (r: FlowResult) => void;
  const stopped = new Promise<FlowResult>((resolve) => (settle = resolve));
  const onParentAbort = () => {
    settle(cancellationResult(parent!, stepId));
    ctrl.abort(parent!.reason);
  };
  parent?.addEventListener("abort", onParentAbort, { once: true });
  const timer = timeoutMs !== undefined
    ? clock.setTimeout(() => {
      const result = timeoutResult(stepId, timeoutMs);
      settle(result);
      ctrl.abort(new DOMException(result.error.message, "TimeoutError"));
    }, timeoutMs)
    : undefined;
  try {
    let running: Promise<FlowResult>;
    try {
      running = Promise.resolve(call(ctrl.signal));
    } catch (e) {
      running = Promise.reject(e);
    }
    // An abandoned call may still reject later: observe it so it is never unhandled.
    running.catch(() => {});
    return await Promise.race([running, stopped]);
  } finally {
    if (timer !== undefined) clock.clearTimeout(timer);
    parent?.removeEventListener("abort", onParentAbort);
  }
}
