/**
 * Runs one step's component call under its policy (extension, issue 5): attempts with retries,
 * backoff delays, a per-attempt timeout, attempt numbers, an output size limit, the "after N
 * attempts" message and the retry `fallback`. The executor calls {@linkcode runWithPolicy}
 * around the plugin call; `onError` actions other than `retry` stay the executor's business.
 *
 * stepflow 0.8: `onError: {action: retry}` parsed but never retried and no timeouts existed; a
 * policy with no retry and no timeout runs the call once, exactly as 0.8 did.
 * @module
 */
import type { FlowFailed, FlowResult } from "../core/flow_result.ts";
import { failed, skipped, success } from "../core/flow_result.ts";
import {
  isRawNumber,
  type JsonValue,
  MAX_JSON_DEPTH,
  nestedDeeperThan,
} from "../json/exact_json.ts";
import { type Clock, realClock, sleep } from "../core/clock.ts";
import type { FailureCategory } from "../core/error_codes.ts";
import { outputTooDeep, outputTooLarge } from "../core/error_codes.ts";
import type { Release } from "../core/limiter.ts";
import {
  backoffDelay,
  requestedRetryDelay,
  retryDecision,
  type RetryPolicy,
  type RetryUsage,
} from "../flow/retry_policy.ts";
import { callWithTimeout, cancellationResult } from "./timeout.ts";

/** What applies to one step's call. */
export interface StepPolicy {
  /** Retry policy; none = one attempt (stepflow 0.8). */
  retry?: RetryPolicy;
  /** Per-attempt timeout in ms (step `timeout`, else the plugin's default); none = no limit. */
  timeoutMs?: number;
  /** Largest allowed output, in bytes of its compact JSON text (UTF-8); none = no limit. */
  maxOutputBytes?: number;
}

/**
 * One attempt: calls the component.
 * @param attempt 1-based attempt number (goes to step services as `attempt`).
 * @param signal aborted when this attempt times out or the run is cancelled.
 */
export type AttemptFn = (attempt: number, signal: AbortSignal) => Promise<FlowResult>;

/** Information about a retry about to happen (for logs and tests). */
export interface RetryEvent {
  stepId: string;
  /** The attempt that failed. */
  attempt: number;
  /** Its failure. */
  error: FlowFailed["error"];
  category: FailureCategory;
  /** The wait before the next attempt, ms. */
  delayMs: number;
}

/** Context of {@linkcode runWithPolicy}; every field but `stepId` is optional. */
export interface PolicyContext {
  stepId: string;
  /** The run's signal: cancellation stops waiting and returns a cancellation failure. */
  signal?: AbortSignal;
  /** @default realClock */
  clock?: Clock;
  /** Random source in [0, 1) for jitter. @default Math.random */
  random?: () => number;
  /** Number of the first attempt. @default 1 */
  firstAttempt?: number;
  /**
   * Waits for a concurrency permit before each attempt (per-plugin limit); the attempt's timeout
   * starts once it is granted, and the permit is released when the attempt settles or is
   * abandoned (timeout, cancellation).
   */
  acquire?: (signal: AbortSignal) => Promise<Release>;
  /** Called before each retry's delay. */
  onRetry?: (event: RetryEvent) => void;
  /** Called when a retry's attempt starts (after its delay and concurrency wait). */
  onAttempt?: (attempt: number) => void;
  /**
   * Resolves the `fallback: {action: useDefault, defaultValue}` template (stepflow 0.8:
   * `onError.defaultValue` is a template). @default the value itself, or `null` when absent.
   */
  resolveDefault?: (template: JsonValue | undefined) => Promise<FlowResult> | FlowResult;
}

/** The outcome of {@linkcode runWithPolicy}. */
export interface PolicyOutcome {
  /** The step's result (after the fallback, if one applied). */
  result: FlowResult;
  /** Attempts made (0 when the run was cancelled before the first). */
  attempts: number;
  /** Which fallback replaced the final failure, if any. */
  fallback?: "skip" | "useDefault";
}

/**
 * Runs `attempt` under `policy`: once, plus retries while the retry policy allows; each attempt
 * limited to `policy.timeoutMs`. No delay is waited after the last attempt. When the failure is
 * final and more than one attempt was made, or the retry budget ran out, the message says
 * `Step '<id>' failed after N attempts: <last message>` (same code; `data` =
 * `{attempts, error: <last error>}`), then the retry `fallback` applies.
 *
 * A run cancellation (the `signal`) stops at once with a `CANCELLED`/`RUN_TIMEOUT` failure and
 * no fallback.
 * @throws what `attempt` throws (a plugin error aborts the run, stepflow 0.8), and what
 *   `resolveDefault` throws.
 */
export async function runWithPolicy(
  attempt: AttemptFn,
  policy: StepPolicy,
  ctx: PolicyContext,
): Promise<PolicyOutcome> {
  const { stepId, signal, clock = realClock, random = Math.random } = ctx;
  const retry = policy.retry;
  const used: RetryUsage = { component: 0, transport: 0 };
  let n = ctx.firstAttempt ?? 1;
  let made = 0;
  for (;;) {
    if (signal?.aborted) return { result: cancellationResult(signal, stepId), attempts: made };
    const result = await oneAttempt(attempt, n, policy, ctx, clock);
    made++;
    if (result.outcome !== "failed") return { result, attempts: made };
    if (signal?.aborted) return { result: cancellationResult(signal, stepId), attempts: made };
    if (!retry) return { result, attempts: made };
    const decision = retryDecision(retry, result.error, used);
    if (!decision.retry) {
      const final = made > 1 || decision.reason === "budget_exhausted"
        ? afterAttempts(stepId, made, result)
        : result;
      return await applyFallback(retry, final, made, ctx);
    }
    used[decision.budget]++;
    // A server's Retry-After (data.retryAfterMs) lengthens the wait, up to maxDelay.
    const delayMs = Math.max(
      backoffDelay(retry, used.component + used.transport, random),
      Math.min(requestedRetryDelay(result.error), retry.maxDelayMs),
    );
    ctx.onRetry?.({
      stepId,
      attempt: n,
      error: result.error,
      category: decision.category,
      delayMs,
    });
    if (!(await sleep(delayMs, signal, clock))) {
      return { result: cancellationResult(signal!, stepId), attempts: made };
    }
    n++;
  }
}

async function oneAttempt(
  attempt: AttemptFn,
  n: number,
  policy: StepPolicy,
  ctx: PolicyContext,
  clock: Clock,
): Promise<FlowResult> {
  let release: Release | undefined;
  if (n > (ctx.firstAttempt ?? 1)) ctx.onAttempt?.(n);
  if (ctx.acquire) {
    const waitSignal = ctx.signal ?? new AbortController().signal;
    try {
      release = await ctx.acquire(waitSignal);
    } catch (e) {
      if (ctx.signal?.aborted) return cancellationResult(ctx.signal, ctx.stepId);
      throw e;
    }
  }
  try {
    const result = await callWithTimeout((s) => attempt(n, s), {
      stepId: ctx.stepId,
      timeoutMs: policy.timeoutMs,
      signal: ctx.signal,
      clock,
    });
    if (result.outcome === "success" && policy.maxOutputBytes !== undefined) {
      return checkOutputSize(ctx.stepId, result.result, policy.maxOutputBytes) ?? result;
    }
    return result.outcome === "failed" ? boundFailure(result) : result;
  } finally {
    release?.();
  }
}

/**
 * A non-retryable `OUTPUT_TOO_LARGE` failure when `value`'s compact JSON text is longer than
 * `limitBytes` bytes (UTF-8), or when it nests more than {@linkcode MAX_JSON_DEPTH} levels (as
 * flow files may not: deeper values overflow the stack of whatever prints or stores them),
 * naming the step, the size and the limit; else `undefined`.
 */
export function checkOutputSize(
  stepId: string,
  value: JsonValue,
  limitBytes: number,
): FlowFailed | undefined {
  // Cheap bound first, without building the JSON text: a walk that stops once it passes the limit.
  const bound = exceedsBound(value, limitBytes);
  if (bound === "deep") return outputTooDeep(stepId, MAX_JSON_DEPTH);
  if (!bound) return undefined;
  if (nestedDeeperThan(value, MAX_JSON_DEPTH)) return outputTooDeep(stepId, MAX_JSON_DEPTH);
  const text = JSON.stringify(value) ?? "null";
  const size = new TextEncoder().encode(text).length;
  if (size <= limitBytes) return undefined;
  return outputTooLarge(stepId, { sizeBytes: size, limitBytes });
}

/**
 * A failed result as the step's own: when its `error.data` nests more than
 * {@linkcode MAX_JSON_DEPTH} levels (a worker's error answer), the data is left out and the
 * message says so; else the result unchanged.
 */
export function boundFailure(result: FlowFailed): FlowFailed {
  const data = result.error.data;
  if (data === undefined || data === null || typeof data !== "object") return result;
  if (!nestedDeeperThan(data, MAX_JSON_DEPTH)) return result;
  return failed(
    result.error.code,
    `${result.error.message} (error data left out: nested more than ${MAX_JSON_DEPTH} levels deep)`,
  );
}

/**
 * `"deep"` if `value` nests more than {@linkcode MAX_JSON_DEPTH} levels; else true if an upper
 * bound of its compact JSON size in UTF-8 exceeds `limit` bytes (strings and keys count 6 bytes
 * per UTF-16 unit, enough for any escape or code point). Stops walking as soon as either bound
 * passes.
 */
function exceedsBound(value: JsonValue, limit: number): boolean | "deep" {
  const total = boundedSize(value, MAX_JSON_DEPTH, 0, limit);
  return total === DEEP ? "deep" : total > limit;
}

/** {@linkcode boundedSize}'s answer for a value nested too deep. */
const DEEP = -1;

/**
 * `total` plus the size bound of `v`, stopping once it passes `limit` (the sum so far, which is
 * over it), or {@linkcode DEEP}. A plain function, not a closure: it runs on every step's output
 * and a closure was 110 bytes a step (issue 17). Recursive but bounded: it returns `DEEP` before
 * going `left + 1` levels down.
 */
function boundedSize(v: unknown, left: number, total: number, limit: number): number {
  if (typeof v === "string") return total + 2 + v.length * 6;
  if (v === null || typeof v !== "object") return total + 24; // number, boolean, null
  if (Array.isArray(v)) {
    if (left === 0) return DEEP;
    total += 2 + v.length;
    for (let i = 0; i < v.length && total <= limit; i++) {
      total = boundedSize(v[i], left - 1, total, limit);
      if (total === DEEP) return DEEP;
    }
    return total;
  }
  if (isRawNumber(v)) return total + v.rawJSON.length;
  if (left === 0) return DEEP;
  for (const k in v) {
    if (total > limit) return total;
    total = boundedSize(
      (v as Record<string, unknown>)[k],
      left - 1,
      total + 4 + k.length * 6,
      limit,
    );
    if (total === DEEP) return DEEP;
  }
  return total + 2;
}

function afterAttempts(stepId: string, attempts: number, last: FlowFailed): FlowFailed {
  const error: JsonValue = last.error.data === undefined
    ? { code: last.error.code, message: last.error.message }
    : { code: last.error.code, message: last.error.message, data: last.error.data };
  return failed(
    last.error.code,
    `Step '${stepId}' failed after ${attempts} attempt${
      attempts === 1 ? "" : "s"
    }: ${last.error.message}`,
    { attempts, error },
  );
}

async function applyFallback(
  retry: RetryPolicy,
  final: FlowFailed,
  attempts: number,
  ctx: PolicyContext,
): Promise<PolicyOutcome> {
  const f = retry.fallback;
  if (f.action === "fail") return { result: final, attempts };
  const value = f.action === "useDefault" ? f.defaultValue : undefined;
  const result = await applyErrorAction(
    f,
    final,
    () => ctx.resolveDefault ? ctx.resolveDefault(value) : success(value ?? null),
  );
  return { result, attempts, fallback: f.action };
}

/** An error action: `onError` (stepflow 0.8 §1.2) or a retry `fallback`. */
export type ErrorActionLike =
  | { action: "fail" }
  | { action: "skip" }
  | { action: "useDefault"; defaultValue?: JsonValue }
  | { action: "retry" };

/**
 * What an error action makes of a final failure: `skip` → skipped, `useDefault` → the resolved
 * default (`resolveDefault`, which resolves the action's `defaultValue` template), `fail` (and
 * `retry`, whose attempts are over) → the failure itself. The one place error actions apply,
 * for `onError` (src/execution/pipeline.ts) and for a retry `fallback` alike.
 */
export function applyErrorAction<R extends FlowResult | Promise<FlowResult>>(
  action: ErrorActionLike,
  failure: FlowFailed,
  resolveDefault: () => R,
): FlowResult | R {
  switch (action.action) {
    case "skip":
      return skipped();
    case "useDefault":
      return resolveDefault();
    default:
      return failure;
  }
}
