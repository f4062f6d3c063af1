/**
 * The PostgreSQL state store (`stateStore: {type: postgres, url}`, `--store postgres://...`,
 * issue 14): the store several engines on several machines share. Loaded only when configured
 * (src/state/create.ts imports this module, and src/state/postgres_client.ts the `postgres`
 * client, dynamically). This class composes its parts:
 *
 * - Tables: the SQLite store's logical schema in PostgreSQL's types
 *   (src/state/postgres_schema.ts), migrated under an advisory lock on open
 *   (src/state/postgres_client.ts).
 * - Group commit as in the SQLite store (src/state/postgres_writer.ts): writes are queued
 *   synchronously, and the writes of one event-loop turn are committed in one transaction, sent
 *   as one pipeline (`BEGIN`, the fence, one multi-row statement per table, `COMMIT`: one round
 *   trip; src/state/postgres_batch.ts, src/state/postgres_commit.ts); writes made while a commit
 *   is in flight form the next one. Each write returns the promise of its commit. A failed commit
 *   rejects with a {@linkcode StoreError} naming the database (never its password) and the cause,
 *   and fails every unfinished run of this store (their `completeRun` rejects: code 507). A
 *   top-level run whose row went with it is kept in memory (`PgSession.rowless`), read back
 *   `failed` from there, and written whole, ended, once a commit succeeds again, as the SQLite
 *   store does (its 507 says so: src/state/store_health.ts `UNSTORED_RECORD_NEXT`).
 * - The run queue and leases (src/state/postgres_cluster.ts): a run created `queued` waits in the
 *   table; engines claim runs with one `UPDATE ... FROM (SELECT ... FOR UPDATE SKIP LOCKED LIMIT
 *   n) RETURNING` statement ({@linkcode PostgresStateStore.claimRuns}). A claimed or started
 *   top-level run has a lease (`owner_id`, `lease_epoch`, `lease_expires_at` on the database
 *   clock) that this store renews every `heartbeatMs` with its `engines` row; once it expires,
 *   another engine may claim the run (and resume it from its journal). Nested runs follow their
 *   top-level run's lease.
 * - Fencing: every commit first calls `stepflow_fence` with the `(run, epoch)` leases its writes
 *   are made under; when another engine took one over, the transaction aborts, the writes of the
 *   runs of that lease are dropped (their promises reject, their `completeRun` fails the run
 *   with a clear error) and the rest is committed again. A stalled engine that lost its lease
 *   writes nothing (src/state/postgres_leases.ts keeps what this engine holds and lost).
 * - `LISTEN/NOTIFY` (channel `stepflow_queue`) only wakes claimers when a run is queued or
 *   released ({@linkcode PostgresStateStore.watchQueue}); claimers keep polling.
 * - Reads, signals and deletion run after the queued writes (src/state/postgres_queries.ts).
 * @module
 */
import type { JsonValue } from "../json/exact_json.ts";
import type { FlowResult } from "../core/flow_result.ts";
import { checkSchema, connectPostgres, migrate, PgSession, type Sql } from "./postgres_client.ts";
import { PostgresCluster } from "./postgres_cluster.ts";
import { LeaseBook } from "./postgres_leases.ts";
import { PostgresQueries } from "./postgres_queries.ts";
import { describePostgresUrl, parsePostgresUrl } from "./postgres_url.ts";
import { PostgresWriter } from "./postgres_writer.ts";
import type { CreateRow } from "./postgres_batch.ts";
import { runFromRow, type RunRow } from "./rows.ts";
import { logUnwrittenEnds, type StoreCondition, unstoredRecordError } from "./store_health.ts";
import { logger } from "../log.ts";
import { describeError } from "../errors.ts";
import { stringifyJson } from "../json/exact_json.ts";
import {
  type BatchRecord,
  type ClaimedRun,
  type ClaimOptions,
  type ClaimResult,
  type EngineRecord,
  type EventFilter,
  type LeaseRenewal,
  type NewRunId,
  type RunEventRecord,
  type RunEventType,
  type RunFilter,
  type RunRecord,
  type RunStatus,
  type SignalRecord,
  type StateStore,
  type StepInfoRecord,
  type StepResultRecord,
  type StepStartRecord,
  type StoredBlob,
  StoreError,
} from "./store.ts";

const log = logger("state");

/** Options of {@linkcode PostgresStateStore.open}. */
export interface PostgresOpenOptions {
  /** Create or upgrade the tables when needed. @default true */
  autoMigrate?: boolean;
  /** Most connections of this engine's pool (a `LISTEN` takes one more). @default 10 */
  maxConnections?: number;
  /**
   * How long a run's lease lasts without renewal, ms: after an engine stops (killed, stalled,
   * cut off), its runs can be taken over this long after its last heartbeat. @default 30000
   */
  leaseTtlMs?: number;
  /** How often leases and the `engines` heartbeat are renewed, ms. @default leaseTtlMs / 3 */
  heartbeatMs?: number;
  /** How long connecting may take, ms. @default 10000 */
  connectTimeoutMs?: number;
  /**
   * Called with the runs whose lease this engine lost (another engine took them over): their
   * writes are refused from now on; the engine should stop executing them.
   */
  onLeaseLost?: (runIds: string[]) => void;
}

/** A {@linkcode StateStore} in a PostgreSQL database shared by engines. */
export class PostgresStateStore implements StateStore {
  readonly kind = "postgres";
  readonly engineId: string;
  /** The database as it may be shown: `postgres://user@host:port/db` (no password). */
  readonly database: string;
  /** How long a lease lasts without renewal, ms. */
  readonly leaseTtlMs: number;
  #s: PgSession;
  #leases: LeaseBook;
  #w: PostgresWriter;
  #cluster: PostgresCluster;
  #queries: PostgresQueries;
  /** The write of the kept run ends in progress ({@linkcode #writeEnds}). */
  #writingEnds: Promise<boolean> | undefined;

  private constructor(session: PgSession, o: PostgresOpenOptions) {
    this.#s = session;
    this.engineId = session.engineId;
    this.database = session.database;
    this.leaseTtlMs = session.leaseTtlMs;
    this.#leases = new LeaseBook(session.database);
    if (o.onLeaseLost) this.#leases.listeners.add(o.onLeaseLost);
    this.#w = new PostgresWriter(session, this.#leases, {
      onEngine: () => this.#cluster.startHeartbeat(),
      wake: () => this.#cluster.wake(),
    });
    const heartbeatMs = o.heartbeatMs ?? Math.max(100, Math.floor(this.leaseTtlMs / 3));
    this.#cluster = new PostgresCluster(session, this.#leases, this.#w, heartbeatMs);
    this.#queries = new PostgresQueries(this.#w, this.#leases);
    // commits succeed again: the runs that ended meanwhile are recorded as their clients were told
    session.health.onRecovered = () => {
      if (session.ends.size > 0) this.#writeEnds();
    };
  }

  /**
   * Connects to the database at `url`, and creates or upgrades its tables (`autoMigrate`).
   * @throws {StoreError} naming the database (without its password) when the URL is invalid,
   * the server cannot be reached or refuses the login, or the tables are missing with
   * `autoMigrate: false`.
   */
  static async open(url: string, options: PostgresOpenOptions = {}): Promise<PostgresStateStore> {
    const database = describePostgresUrl(url);
    try {
      parsePostgresUrl(url);
    } catch (e) {
      throw new StoreError((e as Error).message, database);
    }
    const sql = await connectPostgres(url, options);
    const session = new PgSession(sql, database, options.leaseTtlMs ?? 30_000);
    const store = new PostgresStateStore(session, options);
    try {
      if (options.autoMigrate ?? true) await migrate(sql);
      else await checkSchema(sql, database);
    } catch (e) {
      await sql.end({ timeout: 1 }).catch(() => {});
      throw session.error("cannot open", e);
    }
    return store;
  }

  // ---------------------------------------------------------------- writes (group commit)

  putBlob(data: JsonValue, blobType: "data" | "flow", knownId?: string): string {
    return this.#w.putBlob(data, blobType, knownId);
  }

  createRun(run: RunRecord): Promise<void> | void {
    const w = this.#w.createRun(run);
    if (run.status !== "queued" || w === undefined) return w;
    // a queued row that could not be stored: its waiter is told what becomes of the run
    const s = this.#s;
    const p = w.catch((e) => {
      throw e instanceof StoreError && s.rowless.has(run.runId) ? unstoredRecordError(e) : e;
    });
    p.catch(() => {}); // (a caller may not wait for it: a batch's queued rows)
    return p;
  }

  recordStepStarted(runId: string, s: StepStartRecord): Promise<void> | void {
    return this.#w.recordStepStarted(runId, s);
  }

  recordStepResult(runId: string, record: StepResultRecord): Promise<void> | void {
    return this.#w.recordStepResult(runId, record);
  }

  completeRun(runId: string, status: RunStatus, result?: FlowResult): Promise<void> | void {
    return this.#w.completeRun(runId, status, result);
  }

  setRunStatus(
    runId: string,
    status: RunStatus,
    event?: RunEventType,
    data?: JsonValue,
  ): Promise<void> | void {
    return this.#w.setRunStatus(runId, status, event, data);
  }

  /** `StateStore.atomic`: the writes of `fn` go in one commit (all or none). */
  atomic<T>(fn: () => T): T {
    return this.#w.atomic(fn);
  }

  createBatch(batch: BatchRecord): Promise<void> | void {
    return this.#w.createBatch(batch);
  }

  addBatchRun(batchId: string, runId: string, index: number): Promise<void> | void {
    return this.#w.addBatchRun(batchId, runId, index);
  }

  // ---------------------------------------------------------------- reads, signals, deletion

  getBlob(id: string): Promise<StoredBlob | undefined> {
    return this.#queries.getBlob(id);
  }

  getRun(runId: string): Promise<RunRecord | undefined> {
    const p = this.#queries.getRun(runId);
    const s = this.#s;
    return s.ends.size === 0 ? p : p.then((r) => s.ends.overlay(r ?? this.#rowlessRun(runId)));
  }

  /**
   * Run `runId` as this process knows it when its row never reached the database and its failed
   * end is kept (the client was told 507): undefined otherwise.
   */
  #rowlessRun(runId: string): RunRecord | undefined {
    const row = this.#s.rowless.get(runId);
    if (row === undefined || !this.#s.ends.has(runId)) return undefined;
    return runFromRow(rowOfCreate(row));
  }

  findRunByKey(runKey: string): Promise<RunRecord | undefined> {
    return this.#queries.findRunByKey(runKey);
  }

  listRuns(filter: RunFilter = {}): Promise<RunRecord[]> {
    const p = this.#queries.listRuns(filter);
    return this.#s.ends.size === 0 ? p : p.then((rs) => rs.map((r) => this.#s.ends.overlay(r)));
  }

  /**
   * The runs among `runIds` that exist, in one query (a service waiting for runs other engines
   * execute polls them).
   */
  getRuns(runIds: string[]): Promise<RunRecord[]> {
    const p = this.#queries.getRuns(runIds);
    return this.#s.ends.size === 0 ? p : p.then((rs) => rs.map((r) => this.#s.ends.overlay(r)));
  }

  /**
   * The status of each of `runIds` that exists, with the result of those finished (a service
   * waiting for runs other engines execute polls this: one query, results only when finished).
   */
  runStatuses(
    runIds: string[],
  ): Promise<{ runId: string; status: RunStatus; result?: FlowResult }[]> {
    return this.#queries.runStatuses(runIds);
  }

  getStepResults(runId: string): Promise<StepResultRecord[]> {
    return this.#queries.getStepResults(runId);
  }

  getStepInfo(runId: string): Promise<StepInfoRecord[]> {
    return this.#queries.getStepInfo(runId);
  }

  getEvents(filter: EventFilter): Promise<RunEventRecord[]> {
    return this.#queries.getEvents(filter);
  }

  getBatch(batchId: string): Promise<BatchRecord | undefined> {
    return this.#queries.getBatch(batchId);
  }

  /** Batches, newest first (the service's `GET /api/v1/batches`). */
  listBatches(
    filter: { status?: string; flowName?: string; limit?: number; offset?: number } = {},
  ): Promise<BatchRecord[]> {
    return this.#queries.listBatches(filter);
  }

  getBatchRuns(batchId: string): Promise<{ runId: string; index: number }[]> {
    return this.#queries.getBatchRuns(batchId);
  }

  getBatchOfRun(runId: string): Promise<BatchRecord | undefined> {
    return this.#queries.getBatchOfRun(runId);
  }

  putSignal(signal: { runId: string; name: string; data: JsonValue }): Promise<SignalRecord> {
    return this.#queries.putSignal(signal);
  }

  consumeSignal(runId: string, name: string, consumer: string): Promise<SignalRecord | undefined> {
    return this.#queries.consumeSignal(runId, name, consumer);
  }

  getSignals(runId: string): Promise<SignalRecord[]> {
    return this.#queries.getSignals(runId);
  }

  deleteRun(runId: string): Promise<boolean> {
    return this.#queries.deleteRun(runId);
  }

  pruneRuns(options: { before: string }): Promise<number> {
    return this.#queries.pruneRuns(options);
  }

  // ---------------------------------------------------------------- claims and leases

  async claimRunId(id: NewRunId): Promise<RunRecord | undefined> {
    this.#w.ensureEngine(); // (committed first, by read: the row's owner is a registered engine)
    const me = this.engineId;
    const ttl = this.leaseTtlMs;
    for (let tries = 0;; tries++) {
      // One statement: of two engines inserting the same id, one inserts, the other finds the
      // conflict (it waits for the first's commit) and changes nothing. A leased row (its lease
      // runs from now): if this engine dies before its createRun, the run is taken over as any.
      const rows = await this.#w.read("cannot record the run", (sql) =>
        sql`
        INSERT INTO runs(id, flow_id, flow_name, status, input_json, created_at, root_run_id,
          owner_id, lease_epoch, lease_expires_at, started_at, updated_at)
        VALUES (${id.runId}, ${id.flowId}, ${id.flowName ?? null}, 'running',
          ${stringifyJson(id.input)}, ${id.createdAt}::timestamptz, ${id.runId}, ${me}, 0,
          now() + ${ttl} * interval '1 millisecond', now(), now())
        ON CONFLICT (id) DO UPDATE SET status = 'running', owner_id = excluded.owner_id,
          lease_expires_at = excluded.lease_expires_at, updated_at = excluded.updated_at
        WHERE runs.status = 'queued'
        RETURNING id`);
      if (rows.length > 0) return;
      const held = await this.getRun(id.runId);
      // (a run that held the id and was deleted since: try again)
      if (held !== undefined || tries >= 2) return held ?? { ...id, status: "running" };
    }
  }

  async claimRun(runId: string): Promise<ClaimResult> {
    // a run whose end waits to be stored is recorded ended before anyone takes it
    if (this.#s.ends.size > 0 && !(await this.#writeEnds())) {
      throw this.#s.health.error ?? this.#s.error("cannot claim the run", "its end is not stored");
    }
    return await this.#cluster.claimRun(runId);
  }

  /**
   * Writes the ends of runs that could not be stored when they ended (their client was told
   * 507): status and result, running steps `failed`, `run_completed`; a run another engine took
   * over meanwhile is left alone. Resolves true when nothing is left to write; never rejects.
   */
  #writeEnds(): Promise<boolean> {
    const s = this.#s;
    return this.#writingEnds ??= (async () => {
      try {
        if (s.ends.size === 0) return true;
        let n = 0;
        // the ends as they are once the queued writes are committed (a later end of a run,
        // stored meanwhile, has removed its kept one)
        let ends: ReturnType<typeof s.ends.entries> = [];
        await this.#w.transaction("cannot record the end of runs", async (tx) => {
          ends = s.ends.entries();
          for (const [runId, end] of ends) {
            const data = end.result === undefined
              ? { status: end.status }
              : { status: end.status, outcome: end.result.outcome };
            const result = end.result === undefined ? null : stringifyJson(end.result);
            const [row] = await tx`
              UPDATE runs SET status = ${end.status}, result_json = COALESCE(${result}, result_json),
                completed_at = ${end.at}, updated_at = now(), lease_expires_at = NULL
              WHERE id = ${runId} AND owner_id = ${s.engineId}
              RETURNING COALESCE(root_run_id, id) AS root` as { root: string }[];
            const kept = row === undefined ? s.rowless.get(runId) : undefined;
            const root = row?.root ?? (kept && await insertRowless(tx, kept, end, result));
            if (root === undefined) continue;
            n++;
            await tx`UPDATE step_info SET status = 'failed', updated_at = ${end.at}
                     WHERE run_id = ${runId} AND status = 'running'`;
            await tx`
              INSERT INTO run_events(run_id, root_run_id, type, data, at)
              VALUES (${runId}, ${root}, 'run_completed', ${stringifyJson(data)}, ${end.at})`;
          }
        });
        if (s.health.faulted) s.health.succeeded();
        for (const [runId, end] of ends) {
          s.ends.written(runId, end);
          s.rowless.delete(runId); // written whole, or a run with its id or key is there
          this.#leases.held.delete(runId);
        }
        if (n > 0) log.warn(`recorded ${n} run(s) failed that could not be stored when they ended`);
        return s.ends.size === 0;
      } catch (e) {
        const err = s.error("cannot record the end of runs", e);
        s.health.failed(err);
        log.warn(describeError(err));
        return false;
      } finally {
        this.#writingEnds = undefined;
      }
    })();
  }

  /**
   * Whether this store can commit now: healthy until a commit fails, and again once one
   * succeeds. With `probe`, a store whose last commit failed tries one of its own first (callers
   * at the same time share one): the ends of runs it could not store, or its heartbeat.
   */
  async condition(options: { probe?: boolean } = {}): Promise<StoreCondition> {
    const s = this.#s;
    if (options.probe && !s.closed) await s.health.probe(() => this.#probe());
    return s.health.condition("postgres", this.database, s.ends.size);
  }

  async #probe(): Promise<void> {
    const s = this.#s;
    if (s.ends.size > 0) {
      await this.#writeEnds();
      return;
    }
    try {
      if (s.engine === "committed") await this.#cluster.renewLeases();
      else {
        await s.sql`SELECT 1`;
        if (s.health.faulted) s.health.succeeded();
      }
    } catch {
      // kept in the health
    }
  }

  claimRuns(options: ClaimOptions): Promise<ClaimedRun[]> {
    return this.#cluster.claimRuns(options);
  }

  renewLeases(): Promise<LeaseRenewal> {
    return this.#cluster.renewLeases();
  }

  releaseRuns(runIds?: string[]): Promise<string[]> {
    return this.#cluster.releaseRuns(runIds);
  }

  /**
   * Calls `onLost(runIds)` with the runs whose lease this engine loses from now on (another
   * engine took them over: their writes are refused; stop executing them), as the
   * `onLeaseLost` option of {@linkcode PostgresStateStore.open}. Returns the unsubscribe.
   */
  watchLeases(onLost: (runIds: string[]) => void): () => void {
    return this.#cluster.watchLeases(onLost);
  }

  /** The run ids this engine holds a lease on now. */
  heldRuns(): string[] {
    return this.#cluster.heldRuns();
  }

  /**
   * Cancels a run that is still `queued` (no engine claimed it), atomically with the claimers:
   * status `cancelled` with `result`, and a `run_completed` event. False when the run is not
   * queued (claimed meanwhile, finished, or unknown). Committed before the promise resolves.
   */
  cancelQueued(runId: string, result: FlowResult): Promise<boolean> {
    return this.#cluster.cancelQueued(runId, result);
  }

  registerEngine(info: { url?: string } = {}): Promise<EngineRecord> {
    return this.#cluster.registerEngine(info);
  }

  listEngines(): Promise<EngineRecord[]> {
    return this.#cluster.listEngines();
  }

  watchQueue(onWork: () => void): () => void {
    return this.#cluster.watchQueue(onWork);
  }

  /**
   * Resolves once this store's `LISTEN` (started by {@linkcode watchQueue}) is active: true, or
   * false when there is none or it failed (claimers then only poll).
   */
  listening(): Promise<boolean> {
    return this.#cluster.listening();
  }

  // ---------------------------------------------------------------- lifecycle

  flush(): Promise<void> {
    return this.#w.flush();
  }

  commitMark(): number {
    return this.#w.commitMark();
  }

  failedSince(mark: number): unknown {
    return this.#w.failedSince(mark);
  }

  async close(): Promise<void> {
    const s = this.#s;
    if (s.closed) return;
    await this.#w.drain();
    if (s.ends.size > 0 && !(await this.#writeEnds())) {
      const all = s.ends.entries().map(([id]) => id);
      logUnwrittenEnds(
        all.filter((id) => !s.rowless.has(id)),
        all.filter((id) => s.rowless.has(id)),
        "another engine takes them over once their lease runs out",
      );
    }
    await this.#cluster.leave();
    this.#leases.open.clear();
    this.#leases.held.clear();
    s.closed = true;
    await this.#cluster.unlisten();
    await s.sql.end({ timeout: 5 }).catch(() => {});
  }
}

/** A kept row (`CreateRow`) as a `runs` row. */
function rowOfCreate(r: CreateRow): RunRow {
  return {
    id: r.id,
    flow_id: r.flowId,
    flow_name: r.flowName,
    status: r.status,
    input_json: r.input,
    result_json: r.result,
    created_at: r.createdAt,
    completed_at: r.completedAt,
    overrides_json: r.overrides,
    parent_run_id: r.parent,
    root_run_id: r.root ?? r.id,
    run_key: r.runKey,
    variables_json: r.variables,
    owner_id: r.owner,
    lease_epoch: r.epoch,
    debug_mode: r.debug,
    options_json: r.options,
  };
}

/**
 * Writes the kept row `r` of a run that never reached the database, ended as `end` says (no
 * lease: nobody executes it), unless a run with its id or key is there by now — then, when that
 * is its own `queued` row (a commit that succeeded though its client heard of a failure), ends
 * that row. Returns the run's root, or undefined when nothing was written.
 */
async function insertRowless(
  tx: Sql,
  r: CreateRow,
  end: { status: RunStatus; at: string },
  result: string | null,
): Promise<string | undefined> {
  const [row] = await tx`
    INSERT INTO runs(id, flow_id, flow_name, status, input_json, result_json, created_at,
      completed_at, overrides_json, root_run_id, run_key, variables_json, owner_id,
      lease_epoch, started_at, updated_at, debug_mode, options_json)
    VALUES (${r.id}, ${r.flowId}, ${r.flowName}, ${end.status}, ${r.input},
      ${result ?? r.result}, ${r.createdAt}, ${end.at}, ${r.overrides}, ${r.root ?? r.id},
      ${r.runKey}, ${r.variables}, ${r.owner}, ${r.epoch}, ${r.startedAt}, now(), ${r.debug},
      ${r.options})
    ON CONFLICT DO NOTHING
    RETURNING COALESCE(root_run_id, id) AS root`;
  if (row !== undefined) return row.root as string;
  const [queued] = await tx`
    UPDATE runs SET status = ${end.status}, result_json = COALESCE(${result}, result_json),
      completed_at = ${end.at}, updated_at = now()
    WHERE id = ${r.id} AND status = 'queued' AND owner_id IS NULL
    RETURNING COALESCE(root_run_id, id) AS root`;
  return queued?.root as string | undefined;
}
