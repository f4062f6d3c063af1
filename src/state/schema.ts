/**
 * The logical schema of the persistent stores, in SQLite's dialect (the PostgreSQL store uses
 * the same tables and columns). Times are RFC 3339 text; JSON columns hold compact JSON with
 * exact numbers.
 *
 * stepflow 0.8's tables (`stepflow-state-sql`, §9) keep their names and columns, so a database
 * written by 0.8 stays readable and tools reading 0.8's tables read ours:
 * `_stepflow_migrations`, `blobs`, `runs`, `step_results`, `step_info`, `flow_labels`,
 * `batches`, `batch_runs`.
 *
 * Added for durable runs (issue 12), each column nullable or defaulted so 0.8's writers still
 * work (new databases make `step_results` and `step_info` `WITHOUT ROWID` tables: one b-tree
 * per table instead of two, about 25% less per row written; their SQL is the same):
 * - `runs`: `parent_run_id`, `root_run_id`, `run_key` (unique: the deterministic key of a nested
 *   run), `variables_json`, `owner_id` + `lease_epoch` (the engine executing it; writes are
 *   fenced by them), `lease_expires_at` (PostgreSQL's lease; unused by SQLite, which reads the
 *   owner's liveness from `engines`), `started_at`, `updated_at`;
 * - `step_results.created_at`; `step_info.attempt`, `step_info.duration_ms`;
 * - `run_events`: the append-only journal (run queued/started/resumed/interrupted/paused,
 *   step started (attempt), step completed/failed/skipped, signal received, run completed),
 *   indexed by `(root_run_id, id)` only (one index per event written). `id` is the rowid, not
 *   AUTOINCREMENT (which costs a write per event): ids increase in commit order, and an id is
 *   reused only when the newest events are deleted with their run;
 * - `signals`: data sent to a run waiting for it (human in the loop);
 * - `engines`: the engines owning runs, with what tells whether each is alive (pid, the pid's
 *   start time and namespace, heartbeat).
 *
 * Added for resuming a run as it was started (`0003_run_options`): `runs.options_json`, the
 * top-level run's config file (path and SHA-256), run timeout and limits (`StoredRunOptions`);
 * NULL for runs recorded before, which resume with the config given to `stepflow resume`.
 *
 * Added for taking a batch over with its limit (`0004_batch_max_concurrency`):
 * `batches.max_concurrency`, the batch's `maxConcurrency`; NULL for batches recorded before (and
 * batches without one), whose runs are taken over within the service's limit alone.
 * @module
 */

/** One migration: a name recorded in `_stepflow_migrations` and what it does. */
export interface Migration {
  name: string;
  /** SQL run as one script (every statement idempotent). */
  sql: string;
  /** Columns added to tables that may already exist (0.8 databases): [table, column, type]. */
  columns?: [string, string, string][];
}

/** stepflow 0.8's tables, as 0.8 creates them (plus `runs.parent_run_id`, `step_results.created_at`). */
const INITIAL = `
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
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS step_info (
  run_id TEXT NOT NULL,
  step_index INTEGER NOT NULL,
  step_id TEXT NOT NULL,
  component TEXT NOT NULL,
  status TEXT NOT NULL,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  attempt INTEGER NOT NULL DEFAULT 1,
  duration_ms REAL,
  PRIMARY KEY (run_id, step_index)
) WITHOUT ROWID;
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

/** The journal, signals, engines and the columns re-driving a run needs. */
const DURABLE = `
CREATE TABLE IF NOT EXISTS run_events (
  id INTEGER PRIMARY KEY,
  run_id TEXT NOT NULL,
  root_run_id TEXT NOT NULL,
  type TEXT NOT NULL,
  step_index INTEGER,
  step_id TEXT,
  attempt INTEGER,
  data TEXT,
  at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_run_events_root ON run_events(root_run_id, id);
CREATE TABLE IF NOT EXISTS signals (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  run_id TEXT NOT NULL,
  name TEXT NOT NULL,
  data TEXT NOT NULL,
  created_at TEXT NOT NULL,
  consumed_at TEXT,
  consumed_by TEXT
);
CREATE INDEX IF NOT EXISTS idx_signals_run ON signals(run_id, name, id);
CREATE TABLE IF NOT EXISTS engines (
  id TEXT PRIMARY KEY,
  host TEXT,
  pid INTEGER,
  pid_start TEXT,
  pid_ns TEXT,
  url TEXT,
  started_at TEXT NOT NULL,
  heartbeat_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_runs_created ON runs(created_at, id);
CREATE INDEX IF NOT EXISTS idx_runs_status ON runs(status, created_at);
CREATE INDEX IF NOT EXISTS idx_runs_parent ON runs(parent_run_id);
CREATE UNIQUE INDEX IF NOT EXISTS idx_runs_key ON runs(run_key) WHERE run_key IS NOT NULL;
`;

/** Migrations in order. Each is applied once (inside one transaction) and recorded. */
export const MIGRATIONS: readonly Migration[] = [
  {
    name: "0001_initial_schema",
    sql: INITIAL,
    columns: [
      ["runs", "parent_run_id", "TEXT"],
      ["step_results", "created_at", "TEXT NOT NULL DEFAULT ''"],
    ],
  },
  {
    name: "0002_durable_runs",
    // columns first: the indexes of DURABLE name them
    columns: [
      ["runs", "root_run_id", "TEXT"],
      ["runs", "run_key", "TEXT"],
      ["runs", "variables_json", "TEXT"],
      ["runs", "owner_id", "TEXT"],
      ["runs", "lease_epoch", "INTEGER NOT NULL DEFAULT 0"],
      ["runs", "lease_expires_at", "TEXT"],
      ["runs", "started_at", "TEXT"],
      ["runs", "updated_at", "TEXT"],
      ["step_info", "attempt", "INTEGER NOT NULL DEFAULT 1"],
      ["step_info", "duration_ms", "REAL"],
    ],
    sql: DURABLE,
  },
  {
    name: "0003_run_options",
    columns: [["runs", "options_json", "TEXT"]],
    sql: "",
  },
  {
    name: "0004_batch_max_concurrency",
    columns: [["batches", "max_concurrency", "INTEGER"]],
    sql: "",
  },
];

/** What each migration adds, for the message about a database that lacks it. */
const MIGRATION_ADDS: Record<string, string> = {
  "0001_initial_schema": "stepflow's tables",
  "0002_durable_runs": "the run journal, engines, signals and run ownership columns",
  "0003_run_options": "how each run was started: column runs.options_json",
  "0004_batch_max_concurrency":
    "each batch's limit on runs at once: column batches.max_concurrency",
  "0005_batch_claims":
    "a batch's limit counted by every engine's claim (PostgreSQL): column runs.limited_batch_id",
};

/**
 * The error for a database opened with `autoMigrate: false` that lacks migrations `missing`
 * (written by an older stepflow): writing runs to it would fail with a bare `no such column`.
 * @param database what names the database in the message (`SQLite database '/srv/runs.db'`).
 * @param readOnlyHint whether reading it as it is, read-only, is an option (SQLite `mode=ro`).
 */
export function schemaBehindError(
  database: string,
  missing: string[],
  readOnlyHint: boolean,
): Error {
  const what = missing.map((m) => `${m} (${MIGRATION_ADDS[m] ?? "newer tables"})`).join(", ");
  return new Error(
    `${database} was written by an older stepflow: it lacks the migration${
      missing.length > 1 ? "s" : ""
    } ${what}, and autoMigrate is false, so stepflow does not use it as it is (storing a run in ` +
      "it would fail). Open it once with " +
      "autoMigrate: true to upgrade it (the default: remove `autoMigrate: false` from " +
      "stateStore, or give it with --store, which migrates)" +
      (readOnlyHint ? ", or read it as it is with ?mode=ro (sqlite:FILE?mode=ro)" : ""),
  );
}

/** Tables the stores need (a database lacking one is not migrated). */
export const REQUIRED_TABLES = ["runs", "step_results", "step_info", "run_events", "engines"];
