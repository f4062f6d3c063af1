/**
 * The component call of one step under the engine's policies (extension, issue 5): the step's
 * retry policy and `timeout`, the plugin's default timeout and concurrency limit, the run's
 * output size limit, and the per-run limit on steps in flight. The step runner
 * (src/execution/run_step.ts) calls {@linkcode callComponent} where stepflow 0.8 called the
 * plugin once; the engine wraps its step runner with {@linkcode limitSteps}.
 * @module
 */
import type { Config } from "../config/model.ts";
import { ExecutionError } from "../errors.ts";
import { type FlowResult, success } from "../core/flow_result.ts";
import { type CompiledTemplate, compileTemplate, resolveTemplate } from "../flow/template.ts";
import type { JsonValue } from "../json/exact_json.ts";
import { describeError } from "../errors.ts";
import type { CompiledStep } from "./compile.ts";
import { parseDuration } from "../core/duration.ts";
import { Limiter } from "../core/limiter.ts";
import {
  normalizeRetryPolicy,
  type RetryPolicy,
  type RetrySettings,
} from "../flow/retry_policy.ts";
import type { RoutedComponent, RunContext } from "./run_context.ts";
import { runWithPolicy } from "./step_policy.ts";
import type { StepRunner } from "./executor.ts";
import type { Clock } from "../core/clock.ts";

/** Default `maxOutputSize`: 64 MiB of compact JSON per step output. */
export const DEFAULT_MAX_OUTPUT_BYTES = 64 * 1024 * 1024;

/** Limits of calls to one plugin, applied by the engine. */
export interface PluginLimits {
  /** Calls in flight on the plugin (config `maxConcurrency`). */
  limiter?: Limiter;
  /** Default timeout of a call, ms (config `timeout`), for steps without their own. */
  timeoutMs?: number;
}

/** The limits of one run (see docs/error-handling.md). */
export interface RunLimits {
  /** Steps in flight in this run (`--max-concurrency`, config `maxConcurrency`). */
  steps?: Limiter;
  /** Largest step output in bytes of compact JSON. @default DEFAULT_MAX_OUTPUT_BYTES */
  maxOutputBytes?: number;
  /** Limits of a plugin by config name (engine-wide, shared by every run). */
  plugin?: (name: string) => PluginLimits | undefined;
  /** Fake time for tests. @default realClock */
  clock?: Clock;
  /** Random source for jitter (tests). @default Math.random */
  random?: () => number;
}

/**
 * Per-plugin limits from a config: `timeout` and `maxConcurrency` of every plugin that has them,
 * except `mcp` plugins, which apply both themselves (their timeout restarts on progress
 * notifications, see docs/mcp.md).
 * @throws {RangeError} for an invalid `timeout` (validation rejects it earlier).
 */
export function pluginLimitsOf(config: Config): Map<string, PluginLimits> {
  const out = new Map<string, PluginLimits>();
  for (const [name, pc] of Object.entries(config.plugins ?? {})) {
    if (pc.type === "mcp") continue;
    const c = pc as { timeout?: unknown; maxConcurrency?: number };
    const limits: PluginLimits = {};
    if (c.timeout !== undefined) {
      limits.timeoutMs = parseDuration(c.timeout, { what: `plugins.${name}.timeout` });
    }
    if (c.maxConcurrency !== undefined) limits.limiter = new Limiter(c.maxConcurrency);
    if (limits.timeoutMs !== undefined || limits.limiter) out.set(name, limits);
  }
  return out;
}

interface StepSettings {
  retry?: RetryPolicy;
  timeoutMs?: number;
  fallbackDefault?: CompiledTemplate;
}

const settingsCache = new WeakMap<CompiledStep, StepSettings>();

/**
 * The retry policy and timeout of a compiled step (cached per step).
 * @throws {ExecutionError} (code 500) for invalid settings the validator would have reported.
 */
function settingsOf(step: CompiledStep): StepSettings {
  let s = settingsCache.get(step);
  if (s) return s;
  s = {};
  try {
    if (step.onError.action === "retry") {
      s.retry = normalizeRetryPolicy(step.onError as unknown as RetrySettings);
      const f = s.retry.fallback;
      if (f.action === "useDefault" && f.defaultValue !== undefined) {
        s.fallbackDefault = compileTemplate(f.defaultValue, [
          "steps",
          step.index,
          "onError",
          "fallback",
          "defaultValue",
        ]);
      }
    }
    if (step.step.timeout !== undefined) {
      s.timeoutMs = parseDuration(step.step.timeout, { what: "timeout" });
    }
  } catch (e) {
    const msg = `invalid error handling settings for step '${step.id}'`;
    throw new ExecutionError(msg, [{ error: msg }, { error: describeError(e) }], 500, step.id, {
      cause: e,
    });
  }
  settingsCache.set(step, s);
  return s;
}

/**
 * Calls the routed component for `step` with `input`, with retries, timeouts and limits.
 * Without `onError: retry`, a `timeout` or limits this is exactly one plugin call (0.8).
 * @returns the step's result before `onError` (a retry `fallback` already applied).
 * @throws what the plugin throws (the run aborts, stepflow 0.8) and {@linkcode ExecutionError}
 *   when a fallback `defaultValue` cannot be resolved.
 */
export async function callComponent(
  step: CompiledStep,
  run: RunContext,
  routed: RoutedComponent,
  input: JsonValue,
): Promise<FlowResult> {
  const settings = settingsOf(step);
  const limits = run.limits;
  const pl = limits?.plugin?.(routed.plugin.name);
  const timeoutMs = settings.timeoutMs ?? pl?.timeoutMs;
  // MCP plugins enforce the step timeout themselves: progress notifications extend it, and on
  // expiry the call is cancelled with notifications/cancelled (docs/mcp.md).
  const policyTimeoutMs = routed.plugin.type === "mcp" ? undefined : timeoutMs;
  const limiter = pl?.limiter;
  const outcome = await runWithPolicy(
    (attempt, signal) =>
      routed.plugin.execute(routed.component, input, {
        runId: run.runId,
        flowId: run.flowId,
        stepId: step.id,
        attempt,
        signal,
        engine: run.services,
        ...(timeoutMs !== undefined ? { timeoutMs } : {}),
        ...(settings.retry !== undefined ? { engineRetries: true } : {}),
      }),
    {
      retry: settings.retry,
      timeoutMs: policyTimeoutMs,
      maxOutputBytes: limits?.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES,
    },
    {
      stepId: step.id,
      signal: run.signal,
      clock: limits?.clock,
      random: limits?.random,
      acquire: limiter ? (s) => limiter.acquire(s) : undefined,
      onRetry: (e) =>
        run.log.info(
          `step '${e.stepId}': attempt ${e.attempt} failed (${e.category}: ${e.error.message}); ` +
            `retrying in ${e.delayMs} ms`,
        ),
      resolveDefault: () => resolveFallback(step, settings.fallbackDefault, run),
    },
  );
  return outcome.result;
}

function resolveFallback(
  step: CompiledStep,
  template: CompiledTemplate | undefined,
  run: RunContext,
): FlowResult {
  if (template === undefined) return success(null);
  const msg = `failed to resolve fallback for error in step '${step.id}'`;
  let d: FlowResult;
  try {
    d = resolveTemplate(template, run.scope);
  } catch (e) {
    throw new ExecutionError(msg, [{ error: msg }, { error: describeError(e) }], 500, step.id, {
      cause: e,
    });
  }
  if (d.outcome === "success") return d;
  if (d.outcome === "skipped") return success(null);
  throw new ExecutionError(
    msg,
    [{
      error: msg,
      attachments: [`Error code: ${d.error.code}`, `Input resolution failed: ${d.error.message}`],
    }],
    500,
    step.id,
  );
}

/**
 * Wraps a step runner so that at most `run.limits.steps.limit` steps of a run are in flight;
 * waiting steps queue first come, first served.
 */
export function limitSteps(inner: StepRunner): StepRunner {
  const tracked: StepRunner = (step, run) => {
    // One Set per run, kept until the run ends ({@linkcode forgetRun}): creating and dropping
    // it around every step of a chain cost ~15% of a warm 10,000-step run.
    let ids = inFlight.get(run.runId);
    if (!ids) inFlight.set(run.runId, ids = new Set());
    const running = ids;
    running.add(step.id);
    const done = () => {
      running.delete(step.id);
    };
    let p: Promise<FlowResult>;
    try {
      p = inner(step, run);
    } catch (e) {
      done();
      throw e;
    }
    p.then(done, done);
    return p;
  };
  return (step, run) => {
    const limiter = run.limits?.steps;
    if (!limiter) return tracked(step, run);
    return limiter.run(() => tracked(step, run), run.signal);
  };
}

/** Drops the steps-in-flight record of a run that has ended (the engine calls it). */
export function forgetRun(runId: string): void {
  inFlight.delete(runId);
}

/** Step ids running now, per run id (kept by {@linkcode limitSteps}). */
const inFlight = new Map<string, Set<string>>();

/**
 * The ids of the steps of run `runId` that are running now (started, not finished), e.g. to
 * tell the user what a Ctrl-C cancelled. Steps waiting for a concurrency slot are not included.
 */
export function stepsInFlight(runId: string): string[] {
  return [...(inFlight.get(runId) ?? [])];
}
