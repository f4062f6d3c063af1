/**
 * The SQLite state store (`stateStore: {type: sqlite, databaseUrl}`, `--store sqlite:FILE`), on
 * `node:sqlite`: the durable store of `stepflow run --store` and the embedded default of
 * `serve`.
 *
 * - Tables: stepflow 0.8's, readable as 0.8 wrote them, plus the journal, signals and engines
 *   (src/state/schema.ts). Opening migrates (inside one transaction, safe with other processes
 *   opening at the same time).
 * - Several processes on one file: WAL journal (readers never block the writer), a busy timeout
 *   (a writer waits for another's transaction instead of failing with `database is locked`),
 *   `BEGIN IMMEDIATE` transactions. `synchronous=NORMAL`: a commit survives the process being
 *   killed; after a power loss the last commits before it may be lost, never the database.
 *   WAL checkpoints in a worker thread (src/state/sqlite_checkpoint.ts: the event loop never
 *   waits for one), a 16 MB page cache.
 * - Group commit (src/state/group_commit.ts): writes are queued synchronously and committed in
 *   one transaction per event-loop turn; each write returns the commit's promise. A failed
 *   commit rejects with a {@linkcode StoreError} naming the database and the cause, is logged,
 *   and fails every run of this store that is not finished (their `completeRun` rejects).
 * - Ownership: the first run written registers this store as an engine (`engines` row: pid, pid
 *   start time and namespace, heartbeat every `heartbeatMs`). Opening the database marks the
 *   `running` runs of dead engines `failed` with code 503 (`RUN_INTERRUPTED`). An engine whose
 *   row was removed (declared dead by another process) has every later commit refused.
 *
 * The parts: src/state/sqlite_core.ts (the connection, transactions, journal, liveness),
 * sqlite_writer.ts (the write queue and its group commit), sqlite_reads.ts, sqlite_ownership.ts
 * (recovery, claims, leases), sqlite_signals.ts (signals, deletion) and sqlite_checkpoint.ts (the
 * checkpoint worker). This file is the store class composing them (just over 400 lines: one
 * method per StateStore operation, each a few lines).
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import type { JsonValue } from "../json/exact_json.ts";
import type { FlowResult } from "../core/flow_result.ts";
import { Checkpointer } from "./sqlite_checkpoint.ts";
import { configureConnection, SqliteCore, type SqliteOpenOptions } from "./sqlite_core.ts";
import { SqliteWriter } from "./sqlite_writer.ts";
import {
  readBatch,
  readBatches,
  readBatchOfRun,
  readBatchRuns,
  readBlob,
  readEngines,
  readEvents,
  readRun,
  readRunByKey,
  readRuns,
  readSignals,
  readStepInfo,
  readStepResults,
} from "./sqlite_reads.ts";
import {
  claimMany,
  claimNewRunId,
  claimOne,
  deadEngines,
  markInterrupted,
  recoverDeadRuns,
  recoverEngines,
  release,
  renew,
  rowlessRun,
  writeUnstoredEnds,
} from "./sqlite_ownership.ts";
import { logUnwrittenEnds, type StoreCondition, unstoredRecordError } from "./store_health.ts";
import { deleteRunTree, insertSignal, pruneBefore, takeSignal } from "./sqlite_signals.ts";
import {
  type BatchFilter,
  type BatchRecord,
  type ClaimedRun,
  type ClaimOptions,
  type ClaimResult,
  type EngineRecord,
  type EventFilter,
  type LeaseRenewal,
  type NewRunId,
  normalizeInstant,
  nowRfc3339,
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
  storeFailedResult,
} from "./store.ts";
import { logger } from "../log.ts";
import { describeError } from "../errors.ts";
import { parseSqliteUrl } from "../config/store_url.ts";
import { DEFAULT_BUSY_TIMEOUT_MS } from "./sqlite_hint.ts";
import { ignoreFileSizeSignal } from "../core/file_size_signal.ts";

const log = logger("state");

export type { SqliteOpenOptions };
export { parseSqliteUrl };

/** A {@linkcode StateStore} in an SQLite database. */
export class SqliteStateStore implements StateStore {
  readonly kind = "sqlite";
  readonly engineId: string = crypto.randomUUID();
  /** The database file (`:memory:` for an in-memory database). */
  readonly path: string;
  #c: SqliteCore;
  #w: SqliteWriter;
  #watchers = new Set<() => void>();
  /** The write of the kept run ends in progress ({@linkcode #writeEnds}). */
  #writingEnds: Promise<boolean> | undefined;

  /** WAL checkpoints run by the worker so far (0 when SQLite runs them on this connection). */
  get workerCheckpoints(): number {
    return this.#w.checkpointer?.count ?? 0;
  }

  private constructor(db: DatabaseSync, path: string, readOnly: boolean, o: SqliteOpenOptions) {
    this.path = path;
    const busyMs = o.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS;
    const staleMs = o.staleAfterMs ?? 60_000;
    this.#c = new SqliteCore(db, path, readOnly, this.engineId, busyMs, staleMs);
    this.#w = new SqliteWriter(this.#c, o.heartbeatMs ?? 10_000);
    // commits succeed again: the runs that ended meanwhile are recorded as their clients were told
    this.#c.health.onRecovered = () => {
      if (this.#c.ends.size > 0) this.#writeEnds();
    };
  }

  /**
   * Opens (and by default migrates) the database at `databaseUrl`, then marks the runs of dead
   * engines interrupted.
   * @throws {Error} when the URL is invalid, the file cannot be opened, or the tables are missing
   * with `autoMigrate: false` (or a read-only database).
   */
  static open(databaseUrl: string, options: SqliteOpenOptions = {}): SqliteStateStore {
    const {
      autoMigrate = true,
      workingDirectory = Deno.cwd(),
      busyTimeoutMs = DEFAULT_BUSY_TIMEOUT_MS,
    } = options;
    const { path, mode } = parseSqliteUrl(databaseUrl, workingDirectory);
    if (mode === "rw" && path !== ":memory:") {
      try {
        Deno.statSync(path);
      } catch (e) {
        throw new Error(`SQLite database '${path}' does not exist (mode=rw)`, { cause: e });
      }
    }
    const readOnly = mode === "ro";
    // a write past `ulimit -f` fails (a 507, as for a full disk) instead of killing the process
    if (!readOnly && path !== ":memory:") ignoreFileSizeSignal();
    const db = new DatabaseSync(path, { readOnly, timeout: busyTimeoutMs });
    try {
      configureConnection(db, path, readOnly, options.checkpoint ?? "worker");
      const store = new SqliteStateStore(db, path, readOnly, options);
      const w = store.#w;
      if (path !== ":memory:" && !readOnly && options.checkpoint !== "auto") {
        w.checkpointer = new Checkpointer(path, busyTimeoutMs, (message) => {
          log.warn(`${message}; SQLite checkpoints on the store's connection instead`);
          w.checkpointer = undefined;
          if (!store.#c.closed) db.exec("PRAGMA wal_autocheckpoint=10000");
        });
      }
      if (autoMigrate && !readOnly) store.#c.migrate();
      else store.#c.checkSchema();
      if (!readOnly) recoverDeadRuns(store.#c);
      return store;
    } catch (e) {
      db.close();
      throw e;
    }
  }

  /** Commits the queue, then reads with `fn`. */
  async #read<T>(fn: (c: SqliteCore) => T): Promise<T> {
    await this.#w.sync();
    try {
      return fn(this.#c);
    } catch (e) {
      throw this.#c.error("cannot read run state", e);
    }
  }

  /** Commits the queue, then runs `fn` in a transaction of its own. */
  async #write<T>(what: string, fn: (c: SqliteCore) => T): Promise<T> {
    await this.#w.sync();
    return await this.#c.writeNow(what, () => fn(this.#c));
  }

  /**
   * Commits in a worker thread with its own connection from now on (the service does this:
   * src/server/server.ts), so that SQLite's statements and COMMITs do not hold the event loop.
   * Resolves once the worker is ready (commits run on the event loop until then, and after a
   * failure to start it, which is logged).
   */
  useCommitWorker(): Promise<void> {
    return this.#w.startWorker();
  }

  /** Opened with `mode=ro`: runs can be read, not recorded. */
  get readOnly(): boolean {
    return this.#c.readOnly;
  }

  /** Whether commits run in a worker thread ({@linkcode useCommitWorker}). */
  get commitsInWorker(): boolean {
    return this.#w.inWorker;
  }

  #refuseReadOnly(what: string): Promise<never> | undefined {
    if (!this.#c.readOnly) return undefined;
    return Promise.reject(
      new StoreError(`${what}: SQLite database '${this.path}' is read-only`, this.path),
    );
  }

  // ---------------------------------------------------------------- blobs

  putBlob(data: JsonValue, blobType: "data" | "flow", knownId?: string): string {
    return this.#w.putBlob(data, blobType, knownId);
  }

  getBlob(id: string): Promise<StoredBlob | undefined> {
    // Blobs never change: one still queued is read from memory, any other is in the table — no
    // commit is forced (a put_blob step followed by get_blob cost a commit of its own).
    const lower = id.toLowerCase();
    const pending = this.#w.pendingBlob(lower);
    if (pending) return Promise.resolve(pending);
    return Promise.resolve(readBlob(this.#c, lower));
  }

  // ---------------------------------------------------------------- run writes

  createRun(run: RunRecord): Promise<void> | void {
    if (this.#c.closed) return;
    const committed = this.#w.createRun(run);
    if (run.status !== "queued") return committed;
    if (this.#watchers.size > 0) committed.then(() => this.#wake(), () => {});
    // a queued row that could not be stored: its waiter is told what becomes of the run
    const c = this.#c;
    const p = committed.catch((e) => {
      throw e instanceof StoreError && c.rowless.has(run.runId) ? unstoredRecordError(e) : e;
    });
    p.catch(() => {}); // (a caller may not wait for it: a batch's queued rows)
    return p;
  }

  recordStepStarted(runId: string, s: StepStartRecord): Promise<void> | void {
    if (this.#c.closed) return;
    return this.#w.stepStarted(runId, s);
  }

  recordStepResult(runId: string, record: StepResultRecord): Promise<void> | void {
    if (this.#c.closed) return;
    return this.#w.stepResult(runId, record);
  }

  completeRun(runId: string, status: RunStatus, result?: FlowResult): Promise<void> | void {
    if (this.#c.closed) return;
    const open = this.#c.open;
    const run = open.get(runId);
    const ends = this.#c.ends;
    const p = this.#w.completeRun(runId, status, result).then(() => {
      open.delete(runId);
      if (ends.size > 0) ends.delete(runId);
      if (run?.error) throw run.error;
    }, (e) => {
      open.delete(runId);
      // kept, and written once commits succeed again, as the run's waiter is told it: a run
      // executing here fails with its first failure, which says what becomes of it
      // (src/execution/run_lifecycle.ts endRun); another (a queued run) as its caller says
      const err = run?.error ??
        (e instanceof StoreError && this.#c.rowless.has(runId) ? unstoredRecordError(e) : e);
      if (run === undefined) this.#keepEnd(runId, status, result);
      else this.#keepEnd(runId, "failed", storeFailedResult(err));
      throw err;
    });
    p.catch(() => {});
    return p;
  }

  setRunStatus(
    runId: string,
    status: RunStatus,
    event?: RunEventType,
    data?: JsonValue,
  ): Promise<void> | void {
    if (this.#c.closed) return;
    return this.#w.setRunStatus(runId, status, event, data);
  }

  #keepEnd(runId: string, status: RunStatus, result: FlowResult | undefined): void {
    const dropped = this.#c.ends.add(runId, status, result);
    if (dropped !== undefined) {
      log.error(`too many run ends wait to be stored: run ${dropped} stays as it was stored`);
    }
  }

  /**
   * Writes the ends of runs that could not be stored when they ended (their client was told
   * 507), in a transaction of their own. Resolves true when there is nothing left to write.
   * Never rejects: a failure is logged and kept in the store's health.
   */
  #writeEnds(): Promise<boolean> {
    return this.#writingEnds ??= (async () => {
      try {
        if (this.#c.ends.size === 0) return true;
        const file = this.#w.file;
        // the ends as they are once the queued writes are committed (a later end of a run,
        // stored meanwhile, has removed its kept one)
        const [n, ends] = await this.#write(
          "cannot record the end of runs whose state could not be stored",
          (c) => {
            const ends = c.ends.entries();
            const committed = this.#w.engine === "committed";
            return [writeUnstoredEnds(c, ends, file, committed), ends] as const;
          },
        );
        for (const [runId, end] of ends) {
          this.#c.ends.written(runId, end);
          this.#c.rowless.delete(runId); // written whole, or a run with its id or key is there
        }
        if (n > 0) log.warn(`recorded ${n} run(s) failed that could not be stored when they ended`);
        return this.#c.ends.size === 0;
      } catch (e) {
        log.warn(describeError(e));
        return false;
      } finally {
        this.#writingEnds = undefined;
      }
    })();
  }

  /**
   * Whether this store can commit now: healthy until a commit fails, and again once one
   * succeeds. With `probe`, a store whose last commit failed tries a commit of its own first
   * (callers at the same time share one): its heartbeat, then the ends of runs it could not store.
   */
  async condition(options: { probe?: boolean } = {}): Promise<StoreCondition> {
    const c = this.#c;
    if (options.probe && !c.closed && !c.readOnly) await c.health.probe(() => this.#probe());
    return c.health.condition("sqlite", this.path, c.ends.size);
  }

  async #probe(): Promise<void> {
    try {
      await this.#w.probe();
    } catch {
      return; // kept in the health
    }
    if (this.#c.ends.size > 0) await this.#writeEnds();
  }

  // ---------------------------------------------------------------- reads

  getRun(runId: string): Promise<RunRecord | undefined> {
    return this.#read((c) => c.ends.overlay(readRun(c, runId) ?? rowlessRun(c, runId)));
  }

  findRunByKey(runKey: string): Promise<RunRecord | undefined> {
    return this.#read((c) => readRunByKey(c, runKey));
  }

  /**
   * The id of the committed run holding `runKey`, read now (no commit forced): for a hook called
   * on a run record's commit (`RunOptions.onRecorded`) to learn whether its insert kept the key
   * (an Idempotency-Key stays with the run that stored it first: src/state/sqlite_commit.ts).
   * Undefined when no committed run has the key or the store is closed.
   */
  runIdOfKeyNow(runKey: string): string | undefined {
    if (this.#c.closed) return undefined;
    const row = this.#c.stmt("SELECT id FROM runs WHERE run_key = ?").get(runKey) as
      | { id: string }
      | undefined;
    return row?.id;
  }

  listRuns(filter: RunFilter = {}): Promise<RunRecord[]> {
    return this.#read((c) => {
      const runs = readRuns(c, filter);
      return c.ends.size === 0 ? runs : runs.map((r) => c.ends.overlay(r));
    });
  }

  getStepResults(runId: string): Promise<StepResultRecord[]> {
    return this.#read((c) => readStepResults(c, runId));
  }

  getStepInfo(runId: string): Promise<StepInfoRecord[]> {
    return this.#read((c) => readStepInfo(c, runId));
  }

  getEvents(filter: EventFilter): Promise<RunEventRecord[]> {
    return this.#read((c) => readEvents(c, filter));
  }

  getSignals(runId: string): Promise<SignalRecord[]> {
    return this.#read((c) => readSignals(c, runId));
  }

  listEngines(): Promise<EngineRecord[]> {
    return this.#read(readEngines);
  }

  getBatch(batchId: string): Promise<BatchRecord | undefined> {
    return this.#read((c) => readBatch(c, batchId));
  }

  listBatches(filter: BatchFilter = {}): Promise<BatchRecord[]> {
    return this.#read((c) => readBatches(c, filter));
  }

  getBatchRuns(batchId: string): Promise<{ runId: string; index: number }[]> {
    return this.#read((c) => readBatchRuns(c, batchId));
  }

  getBatchOfRun(runId: string): Promise<BatchRecord | undefined> {
    return this.#read((c) => readBatchOfRun(c, runId));
  }

  // ---------------------------------------------------------------- deletion, signals

  deleteRun(runId: string): Promise<boolean> {
    return this.#write("cannot delete a run", (c) => deleteRunTree(c, runId));
  }

  pruneRuns(options: { before: string }): Promise<number> {
    const before = normalizeInstant(options.before);
    return this.#write("cannot prune runs", (c) => pruneBefore(c, before));
  }

  putSignal(signal: { runId: string; name: string; data: JsonValue }): Promise<SignalRecord> {
    const at = nowRfc3339();
    return this.#write("cannot store the signal", (c) => insertSignal(c, signal, at));
  }

  consumeSignal(runId: string, name: string, consumer: string): Promise<SignalRecord | undefined> {
    return this.#write("cannot take the signal", (c) => takeSignal(c, runId, name, consumer));
  }

  // ---------------------------------------------------------------- claims, engines

  async claimRun(runId: string): Promise<ClaimResult> {
    const refused = this.#refuseReadOnly(`cannot claim run ${runId}`);
    if (refused) return refused;
    this.#w.ensureEngine();
    // a run whose end waits to be stored is recorded ended before anyone takes it
    if (this.#c.ends.size > 0 && !(await this.#writeEnds())) {
      throw this.#c.health.error ?? this.#c.error("cannot claim the run", "its end is not stored");
    }
    return await this.#write("cannot claim the run", (c) => claimOne(c, runId));
  }

  async claimRunId(id: NewRunId): Promise<RunRecord | undefined> {
    const refused = this.#refuseReadOnly(`cannot record run ${id.runId}`);
    if (refused) return refused;
    this.#w.ensureEngine(); // (committed first: the row's owner is a registered engine)
    for (let tries = 0;; tries++) {
      if (await this.#write("cannot record the run", (c) => claimNewRunId(c, id))) return;
      const held = await this.getRun(id.runId);
      // (a run that held the id and was deleted since: try again)
      if (held !== undefined || tries >= 2) return held ?? { ...id, status: "running" };
    }
  }

  claimRuns(options: ClaimOptions): Promise<ClaimedRun[]> {
    const refused = this.#refuseReadOnly("cannot claim runs");
    if (refused) return refused;
    this.#w.ensureEngine();
    const limit = Math.max(0, Math.floor(options.limit));
    return this.#write("cannot claim runs", (c) => claimMany(c, limit));
  }

  async renewLeases(): Promise<LeaseRenewal> {
    if (this.#c.readOnly || this.#c.closed) return { renewed: [], lost: [] };
    await this.#w.sync(); // the engine's row may be in the queue
    const committed = this.#w.engine === "committed";
    return await this.#write("cannot renew the leases", (c) => renew(c, committed));
  }

  releaseRuns(runIds?: string[]): Promise<string[]> {
    if (this.#c.readOnly || this.#c.closed) return Promise.resolve([]);
    const ids = runIds ?? [...this.#c.open.keys()];
    return this.#write("cannot release runs", (c) => release(c, ids)).then((out) => {
      if (out.length > 0) this.#wake();
      return out;
    });
  }

  /**
   * Recovers the runs of the engines of other processes on this database that died since it was
   * opened (killed with `kill -9`, crashed; opening recovers those already dead): their
   * `running` runs are marked interrupted (503, `run_interrupted`), their rows removed. One read
   * of the `engines` table when every other engine is alive (nothing is written then).
   * @returns the dead engines, the top-level runs they left unfinished (interrupted now, or
   * `paused`), oldest first: what a service on this database resumes (src/server/orphans.ts);
   * and the runs they had queued, not started (still `queued`, oldest first: claimable).
   * @throws {StoreError} (rejects) when the database cannot be read or written.
   */
  async recoverDeadEngines(): Promise<
    { engines: EngineRecord[]; runs: string[]; queued: string[] }
  > {
    const c = this.#c;
    if (c.readOnly || c.closed) return { engines: [], runs: [], queued: [] };
    let dead: string[];
    try {
      dead = deadEngines(c);
    } catch (e) {
      throw c.error("cannot read the engines", e);
    }
    if (dead.length === 0) return { engines: [], runs: [], queued: [] };
    return await this.#write(
      "cannot recover the runs of stopped engines",
      (c) => recoverEngines(c, dead),
    );
  }

  async registerEngine(info: { url?: string } = {}): Promise<EngineRecord> {
    if (this.#c.readOnly) {
      throw new StoreError(
        `cannot register the engine: SQLite database '${this.path}' is read-only`,
        this.path,
      );
    }
    this.#w.ensureEngine();
    if (info.url !== undefined) this.#w.engineUrl(info.url);
    await this.flush();
    return this.#c.engineRecord(this.engineId)!;
  }

  watchQueue(onWork: () => void): () => void {
    const fn = () => onWork();
    this.#watchers.add(fn);
    return () => this.#watchers.delete(fn);
  }

  /** Tells the queue's watchers in this process. */
  #wake(): void {
    for (const w of this.#watchers) {
      try {
        w();
      } catch {
        // a watcher's failure is its own
      }
    }
  }

  // ---------------------------------------------------------------- batches

  /** `StateStore.atomic`: the writes of `fn` go in one commit (all or none). */
  atomic<T>(fn: () => T): T {
    return this.#w.atomic(fn);
  }

  createBatch(batch: BatchRecord): Promise<void> | void {
    if (this.#c.closed) return;
    return this.#w.createBatch(batch);
  }

  addBatchRun(batchId: string, runId: string, index: number): Promise<void> | void {
    if (this.#c.closed) return;
    return this.#w.addBatchRun(batchId, runId, index);
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
    const c = this.#c;
    if (c.closed) return;
    await this.#w.drain();
    if (c.ends.size > 0 && !(await this.#writeEnds())) {
      const all = c.ends.entries().map(([id]) => id);
      logUnwrittenEnds(
        all.filter((id) => !c.rowless.has(id)),
        all.filter((id) => c.rowless.has(id)),
        "the next start on this database resumes them",
      );
    }
    await this.#w.stop();
    // Runs this engine started and did not finish: their engine is going away.
    const at = nowRfc3339();
    const left = [...c.open];
    if (left.length > 0 || this.#w.engine === "committed") {
      try {
        c.transaction(() => {
          const why = "the engine closed its state store before the run finished";
          for (const [runId, open] of left) {
            markInterrupted(c, runId, this.engineId, open.root, why, at);
          }
          c.stmt("DELETE FROM engines WHERE id = ?").run(this.engineId);
        });
      } catch (e) {
        log.error(c.error("cannot record the end of this engine", e).message);
      }
    }
    c.open.clear();
    c.closed = true;
    // the worker's connection first: closing the last one checkpoints what is left
    await this.#w.checkpointer?.close();
    c.db.close();
    this.#w.closeFiles(); // (after the connection: its close drops this process's locks)
  }
}
