/**
 * The SQLite state store (`stateStore: {type: sqlite, databaseUrl}`), on `node:sqlite`.
 *
 * Tables are stepflow 0.8's (`stepflow-state-sql`, §9): `_stepflow_migrations`, `blobs`, `runs`,
 * `step_results`, `step_info`, `flow_labels`, `batches`, `batch_runs`. JSON columns hold compact
 * JSON with exact numbers. Writes are queued and applied in one transaction per macrotask (0.8
 * writes through an async queue too), so a run's hot path never waits for the disk; reads flush
 * the queue first, so they always see earlier writes.
 * @module
 */
import { DatabaseSync, type StatementSync } from "node:sqlite";
import { type JsonValue, parseJson, stringifyJson } from "../json/exact_json.ts";
import type { FlowResult } from "../flow/flow_result.ts";
import { blobId } from "./blob_id.ts";
import {
  type BatchFilter,
  type BatchRecord,
  nowRfc3339,
  type RunFilter,
  type RunRecord,
  type RunStatus,
  type StateStore,
  type StepResultRecord,
  type StoredBlob,
} from "./store.ts";
import { logger } from "../log.ts";

const log = logger("state");

/** Writes queued before a flush is forced even if the macrotask has not come yet. */
const MAX_QUEUED_WRITES = 1000;

const MIGRATION_NAME = "0001_initial_schema";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS _stepflow_migrations (
  name TEXT PRIMARY KEY,
  applied_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS blobs (
  id TEXT PRIMARY KEY,
  data TEXT NOT NULL,
  blob_type TEXT NOT NULL DEFAULT 'data',
  created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
  id TEXT PRIMARY KEY,
  flow_id TEXT NOT NULL,
  flow_name TEXT,
  flow_label TEXT,
  status TEXT NOT NULL DEFAULT 'running',
  debug_mode INTEGER NOT NULL DEFAULT 0,
  input_json TEXT,
  result_json TEXT,
  created_at TEXT NOT NULL,
  completed_at TEXT,
  overrides_json TEXT,
  parent_run_id TEXT
);
CREATE TABLE IF NOT EXISTS step_results (
  run_id TEXT NOT NULL,
  step_index INTEGER NOT NULL,
  step_id TEXT NOT NULL,
  result TEXT NOT NULL,
  created_at TEXT NOT NULL,
  PRIMARY KEY (run_id, step_index)
);
CREATE TABLE IF NOT EXISTS step_info (
  run_id TEXT NOT NULL,
  step_index INTEGER NOT NULL,
  step_id TEXT NOT NULL,
  component TEXT NOT NULL,
  status TEXT NOT NULL,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  PRIMARY KEY (run_id, step_index)
);
CREATE TABLE IF NOT EXISTS flow_labels (
  name TEXT NOT NULL,
  label TEXT NOT NULL,
  flow_id TEXT NOT NULL,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  PRIMARY KEY (name, label)
);
CREATE TABLE IF NOT EXISTS batches (
  id TEXT PRIMARY KEY,
  flow_id TEXT NOT NULL,
  flow_name TEXT,
  total_inputs INTEGER NOT NULL,
  status TEXT NOT NULL DEFAULT 'running',
  created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS batch_runs (
  batch_id TEXT NOT NULL,
  run_id TEXT NOT NULL,
  batch_input_index INTEGER NOT NULL,
  PRIMARY KEY (batch_id, run_id)
);
CREATE INDEX IF NOT EXISTS idx_runs_flow_id ON runs(flow_id);
CREATE INDEX IF NOT EXISTS idx_batch_runs_batch ON batch_runs(batch_id, batch_input_index);
`;

/** Options of {@linkcode SqliteStateStore.open}. */
export interface SqliteOpenOptions {
  /** Create the tables when missing. @default true */
  autoMigrate?: boolean;
  /** Directory relative database paths resolve against. @default Deno.cwd() */
  workingDirectory?: string;
}

/**
 * The file path (or `:memory:`) and open mode of a `databaseUrl`.
 * Accepts `sqlite::memory:`, `sqlite:path.db`, `sqlite://path.db`, with `?mode=rwc|rw|ro`
 * (default `rwc`: create when missing).
 * @throws {Error} for a URL that does not start with `sqlite:` or an unknown mode.
 */
export function parseSqliteUrl(
  url: string,
  workingDirectory = ".",
): { path: string; mode: "rwc" | "rw" | "ro" } {
  if (!url.startsWith("sqlite:")) {
    throw new Error(
      `Invalid SQLite databaseUrl '${url}': expected 'sqlite:<path>' or 'sqlite::memory:'`,
    );
  }
  let rest = url.slice("sqlite:".length);
  if (rest.startsWith("//")) rest = rest.slice(2);
  let query = "";
  const q = rest.indexOf("?");
  if (q >= 0) {
    query = rest.slice(q + 1);
    rest = rest.slice(0, q);
  }
  const params = new URLSearchParams(query);
  const mode = params.get("mode") ?? "rwc";
  if (mode !== "rwc" && mode !== "rw" && mode !== "ro") {
    throw new Error(`Invalid SQLite mode '${mode}' in '${url}': expected rwc, rw or ro`);
  }
  if (rest === ":memory:" || rest === "" || params.get("mode") === "memory") {
    return { path: ":memory:", mode: "rwc" };
  }
  const path = rest.startsWith("/") ? rest : `${workingDirectory.replace(/\/$/, "")}/${rest}`;
  return { path, mode };
}

/** A {@linkcode StateStore} in an SQLite database. */
export class SqliteStateStore implements StateStore {
  readonly kind = "sqlite";
  #db: DatabaseSync;
  #queue: (() => void)[] = [];
  /** Queued step results, flattened: run id, step index, step id, result JSON; repeated. */
  #steps: (string | number)[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** Blobs queued but not written yet: read back without forcing a flush (a step that puts a
   * blob and the next that gets it would otherwise cost a commit each). */
  #pendingBlobs = new Map<string, { text: string; blobType: "data" | "flow" }>();
  #closed = false;
  #stmts: Record<string, StatementSync> = {};

  private constructor(db: DatabaseSync) {
    this.#db = db;
  }

  /**
   * Opens (and by default migrates) the database at `databaseUrl`.
   * @throws {Error} when the URL is invalid, the file cannot be opened, or the tables are missing
   * with `autoMigrate: false`.
   */
  static open(databaseUrl: string, options: SqliteOpenOptions = {}): SqliteStateStore {
    const { autoMigrate = true, workingDirectory = Deno.cwd() } = options;
    const { path, mode } = parseSqliteUrl(databaseUrl, workingDirectory);
    if (mode === "rw" && path !== ":memory:") {
      try {
        Deno.statSync(path);
      } catch (e) {
        throw new Error(`SQLite database '${path}' does not exist (mode=rw)`, { cause: e });
      }
    }
    const db = new DatabaseSync(path, { readOnly: mode === "ro" });
    if (path !== ":memory:" && mode !== "ro") {
      // WAL: a commit appends to the log without an fsync (synchronous=NORMAL), so a flush does
      // not block the event loop for milliseconds (the rollback journal fsyncs every commit);
      // readers in other processes see committed data. Durable across process crashes.
      db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000");
    }
    const store = new SqliteStateStore(db);
    if (autoMigrate && mode !== "ro") store.#migrate();
    else store.#checkSchema();
    return store;
  }

  #migrate(): void {
    this.#db.exec(SCHEMA);
    // A database created by stepflow 0.8 lacks the columns this store adds: add them.
    this.#ensureColumn("runs", "parent_run_id", "TEXT");
    this.#ensureColumn("step_results", "created_at", "TEXT NOT NULL DEFAULT ''");
    this.#db.prepare(
      "INSERT OR IGNORE INTO _stepflow_migrations(name, applied_at) VALUES (?, ?)",
    ).run(MIGRATION_NAME, nowRfc3339());
  }

  #ensureColumn(table: string, column: string, type: string): void {
    const cols = this.#db.prepare(`PRAGMA table_info(${table})`).all() as { name: string }[];
    if (!cols.some((c) => c.name === column)) {
      this.#db.exec(`ALTER TABLE ${table} ADD COLUMN ${column} ${type}`);
    }
  }

  #checkSchema(): void {
    const row = this.#db.prepare(
      "SELECT name FROM sqlite_master WHERE type='table' AND name='runs'",
    ).get();
    if (!row) {
      throw new Error("SQLite database has no stepflow tables; set autoMigrate: true");
    }
  }

  #stmt(sql: string): StatementSync {
    return this.#stmts[sql] ??= this.#db.prepare(sql);
  }

  #enqueue(write: () => void): void {
    if (this.#closed) return;
    this.#queue.push(write);
    if (this.#queue.length >= MAX_QUEUED_WRITES) this.#flushSync();
    else if (this.#timer === undefined) this.#timer = setTimeout(() => this.#flushSync(), 0);
  }

  #flushSync(): void {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    if (this.#queue.length === 0 && this.#steps.length === 0) return;
    const q = this.#queue;
    this.#queue = [];
    const steps = this.#steps;
    this.#steps = [];
    this.#pendingBlobs.clear();
    try {
      this.#db.exec("BEGIN");
      for (const w of q) w();
      if (steps.length > 0) {
        const insert = this.#stmt(
          `INSERT OR REPLACE INTO step_results(run_id, step_index, step_id, result, created_at)
           VALUES (?, ?, ?, ?, ?)`,
        );
        const at = nowRfc3339();
        for (let i = 0; i < steps.length; i += 4) {
          insert.run(
            steps[i] as string,
            steps[i + 1] as number,
            steps[i + 2] as string,
            steps[i + 3] as string,
            at,
          );
        }
      }
      this.#db.exec("COMMIT");
    } catch (e) {
      try {
        this.#db.exec("ROLLBACK");
      } catch {
        // no transaction open
      }
      log.error(`SQLite write failed: ${(e as Error).message}`);
    }
  }

  putBlob(data: JsonValue, blobType: "data" | "flow", knownId?: string): string {
    const id = knownId ?? blobId(data);
    const text = stringifyJson(data);
    const at = nowRfc3339();
    if (this.#closed) return id;
    this.#pendingBlobs.set(id, { text, blobType });
    this.#enqueue(() =>
      this.#stmt(
        "INSERT OR IGNORE INTO blobs(id, data, blob_type, created_at) VALUES (?, ?, ?, ?)",
      ).run(id, text, blobType, at)
    );
    return id;
  }

  getBlob(id: string): Promise<StoredBlob | undefined> {
    // blobs are immutable: one still queued is answered from memory, others are in the table
    const pending = this.#pendingBlobs.get(id.toLowerCase());
    if (pending) {
      return Promise.resolve({
        id: id.toLowerCase(),
        data: parseJson(pending.text),
        blobType: pending.blobType,
      });
    }
    const row = this.#stmt("SELECT id, data, blob_type FROM blobs WHERE id = ?").get(
      id.toLowerCase(),
    ) as { id: string; data: string; blob_type: string } | undefined;
    if (!row) return Promise.resolve(undefined);
    return Promise.resolve({
      id: row.id,
      data: parseJson(row.data),
      blobType: row.blob_type === "flow" ? "flow" : "data",
    });
  }

  createRun(run: RunRecord): void {
    const r = { ...run };
    this.#enqueue(() =>
      this.#stmt(
        `INSERT OR REPLACE INTO runs(id, flow_id, flow_name, status, input_json, result_json,
           created_at, completed_at, overrides_json, parent_run_id)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
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
        r.parentRunId ?? null,
      )
    );
  }

  recordStepResult(runId: string, record: StepResultRecord): void {
    // The hot path: no closure, no timestamp per step (the flush stamps the batch).
    if (this.#closed) return;
    this.#steps.push(runId, record.stepIndex, record.stepId, stringifyJson(record.result));
    if (this.#steps.length >= MAX_QUEUED_WRITES * 4) this.#flushSync();
    else if (this.#timer === undefined) this.#timer = setTimeout(() => this.#flushSync(), 0);
  }

  completeRun(runId: string, status: RunStatus, result?: FlowResult): void {
    const text = result === undefined ? null : stringifyJson(result);
    const at = nowRfc3339();
    this.#enqueue(() =>
      this.#stmt(
        "UPDATE runs SET status = ?, result_json = COALESCE(?, result_json), completed_at = ? WHERE id = ?",
      ).run(status, text, at, runId)
    );
  }

  getRun(runId: string): Promise<RunRecord | undefined> {
    this.#flushSync();
    const row = this.#stmt("SELECT * FROM runs WHERE id = ?").get(runId) as RunRow | undefined;
    return Promise.resolve(row ? runFromRow(row) : undefined);
  }

  listRuns(filter: RunFilter = {}): Promise<RunRecord[]> {
    this.#flushSync();
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
      args.push(filter.since);
    }
    if (filter.rootOnly) where.push("parent_run_id IS NULL");
    const rows = this.#db.prepare(
      `SELECT * FROM runs${where.length ? ` WHERE ${where.join(" AND ")}` : ""}
       ORDER BY created_at DESC, id LIMIT ? OFFSET ?`,
    ).all(...args, filter.limit ?? -1, filter.offset ?? 0) as unknown[];
    return Promise.resolve(rows.map((r) => runFromRow(r as RunRow)));
  }

  deleteRun(runId: string): Promise<boolean> {
    this.#flushSync();
    if (!this.#stmt("SELECT 1 FROM runs WHERE id = ?").get(runId)) return Promise.resolve(false);
    // the run and its nested runs, at any depth
    const ids = (this.#stmt(
      `WITH RECURSIVE doomed(id) AS (
         SELECT ? UNION SELECT runs.id FROM runs JOIN doomed ON runs.parent_run_id = doomed.id
       ) SELECT id FROM doomed`,
    ).all(runId) as { id: string }[]).map((r) => r.id);
    this.#db.exec("BEGIN");
    try {
      for (const id of ids) {
        this.#stmt("DELETE FROM step_results WHERE run_id = ?").run(id);
        this.#stmt("DELETE FROM step_info WHERE run_id = ?").run(id);
        this.#stmt("DELETE FROM batch_runs WHERE run_id = ?").run(id);
        this.#stmt("DELETE FROM runs WHERE id = ?").run(id);
      }
      this.#db.exec("COMMIT");
    } catch (e) {
      this.#db.exec("ROLLBACK");
      throw e;
    }
    return Promise.resolve(true);
  }

  getStepResults(runId: string): Promise<StepResultRecord[]> {
    this.#flushSync();
    const rows = this.#stmt(
      "SELECT step_index, step_id, result FROM step_results WHERE run_id = ? ORDER BY step_index",
    ).all(runId) as { step_index: number; step_id: string; result: string }[];
    return Promise.resolve(rows.map((r) => ({
      stepIndex: Number(r.step_index),
      stepId: r.step_id,
      result: parseJson(r.result) as unknown as FlowResult,
    })));
  }

  createBatch(batch: BatchRecord): void {
    const b = { ...batch };
    this.#enqueue(() =>
      this.#stmt(
        `INSERT OR REPLACE INTO batches(id, flow_id, flow_name, total_inputs, status, created_at)
         VALUES (?, ?, ?, ?, ?, ?)`,
      ).run(b.batchId, b.flowId, b.flowName ?? null, b.totalInputs, b.status, b.createdAt)
    );
  }

  addBatchRun(batchId: string, runId: string, index: number): void {
    this.#enqueue(() =>
      this.#stmt(
        "INSERT OR REPLACE INTO batch_runs(batch_id, run_id, batch_input_index) VALUES (?, ?, ?)",
      ).run(batchId, runId, index)
    );
  }

  getBatch(batchId: string): Promise<BatchRecord | undefined> {
    this.#flushSync();
    const row = this.#stmt("SELECT * FROM batches WHERE id = ?").get(batchId) as
      | BatchRow
      | undefined;
    return Promise.resolve(row ? batchFromRow(row) : undefined);
  }

  listBatches(filter: BatchFilter = {}): Promise<BatchRecord[]> {
    this.#flushSync();
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
    this.#flushSync();
    const rows = this.#stmt(
      "SELECT run_id, batch_input_index FROM batch_runs WHERE batch_id = ? ORDER BY batch_input_index",
    ).all(batchId) as { run_id: string; batch_input_index: number }[];
    return Promise.resolve(
      rows.map((r) => ({ runId: r.run_id, index: Number(r.batch_input_index) })),
    );
  }

  flush(): Promise<void> {
    this.#flushSync();
    return Promise.resolve();
  }

  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#flushSync();
    this.#closed = true;
    this.#db.close();
    return Promise.resolve();
  }
}

interface RunRow {
  id: string;
  flow_id: string;
  flow_name: string | null;
  status: string;
  input_json: string | null;
  result_json: string | null;
  created_at: string;
  completed_at: string | null;
  overrides_json: string | null;
  parent_run_id: string | null;
}

function runFromRow(row: RunRow): RunRecord {
  const r: RunRecord = {
    runId: row.id,
    flowId: row.flow_id,
    status: row.status as RunStatus,
    input: row.input_json === null ? null : parseJson(row.input_json),
    createdAt: row.created_at,
  };
  if (row.flow_name !== null) r.flowName = row.flow_name;
  if (row.result_json !== null) r.result = parseJson(row.result_json) as unknown as FlowResult;
  if (row.completed_at !== null) r.completedAt = row.completed_at;
  if (row.overrides_json !== null) r.overrides = parseJson(row.overrides_json);
  if (row.parent_run_id !== null) r.parentRunId = row.parent_run_id;
  return r;
}

interface BatchRow {
  id: string;
  flow_id: string;
  flow_name: string | null;
  total_inputs: number;
  status: string;
  created_at: string;
}

function batchFromRow(row: BatchRow): BatchRecord {
  const b: BatchRecord = {
    batchId: row.id,
    flowId: row.flow_id,
    totalInputs: Number(row.total_inputs),
    status: row.status === "cancelled" ? "cancelled" : "running",
    createdAt: row.created_at,
  };
  if (row.flow_name !== null) b.flowName = row.flow_name;
  return b;
}
