/**
 * Whether a durable store can commit, and the ends of runs it could not store.
 *
 * - {@linkcode StoreHealth}: the first and latest failure of the store's commits since the last
 *   one that succeeded (the service's `/health` answers 503 with it: src/server/routes_flows.ts).
 *   Cleared by the next commit that succeeds — a run's, the heartbeat's, or a probe's.
 * - {@linkcode UnstoredEnds}: runs told that their state could not be stored (507) whose end
 *   could not be written either. The store writes each such end as soon as a commit succeeds
 *   again, so the run is `failed` (507) in the database as the client was told, and a restart
 *   does not resume it as if nothing happened. Until then, reads of this process show it ended.
 *
 * A commit that fails never changes what a run's client is told: the run fails with 507 and the
 * text of {@linkcode UNSTORED_RUN_NEXT} says what becomes of it.
 * @module
 */
import { setImmediate } from "node:timers";
import type { FlowResult } from "../core/flow_result.ts";
import type { RunRecord, RunStatus } from "./records.ts";
import { nowRfc3339 } from "./records.ts";
import { StoreError } from "./store_error.ts";
import { logger } from "../log.ts";

/** What a store says of its condition (`StateStore.condition`). */
export interface StoreCondition {
  /** False while the store's commits fail (since the last one that succeeded). */
  healthy: boolean;
  /** `sqlite`, `postgres`, `inMemory`. */
  kind: string;
  /** The database: a file path, or a PostgreSQL URL without its password. */
  database?: string;
  /** The latest failure (unhealthy only): names the database and the cause. */
  error?: string;
  /** When the first failure in a row happened (RFC 3339; unhealthy only). */
  since?: string;
  /** Commits that failed since the last one that succeeded (unhealthy only). */
  failedCommits?: number;
  /** Runs whose failed end (507) is waiting to be written (unhealthy only, when any). */
  unstoredRunEnds?: number;
}

/**
 * What becomes of a run whose state could not be stored (appended to its 507 message): the truth
 * for both stores, whichever comes first.
 */
export const UNSTORED_RUN_NEXT =
  "The run stopped; the steps stored before the failure are kept. It is recorded failed with " +
  "this error as soon as the database can be written again; if this process stops before " +
  "that, the run stays as it was stored and is resumed from its last stored step (by the next " +
  "'stepflow serve' on this database, or by another engine once its lease runs out). To " +
  "continue a run recorded failed: 'stepflow resume <run id>'";

/**
 * What becomes of a run whose own record (its first row: `running`, or `queued`) could not be
 * stored (appended to its 507 message instead of {@linkcode UNSTORED_RUN_NEXT}): nothing of it is
 * in the database, so a restart cannot resume it; the store keeps its record in memory and
 * writes it, failed, once it can commit again.
 */
export const UNSTORED_RECORD_NEXT =
  "The run's record could not be stored, so the run stopped. It is recorded failed with this " +
  "error, with its input, as soon as the database can be written again (then " +
  "'stepflow resume <run id>' runs it from its start); if this process stops before that, " +
  "nothing of the run is stored (its id is unknown to the next start): submit it again";

/**
 * The error a run whose record could not be stored is given: the plain failure `err` (or the
 * cause of an {@linkcode unstoredRunError}) and what becomes of the run.
 */
export function unstoredRecordError(err: StoreError): StoreError {
  const plain = err.cause instanceof StoreError ? err.cause : err;
  return new StoreError(`${plain.message}. ${UNSTORED_RECORD_NEXT}`, plain.database, {
    cause: plain,
  });
}

/** The error a run whose writes failed is given: `err` and what becomes of the run. */
export function unstoredRunError(err: StoreError): StoreError {
  return new StoreError(`${err.message}. ${UNSTORED_RUN_NEXT}`, err.database, { cause: err });
}

/** The failures of one store's commits since the last one that succeeded. */
export class StoreHealth {
  #error: StoreError | undefined;
  #since = "";
  #count = 0;
  #probing: Promise<void> | undefined;
  /**
   * Called when a commit succeeds after failures, on the next macrotask (once the writers of
   * that commit have heard of it).
   */
  onRecovered: (() => void) | undefined;

  /** True while the latest commit failed. Cheap: read after every commit. */
  get faulted(): boolean {
    return this.#error !== undefined;
  }

  /** The latest failure, while faulted. */
  get error(): StoreError | undefined {
    return this.#error;
  }

  /** A commit failed with `err`. */
  failed(err: StoreError): void {
    if (this.#error === undefined) {
      this.#since = nowRfc3339();
      this.#count = 0;
    }
    this.#error = err;
    this.#count++;
  }

  /** A commit succeeded (call only when {@linkcode faulted}). */
  succeeded(): void {
    if (this.#error === undefined) return;
    this.#error = undefined;
    this.#count = 0;
    const fn = this.onRecovered;
    if (fn !== undefined) setImmediate(fn);
  }

  /**
   * While faulted, runs `probe` (a commit of the store's own; callers at the same time share
   * one) and waits for it; at once otherwise.
   */
  async probe(probe: () => Promise<void>): Promise<void> {
    if (this.#error === undefined) return;
    this.#probing ??= probe().catch(() => {}).finally(() => this.#probing = undefined);
    await this.#probing;
  }

  /** The condition as `StateStore.condition` reports it. */
  condition(kind: string, database: string | undefined, unstored: number): StoreCondition {
    const c: StoreCondition = { healthy: this.#error === undefined, kind };
    if (database !== undefined) c.database = database;
    if (this.#error !== undefined) {
      c.error = this.#error.message;
      c.since = this.#since;
      c.failedCommits = this.#count;
      if (unstored > 0) c.unstoredRunEnds = unstored;
    }
    return c;
  }
}

/** A run's end that could not be stored. */
export interface UnstoredEnd {
  status: RunStatus;
  result?: FlowResult;
  /** When the run ended (RFC 3339). */
  at: string;
}

/** Most run ends kept waiting to be written (the oldest are dropped beyond it, and logged). */
const MAX_UNSTORED_ENDS = 100_000;

/**
 * The ends of runs of this process that could not be stored, by run id; written by the store
 * once it can commit again. Reads of the store show them ({@linkcode overlay}).
 */
export class UnstoredEnds {
  readonly #ends = new Map<string, UnstoredEnd>();

  get size(): number {
    return this.#ends.size;
  }

  /**
   * Keeps the end of `runId` (the latest call wins).
   * @returns the id of a run whose end was dropped to make room, if any.
   */
  add(runId: string, status: RunStatus, result: FlowResult | undefined): string | undefined {
    this.#ends.delete(runId);
    this.#ends.set(runId, { status, result, at: nowRfc3339() });
    if (this.#ends.size <= MAX_UNSTORED_ENDS) return undefined;
    const oldest = this.#ends.keys().next().value!;
    this.#ends.delete(oldest);
    return oldest;
  }

  /** Whether an end of `runId` is kept. */
  has(runId: string): boolean {
    return this.#ends.has(runId);
  }

  /** A later end of `runId` was stored. */
  delete(runId: string): void {
    this.#ends.delete(runId);
  }

  /** The ends kept now (a copy: the store writes them, then deletes those it wrote). */
  entries(): [string, UnstoredEnd][] {
    return [...this.#ends];
  }

  /** Forgets `runId`'s end if it is still `end` (written meanwhile). */
  written(runId: string, end: UnstoredEnd): void {
    if (this.#ends.get(runId) === end) this.#ends.delete(runId);
  }

  /** `r` as this process knows it: ended, when its end is waiting to be written. */
  overlay(r: RunRecord): RunRecord;
  overlay(r: RunRecord | undefined): RunRecord | undefined;
  overlay(r: RunRecord | undefined): RunRecord | undefined {
    if (r === undefined || this.#ends.size === 0) return r;
    const end = this.#ends.get(r.runId);
    if (end === undefined) return r;
    const out: RunRecord = { ...r, status: end.status, completedAt: end.at };
    if (end.result !== undefined) out.result = end.result;
    return out;
  }
}

/**
 * At a store's close, says on stderr which runs told 507 still lack their end in the database
 * (the database cannot be written): `unended`, whose record is there (`later` says what becomes of
 * them in this store), and `unrecorded`, whose record never reached it (they stay unrecorded, as
 * they were told). At most 20 ids each.
 */
export function logUnwrittenEnds(unended: string[], unrecorded: string[], later: string): void {
  const list = (ids: string[]) => `${ids.slice(0, 20).join(", ")}${ids.length > 20 ? ", ..." : ""}`;
  if (unended.length > 0) {
    stateLog.error(
      `${unended.length} run(s) told that their state could not be stored are still recorded ` +
        `as they were (the database cannot be written): ${later}: ${list(unended)}`,
    );
  }
  if (unrecorded.length > 0) {
    stateLog.error(
      `${unrecorded.length} run(s) told that their record could not be stored are not in the ` +
        `database (it cannot be written): they are not recorded, as they were told: ${
          list(unrecorded)
        }`,
    );
  }
}

const stateLog = logger("state");
