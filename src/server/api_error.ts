/**
 * Errors of the REST API and their body (stepflow 0.8 `ErrorResponse`):
 * `{code: <HTTP status>, message: string, stack?: [{error, attachments?, backtrace?}]}`.
 * @module
 */
import type { StackFrame } from "../errors.ts";

/** The JSON body of every error response. */
export interface ErrorBody {
  /** The HTTP status code (0.8: the same number as the response status). */
  code: number;
  message: string;
  /** 0.8's error stack, most recent first; absent when empty. */
  stack?: StackFrame[];
}

/** An error a handler throws to answer with `status` and an {@linkcode ErrorBody}. */
export class ApiError extends Error {
  override name = "ApiError";
  constructor(
    /** HTTP status, 400–599. */
    readonly status: number,
    message: string,
    readonly stack_?: StackFrame[],
    /** Extra response headers (e.g. `Retry-After` on 429). */
    readonly headers?: Record<string, string>,
  ) {
    super(message);
  }

  /** The response body. */
  body(): ErrorBody {
    const b: ErrorBody = { code: this.status, message: this.message };
    if (this.stack_ && this.stack_.length > 0) b.stack = this.stack_;
    return b;
  }
}

/** 404 `Run '<id>' not found` (0.8: `Execution '<id>' not found`). */
export function runNotFound(runId: string): ApiError {
  return new ApiError(404, `Run '${runId}' not found`);
}

/**
 * 404 `Flow '<id>' not found: store it first with POST /api/v1/flows`; for a flow the in-memory
 * store evicted (`evicted`: its `stateStore.maxFlows`), that it was evicted and how to keep flows.
 */
export function flowNotFound(flowId: string, evicted?: { maxFlows?: number }): ApiError {
  if (evicted !== undefined) {
    return new ApiError(
      404,
      `Flow '${flowId}' was evicted from this service's in-memory store, which keeps the ${
        evicted.maxFlows ?? "configured number of"
      } flows stored or used last (stateStore.maxFlows in the config) and the flows of the runs ` +
        "it holds: store it again with POST /api/v1/flows. To keep every flow, run the service " +
        "with a durable store (stepflow serve --store stepflow.db, or stateStore: {type: sqlite} " +
        "or {type: postgres})",
    );
  }
  return new ApiError(
    404,
    `Flow '${flowId}' not found: store it first with POST /api/v1/flows (its answer has the flowId)`,
  );
}

/** 404 `Batch '<id>' not found`. */
export function batchNotFound(batchId: string): ApiError {
  return new ApiError(404, `Batch '${batchId}' not found`);
}
