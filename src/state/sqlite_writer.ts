/**
 * The write side of the SQLite store (src/state/sqlite.ts): writes are queued in memory in the
 * order they happen (a flat array: the hot step writes as plain values, others as closures) and
 * committed in one transaction per event-loop turn (src/state/group_commit.ts); each write
 * returns the commit's promise. Also this engine's `engines` row and heartbeat, and the fencing
 * check: an engine declared dead by another process has every commit refused.
 * @module
 */
import { type JsonValue, parseJson, stringifyJson } from "../json/exact_json.ts";
import type { FlowResult } from "../core/flow_result.ts";
import { blobId } from "./blob_id.ts";
import { GroupCommit } from "./group_commit.ts";
import type { Checkpointer } from "./sqlite_checkpoint.ts";
import {
  applyBatch,
  closeCommitCache,
  type CommitCache,
  CommitWorker,
  type DatabaseFile,
  databaseFile,
  OP_EVENT,
  OP_RESULT,
  OP_SQL,
  OP_START,
  RUN_ARG,
  SQL_BATCH,
  SQL_BATCH_RUN,
  SQL_BLOB,
  SQL_ENGINE,
  SQL_ENGINE_URL,
  SQL_HEARTBEAT,
  SQL_RUN,
  SQL_RUN_END,
  SQL_RUN_STATUS,
  SQL_STEPS_END,
} from "./sqlite_commit.ts";
import { describeError } from "../errors.ts";
import { processIdentity } from "./liveness.ts";
import type { SqliteCore } from "./sqlite_core.ts";
import {
  type BatchRecord,
  nowRfc3339,
  type RunEventType,
  type RunRecord,
  type RunStatus,
  stepEventData,
  stepEventType,
  type StepResultRecord,
  type StepStartRecord,
  stepStatusOf,
  type StoredBlob,
} from "./store.ts";
import { unstoredRecordError, unstoredRunError } from "./store_health.ts";
import { logger } from "../log.ts";

const log = logger("state");

/** Queue entries (flat array, tag first) before a commit is forced within the turn. */
const MAX_QUEUE_LENGTH = 16_000;

/** The journal data of a step result as JSON text, or null. */
function eventDataText(record: StepResultRecord): string | null {
  const data = stepEventData(record);
  return data === undefined ? null : stringifyJson(data);
}

type Blobs = Map<string, { text: string; blobType: "data" | "flow" }>;

/** The queued writes of one SQLite store and their group commit. */
export class SqliteWriter {
  #q: unknown[] = [];
  /**
   * Runs whose row (`SQL_RUN`) is in `#q` with no later write to it queued: where in `#q` its
   * arguments start. Their end patches that row instead of queueing an `UPDATE runs`.
   */
  #rowsQueued = new Map<string, number>();
  /** Blobs queued and not committed yet, by id (read back without forcing a commit). */
  #pendingBlobs: Blobs = new Map();
  /** Blobs of the commit in flight (in the worker). */
  #inFlightBlobs: Blobs = new Map();
  #gc: GroupCommit;
  /** Depth of {@linkcode atomic} calls: while above 0, a long queue does not start a commit. */
  #atomic = 0;
  /** Whether this engine's `engines` row is written. */
  engine: "none" | "queued" | "committed" = "none";
  #engineInBatch = false;
  #heartbeat: ReturnType<typeof setInterval> | undefined;
  /** Runs WAL checkpoints in a worker (undefined: SQLite does, on the store's connection). */
  checkpointer: Checkpointer | undefined;
  /** Commits in a worker thread once started ({@linkcode startWorker}); else on this thread. */
  #worker: CommitWorker | undefined;
  #starting: Promise<void> | undefined;
  #cache: CommitCache = { stmts: new Map() };

  /** The database file as opened: a commit fails once its path names no longer that file. */
  #file: DatabaseFile | null;

  constructor(readonly c: SqliteCore, readonly heartbeatMs: number) {
    this.#gc = new GroupCommit(() => this.#commitQueue());
    this.#file = c.readOnly ? null : databaseFile(c.path);
  }

  /**
   * Moves the commits to a worker thread with its own connection (src/state/sqlite_commit.ts):
   * the event loop no longer runs SQLite's statements and COMMITs. Until the worker is ready,
   * commits run here; if it cannot start, they go on here (logged).
   */
  startWorker(): Promise<void> {
    const c = this.c;
    if (c.readOnly || c.path === ":memory:" || c.closed) return Promise.resolve();
    return this.#starting ??= CommitWorker.start(c.path, c.busyMs).then((w) => {
      if (c.closed) return w.close();
      this.#worker = w;
    }, (e) => {
      log.warn(
        `cannot commit in a worker thread (${describeError(e)}); committing on the event loop`,
      );
    });
  }

  /** Whether commits run in the worker thread. */
  get inWorker(): boolean {
    return this.#worker !== undefined;
  }

  /** Queues statement `n` of src/state/sqlite_commit.ts with `args`. */
  #sql(n: number, args: unknown[]): void {
    this.#q.push(OP_SQL, n, args.length, ...args);
  }

  /** Queues a journal event. */
  #event(
    runId: string,
    root: string,
    type: string,
    data: string | null,
    at: string,
  ): void {
    this.#q.push(OP_EVENT, runId, root, type, null, null, null, data, at);
  }

  /**
   * Makes queued writes visible to a read on the store's connection: commits now when commits
   * run here; resolves once what is queued (and in flight) is stored. Never rejects (a failure
   * was logged and reported to the writers).
   */
  sync(): Promise<void> {
    this.#gc.now();
    if (!this.#gc.pending && this.#worker === undefined) return Promise.resolve();
    return this.#gc.soon().catch(() => {});
  }

  /** Resolves once what is queued now is committed (at the end of the microtask burst). */
  flush(): Promise<void> {
    return this.#gc.soon();
  }

  /** A mark of the commits from now on (`StateStore.commitMark`). */
  commitMark(): number {
    return this.#gc.mark();
  }

  /** The error of a commit since `mark` that failed (`StateStore.failedSince`). */
  failedSince(mark: number): unknown {
    return this.#gc.failedSince(mark);
  }

  /**
   * Closes the database file's descriptor the commits kept open (src/state/sqlite_commit.ts
   * `applyBatch`): only once the store's connections are closed.
   */
  closeFiles(): void {
    closeCommitCache(this.#cache);
  }

  /** Commits everything queued; resolves when nothing is queued or in flight. */
  drain(): Promise<void> {
    return this.#gc.drain();
  }

  /** Stops the heartbeat and the commit worker (after {@linkcode drain}). */
  async stop(): Promise<void> {
    if (this.#heartbeat !== undefined) clearInterval(this.#heartbeat);
    await this.#starting;
    const w = this.#worker;
    this.#worker = undefined;
    await w?.close();
  }

  /** Queues this store's `engines` row (once), and starts its heartbeat. */
  ensureEngine(): void {
    if (this.engine !== "none") return;
    this.engine = "queued";
    const c = this.c;
    this.#queueEngineRow();
    this.#queued();
    this.#heartbeat = setInterval(() => {
      this.#sql(SQL_HEARTBEAT, [nowRfc3339(), c.engineId]);
      this.#queued();
    }, this.heartbeatMs);
    Deno.unrefTimer(this.#heartbeat as unknown as number);
  }

  /**
   * Puts this engine's row in the queue, without asking for a commit (after a failed batch that
   * held it: the next commit — a run's, the heartbeat's, a probe's — carries it).
   */
  #queueEngineRow(): void {
    const c = this.c;
    const id = processIdentity();
    const at = nowRfc3339();
    this.#sql(SQL_ENGINE, [
      c.engineId,
      id.host ?? null,
      id.pid,
      id.pidStart ?? null,
      id.pidNs ?? null,
      at,
      at,
    ]);
    this.#engineInBatch = true;
  }

  /**
   * Commits a write of this engine's own (its heartbeat, or its row when not committed yet)
   * through the same path as the runs' writes: whether the database can be written now.
   * @throws {StoreError} (rejects) when it cannot.
   */
  probe(): Promise<void> {
    if (this.engine === "none") this.ensureEngine();
    else if (this.engine === "committed") {
      this.#sql(SQL_HEARTBEAT, [nowRfc3339(), this.c.engineId]);
      this.#queued();
    } else this.#queued(); // the row is in the queue
    return this.#gc.soon();
  }

  /** The database file as opened (to check that a commit would reach it), or null. */
  get file(): DatabaseFile | null {
    return this.#file;
  }

  /** Queues this engine's service URL. */
  engineUrl(url: string): void {
    this.#sql(SQL_ENGINE_URL, [url, this.c.engineId]);
    this.#queued();
  }

  #queued(): Promise<void> {
    const p = this.#gc.queued();
    if (this.#q.length >= MAX_QUEUE_LENGTH && this.#atomic === 0) this.#gc.now();
    return p;
  }

  /**
   * Calls `fn`, whose writes (queued synchronously) then all go in one commit, one transaction:
   * a long queue does not start a commit in their midst (`StateStore.atomic`).
   */
  atomic<T>(fn: () => T): T {
    this.#atomic++;
    try {
      return fn();
    } finally {
      if (--this.#atomic === 0 && this.#q.length >= MAX_QUEUE_LENGTH) this.#gc.now();
    }
  }

  /** Commits the queue in one transaction; throws or rejects (a StoreError) when it failed. */
  #commitQueue(): void | Promise<void> {
    const q = this.#q;
    if (q.length === 0) return;
    this.#q = [];
    this.#rowsQueued.clear();
    const blobs = this.#pendingBlobs;
    this.#pendingBlobs = new Map();
    const withEngine = this.#engineInBatch;
    this.#engineInBatch = false;
    const c = this.c;
    const fence = this.engine === "committed" ? c.engineId : null;
    const fenceMessage =
      `this engine (${c.engineId}) was declared dead by another process (no heartbeat ` +
      `for ${c.staleAfterMs} ms) and its runs were marked interrupted; its writes are refused`;
    const done = () => {
      if (withEngine) this.engine = "committed";
      if (c.rowless.size > 0) { for (const id of runRows(q).keys()) c.rowless.delete(id); }
      if (c.health.faulted) c.health.succeeded();
      this.checkpointer?.committed();
    };
    const failed = (e: unknown) => {
      const plain = c.error("cannot store run state", e);
      c.health.failed(plain);
      log.error(plain.message);
      // this engine's row went with the failed batch: the next commit carries it again
      if (withEngine) this.#queueEngineRow();
      if ((e as Error)?.message === fenceMessage) {
        for (const r of c.open.values()) r.error ??= plain;
        return plain;
      }
      // the runs it fails are told what becomes of them (src/state/store_health.ts); those
      // whose first row went with it are kept in memory, to be recorded failed later
      const err = unstoredRunError(plain);
      const rowless = this.#rowless(q);
      const recordErr = rowless.size > 0 ? unstoredRecordError(plain) : err;
      for (const [id, args] of rowless) c.rowless.set(id, args);
      for (const [id, r] of c.open) r.error ??= rowless.has(id) ? recordErr : err;
      return err;
    };
    const w = this.#worker;
    if (w === undefined) {
      try {
        applyBatch(c.db, this.#cache, q, fence, fenceMessage, this.#file);
      } catch (e) {
        throw failed(e);
      }
      done();
      return;
    }
    this.#inFlightBlobs = blobs;
    return w.commit(q, fence, fenceMessage, this.#file).then(() => {
      this.#inFlightBlobs = new Map();
      done();
    }, (e) => {
      this.#inFlightBlobs = new Map();
      throw failed(e);
    });
  }

  /**
   * The runs whose row (`SQL_RUN`) was in the failed queue `q` and is not in the database (read
   * on the store's connection: the failed transaction was rolled back), with their arguments.
   */
  #rowless(q: unknown[]): Map<string, unknown[]> {
    const rows = runRows(q);
    for (const id of rows.keys()) {
      try {
        if (this.c.stmt("SELECT 1 FROM runs WHERE id = ?").get(id)) rows.delete(id);
      } catch {
        // cannot be read: kept (its later insert does nothing when the row is there)
      }
    }
    return rows;
  }

  // ---------------------------------------------------------------- the writes

  /** Queues a blob (content-addressed: written once); returns its id. */
  putBlob(data: JsonValue, blobType: "data" | "flow", knownId?: string): string {
    const id = knownId ?? blobId(data);
    if (this.c.closed) return id;
    const text = stringifyJson(data);
    const at = nowRfc3339();
    this.#pendingBlobs.set(id, { text, blobType });
    this.#sql(SQL_BLOB, [id, text, blobType, at]);
    this.#queued();
    return id;
  }

  /** A blob still queued (blobs never change: read from memory, no commit forced). */
  pendingBlob(id: string): StoredBlob | undefined {
    const pending = this.#pendingBlobs.get(id) ?? this.#inFlightBlobs.get(id);
    return pending && { id, data: parseJson(pending.text), blobType: pending.blobType };
  }

  /** Queues a run's row and its `run_started` (`run_queued`) event. */
  createRun(run: RunRecord): Promise<void> {
    const c = this.c;
    const queued = run.status === "queued";
    const parent = run.parentRunId;
    const root = run.rootRunId ??
      (parent === undefined ? run.runId : c.open.get(parent)?.root ?? c.rootOf(parent));
    // a queued run is owned by the engine that queued it (it runs it when a slot frees): a
    // service on this database takes it over only once that engine is dead (killed, crashed),
    // as it does its running runs (src/server/runs_resume.ts, orphans.ts)
    this.ensureEngine();
    if (!queued) c.open.set(run.runId, { root });
    const r = { ...run };
    const at = nowRfc3339();
    this.#rowsQueued.set(r.runId, this.#q.length + 3);
    this.#sql(SQL_RUN, [
      r.runId,
      r.flowId,
      r.flowName ?? null,
      r.status,
      stringifyJson(r.input),
      r.result === undefined ? null : stringifyJson(r.result),
      r.createdAt,
      r.completedAt ?? null,
      r.overrides === undefined ? null : stringifyJson(r.overrides),
      parent ?? null,
      root,
      r.runKey ?? null,
      r.variables === undefined ? null : stringifyJson(r.variables),
      c.engineId,
      queued ? 0 : 1,
      queued ? null : at,
      at,
      r.debugMode ? 1 : 0,
      r.runOptions === undefined ? null : JSON.stringify(r.runOptions),
    ]);
    this.#event(r.runId, root, queued ? "run_queued" : "run_started", null, at);
    return this.#queued();
  }

  /** Queues a step's start (`step_info` running, `step_started`). */
  stepStarted(runId: string, s: StepStartRecord): Promise<void> {
    const at = s.at ?? nowRfc3339();
    const root = this.c.rootOf(runId);
    this.#q.push(OP_START, runId, s.stepIndex, s.stepId, s.component, s.attempt, at, root);
    return this.#queued();
  }

  /** Queues a step's result, status and event (the hot path: flat entries, no closure). */
  stepResult(runId: string, record: StepResultRecord): Promise<void> {
    const ms = record.durationMs;
    // the common event data built as text (JSON.stringify of it costs more than the row)
    const dataText = record.result.outcome !== "failed" && typeof ms === "number" &&
        Number.isSafeInteger(ms)
      ? `{"durationMs":${ms}}`
      : eventDataText(record);
    this.#q.push(
      OP_RESULT,
      runId,
      record.stepIndex,
      record.stepId,
      stringifyJson(record.result),
      stepStatusOf(record.result),
      stepEventType(record.result),
      dataText,
      record.component ?? null,
      record.attempt ?? null,
      record.durationMs ?? null,
      record.at ?? nowRfc3339(),
      this.c.rootOf(runId),
    );
    return this.#queued();
  }

  /** Queues a run's end (status, result, `run_completed`). */
  completeRun(runId: string, status: RunStatus, result?: FlowResult): Promise<void> {
    const c = this.c;
    const text = result === undefined ? null : stringifyJson(result);
    const at = nowRfc3339();
    const data = stringifyJson(
      result === undefined ? { status } : { status, outcome: result.outcome },
    );
    const row = this.#rowsQueued.get(runId);
    const rowless = row === undefined && c.rowless.size > 0 ? c.rowless.get(runId) : undefined;
    if (rowless !== undefined) {
      // its row never reached the database (a failed commit): written now, ended
      const args = rowless.slice();
      args[RUN_ARG.status] = status;
      if (text !== null) args[RUN_ARG.result] = text;
      args[RUN_ARG.completedAt] = at;
      args[RUN_ARG.updatedAt] = at;
      this.#sql(SQL_RUN, args);
    } else if (row !== undefined) {
      // A short run: its row is still queued, in this same transaction. It is written finished
      // at once: one INSERT instead of an INSERT and an UPDATE (the columns of SQL_RUN).
      this.#rowsQueued.delete(runId);
      const q = this.#q;
      q[row + RUN_ARG.status] = status;
      if (text !== null) q[row + RUN_ARG.result] = text;
      q[row + RUN_ARG.completedAt] = at;
      q[row + RUN_ARG.updatedAt] = at;
    } else {
      this.#sql(SQL_RUN_END, [status, text, at, at, runId]);
    }
    // a cancelled or failed run's steps left `running` (none when it completed)
    if (status !== "completed") this.#sql(SQL_STEPS_END, [at, runId]);
    this.#event(runId, c.rootOf(runId), "run_completed", data, at);
    return this.#queued();
  }

  /** Queues a run's new status, with an event when given. */
  setRunStatus(
    runId: string,
    status: RunStatus,
    event?: RunEventType,
    data?: JsonValue,
  ): Promise<void> {
    const c = this.c;
    const at = nowRfc3339();
    const text = data === undefined ? null : stringifyJson(data);
    this.#rowsQueued.delete(runId); // its end must come after this UPDATE, not before it
    this.#sql(SQL_RUN_STATUS, [status, at, runId]);
    if (event) this.#event(runId, c.rootOf(runId), event, text, at);
    return this.#queued();
  }

  /** Queues a batch's row. */
  createBatch(batch: BatchRecord): Promise<void> {
    const b = batch;
    this.#sql(SQL_BATCH, [
      b.batchId,
      b.flowId,
      b.flowName ?? null,
      b.totalInputs,
      b.status,
      b.createdAt,
      b.maxConcurrency ?? null,
    ]);
    return this.#queued();
  }

  /** Queues a run of a batch. */
  addBatchRun(batchId: string, runId: string, index: number): Promise<void> {
    this.#sql(SQL_BATCH_RUN, [batchId, runId, index]);
    return this.#queued();
  }
}

/** The `SQL_RUN` rows of queue `q` by run id (their arguments; the last one of each run). */
function runRows(q: unknown[]): Map<string, unknown[]> {
  const rows = new Map<string, unknown[]>();
  for (let i = 0; i < q.length;) {
    const tag = q[i];
    if (tag === OP_SQL) {
      const argc = q[i + 2] as number;
      if (q[i + 1] === SQL_RUN) rows.set(q[i + 3] as string, q.slice(i + 3, i + 3 + argc));
      i += 3 + argc;
    } else if (tag === OP_RESULT) i += 13;
    else if (tag === OP_START) i += 8;
    else if (tag === OP_EVENT) i += 9;
    else break; // (no other operations)
  }
  return rows;
}
