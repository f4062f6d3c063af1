/**
 * The errors of the step pipeline (src/execution/pipeline.ts), with stepflow 0.8's error stacks
 * (tests compare them byte for byte): a component that could not run, a template that could not
 * be resolved, a state store write that failed.
 * @module
 */
import { jsonPath } from "../core/diagnostics.ts";
import { STORE_FAILED } from "../core/error_codes.ts";
import type { FlowError } from "../core/flow_result.ts";
import { describeError, type ExecutionError, executionError, PluginError } from "../errors.ts";
import { TemplateError } from "../flow/template.ts";
import type { CompiledStep } from "./compile.ts";
import type { RunContext } from "./run_context.ts";

/**
 * A state store write of a step failed: the run fails with code 507 (`STORE_FAILED`), the store's
 * message (naming the database and the cause) on top, then the step.
 */
export function storeFailure(step: CompiledStep, run: RunContext, e: unknown): ExecutionError {
  return executionError(describeError(e), {
    attachments: [`State store: ${run.store.kind}`, `Step: ${step.id}`],
    detail: null,
    cause: e,
    stepId: step.id,
    code: STORE_FAILED,
  });
}

/** `top` with 0.8's attachments for a template that resolved to a failure. */
export function resolutionFailure(top: string, error: FlowError, stepId: string): ExecutionError {
  return executionError(top, {
    attachments: [`Error code: ${error.code}`, `Input resolution failed: ${error.message}`],
    stepId,
  });
}

/**
 * The 0.8 error stack of a component that could not run (compared byte for byte by tests):
 * `step "S" failed` with attachments `Component: /C`, `Component execution failed for step 'S'`
 * and the plugin error's attachments, then the plugin error's own message.
 */
export function componentError(stepId: string, component: string, e: unknown): ExecutionError {
  const attachments = [
    `Component: ${component}`,
    `Component execution failed for step '${stepId}'`,
  ];
  if (e instanceof PluginError) attachments.push(...e.attachments);
  return executionError(`step "${stepId}" failed`, {
    attachments,
    detail: e instanceof PluginError ? e.message : describeError(e),
    cause: e,
    stepId,
  });
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
  if (!(e instanceof TemplateError)) return executionError(top, { cause: e, stepId });
  return executionError(top, {
    attachments: [`Reference at ${jsonPath(e.at.length > 0 ? e.at : base)}`],
    detail: e.message,
    cause: e,
    stepId,
  });
}
