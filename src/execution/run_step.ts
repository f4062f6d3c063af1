/**
 * Runs one step (stepflow 0.8 §1.6 points 5-7): `skipIf`, input resolution, routing, the
 * component call, `onError`. A single function so that retry/timeout/concurrency limits can wrap
 * it.
 * @module
 */
import { type FlowResult, skipped, success } from "../flow/flow_result.ts";
import { isTruthy, resolveTemplate, TemplateError } from "../flow/template.ts";
import { jsonPath } from "../flow/diagnostics.ts";
import { describeError, ExecutionError, PluginError } from "../errors.ts";
import type { CompiledStep } from "./compile.ts";
import type { RoutedComponent, RunContext } from "./run_context.ts";
import { callComponent, DEFAULT_MAX_OUTPUT_BYTES } from "./step_call.ts";
import { boundFailure, checkOutputSize } from "./step_policy.ts";
import type { JsonValue } from "../json/exact_json.ts";

const SKIPPED: FlowResult = Object.freeze(skipped()) as FlowResult;

/**
 * Runs `step` in `run` and returns its result (after `onError`).
 * @throws {ExecutionError} when the run must abort (stepflow 0.8): a template that cannot be
 * resolved (`failed to resolve input for step 'S'`, `failed to resolve skip_if ...`), an input
 * referencing a failed step, a routing error, or a plugin error (`step "S" failed`).
 */
export async function runStep(step: CompiledStep, run: RunContext): Promise<FlowResult> {
  if (step.skipIf !== undefined) {
    const s = resolveOrThrow(step, run, "skipIf");
    if (s.outcome === "success" && isTruthy(s.result)) return SKIPPED;
  }
  const r = resolveOrThrow(step, run, "input");
  if (r.outcome === "skipped") return SKIPPED;
  if (r.outcome === "failed") {
    throw new ExecutionError(
      `step "${step.id}" failed`,
      [{
        error: `step "${step.id}" failed`,
        attachments: [`Error code: ${r.error.code}`, `Input resolution failed: ${r.error.message}`],
      }],
      500,
      step.id,
    );
  }
  const input = r.result;
  let routed: RoutedComponent;
  try {
    routed = run.resolver.resolve(step.component, input);
  } catch (e) {
    throw new ExecutionError(
      "error routing component",
      [{
        error: "error routing component",
        attachments: [`Step: ${step.id}`, `Component: ${step.component}`, describeError(e)],
      }],
      500,
      step.id,
      { cause: e },
    );
  }
  let result: FlowResult;
  try {
    result = isPlainCall(step, run, routed)
      ? await plainCall(step, run, routed, input)
      // Retries, timeouts, plugin limits and the output size limit (issue 5).
      : await callComponent(step, run, routed, input);
  } catch (e) {
    if (e instanceof ExecutionError) throw e;
    throw componentError(step.id, routed.component, e);
  }
  if (result.outcome !== "failed") return result;
  return applyOnError(step, result, run);
}

/**
 * True when no retry, timeout or plugin limit applies to this call: then the component is called
 * directly (the hot path of large flows), which is what {@linkcode callComponent} would do too,
 * minus its per-call timers, signals and promise races.
 */
function isPlainCall(step: CompiledStep, run: RunContext, routed: RoutedComponent): boolean {
  return step.onError.action !== "retry" && step.step.timeout === undefined &&
    run.limits?.plugin?.(routed.plugin.name) === undefined;
}

/** One plugin call with the output size limit (issue 5's `maxOutputSize`). */
async function plainCall(
  step: CompiledStep,
  run: RunContext,
  routed: RoutedComponent,
  input: JsonValue,
): Promise<FlowResult> {
  const result = await routed.plugin.execute(routed.component, input, {
    runId: run.runId,
    flowId: run.flowId,
    stepId: step.id,
    attempt: 1,
    signal: run.signal,
    engine: run.services,
  });
  if (result.outcome === "failed") return boundFailure(result);
  if (result.outcome !== "success") return result;
  return checkOutputSize(
    step.id,
    result.result,
    run.limits?.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES,
  ) ?? result;
}

/**
 * The 0.8 error stack of a component that could not run (compared byte for byte by tests):
 * `step "S" failed` with attachments `Component: /C`, `Component execution failed for step 'S'`
 * and the plugin error's attachments, then the plugin error's own message.
 */
export function componentError(stepId: string, component: string, e: unknown): ExecutionError {
  const top = `step "${stepId}" failed`;
  const attachments = [
    `Component: ${component}`,
    `Component execution failed for step '${stepId}'`,
  ];
  let bottom: string;
  if (e instanceof PluginError) {
    attachments.push(...e.attachments);
    bottom = e.message;
  } else {
    bottom = describeError(e);
  }
  return new ExecutionError(top, [{ error: top, attachments }, { error: bottom }], 500, stepId, {
    cause: e,
  });
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

/**
 * An ExecutionError for a template that could not be resolved: `top` (0.8's text), then the
 * resolver's message (e.g. `Undefined field '$.x' in value`); the top frame names where in the
 * flow the reference is.
 */
export function templateFailure(
  top: string,
  e: unknown,
  base: (string | number)[],
  stepId?: string,
): ExecutionError {
  if (!(e instanceof TemplateError)) {
    return new ExecutionError(top, [{ error: top }, { error: describeError(e) }], 500, stepId, {
      cause: e,
    });
  }
  const where = jsonPath(e.at.length > 0 ? e.at : base);
  return new ExecutionError(
    top,
    [{ error: top, attachments: [`Reference at ${where}`] }, { error: e.message }],
    500,
    stepId,
    { cause: e },
  );
}

/** Applies `onError` to a failed result (§1.2). */
function applyOnError(step: CompiledStep, result: FlowResult, run: RunContext): FlowResult {
  const action = step.onError;
  switch (action.action) {
    case "skip":
      return SKIPPED;
    case "useDefault": {
      if (step.errorDefault === undefined) return success(null);
      let d: FlowResult;
      try {
        d = resolveTemplate(step.errorDefault, run.scope);
      } catch (e) {
        throw templateFailure(
          `failed to resolve default for error in step '${step.id}'`,
          e,
          ["steps", step.index, "onError", "defaultValue"],
          step.id,
        );
      }
      if (d.outcome === "success") return d;
      if (d.outcome === "skipped") return success(null);
      throw new ExecutionError(
        `failed to resolve default for error in step '${step.id}'`,
        [{
          error: `failed to resolve default for error in step '${step.id}'`,
          attachments: [
            `Error code: ${d.error.code}`,
            `Input resolution failed: ${d.error.message}`,
          ],
        }],
        500,
        step.id,
      );
    }
    case "retry":
      // Retried by callComponent (issue 5); what is left is the final failure (0.8: `fail`).
      return result;
    default:
      return result;
  }
}
