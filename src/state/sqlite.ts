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
 *   Checkpoints every 10,000 WAL pages, a 16 MB page cache.
 * - Group commit (src/state/group_commit.ts): writes are queued synchronously and committed in
 *   one transaction per event-loop turn; each write returns the commit's promise. A failed
 *   commit rejects with a {@linkcode StoreError} naming the database and the cause, is logged,
 *   and fails every run of this store that is not finished (their `completeRun` rejects).
 * - Ownership: the first run written registers this store as an engine (`engines` row: pid, pid
 *   start time and namespace, heartbeat every `heartbeatMs`). Opening the database marks the
 *   `running` runs of dead engines `failed` with code 503 (`RUN_INTERRUPTED`). An engine whose
 *   row was removed (declared dead by another process) has every later commit refused.
 * @module
 */
import { DatabaseSync, type StatementSync } from "node:sqlite";
import { type JsonValue, parseJson, stringifyJson } from "../json/exact_json.ts";
import type { FlowResult } from "../core/flow_result.ts";
import { describeError } from "../errors.ts";
import { blobId } from "./blob_id.ts";
import { GroupCommit } from "./group_commit.ts";
import { MIGRATIONS, REQUIRED_TABLES } from "./schema.ts";
import { isOwnerAlive, processIdentity } from "./liveness.ts";
import {
  batchFromRow,
  type BatchRow,
  engineFromRow,
  type EngineRow,
  eventFromRow,
  type EventRow,
  runFromRow,
  type RunRow,
  signalFromRow,
  type SignalRow,
} from "./rows.ts";
import {
  type BatchFilter,
  type BatchRecord,
  type ClaimedRun,
  type ClaimOptions,
  type ClaimResult,
  type EngineRecord,
  type EventFilter,
  interruptedResult,
  type LeaseRenewal,
  normalizeInstant,
  nowRfc3339,
  type RunEventRecord,
  type RunEventType,
  type RunFilter,
  type RunRecord,
  type RunStatus,
  type SignalRecord,
  type StateStore,
  stepEventData,
  stepEventType,
  type StepInfoRecord,
  type StepResultRecord,
  type StepStartRecord,
  type StepStatus,
  stepStatusOf,
  type StoredBlob,
  StoreError,
} from "./store.ts";
import { logger } from "../log.ts";
import { parseSqliteUrl } from "../config/store_url.ts";

const log = logger("state");

/** Queue entries (flat array, tag first) before a commit is forced within the turn. */
const MAX_QUEUE_LENGTH = 16_000;

/** Options of {@linkcode SqliteStateStore.open}. */
export interface SqliteOpenOptions {
  /** Create or upgrade the tables when needed. @default true */
  autoMigrate?: boolean;
  /** Directory relative database paths resolve against. @default Deno.cwd() */
  workingDirectory?: string;
  /** How long a write waits for another process's transaction, ms. @default 10000 */
  busyTimeoutMs?: number;
  /** How often this engine's heartbeat is written while it has runs, ms. @default 10000 */
  heartbeatMs?: number;
  /**
   * An engine whose heartbeat is older than this is dead, ms (used when its process cannot be
   * checked directly: another host or container, or no `/proc`). @default 60000
   */
  staleAfterMs?: number;
}

export { parseSqliteUrl };

// Tags of the flat write queue.
const FN = 0; // [FN, () => void]
const RESULT = 1; // [RESULT, runId, index, stepId, json, status, event, data, component, attempt, ms, at]
const START = 2; // [START, runId, index, stepId, component, attempt, at]

/** The journal data of a step result as JSON text, or null. */
function eventDataText(record: StepResultRecord): string | null {
  const data = stepEventData(record);
  return data === undefined ? null : stringifyJson(data);
}

/** Most rows in one INSERT statement (a power of two; SQLite allows 32766 parameters). */
const ROWS_PER_STATEMENT = 32;

/** Rows of one table waiting to be written by a multi-row INSERT. */
class RowBuffer {
  /** The rows' values, flat. */
  args: (string | number | null)[] = [];
  /** Prepared statements by number of rows. */
  stmts: StatementSync[] = [];
  constructor(
    readonly width: number,
    readonly head: string,
    readonly tuple: string,
    readonly tail: string,
  ) {}
}

/** An unfinished run this store wrote: its root, and the first write failure it suffered. */
interface OpenRun {
  root: string;
  error?: StoreError;
}

/** A {@linkcode StateStore} in an SQLite database. */
export class SqliteStateStore implements StateStore {
  readonly kind = "sqlite";
  readonly engineId: string = crypto.randomUUID();
  /** The database file (`:memory:` for an in-memory database). */
  readonly path: string;
  #db: DatabaseSync;
  #readOnly: boolean;
  #q: unknown[] = [];
  /** Blobs queued and not committed yet, by id (read back without forcing a commit). */
  #pendingBlobs = new Map<string, { text: string; blobType: "data" | "flow" }>();
  #gc: GroupCommit;
  #closed = false;
  #stmts = new Map<string, StatementSync>();
  #open = new Map<string, OpenRun>();
  #roots = new Map<string, string>();
  /** Rows buffered by a transaction, written before it commits. */
  #results = new RowBuffer(
    5,
    "INSERT OR REPLACE INTO step_results(run_id, step_index, step_id, result, created_at)",
    "(?, ?, ?, ?, ?)",
    "",
  );
  #infos = new RowBuffer(
    9,
    `INSERT INTO step_info(run_id, step_index, step_id, component, status, created_at,
       updated_at, attempt, duration_ms)`,
    "(?, ?, ?, ?, ?, ?, ?, ?, ?)",
    // a start sets the attempt; a result keeps the highest, and the component when it has none
    `ON CONFLICT(run_id, step_index) DO UPDATE SET status = excluded.status,
       updated_at = excluded.updated_at, duration_ms = excluded.duration_ms,
       attempt = CASE WHEN excluded.status = 'running' THEN excluded.attempt
         ELSE max(step_info.attempt, excluded.attempt) END,
       component = CASE WHEN excluded.component = '' THEN step_info.component
         ELSE excluded.component END`,
  );
  #events = new RowBuffer(
    8,
    "INSERT INTO run_events(run_id, root_run_id, type, step_index, step_id, attempt, data, at)",
    "(?, ?, ?, ?, ?, ?, ?, ?)",
    "",
  );
  #engine: "none" | "queued" | "committed" = "none";
  #engineInBatch = false;
  #heartbeat: ReturnType<typeof setInterval> | undefined;
  #heartbeatMs: number;
  #staleAfterMs: number;
  #busyMs: number;
  #watchers = new Set<() => void>();

  private constructor(db: DatabaseSync, path: string, readOnly: boolean, o: SqliteOpenOptions) {
    this.#db = db;
    this.path = path;
    this.#readOnly = readOnly;
    this.#heartbeatMs = o.heartbeatMs ?? 10_000;
    this.#staleAfterMs = o.staleAfterMs ?? 60_000;
    this.#busyMs = o.busyTimeoutMs ?? 10_000;
    this.#gc = new GroupCommit(() => this.#commitQueue());
  }

  /**
   * Opens (and by default migrates) the database at `databaseUrl`, then marks the runs of dead
   * engines interrupted.
   * @throws {Error} when the URL is invalid, the file cannot be opened, or the tables are missing
   * with `autoMigrate: false` (or a read-only database).
   */
  static open(databaseUrl: string, options: SqliteOpenOptions = {}): SqliteStateStore {
    const { autoMigrate = true, workingDirectory = Deno.cwd(), busyTimeoutMs = 10_000 } = options;
    const { path, mode } = parseSqliteUrl(databaseUrl, workingDirectory);
    if (mode === "rw" && path !== ":memory:") {
      try {
        Deno.statSync(path);
      } catch (e) {
        throw new Error(`SQLite database '${path}' does not exist (mode=rw)`, { cause: e });
      }
    }
    const readOnly = mode === "ro";
    const db = new DatabaseSync(path, { readOnly, timeout: busyTimeoutMs });
    try {
      if (path !== ":memory:" && !readOnly) {
        db.exec("PRAGMA journal_mode=WAL");
        db.exec("PRAGMA synchronous=NORMAL");
        // Checkpoint every 10,000 pages (40 MB of WAL) instead of 1,000: writing a step costs a
        // third less; the WAL file is cut back to 64 MB after a checkpoint.
        db.exec("PRAGMA wal_autocheckpoint=10000");
        db.exec("PRAGMA journal_size_limit=67108864");
      }
      db.exec("PRAGMA cache_size=-16000");
      const store = new SqliteStateStore(db, path, readOnly, options);
      if (autoMigrate && !readOnly) store.#migrate();
      else store.#checkSchema();
      if (!readOnly) store.#recoverDeadRuns();
      return store;
    } catch (e) {
      db.close();
      throw e;
    }
  }

  // ---------------------------------------------------------------- schema

  #migrate(): void {
    const db = this.#db;
    const has = (t: string) =>
      db.prepare("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?").get(t) !== undefined;
    if (has("_stepflow_migrations")) {
      const done = new Set(
        (db.prepare("SELECT name FROM _stepflow_migrations").all() as { name: string }[])
          .map((r) => r.name),
      );
      if (MIGRATIONS.every((m) => done.has(m.name))) return;
    }
    this.#transaction(() => {
      db.exec(MIGRATIONS[0].sql); // creates _stepflow_migrations, and 0.8's tables when missing
      const done = new Set(
        (db.prepare("SELECT name FROM _stepflow_migrations").all() as { name: string }[])
          .map((r) => r.name),
      );
      for (const m of MIGRATIONS) {
        if (done.has(m.name) && m !== MIGRATIONS[0]) continue;
        for (const [table, column, type] of m.columns ?? []) {
          const cols = db.prepare(`PRAGMA table_info(${table})`).all() as { name: string }[];
          if (!cols.some((c) => c.name === column)) {
            db.exec(`ALTER TABLE ${table} ADD COLUMN ${column} ${type}`);
          }
        }
        db.exec(m.sql);
        db.prepare("INSERT OR IGNORE INTO _stepflow_migrations(name, applied_at) VALUES (?, ?)")
          .run(m.name, nowRfc3339());
      }
    });
  }

  #checkSchema(): void {
    const missing = REQUIRED_TABLES.filter((t) =>
      this.#db.prepare("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?").get(t) ===
        undefined
    );
    if (missing.length === REQUIRED_TABLES.length) {
      throw new Error("SQLite database has no stepflow tables; set autoMigrate: true");
    }
    if (missing.length > 0) {
      throw new Error(
        `SQLite database lacks the tables ${missing.join(", ")} (written by stepflow 0.8 or an ` +
          "older version): open it once with autoMigrate: true (and not mode=ro) to add them",
      );
    }
  }

  /** Runs `fn` in a `BEGIN IMMEDIATE` transaction (rolled back when it throws). */
  #transaction<T>(fn: () => T): T {
    this.#stmt("BEGIN IMMEDIATE").run();
    try {
      const r = fn();
      this.#writeRows(this.#results);
      this.#writeRows(this.#infos);
      this.#writeRows(this.#events);
      this.#stmt("COMMIT").run();
      return r;
    } catch (e) {
      this.#results.args.length = 0;
      this.#infos.args.length = 0;
      this.#events.args.length = 0;
      try {
        this.#stmt("ROLLBACK").run();
      } catch {
        // no transaction open (SQLite rolled it back itself)
      }
      throw e;
    }
  }

  #stmt(sql: string): StatementSync {
    let s = this.#stmts.get(sql);
    if (s === undefined) this.#stmts.set(sql, s = this.#db.prepare(sql));
    return s;
  }

  /** A StoreError naming the database and the cause. */
  #error(what: string, e: unknown): StoreError {
    if (e instanceof StoreError) return e;
    const cause = describeError(e);
    const hint = /disk I\/O error/i.test(cause)
      ? " (the disk may be full, a file size limit reached, or the disk failing)"
      : /database is locked|busy/i.test(cause)
      ? ` (another process held the database longer than the busy timeout of ${this.#busyMs} ms)`
      : "";
    return new StoreError(
      `${what} in SQLite database '${this.path}': ${cause}${hint}`,
      this.path,
      { cause: e },
    );
  }

  // ---------------------------------------------------------------- ownership

  /** Queues this store's `engines` row (once), and starts its heartbeat. */
  #ensureEngine(): void {
    if (this.#engine !== "none") return;
    this.#engine = "queued";
    const id = processIdentity();
    const at = nowRfc3339();
    this.#push2(FN, () => {
      this.#stmt(
        `INSERT OR REPLACE INTO engines(id, host, pid, pid_start, pid_ns, url, started_at,
           heartbeat_at) VALUES (?, ?, ?, ?, ?, NULL, ?, ?)`,
      ).run(
        this.engineId,
        id.host ?? null,
        id.pid,
        id.pidStart ?? null,
        id.pidNs ?? null,
        at,
        at,
      );
      this.#engineInBatch = true;
    });
    this.#heartbeat = setInterval(() => {
      const now = nowRfc3339();
      this.#push2(FN, () => {
        this.#stmt("UPDATE engines SET heartbeat_at = ? WHERE id = ?").run(now, this.engineId);
      });
    }, this.#heartbeatMs);
    Deno.unrefTimer(this.#heartbeat as unknown as number);
  }

  #engineRecord(id: string): EngineRecord | undefined {
    const row = this.#stmt("SELECT * FROM engines WHERE id = ?").get(id) as
      | EngineRow
      | undefined;
    return row ? engineFromRow(row) : undefined;
  }

  #isAlive(engineId: string | null, nowMs: number): boolean {
    if (engineId === null) return false;
    if (engineId === this.engineId) return !this.#closed;
    const row = this.#stmt("SELECT * FROM engines WHERE id = ?").get(engineId) as
      | EngineRow
      | undefined;
    if (!row) return false;
    return isOwnerAlive(
      { pid: row.pid, pidStart: row.pid_start, pidNs: row.pid_ns, heartbeatAt: row.heartbeat_at },
      this.#staleAfterMs,
      nowMs,
    );
  }

  /**
   * Marks `running` runs whose engine is gone as `failed` (503, `RUN_INTERRUPTED`), with a
   * `run_interrupted` event, their running steps `failed`, and removes the dead engines' rows.
   * Runs without an owner (written by 0.8 or an older version) count as interrupted once they
   * are older than the stale limit.
   */
  #recoverDeadRuns(): void {
    const owners = this.#stmt(
      "SELECT DISTINCT owner_id FROM runs WHERE status = 'running'",
    ).all() as { owner_id: string | null }[];
    if (owners.length === 0) return;
    const nowMs = Date.now();
    const dead = owners.filter((o) => !this.#isAlive(o.owner_id, nowMs));
    if (dead.length === 0) return;
    this.#transaction(() => {
      const at = nowRfc3339();
      const staleBefore = new Date(nowMs - this.#staleAfterMs).toISOString();
      for (const { owner_id: owner } of dead) {
        // checked again inside the transaction: another process may have done it meanwhile
        if (owner !== null && this.#isAlive(owner, Date.now())) continue;
        const eng = owner === null ? undefined : this.#engineRecord(owner);
        const reason = owner === null
          ? "it was left running by an engine that recorded no owner"
          : eng
          ? `the engine running it (pid ${eng.pid ?? "?"}${
            eng.host ? ` on ${eng.host}` : ""
          }, last heartbeat ${eng.heartbeatAt}) stopped before the run finished`
          : "the engine running it stopped before the run finished";
        const runs = (owner === null
          ? this.#stmt(
            `SELECT id, COALESCE(root_run_id, id) AS root FROM runs
             WHERE owner_id IS NULL AND status = 'running' AND created_at < ?`,
          ).all(staleBefore)
          : this.#stmt(
            `SELECT id, COALESCE(root_run_id, id) AS root FROM runs
             WHERE owner_id = ? AND status = 'running'`,
          ).all(owner)) as { id: string; root: string }[];
        for (const r of runs) this.#markInterrupted(r.id, owner, r.root, reason, at);
        if (owner !== null) this.#stmt("DELETE FROM engines WHERE id = ?").run(owner);
      }
    });
  }

  /** Marks `runId` interrupted if `owner` still owns it and it is still running. */
  #markInterrupted(
    runId: string,
    owner: string | null,
    root: string,
    reason: string,
    at: string,
  ): void {
    const result = stringifyJson(interruptedResult(root, reason));
    const { changes } = this.#stmt(
      `UPDATE runs SET status = 'failed', result_json = ?, completed_at = ?, updated_at = ?
       WHERE id = ? AND status = 'running' AND owner_id IS ?`,
    ).run(result, at, at, runId, owner);
    if (Number(changes) === 0) return;
    this.#stmt(
      "UPDATE step_info SET status = 'failed', updated_at = ? WHERE run_id = ? AND status = 'running'",
    ).run(at, runId);
    this.#event(runId, root, "run_interrupted", null, null, null, stringifyJson({ reason }), at);
  }

  // ---------------------------------------------------------------- group commit

  #push2(tag: number, a: unknown): Promise<void> {
    this.#q.push(tag, a);
    return this.#queued();
  }

  #queued(): Promise<void> {
    const p = this.#gc.queued();
    if (this.#q.length >= MAX_QUEUE_LENGTH) this.#gc.now();
    return p;
  }

  /** Commits the queue in one transaction; throws (a StoreError) when it failed. */
  #commitQueue(): void {
    const q = this.#q;
    if (q.length === 0) return;
    this.#q = [];
    this.#pendingBlobs.clear();
    this.#engineInBatch = false;
    try {
      this.#transaction(() => {
        if (
          this.#engine === "committed" && !this.#stmt("SELECT 1 FROM engines WHERE id = ?").get(
            this.engineId,
          )
        ) {
          throw new Error(
            `this engine (${this.engineId}) was declared dead by another process (no heartbeat ` +
              `for ${this.#staleAfterMs} ms) and its runs were marked interrupted; its writes ` +
              "are refused",
          );
        }
        this.#apply(q);
      });
      if (this.#engineInBatch) this.#engine = "committed";
    } catch (e) {
      const err = this.#error("cannot store run state", e);
      for (const r of this.#open.values()) r.error ??= err;
      log.error(err.message);
      throw err;
    }
  }

  #apply(q: unknown[]): void {
    const results = this.#results.args;
    const infos = this.#infos.args;
    for (let i = 0; i < q.length;) {
      const tag = q[i];
      if (tag === FN) {
        (q[i + 1] as () => void)();
        i += 2;
      } else if (tag === RESULT) {
        const runId = q[i + 1] as string;
        const index = q[i + 2] as number;
        const stepId = q[i + 3] as string;
        const attempt = q[i + 9] as number | null;
        const at = q[i + 11] as string;
        results.push(runId, index, stepId, q[i + 4] as string, at);
        infos.push(
          runId,
          index,
          stepId,
          (q[i + 8] as string | null) ?? "",
          q[i + 5] as string,
          at,
          at,
          attempt ?? 1,
          q[i + 10] as number | null,
        );
        this.#event(
          runId,
          this.#rootOf(runId),
          q[i + 6] as string,
          index,
          stepId,
          attempt,
          q[i + 7] as string | null,
          at,
        );
        i += 12;
      } else {
        const runId = q[i + 1] as string;
        const index = q[i + 2] as number;
        const stepId = q[i + 3] as string;
        const attempt = q[i + 5] as number;
        const at = q[i + 6] as string;
        infos.push(runId, index, stepId, q[i + 4] as string, "running", at, at, attempt, null);
        this.#event(runId, this.#rootOf(runId), "step_started", index, stepId, attempt, null, at);
        i += 7;
      }
    }
  }

  /** Appends a journal event; written with the transaction's other rows, in order. */
  #event(
    runId: string,
    root: string,
    type: string,
    stepIndex: number | null,
    stepId: string | null,
    attempt: number | null,
    data: string | null,
    at: string,
  ): void {
    this.#events.args.push(runId, root, type, stepIndex, stepId, attempt, data, at);
  }

  /**
   * Writes the buffered rows, many per statement (each statement call costs 2-4 µs here whatever
   * it does, about as much as a row), in the order they were buffered.
   */
  #writeRows(rows: RowBuffer): void {
    const args = rows.args;
    if (args.length === 0) return;
    const w = rows.width;
    let off = 0;
    let left = args.length / w;
    while (left > 0) {
      let k = ROWS_PER_STATEMENT;
      while (k > left) k >>= 1;
      let stmt = rows.stmts[k];
      if (stmt === undefined) {
        stmt = rows.stmts[k] = this.#db.prepare(
          `${rows.head} VALUES ${new Array(k).fill(rows.tuple).join(", ")} ${rows.tail}`,
        );
      }
      stmt.run(...args.slice(off, off + k * w));
      off += k * w;
      left -= k;
    }
    args.length = 0;
  }

  /** The root run of `runId` (inside a commit: the run's row may be in the same batch). */
  #rootOf(runId: string): string {
    const open = this.#open.get(runId);
    if (open) return open.root;
    let root = this.#roots.get(runId);
    if (root === undefined) {
      const row = this.#stmt("SELECT COALESCE(root_run_id, id) AS root FROM runs WHERE id = ?")
        .get(runId) as { root: string } | undefined;
      root = row?.root ?? runId;
      if (this.#roots.size > 10_000) this.#roots.clear();
      this.#roots.set(runId, root);
    }
    return root;
  }

  /** Commits what is queued now, so that a read sees it (a failure was logged and reported). */
  #sync(): void {
    this.#gc.now();
  }

  // ---------------------------------------------------------------- blobs

  putBlob(data: JsonValue, blobType: "data" | "flow", knownId?: string): string {
    const id = knownId ?? blobId(data);
    if (this.#closed) return id;
    const text = stringifyJson(data);
    const at = nowRfc3339();
    this.#pendingBlobs.set(id, { text, blobType });
    this.#push2(FN, () =>
      this.#stmt(
        "INSERT OR IGNORE INTO blobs(id, data, blob_type, created_at) VALUES (?, ?, ?, ?)",
      ).run(id, text, blobType, at));
    return id;
  }

  getBlob(id: string): Promise<StoredBlob | undefined> {
    // Blobs never change: one still queued is read from memory, any other is in the table — no
    // commit is forced (a put_blob step followed by get_blob cost a commit of its own).
    const lower = id.toLowerCase();
    const pending = this.#pendingBlobs.get(lower);
    if (pending) {
      return Promise.resolve({
        id: lower,
        data: parseJson(pending.text),
        blobType: pending.blobType,
      });
    }
    const row = this.#stmt("SELECT id, data, blob_type FROM blobs WHERE id = ?").get(
      lower,
    ) as { id: string; data: string; blob_type: string } | undefined;
    if (!row) return Promise.resolve(undefined);
    return Promise.resolve({
      id: row.id,
      data: parseJson(row.data),
      blobType: row.blob_type === "flow" ? "flow" : "data",
    });
  }

  // ---------------------------------------------------------------- run writes

  createRun(run: RunRecord): Promise<void> | void {
    if (this.#closed) return;
    const queued = run.status === "queued";
    const parent = run.parentRunId;
    const root = run.rootRunId ??
      (parent === undefined ? run.runId : this.#open.get(parent)?.root ?? this.#rootOf(parent));
    if (!queued) {
      this.#ensureEngine();
      this.#open.set(run.runId, { root });
    }
    const r = { ...run };
    const at = nowRfc3339();
    const committed = this.#push2(FN, () => {
      this.#stmt(
        `INSERT OR REPLACE INTO runs(id, flow_id, flow_name, status, input_json, result_json,
           created_at, completed_at, overrides_json, parent_run_id, root_run_id, run_key,
           variables_json, owner_id, lease_epoch, started_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ).run(
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
        queued ? null : this.engineId,
        queued ? 0 : 1,
        queued ? null : at,
        at,
      );
      this.#event(r.runId, root, queued ? "run_queued" : "run_started", null, null, null, null, at);
    });
    if (queued && this.#watchers.size > 0) committed.then(() => this.#wake(), () => {});
    return committed;
  }

  recordStepStarted(runId: string, s: StepStartRecord): Promise<void> | void {
    if (this.#closed) return;
    this.#q.push(START, runId, s.stepIndex, s.stepId, s.component, s.attempt, s.at ?? nowRfc3339());
    return this.#queued();
  }

  recordStepResult(runId: string, record: StepResultRecord): Promise<void> | void {
    // The hot path: flat queue entries, no closure.
    if (this.#closed) return;
    const ms = record.durationMs;
    // the common event data built as text (JSON.stringify of it costs more than the row)
    const dataText = record.result.outcome !== "failed" && typeof ms === "number" &&
        Number.isSafeInteger(ms)
      ? `{"durationMs":${ms}}`
      : eventDataText(record);
    this.#q.push(
      RESULT,
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
    );
    return this.#queued();
  }

  completeRun(runId: string, status: RunStatus, result?: FlowResult): Promise<void> | void {
    if (this.#closed) return;
    const text = result === undefined ? null : stringifyJson(result);
    const at = nowRfc3339();
    const data = stringifyJson(
      result === undefined ? { status } : { status, outcome: result.outcome },
    );
    const open = this.#open.get(runId);
    const committed = this.#push2(FN, () => {
      this.#stmt(
        `UPDATE runs SET status = ?, result_json = COALESCE(?, result_json), completed_at = ?,
           updated_at = ? WHERE id = ?`,
      ).run(status, text, at, at, runId);
      this.#event(runId, this.#rootOf(runId), "run_completed", null, null, null, data, at);
    });
    const p = committed.then(() => {
      this.#open.delete(runId);
      if (open?.error) throw open.error;
    }, (e) => {
      this.#open.delete(runId);
      throw e;
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
    if (this.#closed) return;
    const at = nowRfc3339();
    const text = data === undefined ? null : stringifyJson(data);
    return this.#push2(FN, () => {
      this.#stmt("UPDATE runs SET status = ?, updated_at = ? WHERE id = ?").run(status, at, runId);
      if (event) this.#event(runId, this.#rootOf(runId), event, null, null, null, text, at);
    });
  }

  // ---------------------------------------------------------------- run reads

  getRun(runId: string): Promise<RunRecord | undefined> {
    this.#sync();
    const row = this.#stmt("SELECT * FROM runs WHERE id = ?").get(runId) as RunRow | undefined;
    return Promise.resolve(row ? runFromRow(row) : undefined);
  }

  findRunByKey(runKey: string): Promise<RunRecord | undefined> {
    this.#sync();
    const row = this.#stmt("SELECT * FROM runs WHERE run_key = ?").get(runKey) as
      | RunRow
      | undefined;
    return Promise.resolve(row ? runFromRow(row) : undefined);
  }

  listRuns(filter: RunFilter = {}): Promise<RunRecord[]> {
    this.#sync();
    const where: string[] = [];
    const args: (string | number)[] = [];
    if (filter.status !== undefined) {
      where.push("status = ?");
      args.push(filter.status);
    }
    if (filter.flowName !== undefined) {
      where.push("flow_name = ?");
      args.push(filter.flowName);
    }
    if (filter.since !== undefined) {
      where.push("created_at >= ?");
      args.push(normalizeInstant(filter.since));
    }
    if (filter.rootOnly) where.push("parent_run_id IS NULL");
    if (filter.parentRunId !== undefined) {
      where.push("parent_run_id = ?");
      args.push(filter.parentRunId);
    }
    const sql = `SELECT * FROM runs${where.length ? ` WHERE ${where.join(" AND ")}` : ""}
      ORDER BY created_at DESC, id ASC LIMIT ? OFFSET ?`;
    args.push(filter.limit ?? -1, filter.offset ?? 0);
    const rows = this.#stmt(sql).all(...args) as unknown as RunRow[];
    return Promise.resolve(rows.map(runFromRow));
  }

  getStepResults(runId: string): Promise<StepResultRecord[]> {
    this.#sync();
    const rows = this.#stmt(
      "SELECT step_index, step_id, result FROM step_results WHERE run_id = ? ORDER BY step_index",
    ).all(runId) as { step_index: number; step_id: string; result: string }[];
    return Promise.resolve(rows.map((r) => ({
      stepIndex: Number(r.step_index),
      stepId: r.step_id,
      result: parseJson(r.result) as unknown as FlowResult,
    })));
  }

  getStepInfo(runId: string): Promise<StepInfoRecord[]> {
    this.#sync();
    const rows = this.#stmt(
      `SELECT step_index, step_id, component, status, attempt, created_at, updated_at,
         duration_ms FROM step_info WHERE run_id = ? ORDER BY step_index`,
    ).all(runId) as {
      step_index: number;
      step_id: string;
      component: string;
      status: string;
      attempt: number;
      created_at: string;
      updated_at: string;
      duration_ms: number | null;
    }[];
    return Promise.resolve(rows.map((r) => {
      const s: StepInfoRecord = {
        stepIndex: Number(r.step_index),
        stepId: r.step_id,
        component: r.component,
        status: r.status as StepStatus,
        attempt: Number(r.attempt),
        createdAt: r.created_at,
        updatedAt: r.updated_at,
      };
      if (r.duration_ms !== null) s.durationMs = Number(r.duration_ms);
      return s;
    }));
  }

  getEvents(filter: EventFilter): Promise<RunEventRecord[]> {
    this.#sync();
    const where = ["id > ?"];
    const args: (string | number)[] = [filter.afterId ?? 0];
    if (filter.runId !== undefined) {
      // through the (root_run_id, id) index: the events table has no index of its own on run_id
      where.push("root_run_id = ?", "run_id = ?");
      args.push(filter.rootRunId ?? this.#rootOf(filter.runId), filter.runId);
    } else if (filter.rootRunId !== undefined) {
      where.push("root_run_id = ?");
      args.push(filter.rootRunId);
    }
    args.push(filter.limit ?? -1);
    const rows = this.#stmt(
      `SELECT * FROM run_events WHERE ${where.join(" AND ")} ORDER BY id LIMIT ?`,
    ).all(...args) as unknown as EventRow[];
    return Promise.resolve(rows.map(eventFromRow));
  }

  // ---------------------------------------------------------------- deletion

  deleteRun(runId: string): Promise<boolean> {
    this.#sync();
    return this.#writeNow("cannot delete a run", () => {
      const ids = this.#tree([runId]);
      if (ids.length === 0) return false;
      this.#deleteRuns(ids);
      return true;
    });
  }

  pruneRuns(options: { before: string }): Promise<number> {
    this.#sync();
    const before = normalizeInstant(options.before);
    return this.#writeNow("cannot prune runs", () => {
      const roots = (this.#stmt(
        `SELECT id FROM runs WHERE parent_run_id IS NULL
           AND status IN ('completed', 'failed', 'cancelled')
           AND COALESCE(completed_at, created_at) < ?`,
      ).all(before) as { id: string }[]).map((r) => r.id);
      if (roots.length === 0) return 0;
      const ids = this.#tree(roots);
      this.#deleteRuns(ids);
      this.#stmt("DELETE FROM batches WHERE id NOT IN (SELECT batch_id FROM batch_runs)").run();
      return ids.length;
    });
  }

  /** `roots` that exist and every run nested under them. */
  #tree(roots: string[]): string[] {
    const rows = this.#stmt(
      `WITH RECURSIVE tree(id) AS (
         SELECT id FROM runs WHERE id IN (SELECT value FROM json_each(?))
         UNION SELECT r.id FROM runs r JOIN tree t ON r.parent_run_id = t.id)
       SELECT id FROM tree`,
    ).all(JSON.stringify(roots)) as { id: string }[];
    return rows.map((r) => r.id);
  }

  #deleteRuns(ids: string[]): void {
    const json = JSON.stringify(ids);
    // events through their (root_run_id, id) index
    this.#stmt(
      `DELETE FROM run_events WHERE root_run_id IN (
         SELECT DISTINCT COALESCE(root_run_id, id) FROM runs
         WHERE id IN (SELECT value FROM json_each(?1)))
       AND run_id IN (SELECT value FROM json_each(?1))`,
    ).run(json);
    for (const table of ["step_results", "step_info", "signals", "batch_runs"]) {
      this.#stmt(`DELETE FROM ${table} WHERE run_id IN (SELECT value FROM json_each(?))`).run(
        json,
      );
    }
    this.#stmt("DELETE FROM runs WHERE id IN (SELECT value FROM json_each(?))").run(json);
    for (const id of ids) {
      this.#open.delete(id);
      this.#roots.delete(id);
    }
  }

  /** Runs a write transaction now (after the queue): resolves with its value once committed. */
  #writeNow<T>(what: string, fn: () => T): Promise<T> {
    if (this.#closed) return Promise.reject(new StoreError("the state store is closed", this.path));
    try {
      return Promise.resolve(this.#transaction(fn));
    } catch (e) {
      return Promise.reject(this.#error(what, e));
    }
  }

  // ---------------------------------------------------------------- signals

  putSignal(signal: { runId: string; name: string; data: JsonValue }): Promise<SignalRecord> {
    this.#sync();
    const at = nowRfc3339();
    return this.#writeNow("cannot store the signal", () => {
      const { lastInsertRowid } = this.#stmt(
        "INSERT INTO signals(run_id, name, data, created_at) VALUES (?, ?, ?, ?)",
      ).run(signal.runId, signal.name, stringifyJson(signal.data), at);
      const id = Number(lastInsertRowid);
      this.#event(
        signal.runId,
        this.#rootOf(signal.runId),
        "signal_received",
        null,
        null,
        null,
        stringifyJson({ name: signal.name, signalId: id }),
        at,
      );
      return { id, runId: signal.runId, name: signal.name, data: signal.data, createdAt: at };
    });
  }

  consumeSignal(
    runId: string,
    name: string,
    consumer: string,
  ): Promise<SignalRecord | undefined> {
    this.#sync();
    return this.#writeNow("cannot take the signal", () => {
      const mine = this.#stmt(
        "SELECT * FROM signals WHERE run_id = ? AND name = ? AND consumed_by = ? ORDER BY id LIMIT 1",
      ).get(runId, name, consumer) as SignalRow | undefined;
      if (mine) return signalFromRow(mine);
      const row = this.#stmt(
        `UPDATE signals SET consumed_at = ?, consumed_by = ? WHERE id = (
           SELECT id FROM signals WHERE run_id = ? AND name = ? AND consumed_at IS NULL
           ORDER BY id LIMIT 1) RETURNING *`,
      ).get(nowRfc3339(), consumer, runId, name) as SignalRow | undefined;
      return row ? signalFromRow(row) : undefined;
    });
  }

  getSignals(runId: string): Promise<SignalRecord[]> {
    this.#sync();
    const rows = this.#stmt("SELECT * FROM signals WHERE run_id = ? ORDER BY id").all(
      runId,
    ) as unknown as SignalRow[];
    return Promise.resolve(rows.map(signalFromRow));
  }

  // ---------------------------------------------------------------- claim

  claimRun(runId: string): Promise<ClaimResult> {
    if (this.#readOnly) {
      return Promise.reject(
        new StoreError(
          `cannot claim run ${runId}: SQLite database '${this.path}' is read-only`,
          this.path,
        ),
      );
    }
    this.#ensureEngine();
    this.#sync();
    return this.#writeNow("cannot claim the run", (): ClaimResult => {
      const row = this.#stmt(
        "SELECT owner_id, lease_epoch, COALESCE(root_run_id, id) AS root FROM runs WHERE id = ?",
      ).get(runId) as { owner_id: string | null; lease_epoch: number; root: string } | undefined;
      if (!row) return { claimed: false, reason: "unknown" };
      const owner = row.owner_id;
      if (owner !== null && owner !== this.engineId && this.#isAlive(owner, Date.now())) {
        return { claimed: false, reason: "owned", owner: this.#engineRecord(owner) };
      }
      const epoch = Number(row.lease_epoch) + 1;
      const at = nowRfc3339();
      this.#stmt(
        "UPDATE runs SET owner_id = ?, lease_epoch = ?, updated_at = ? WHERE id = ?",
      ).run(this.engineId, epoch, at, runId);
      this.#event(
        runId,
        row.root,
        "run_resumed",
        null,
        null,
        null,
        stringifyJson({ leaseEpoch: epoch, engineId: this.engineId }),
        at,
      );
      this.#open.set(runId, { root: row.root });
      return { claimed: true, leaseEpoch: epoch };
    });
  }

  claimRuns(options: ClaimOptions): Promise<ClaimedRun[]> {
    if (this.#readOnly) {
      return Promise.reject(
        new StoreError(`cannot claim runs: SQLite database '${this.path}' is read-only`, this.path),
      );
    }
    this.#ensureEngine();
    this.#sync();
    const limit = Math.max(0, Math.floor(options.limit));
    return this.#writeNow("cannot claim runs", (): ClaimedRun[] => {
      // queued runs, and runs released by their engine (started, no owner); BEGIN IMMEDIATE
      // makes this one writer at a time, so two processes never claim the same run
      const picked = this.#stmt(
        `SELECT id, status, COALESCE(root_run_id, id) AS root FROM runs
         WHERE status = 'queued'
            OR (status IN ('running', 'paused') AND owner_id IS NULL AND started_at IS NOT NULL)
         ORDER BY created_at, id LIMIT ?`,
      ).all(limit) as { id: string; status: string; root: string }[];
      const at = nowRfc3339();
      const out: ClaimedRun[] = [];
      for (const p of picked) {
        const row = this.#stmt(
          `UPDATE runs SET owner_id = ?, lease_epoch = lease_epoch + 1,
             status = CASE WHEN status = 'queued' THEN 'running' ELSE status END,
             started_at = COALESCE(started_at, ?), updated_at = ?
           WHERE id = ? RETURNING *`,
        ).get(this.engineId, at, at, p.id) as unknown as RunRow;
        const run = runFromRow(row);
        const resumed = p.status !== "queued";
        this.#event(
          p.id,
          p.root,
          resumed ? "run_resumed" : "run_started",
          null,
          null,
          null,
          stringifyJson({ leaseEpoch: run.leaseEpoch ?? 1, engineId: this.engineId }),
          at,
        );
        this.#open.set(p.id, { root: p.root });
        out.push({ run, leaseEpoch: run.leaseEpoch ?? 1, resumed });
      }
      return out;
    });
  }

  renewLeases(): Promise<LeaseRenewal> {
    if (this.#readOnly || this.#closed) return Promise.resolve({ renewed: [], lost: [] });
    this.#sync();
    return this.#writeNow("cannot renew the leases", (): LeaseRenewal => {
      const mine = (this.#stmt(
        `SELECT id FROM runs WHERE owner_id = ? AND status IN ('running', 'paused')`,
      ).all(this.engineId) as { id: string }[]).map((r) => r.id);
      if (this.#engine !== "committed") return { renewed: mine, lost: [] };
      const { changes } = this.#stmt("UPDATE engines SET heartbeat_at = ? WHERE id = ?").run(
        nowRfc3339(),
        this.engineId,
      );
      // declared dead by another process: every run it held was taken from it
      if (Number(changes) === 0) return { renewed: [], lost: [...this.#open.keys()] };
      return { renewed: mine, lost: [] };
    });
  }

  releaseRuns(runIds?: string[]): Promise<string[]> {
    if (this.#readOnly || this.#closed) return Promise.resolve([]);
    this.#sync();
    const ids = runIds ?? [...this.#open.keys()];
    const released = this.#writeNow("cannot release runs", () => {
      const at = nowRfc3339();
      const out: string[] = [];
      for (const id of ids) {
        const row = this.#stmt(
          `UPDATE runs SET owner_id = NULL, updated_at = ? WHERE id = ? AND owner_id = ?
             AND status NOT IN ('completed', 'failed', 'cancelled') RETURNING id`,
        ).get(at, id, this.engineId);
        if (row) out.push(id);
        this.#open.delete(id);
      }
      return out;
    });
    return released.then((out) => {
      if (out.length > 0) this.#wake();
      return out;
    });
  }

  async registerEngine(info: { url?: string } = {}): Promise<EngineRecord> {
    if (this.#readOnly) {
      throw new StoreError(
        `cannot register the engine: SQLite database '${this.path}' is read-only`,
        this.path,
      );
    }
    this.#ensureEngine();
    if (info.url !== undefined) {
      const url = info.url;
      this.#push2(FN, () => {
        this.#stmt("UPDATE engines SET url = ? WHERE id = ?").run(url, this.engineId);
      });
    }
    await this.flush();
    return this.#engineRecord(this.engineId)!;
  }

  listEngines(): Promise<EngineRecord[]> {
    this.#sync();
    const rows = this.#stmt("SELECT * FROM engines ORDER BY started_at, id")
      .all() as unknown as EngineRow[];
    return Promise.resolve(rows.map(engineFromRow));
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

  createBatch(batch: BatchRecord): Promise<void> | void {
    if (this.#closed) return;
    const b = { ...batch };
    return this.#push2(FN, () =>
      this.#stmt(
        `INSERT OR REPLACE INTO batches(id, flow_id, flow_name, total_inputs, status, created_at)
         VALUES (?, ?, ?, ?, ?, ?)`,
      ).run(b.batchId, b.flowId, b.flowName ?? null, b.totalInputs, b.status, b.createdAt));
  }

  addBatchRun(batchId: string, runId: string, index: number): Promise<void> | void {
    if (this.#closed) return;
    return this.#push2(FN, () =>
      this.#stmt(
        "INSERT OR REPLACE INTO batch_runs(batch_id, run_id, batch_input_index) VALUES (?, ?, ?)",
      ).run(batchId, runId, index));
  }

  getBatch(batchId: string): Promise<BatchRecord | undefined> {
    this.#sync();
    const row = this.#stmt("SELECT * FROM batches WHERE id = ?").get(batchId) as
      | BatchRow
      | undefined;
    return Promise.resolve(row ? batchFromRow(row) : undefined);
  }

  listBatches(filter: BatchFilter = {}): Promise<BatchRecord[]> {
    this.#sync();
    const where: string[] = [];
    const args: (string | number)[] = [];
    if (filter.status !== undefined) {
      where.push("status = ?");
      args.push(filter.status);
    }
    if (filter.flowName !== undefined) {
      where.push("flow_name = ?");
      args.push(filter.flowName);
    }
    const rows = this.#db.prepare(
      `SELECT * FROM batches${where.length ? ` WHERE ${where.join(" AND ")}` : ""}
       ORDER BY created_at DESC, rowid DESC LIMIT ? OFFSET ?`,
    ).all(...args, filter.limit ?? -1, filter.offset ?? 0) as unknown as BatchRow[];
    return Promise.resolve(rows.map(batchFromRow));
  }

  getBatchRuns(batchId: string): Promise<{ runId: string; index: number }[]> {
    this.#sync();
    const rows = this.#stmt(
      "SELECT run_id, batch_input_index FROM batch_runs WHERE batch_id = ? ORDER BY batch_input_index",
    ).all(batchId) as { run_id: string; batch_input_index: number }[];
    return Promise.resolve(
      rows.map((r) => ({ runId: r.run_id, index: Number(r.batch_input_index) })),
    );
  }

  // ---------------------------------------------------------------- lifecycle

  flush(): Promise<void> {
    return this.#gc.soon();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    await this.#gc.drain();
    if (this.#heartbeat !== undefined) clearInterval(this.#heartbeat);
    // Runs this engine started and did not finish: their engine is going away.
    const at = nowRfc3339();
    const left = [...this.#open];
    if (left.length > 0 || this.#engine === "committed") {
      try {
        this.#transaction(() => {
          for (const [runId, open] of left) {
            this.#markInterrupted(
              runId,
              this.engineId,
              open.root,
              "the engine closed its state store before the run finished",
              at,
            );
          }
          this.#stmt("DELETE FROM engines WHERE id = ?").run(this.engineId);
        });
      } catch (e) {
        log.error(this.#error("cannot record the end of this engine", e).message);
      }
    }
    this.#open.clear();
    this.#closed = true;
    this.#db.close();
  }
}
