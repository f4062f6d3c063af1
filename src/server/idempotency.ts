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

interface IdempotencyEntry {
  runId: string;
  fingerprint: string;
  at: number;
}

/** Idempotency keys remembered (oldest forgotten first). */
const MAX_IDEMPOTENCY_KEYS = 10_000;
/** How long an idempotency key is remembered: 24 h. */
const IDEMPOTENCY_TTL_MS = 24 * 3600 * 1000;

/**
 * The keys of the runs a service started, in memory (so two requests arriving together get one
 * run before the first is stored): at most 10,000, each for 24 h.
 */
export class RecentKeys {
  #keys = new Map<string, IdempotencyEntry>();

  /**
   * The run `key` already named, when the request is the same.
   * @throws {ApiError} 422 when the key was used for a different request.
   */
  find(key: string, fingerprint: string): string | undefined {
    const e = this.#keys.get(key);
    if (!e) return undefined;
    if (Date.now() - e.at > IDEMPOTENCY_TTL_MS) {
      this.#keys.delete(key);
      return undefined;
    }
    if (e.fingerprint !== fingerprint) throw keyReused(key, e.runId);
    return e.runId;
  }

  /** Remembers that `key` started `runId`. */
  remember(key: string, fingerprint: string, runId: string): void {
    this.#keys.delete(key);
    this.#keys.set(key, { runId, fingerprint, at: Date.now() });
    if (this.#keys.size > MAX_IDEMPOTENCY_KEYS) this.#keys.delete(this.#keys.keys().next().value!);
  }

  /** Forgets a key whose run no longer exists (deleted). */
  forget(key: string): void {
    this.#keys.delete(key);
  }
}
