/**
 * How the state store fails (src/state/store.ts re-exports this): {@linkcode StoreError}, and
 * the failed results of a run whose writes failed (507) or whose engine went away (503).
 * @module
 */
import type { JsonValue } from "../json/exact_json.ts";
import type { FlowResult } from "../core/flow_result.ts";
import { failed } from "../core/flow_result.ts";
import { RUN_INTERRUPTED, STORE_FAILED } from "../core/error_codes.ts";

/**
 * A write (or read) of the state store failed: the message names the database and the cause
 * (`cannot store run state in SQLite database '/srv/runs.db': database or disk is full`).
 */
export class StoreError extends Error {
  override name = "StoreError";
  constructor(message: string, readonly database: string, options?: ErrorOptions) {
    super(message, options);
  }
}

export { RUN_INTERRUPTED, STORE_FAILED } from "../core/error_codes.ts";

/** The failed result of a run whose writes failed: code 507, kind `STORE_FAILED`. */
export function storeFailedResult(error: unknown): FlowResult {
  const message = error instanceof Error ? error.message : String(error);
  const data: { [k: string]: JsonValue } = { kind: "STORE_FAILED" };
  if (error instanceof StoreError) data.database = error.database;
  return failed(STORE_FAILED, message, data);
}

/** The failed result of an interrupted run: code 503, kind `RUN_INTERRUPTED`. */
export function interruptedResult(runId: string, reason: string): FlowResult {
  return failed(
    RUN_INTERRUPTED,
    `run interrupted: ${reason}; continue it with 'stepflow resume ${runId}'`,
    { kind: "RUN_INTERRUPTED" },
  );
}
