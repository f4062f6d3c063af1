/**
 * The logical schema of the persistent stores (src/state/schema.ts) in PostgreSQL's dialect: the
 * same tables and columns as the SQLite store, with PostgreSQL's types — times are `timestamptz`
 * (read back as RFC 3339, milliseconds), ids of events and signals are identity columns, JSON
 * columns are `text` holding compact JSON with exact numbers (`jsonb` would reorder keys and drop
 * `15.0`'s form, which blob ids hash).
 *
 * Added for scale-out (issue 14):
 * - `runs.lease_expires_at`: when the owner's lease ends unless renewed (the database's clock);
 *   a partial index over the runs an engine may claim (`queued`, or `running`/`paused` with an
 *   expired lease);
 * - `stepflow_fence(engine, run_ids, epochs)`: the fence of every commit. It locks the runs whose
 *   leases the commit writes under (`FOR SHARE`: a takeover waits for the commit, a commit after a
 *   takeover sees it) and raises SQLSTATE `SF001` naming the runs whose `(owner_id, lease_epoch)`
 *   is no longer this engine's, which aborts the whole transaction.
 *
 * Migrations run inside one transaction holding `pg_advisory_xact_lock`, so several engines
 * starting at once on a new database migrate it once, the others waiting for the lock.
 *
 * The scripts below repeat src/state/schema.ts's tables in PostgreSQL's types on purpose, not
 * generated from one shared text: a migration is history (databases record it by name and never
 * run it again), so each dialect's script stays as it shipped and reads as the plain SQL it runs;
 * what the two share (the `Migration` shape, the tables the stores need) is imported from there.
 * @module
 */
import { type Migration, REQUIRED_TABLES } from "./schema.ts";

/** The advisory lock key of migrations (`pg_advisory_xact_lock`): "Stepflow" in ASCII. */
export const MIGRATION_LOCK_KEY = "6013542935875579767";

/** SQLSTATE raised by `stepflow_fence` when a lease was lost. */
export const FENCE_SQLSTATE = "SF001";

/** The `NOTIFY` channel that wakes engines when runs may be claimable. */
export const QUEUE_CHANNEL = "stepflow_queue";

const INITIAL = `
CREATE TABLE IF NOT EXISTS _stepflow_migrations (
  name TEXT PRIMARY KEY,
  applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS blobs (
  id TEXT PRIMARY KEY,
  data TEXT NOT NULL,
  blob_type TEXT NOT NULL DEFAULT 'data',
  created_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
  id TEXT PRIMARY KEY,
  flow_id TEXT NOT NULL,
  flow_name TEXT,
  flow_label TEXT,
  status TEXT NOT NULL DEFAULT 'running',
  debug_mode BOOLEAN NOT NULL DEFAULT false,
  input_json TEXT,
  result_json TEXT,
  created_at TIMESTAMPTZ NOT NULL,
  completed_at TIMESTAMPTZ,
  overrides_json TEXT,
  parent_run_id TEXT
);
CREATE TABLE IF NOT EXISTS step_results (
  run_id TEXT NOT NULL,
  step_index INTEGER NOT NULL,
  step_id TEXT NOT NULL,
  result TEXT NOT NULL,
  created_at TIMESTAMPTZ NOT NULL,
  PRIMARY KEY (run_id, step_index)
);
CREATE TABLE IF NOT EXISTS step_info (
  run_id TEXT NOT NULL,
  step_index INTEGER NOT NULL,
  step_id TEXT NOT NULL,
  component TEXT NOT NULL,
  status TEXT NOT NULL,
  created_at TIMESTAMPTZ NOT NULL,
  updated_at TIMESTAMPTZ NOT NULL,
  PRIMARY KEY (run_id, step_index)
);
CREATE TABLE IF NOT EXISTS flow_labels (
  name TEXT NOT NULL,
  label TEXT NOT NULL,
  flow_id TEXT NOT NULL,
  created_at TIMESTAMPTZ NOT NULL,
  updated_at TIMESTAMPTZ NOT NULL,
  PRIMARY KEY (name, label)
);
CREATE TABLE IF NOT EXISTS batches (
  id TEXT PRIMARY KEY,
  flow_id TEXT NOT NULL,
  flow_name TEXT,
  total_inputs INTEGER NOT NULL,
  status TEXT NOT NULL DEFAULT 'running',
  created_at TIMESTAMPTZ NOT NULL
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

const DURABLE = `
ALTER TABLE runs ADD COLUMN IF NOT EXISTS root_run_id TEXT;
ALTER TABLE runs ADD COLUMN IF NOT EXISTS run_key TEXT;
ALTER TABLE runs ADD COLUMN IF NOT EXISTS variables_json TEXT;
ALTER TABLE runs ADD COLUMN IF NOT EXISTS owner_id TEXT;
ALTER TABLE runs ADD COLUMN IF NOT EXISTS lease_epoch INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN IF NOT EXISTS lease_expires_at TIMESTAMPTZ;
ALTER TABLE runs ADD COLUMN IF NOT EXISTS started_at TIMESTAMPTZ;
ALTER TABLE runs ADD COLUMN IF NOT EXISTS updated_at TIMESTAMPTZ;
ALTER TABLE step_info ADD COLUMN IF NOT EXISTS attempt INTEGER NOT NULL DEFAULT 1;
ALTER TABLE step_info ADD COLUMN IF NOT EXISTS duration_ms DOUBLE PRECISION;
CREATE TABLE IF NOT EXISTS run_events (
  id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  run_id TEXT NOT NULL,
  root_run_id TEXT NOT NULL,
  type TEXT NOT NULL,
  step_index INTEGER,
  step_id TEXT,
  attempt INTEGER,
  data TEXT,
  at TIMESTAMPTZ NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_run_events_root ON run_events(root_run_id, id);
CREATE TABLE IF NOT EXISTS signals (
  id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  run_id TEXT NOT NULL,
  name TEXT NOT NULL,
  data TEXT NOT NULL,
  created_at TIMESTAMPTZ NOT NULL,
  consumed_at TIMESTAMPTZ,
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
  started_at TIMESTAMPTZ NOT NULL,
  heartbeat_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_runs_created ON runs(created_at, id);
CREATE INDEX IF NOT EXISTS idx_runs_status ON runs(status, created_at);
CREATE INDEX IF NOT EXISTS idx_runs_parent ON runs(parent_run_id);
CREATE UNIQUE INDEX IF NOT EXISTS idx_runs_key ON runs(run_key) WHERE run_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS idx_runs_claimable ON runs(created_at, id)
  WHERE status IN ('queued', 'running', 'paused');
CREATE OR REPLACE FUNCTION stepflow_fence(engine TEXT, run_ids TEXT[], epochs INTEGER[])
RETURNS void LANGUAGE plpgsql AS $fence$
DECLARE
  lost TEXT[];
BEGIN
  -- lock the runs still held (in id order: commits of several engines never deadlock), then
  -- name the ones that are not; a NULL epoch asks only that the run be this engine's
  PERFORM 1 FROM runs r JOIN unnest(run_ids, epochs) AS h(id, epoch) ON r.id = h.id
    WHERE r.owner_id = engine AND (h.epoch IS NULL OR r.lease_epoch = h.epoch)
    ORDER BY r.id FOR SHARE OF r;
  SELECT array_agg(h.id ORDER BY h.id) INTO lost FROM unnest(run_ids, epochs) AS h(id, epoch)
    WHERE NOT EXISTS (SELECT 1 FROM runs r WHERE r.id = h.id AND r.owner_id = engine
      AND (h.epoch IS NULL OR r.lease_epoch = h.epoch));
  IF lost IS NOT NULL THEN
    RAISE EXCEPTION USING ERRCODE = 'SF001',
      MESSAGE = 'the lease of run(s) ' || array_to_string(lost, ', ') ||
        ' is no longer held by engine ' || engine,
      DETAIL = array_to_string(lost, ',');
  END IF;
END
$fence$;
`;

/** How a top-level run was started (`StoredRunOptions`): NULL for runs recorded before. */
const RUN_OPTIONS = `
ALTER TABLE runs ADD COLUMN IF NOT EXISTS options_json TEXT;
`;

/** A batch's `maxConcurrency` (`BatchRecord.maxConcurrency`): NULL for batches recorded before. */
const BATCH_MAX_CONCURRENCY = `
ALTER TABLE batches ADD COLUMN IF NOT EXISTS max_concurrency INTEGER;
`;

/**
 * The advisory lock class of a batch's claims (`pg_try_advisory_xact_lock(class, hashtext(id))`):
 * "Sflb" in ASCII. Two batches whose ids hash alike only make a claimer skip one of them once.
 */
export const BATCH_LOCK_CLASS = 0x53666c62;

/**
 * A batch's `maxConcurrency` counted in the database by every claimer (PostgreSQL only: the
 * engines of a cluster claim the runs of one batch, src/state/postgres_cluster.ts):
 * - `runs.limited_batch_id`: the batch whose `maxConcurrency` the run counts against, set when the
 *   run is created in the commit of a batch that has one (NULL otherwise: most runs);
 * - two partial indexes, small and only over unfinished runs of such batches: the queued ones (the
 *   claim finds their batches and takes the oldest) and the running or paused ones (counted);
 * - `stepflow_batch_admit(lim)`: the ids of the queued runs of such batches that may start now,
 *   at most `lim`. For each batch with queued runs (ids in order: UUID v7, so oldest batch
 *   first), it takes the batch's transaction-level advisory lock — skipping the batch when
 *   another claimer holds it —, then counts the batch's `running`/`paused` runs in a statement of
 *   its own (a fresh snapshot: every claim of the batch committed before the lock was taken is
 *   seen), and returns up to `max_concurrency - count` of its oldest queued runs. The lock is
 *   held until the claim's transaction ends, so no two claimers admit runs of one batch at once.
 *   A batch without a record or without a limit is not limited.
 */
const BATCH_CLAIMS = `
ALTER TABLE runs ADD COLUMN IF NOT EXISTS limited_batch_id TEXT;
CREATE INDEX IF NOT EXISTS idx_runs_limited_queued ON runs(limited_batch_id, created_at, id)
  WHERE status = 'queued' AND limited_batch_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS idx_runs_limited_active ON runs(limited_batch_id)
  WHERE status IN ('running', 'paused') AND limited_batch_id IS NOT NULL;
CREATE OR REPLACE FUNCTION stepflow_batch_admit(lim INTEGER)
RETURNS SETOF TEXT LANGUAGE plpgsql VOLATILE AS $admit$
DECLARE
  b TEXT;
  cap INTEGER;
  free INTEGER;
  n INTEGER;
  remaining INTEGER := lim;
BEGIN
  IF lim IS NULL OR lim <= 0 THEN RETURN; END IF;
  -- the batches with queued runs, one index probe each (a skip scan of the partial index)
  FOR b IN
    WITH RECURSIVE q(id) AS (
      (SELECT r.limited_batch_id FROM runs r
        WHERE r.status = 'queued' AND r.limited_batch_id IS NOT NULL
        ORDER BY r.limited_batch_id LIMIT 1)
      UNION ALL
      SELECT (SELECT r.limited_batch_id FROM runs r
          WHERE r.status = 'queued' AND r.limited_batch_id IS NOT NULL
            AND r.limited_batch_id > q.id
          ORDER BY r.limited_batch_id LIMIT 1)
      FROM q WHERE q.id IS NOT NULL
    )
    SELECT q.id FROM q WHERE q.id IS NOT NULL
  LOOP
    -- another engine is claiming this batch's runs now: skip it (its claim is short)
    CONTINUE WHEN NOT pg_try_advisory_xact_lock(${BATCH_LOCK_CLASS}, hashtext(b));
    SELECT x.max_concurrency INTO cap FROM batches x WHERE x.id = b;
    IF cap IS NULL THEN
      free := remaining;
    ELSE
      -- counted after the lock: a statement of its own, so a fresh snapshot
      SELECT cap - count(*) INTO free FROM runs r
        WHERE r.limited_batch_id = b AND r.status IN ('running', 'paused');
    END IF;
    CONTINUE WHEN free <= 0;
    RETURN QUERY SELECT r.id FROM runs r
      WHERE r.limited_batch_id = b AND r.status = 'queued'
      ORDER BY r.created_at, r.id LIMIT LEAST(free, remaining);
    GET DIAGNOSTICS n = ROW_COUNT;
    remaining := remaining - n;
    EXIT WHEN remaining <= 0;
  END LOOP;
END
$admit$;
`;

/** PostgreSQL migrations in order (names as the SQLite store's). Each script is idempotent. */
export const PG_MIGRATIONS: readonly Migration[] = [
  { name: "0001_initial_schema", sql: INITIAL },
  { name: "0002_durable_runs", sql: DURABLE },
  { name: "0003_run_options", sql: RUN_OPTIONS },
  { name: "0004_batch_max_concurrency", sql: BATCH_MAX_CONCURRENCY },
  // PostgreSQL only: SQLite's services run their batches themselves (src/server/batches.ts)
  { name: "0005_batch_claims", sql: BATCH_CLAIMS },
];

/** Tables the store needs (a database lacking one is not migrated): the SQLite store's. */
export const PG_REQUIRED_TABLES: readonly string[] = REQUIRED_TABLES;
