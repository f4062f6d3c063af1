/**
 * `Idempotency-Key` on `POST /runs`, kept with the run in the state store: the key is stored as
 * the run's `runKey` (`idempotency:<key>`, unique in the store), so the same key finds the same
 * run after a restart of the service, and from any service on the same database. A request is
 * "the same" when its flow id, input, overrides and variables are (compared by a SHA-256 of their
 * canonical JSON, recomputed from the stored run). The service also remembers the keys of the
 * runs it started (src/server/runs.ts) so two requests arriving together get one run.
 * @module
 */
import { canonicalJson, type JsonValue } from "../json/exact_json.ts";
import type { RunRecord } from "../state/store.ts";
import { ApiError } from "./api_error.ts";

const PREFIX = "idempotency:";

/** The `runKey` a run started with `Idempotency-Key: key` is stored with. */
export function idempotencyRunKey(key: string): string {
  return PREFIX + key;
}

/** The idempotency key a stored run was started with, if any. */
export function idempotencyKeyOf(r: RunRecord): string | undefined {
  return r.runKey?.startsWith(PREFIX) ? r.runKey.slice(PREFIX.length) : undefined;
}

/** What makes two requests with one key the same request. */
export interface RunFingerprintParts {
  input: JsonValue;
  overrides?: JsonValue;
  variables?: Record<string, JsonValue>;
}

/** SHA-256 (hex) of the canonical JSON of the flow id, input, overrides and variables. */
export async function fingerprintOf(flowId: string, body: RunFingerprintParts): Promise<string> {
  const text = canonicalJson({
    flowId,
    input: body.input,
    overrides: body.overrides ?? null,
    variables: body.variables ?? {},
  });
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The fingerprint of the request that started a stored run. */
export function fingerprintOfRun(r: RunRecord): Promise<string> {
  return fingerprintOf(r.flowId, {
    input: r.input,
    overrides: r.overrides ?? undefined,
    variables: r.variables,
  });
}

/** 422: the key was used for another request. */
export function keyReused(key: string, runId: string): ApiError {
  return new ApiError(
    422,
    `Idempotency-Key '${key}' was already used for a different request (run ${runId}: another ` +
      `flowId, input, overrides or variables): use a new key for a new request`,
  );
}
