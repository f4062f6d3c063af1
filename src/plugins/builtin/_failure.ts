/**
 * Errors of built-in components as `failed` step results (extension; stepflow 0.8 aborts the run
 * on any built-in error, whatever the step's `onError`).
 *
 * A built-in that cannot do its work (bad input, an unknown blob or flow id, a file that cannot be
 * read) ends its step `failed` with one of the codes below, so `onError` (`skip`, `useDefault`,
 * `retry`) handles it like the failure of a step service. The error's `data` is
 * `{kind, component}`; `kind` names the row of the table below.
 *
 * | code     | kind                  | when                                                        |
 * | -------- | --------------------- | ----------------------------------------------------------- |
 * | `-32602` | `INVALID_INPUT`       | the input has the wrong shape (as the SDK's invalid input)  |
 * | `-32011` | `NOT_FOUND`           | no blob, flow or file with that id or path                  |
 * | `-32001` | `COMPONENT_NOT_FOUND` | the builtin plugin has no such component                    |
 * | `500`    | `COMPONENT_FAILED`    | anything else (a file that does not parse, a nested batch)  |
 *
 * A missing Deno permission and a cancelled run still stop the run (see
 * {@linkcode builtinFailure}).
 * @module
 */
import { failed, type FlowFailed } from "../../core/flow_result.ts";
import { describeError, PluginError } from "../../errors.ts";
import { COMPONENT_NOT_FOUND, INVALID_PARAMS, NOT_FOUND } from "../../core/rpc_error_codes.ts";
import { rethrowIfPermission } from "../../core/permission_hint.ts";

/** What went wrong in a built-in, as the `kind` of its failed result. */
export type BuiltinFailureKind =
  | "INVALID_INPUT"
  | "NOT_FOUND"
  | "COMPONENT_NOT_FOUND"
  | "COMPONENT_FAILED";

/** The code of each {@linkcode BuiltinFailureKind}. */
export const BUILTIN_FAILURE_CODES: Readonly<Record<BuiltinFailureKind, number>> = {
  INVALID_INPUT: INVALID_PARAMS,
  NOT_FOUND: NOT_FOUND,
  COMPONENT_NOT_FOUND: COMPONENT_NOT_FOUND,
  COMPONENT_FAILED: 500,
};

/**
 * A built-in could not do its work. A {@linkcode PluginError} (its `attachments` hold the
 * detail), so code that knows only PluginError still reads it; the builtin plugin turns it into a
 * failed result with {@linkcode builtinFailure}.
 */
export class BuiltinError extends PluginError {
  override name = "BuiltinError";
  constructor(
    readonly kind: BuiltinFailureKind,
    /** The whole message of the failed result, e.g. ``Invalid input for /get_blob: ...``. */
    readonly detail: string,
    options?: ErrorOptions,
  ) {
    super(kind === "INVALID_INPUT" ? "invalid input" : detail, [detail], options);
  }
}

/**
 * The failed step result for an error thrown while running built-in `component`:
 * `{code, message, data: {kind, component}}`.
 *
 * - a {@linkcode BuiltinError}: its kind and detail;
 * - an engine error whose text starts `Blob not found` or `Not found:` (an unknown blob or flow
 *   id): `NOT_FOUND`;
 * - any other {@linkcode PluginError} (e.g. of a built-in another module adds): `COMPONENT_FAILED`
 *   with the message and attachments;
 * - anything else: `COMPONENT_FAILED` with its description.
 *
 * @throws the error itself when `signal` is aborted (the run was cancelled or timed out: the
 *   executor reports that, not a step failure), and a `MissingPermissionError` when the error is
 *   a missing Deno permission (the CLI prints the flag to add and exits 3).
 */
export function builtinFailure(component: string, e: unknown, signal?: AbortSignal): FlowFailed {
  rethrowIfPermission(e);
  if (signal?.aborted) throw e;
  let kind: BuiltinFailureKind;
  let message: string;
  if (e instanceof BuiltinError) {
    kind = e.kind;
    message = e.detail;
  } else {
    const text = e instanceof PluginError
      ? [e.message, ...e.attachments].join(": ")
      : describeError(e);
    kind = /\b(Blob not found|Not found: )/.test(text) ? "NOT_FOUND" : "COMPONENT_FAILED";
    message = text;
  }
  return failed(BUILTIN_FAILURE_CODES[kind], message, { kind, component });
}
