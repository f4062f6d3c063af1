/**
 * Retry policies for `onError: {action: retry, ...}` (extension, issue 5; stepflow 0.8 parses
 * `retry` but never retries). This file turns the flow's retry settings into a normalised
 * {@linkcode RetryPolicy} with defaults, computes backoff delays (exponential with a cap, and
 * optional full jitter from an injectable random source), and decides which failures retry and
 * against which budget. docs/error-handling.md documents every setting.
 *
 * ```yaml
 * onError:
 *   action: retry
 *   maxRetries: 3            # component/timeout failures retried at most 3 more times
 *   maxTransportRetries: 3   # worker crash / connection failures, a separate budget
 *   initialDelay: 1s         # delay before the first retry
 *   backoffFactor: 2         # each further delay is multiplied by this
 *   maxDelay: 30s            # no delay is longer than this
 *   jitter: none             # or full: each delay is random in [0, delay]
 *   retryOn: [component, transport, timeout]   # categories and/or integer error codes
 *   fallback: { action: useDefault, defaultValue: 0 }   # after the last attempt failed
 * ```
 * @module
 */
import type { JsonValue } from "../json/exact_json.ts";
import { isJsonObject, isNumber, toNumber } from "../json/exact_json.ts";
import type { FlowError } from "../flow/flow_result.ts";
import { categorize, FAILURE_CATEGORIES, type FailureCategory } from "./error_codes.ts";
import { parseDuration } from "./duration.ts";

/** Default `maxRetries`: retries after the first attempt (as AWS Step Functions' MaxAttempts). */
export const DEFAULT_MAX_RETRIES = 3;
/** Default `initialDelay`, ms. */
export const DEFAULT_INITIAL_DELAY_MS = 1_000;
/** Default `backoffFactor`. */
export const DEFAULT_BACKOFF_FACTOR = 2;
/** Default `maxDelay`, ms. */
export const DEFAULT_MAX_DELAY_MS = 30_000;
/** Default `jitter`. */
export const DEFAULT_JITTER: Jitter = "none";
/** Default `retryOn`: every failure category that retrying can fix. */
export const DEFAULT_RETRY_ON: readonly FailureCategory[] = ["component", "transport", "timeout"];
/** The most retries a policy may ask for (a guard against typos such as `maxRetries: 1000000`). */
export const MAX_RETRIES_LIMIT = 1_000;

/** Every key of `onError` with `action: retry` (for unknown-key warnings). */
export const RETRY_SETTING_KEYS: readonly string[] = [
  "action",
  "maxRetries",
  "maxTransportRetries",
  "initialDelay",
  "backoffFactor",
  "maxDelay",
  "jitter",
  "retryOn",
  "fallback",
];

/** `none`: delays exactly as computed; `full`: each delay uniformly random in `[0, delay]`. */
export type Jitter = "none" | "full";

/** What to do once the last attempt has failed. `fail` (default) keeps the failure. */
export type RetryFallback =
  | { action: "fail" }
  | { action: "skip" }
  | { action: "useDefault"; defaultValue?: JsonValue };

/** The budget a retry is charged to. */
export type RetryBudget = "component" | "transport";

/** A normalised retry policy (all defaults applied, durations in ms). */
export interface RetryPolicy {
  /** Retries of component, timeout (and opted-in invalid) failures. */
  maxRetries: number;
  /** Retries of transport failures (worker crash, closed pipe, refused connection). */
  maxTransportRetries: number;
  initialDelayMs: number;
  backoffFactor: number;
  maxDelayMs: number;
  jitter: Jitter;
  /** Categories that retry. */
  retryOnCategories: ReadonlySet<FailureCategory>;
  /** Error codes that retry whatever their category (except `fatal`). */
  retryOnCodes: ReadonlySet<number>;
  fallback: RetryFallback;
}

/** The retry settings as written in a flow (`onError` with `action: retry`). */
export interface RetrySettings {
  action: "retry";
  maxRetries?: unknown;
  maxTransportRetries?: unknown;
  initialDelay?: unknown;
  backoffFactor?: unknown;
  maxDelay?: unknown;
  jitter?: unknown;
  retryOn?: unknown;
  fallback?: unknown;
  [key: string]: unknown;
}

/** One problem found in retry settings: the key (relative to `onError`) and the message. */
export interface RetrySettingsProblem {
  key: string;
  message: string;
}

/**
 * Checks retry settings; returns every problem found (empty when valid). Used by the validator
 * (via src/execution/policy_diagnostics.ts) and by {@linkcode normalizeRetryPolicy}.
 */
export function checkRetrySettings(settings: RetrySettings): RetrySettingsProblem[] {
  const problems: RetrySettingsProblem[] = [];
  const count = (key: "maxRetries" | "maxTransportRetries") => {
    const v = settings[key];
    if (v === undefined) return;
    const n = isNumber(v) ? toNumber(v) : NaN;
    if (!Number.isInteger(n) || n < 0 || n > MAX_RETRIES_LIMIT) {
      problems.push({
        key,
        message: `${key} must be an integer from 0 to ${MAX_RETRIES_LIMIT}, got ${show(v)}`,
      });
    }
  };
  count("maxRetries");
  count("maxTransportRetries");
  const delays: Record<string, number> = {};
  for (const key of ["initialDelay", "maxDelay"] as const) {
    const v = settings[key];
    if (v === undefined) continue;
    try {
      delays[key] = parseDuration(v, { allowZero: key === "initialDelay", what: key });
    } catch (e) {
      problems.push({ key, message: (e as Error).message });
    }
  }
  if (
    delays.initialDelay !== undefined && delays.maxDelay !== undefined &&
    delays.maxDelay < delays.initialDelay
  ) {
    problems.push({
      key: "maxDelay",
      message:
        `maxDelay (${delays.maxDelay} ms) must not be less than initialDelay (${delays.initialDelay} ms)`,
    });
  }
  if (settings.backoffFactor !== undefined) {
    const v = settings.backoffFactor;
    const n = isNumber(v) ? toNumber(v) : NaN;
    if (!(n >= 1 && n <= 100)) {
      problems.push({
        key: "backoffFactor",
        message: `backoffFactor must be a number from 1 to 100, got ${show(v)}`,
      });
    }
  }
  if (settings.jitter !== undefined && settings.jitter !== "none" && settings.jitter !== "full") {
    problems.push({
      key: "jitter",
      message: `jitter must be "none" or "full", got ${show(settings.jitter)}`,
    });
  }
  if (settings.retryOn !== undefined) {
    if (!Array.isArray(settings.retryOn)) {
      problems.push({
        key: "retryOn",
        message: `retryOn must be a list of categories (${
          FAILURE_CATEGORIES.filter((c) => c !== "fatal").join(", ")
        }) or integer error codes, got ${show(settings.retryOn)}`,
      });
    } else {
      settings.retryOn.forEach((entry, i) => {
        if (isNumber(entry) && Number.isInteger(toNumber(entry))) return;
        if (typeof entry === "string" && entry !== "fatal" && isCategory(entry)) return;
        problems.push({
          key: `retryOn[${i}]`,
          message: `retryOn entries must be one of ${
            FAILURE_CATEGORIES.filter((c) => c !== "fatal").join(", ")
          } or an integer error code, got ${show(entry)}`,
        });
      });
    }
  }
  if (settings.fallback !== undefined) {
    const f = settings.fallback;
    const action = isJsonObject(f) ? f.action : undefined;
    if (action !== "fail" && action !== "skip" && action !== "useDefault") {
      problems.push({
        key: "fallback",
        message: `fallback must be {action: fail}, {action: skip} or {action: useDefault, ` +
          `defaultValue: ...}, got ${show(f)}`,
      });
    }
  }
  return problems;
}

/**
 * Applies defaults to retry settings.
 * @param settings the `onError` object with `action: retry` (stepflow 0.8 shape plus extensions).
 * @returns the normalised policy.
 * @throws {RangeError} naming the first invalid setting (the validator reports all of them first).
 */
export function normalizeRetryPolicy(settings: RetrySettings): RetryPolicy {
  const problems = checkRetrySettings(settings);
  if (problems.length > 0) {
    throw new RangeError(`Invalid onError.${problems[0].key}: ${problems[0].message}`);
  }
  const maxRetries = settings.maxRetries !== undefined
    ? toNumber(settings.maxRetries as number)
    : DEFAULT_MAX_RETRIES;
  const initialDelayMs = settings.initialDelay !== undefined
    ? parseDuration(settings.initialDelay, { allowZero: true })
    : DEFAULT_INITIAL_DELAY_MS;
  const maxDelayMs = settings.maxDelay !== undefined
    ? parseDuration(settings.maxDelay)
    : Math.max(DEFAULT_MAX_DELAY_MS, initialDelayMs);
  const categories = new Set<FailureCategory>();
  const codes = new Set<number>();
  const retryOn = (settings.retryOn as unknown[] | undefined) ?? DEFAULT_RETRY_ON;
  for (const entry of retryOn) {
    if (typeof entry === "string") categories.add(entry as FailureCategory);
    else codes.add(toNumber(entry as number));
  }
  const f = settings.fallback as { action: string; defaultValue?: JsonValue } | undefined;
  let fallback: RetryFallback = { action: "fail" };
  if (f?.action === "skip") fallback = { action: "skip" };
  else if (f?.action === "useDefault") {
    fallback = "defaultValue" in f
      ? { action: "useDefault", defaultValue: f.defaultValue }
      : { action: "useDefault" };
  }
  return {
    maxRetries,
    maxTransportRetries: settings.maxTransportRetries !== undefined
      ? toNumber(settings.maxTransportRetries as number)
      : maxRetries,
    initialDelayMs,
    backoffFactor: settings.backoffFactor !== undefined
      ? toNumber(settings.backoffFactor as number)
      : DEFAULT_BACKOFF_FACTOR,
    maxDelayMs,
    jitter: (settings.jitter as Jitter | undefined) ?? DEFAULT_JITTER,
    retryOnCategories: categories,
    retryOnCodes: codes,
    fallback,
  };
}

/**
 * The delay before retry number `retry` (1 = the first retry), in whole ms:
 * `min(maxDelay, initialDelay × backoffFactor^(retry-1))`, and with `jitter: full` a uniformly
 * random value in `[0, that]`.
 * @param random returns a number in `[0, 1)`; injectable for tests. @default Math.random
 * @throws {RangeError} if `retry` is not a positive integer.
 */
export function backoffDelay(
  policy: Pick<RetryPolicy, "initialDelayMs" | "backoffFactor" | "maxDelayMs" | "jitter">,
  retry: number,
  random: () => number = Math.random,
): number {
  if (!Number.isInteger(retry) || retry < 1) {
    throw new RangeError(`backoffDelay: retry must be a positive integer, got ${retry}`);
  }
  const raw = policy.initialDelayMs * Math.pow(policy.backoffFactor, retry - 1);
  const capped = Math.min(policy.maxDelayMs, Number.isFinite(raw) ? raw : policy.maxDelayMs);
  const base = Math.round(capped);
  if (policy.jitter === "full") {
    const r = Math.min(Math.max(random(), 0), 1);
    return Math.min(base, Math.floor(r * (base + 1)));
  }
  return base;
}

/**
 * The wait a failure asks for before it is retried: `data.retryAfterMs` (a component's reading
 * of an HTTP `Retry-After` header, e.g. a 429 from a model API), as a whole number of ms, or 0.
 * The retry then waits the longer of this and the backoff delay, but never more than
 * `maxDelay` (docs/error-handling.md).
 */
export function requestedRetryDelay(error: FlowError): number {
  const data = error.data;
  if (!isJsonObject(data) || !isNumber(data.retryAfterMs)) return 0;
  const ms = toNumber(data.retryAfterMs);
  return Number.isFinite(ms) && ms > 0 ? Math.ceil(ms) : 0;
}

/** Retries used so far, per budget. */
export interface RetryUsage {
  component: number;
  transport: number;
}

/** Whether a failure retries, and why not when it does not. */
export type RetryDecision =
  | { retry: true; budget: RetryBudget; category: FailureCategory }
  | { retry: false; reason: "not_retryable" | "budget_exhausted"; category: FailureCategory };

/**
 * Decides whether `error` is retried under `policy`, given the retries already `used`.
 * Fatal failures (cancelled, run timeout, output too large) never retry. Transport failures are
 * charged to `maxTransportRetries`, everything else to `maxRetries`.
 */
export function retryDecision(
  policy: RetryPolicy,
  error: FlowError,
  used: RetryUsage,
): RetryDecision {
  const category = categorize(error);
  const code = isNumber(error.code as unknown) ? toNumber(error.code) : NaN;
  const listed = policy.retryOnCategories.has(category) || policy.retryOnCodes.has(code);
  if (category === "fatal" || !listed) return { retry: false, reason: "not_retryable", category };
  const budget: RetryBudget = category === "transport" ? "transport" : "component";
  const max = budget === "transport" ? policy.maxTransportRetries : policy.maxRetries;
  if (used[budget] >= max) return { retry: false, reason: "budget_exhausted", category };
  return { retry: true, budget, category };
}

function isCategory(s: string): s is FailureCategory {
  return (FAILURE_CATEGORIES as readonly string[]).includes(s);
}

function show(v: unknown): string {
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}
