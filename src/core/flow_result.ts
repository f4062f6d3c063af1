/**
 * FlowResult: the outcome of a step or a run (stepflow 0.8 §10).
 *
 * ```json
 * {"outcome":"success","result":<any>}
 * {"outcome":"skipped"}            // "reason" optional
 * {"outcome":"failed","error":{"code":<int>,"message":"...","data":<any, optional>}}
 * ```
 * @module
 */
import type { JsonValue } from "../json/exact_json.ts";
import type { ExecutionError } from "../errors.ts";

/** A failure's error object. `code` is an integer (business codes, 500 for execution errors). */
export interface FlowError {
  code: number;
  message: string;
  data?: JsonValue;
}

/** A successful outcome carrying a value. */
export interface FlowSuccess {
  outcome: "success";
  result: JsonValue;
}

/** A skipped outcome (`reason` is never set by 0.8 itself). */
export interface FlowSkipped {
  outcome: "skipped";
  reason?: string;
}

/** A failed outcome. */
export interface FlowFailed {
  outcome: "failed";
  error: FlowError;
}

/** The outcome of a step or a run. */
export type FlowResult = FlowSuccess | FlowSkipped | FlowFailed;

/** `{outcome: success, result}`. */
export function success(result: JsonValue): FlowSuccess {
  return { outcome: "success", result };
}

/** `{outcome: skipped}` (with `reason` only when given). */
export function skipped(reason?: string): FlowSkipped {
  return reason === undefined ? { outcome: "skipped" } : { outcome: "skipped", reason };
}

/** `{outcome: failed, error: {code, message, data?}}`. */
export function failed(code: number, message: string, data?: JsonValue): FlowFailed {
  const error: FlowError = { code, message };
  if (data !== undefined) error.data = data;
  return { outcome: "failed", error };
}

/**
 * An aborted run as 0.8 reports it: code = the error's code (500), message = top error text,
 * `data.stack` = the frames.
 */
export function failedFromExecutionError(err: ExecutionError): FlowFailed {
  return failed(err.code, err.message, {
    stack: err.frames.map((f): JsonValue =>
      f.attachments && f.attachments.length > 0
        ? { error: f.error, attachments: f.attachments }
        : { error: f.error }
    ),
  });
}
