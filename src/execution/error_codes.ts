/**
 * The engine's error-code table for failed step and run results (extension, issue 5).
 *
 * A failed FlowResult carries an integer `error.code` (stepflow 0.8 §10). Failures the engine
 * itself produces (timeouts, cancellation, output limits) use the codes below and name their
 * kind in `error.data.kind`, so a caller can tell them apart without parsing messages. Codes
 * the engine does not produce (a worker's JSON-RPC error code, a mock's business code) pass
 * through unchanged and count as component failures.
 *
 * Every code belongs to a {@linkcode FailureCategory}, which decides whether and with which
 * budget `onError: {action: retry}` retries it (see src/execution/retry_policy.ts and
 * docs/error-handling.md, whose table mirrors {@linkcode ERROR_CODES}).
 * @module
 */
import type { FlowError, FlowFailed } from "../flow/flow_result.ts";
import { failed } from "../flow/flow_result.ts";
import type { JsonObject, JsonValue } from "../json/exact_json.ts";
import { isJsonObject, isNumber, toNumber } from "../json/exact_json.ts";
import * as rpc from "../protocol/error_codes.ts";
import { RUN_INTERRUPTED, STORE_FAILED } from "../state/store.ts";

/**
 * What kind of failure a code stands for:
 * - `component`: the component ran and failed (worker exception, mock/MCP failure, any code not
 *   listed here). Retried by default; uses the `maxRetries` budget.
 * - `transport`: the call never got a proper answer (worker crashed, pipe closed, connection
 *   refused, HTTP 5xx without a JSON-RPC body). Retried by default; uses the
 *   `maxTransportRetries` budget, so a crash does not use up the component budget.
 * - `timeout`: the step's attempt ran past its timeout. Retried by default; `maxRetries` budget.
 * - `invalid`: the request itself is wrong (unknown component or method, bad parameters, input
 *   validation). Retrying cannot help, so it is retried only when `retryOn` names it.
 * - `fatal`: never retried (run cancelled, run timed out, output too large).
 */
export type FailureCategory = "component" | "transport" | "timeout" | "invalid" | "fatal";

/** Every category, in documentation order. */
export const FAILURE_CATEGORIES: readonly FailureCategory[] = [
  "component",
  "transport",
  "timeout",
  "invalid",
  "fatal",
];

/** A step attempt ran past its `timeout` (or the plugin's default timeout). Retryable. */
export const TIMEOUT = 504;
/** The whole run ran past its timeout (`--timeout`, `runTimeout`); running steps were cancelled. */
export const RUN_TIMEOUT = 524;
/**
 * The run was cancelled (Ctrl-C, SIGTERM, an aborted `AbortSignal`): 410, as stepflow 0.8 uses
 * for a cancelled nested run.
 */
export const CANCELLED = 410;
/** A step's output is larger than the output size limit or nested too deep. Never retried. */
export const OUTPUT_TOO_LARGE = 413;
/** stepflow 0.8's code for execution errors and MCP tool failures; a component failure. */
export const COMPONENT_FAILED = 500;
/**
 * A transport failure of a call (worker crash, closed pipe, refused connection): JSON-RPC
 * internal error, as stepflow 0.8 reports in-flight calls of a crashed worker.
 */
export const TRANSPORT_FAILED = rpc.INTERNAL_ERROR;

/** One row of the error-code table. */
export interface ErrorCodeInfo {
  /** The integer in `error.code`. */
  code: number;
  /** The machine-readable name (in `error.data.kind` when the engine produced the failure). */
  kind: string;
  category: FailureCategory;
  /** When it happens. */
  description: string;
}

/** The table of codes with a known meaning (docs/error-handling.md lists the same rows). */
export const ERROR_CODES: readonly ErrorCodeInfo[] = [
  {
    code: TIMEOUT,
    kind: "TIMEOUT",
    category: "timeout",
    description: "A step attempt ran past its timeout; the call in flight was abandoned.",
  },
  {
    code: RUN_TIMEOUT,
    kind: "RUN_TIMEOUT",
    category: "fatal",
    description: "The run ran past its timeout; running steps were cancelled.",
  },
  {
    code: CANCELLED,
    kind: "CANCELLED",
    category: "fatal",
    description: "The run was cancelled (Ctrl-C, SIGTERM, AbortSignal).",
  },
  {
    code: OUTPUT_TOO_LARGE,
    kind: "OUTPUT_TOO_LARGE",
    category: "fatal",
    description:
      "A step's output is larger than the output size limit, or nested more than 512 levels deep.",
  },
  {
    code: COMPONENT_FAILED,
    kind: "COMPONENT_FAILED",
    category: "component",
    description: "A component failed (stepflow 0.8 execution error code; MCP tool failure).",
  },
  {
    code: TRANSPORT_FAILED,
    kind: "TRANSPORT_FAILED",
    category: "transport",
    description:
      "The call got no answer: worker crashed, pipe closed, connection refused, HTTP 5xx.",
  },
  {
    code: rpc.EXECUTION_ERROR,
    kind: "EXECUTION_ERROR",
    category: "component",
    description: "The worker's component raised (Python SDK).",
  },
  {
    code: rpc.COMPONENT_NOT_FOUND,
    kind: "COMPONENT_NOT_FOUND",
    category: "invalid",
    description: "The worker does not know the component.",
  },
  {
    code: rpc.VALIDATION_ERROR,
    kind: "VALIDATION_ERROR",
    category: "invalid",
    description: "The worker rejected the input (Python SDK validation error).",
  },
  {
    code: rpc.METHOD_NOT_FOUND,
    kind: "METHOD_NOT_FOUND",
    category: "invalid",
    description: "The worker does not implement the JSON-RPC method.",
  },
  {
    code: rpc.INVALID_PARAMS,
    kind: "INVALID_PARAMS",
    category: "invalid",
    description: "The worker rejected the request's parameters.",
  },
  {
    code: rpc.INVALID_REQUEST,
    kind: "INVALID_REQUEST",
    category: "invalid",
    description: "The worker received a malformed JSON-RPC request.",
  },
  {
    code: STORE_FAILED,
    kind: "STORE_FAILED",
    category: "fatal",
    description:
      "The run's state could not be written to the state store (disk full, read-only, locked).",
  },
  {
    code: RUN_INTERRUPTED,
    kind: "RUN_INTERRUPTED",
    category: "fatal",
    description:
      "The engine running the run stopped before it finished (killed, crashed); resume it.",
  },
];

const BY_CODE = new Map<number, ErrorCodeInfo>(ERROR_CODES.map((e) => [e.code, e]));
const BY_KIND = new Map<string, ErrorCodeInfo>(ERROR_CODES.map((e) => [e.kind, e]));

/** The table row of `code`, if it has one. */
export function errorCodeInfo(code: number): ErrorCodeInfo | undefined {
  return BY_CODE.get(code);
}

/**
 * The category of a failure. `data.kind` wins when it names a known kind (a failure the engine
 * produced); then a component's own `data.retryable` (issue 16: `false` makes it `invalid`, e.g.
 * an HTTP 401 from a model API; `true` makes it `component`, e.g. an HTTP 524 that is not this
 * engine's run timeout); otherwise the code decides; unknown codes are `component` failures.
 */
export function categorize(error: FlowError): FailureCategory {
  const data = error.data;
  if (isJsonObject(data) && typeof data.kind === "string") {
    const byKind = BY_KIND.get(data.kind);
    if (byKind) return byKind.category;
  }
  if (isJsonObject(data) && typeof data.retryable === "boolean") {
    return data.retryable ? "component" : "invalid";
  }
  const code = isNumber(error.code as unknown) ? toNumber(error.code) : NaN;
  return BY_CODE.get(code)?.category ?? "component";
}

/**
 * A failed result made by the engine: `{code, message, data: {kind, ...details}}`.
 * @param kind a kind of {@linkcode ERROR_CODES} (`TIMEOUT`, `CANCELLED`, ...).
 */
export function engineFailure(
  kind: "TIMEOUT" | "RUN_TIMEOUT" | "CANCELLED" | "OUTPUT_TOO_LARGE" | "TRANSPORT_FAILED",
  message: string,
  details: JsonObject = {},
): FlowFailed {
  const info = BY_KIND.get(kind)!;
  const data: { [k: string]: JsonValue } = { kind, ...details };
  return failed(info.code, message, data);
}

/**
 * The `OUTPUT_TOO_LARGE` failure of a step whose output is over the output size limit (bytes of
 * compact JSON): `Step 'a' output is 1200 bytes, over the limit of 1000 bytes (...)`.
 * @param size.atLeast the output was not read to its end: `sizeBytes` is what was seen.
 * @param size.via what the transport saw (names the step service).
 */
export function outputTooLarge(
  stepId: string,
  size: { sizeBytes: number; limitBytes: number; atLeast?: boolean; via?: string },
): FlowFailed {
  const { sizeBytes, limitBytes } = size;
  const via = size.via ? `${size.via}; ` : "";
  return engineFailure(
    "OUTPUT_TOO_LARGE",
    `Step '${stepId}' output is ${size.atLeast ? "more than " : ""}${sizeBytes} bytes, over the ` +
      `limit of ${limitBytes} bytes (${via}raise maxOutputSize or make the component return ` +
      `less, e.g. a blob id)`,
    { step: stepId, sizeBytes, limitBytes },
  );
}

/**
 * The `OUTPUT_TOO_LARGE` failure of a step whose output nests arrays/objects more than
 * `limitDepth` levels (the limit flow files have too).
 */
export function outputTooDeep(stepId: string, limitDepth: number, via?: string): FlowFailed {
  return engineFailure(
    "OUTPUT_TOO_LARGE",
    `Step '${stepId}' output is nested more than ${limitDepth} levels deep, over the limit (${
      via ? `${via}; ` : ""
    }flatten it, or return it as a blob)`,
    { step: stepId, limitDepth },
  );
}
