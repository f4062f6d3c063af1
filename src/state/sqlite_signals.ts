/**
 * Signals and deletion in the SQLite store (src/state/sqlite.ts): storing and taking a run's
 * signals, deleting a run with its nested runs, pruning old runs. Each function runs inside the
 * caller's transaction.
 * @module
 */
import { type JsonValue, stringifyJson } from "../json/exact_json.ts";
import type { SqliteCore } from "./sqlite_core.ts";
import { signalFromRow, type SignalRow } from "./rows.ts";
import { nowRfc3339, type SignalRecord } from "./store.ts";

/** Stores a signal for a run, with a `signal_received` event. */
export function insertSignal(
  c: SqliteCore,
  signal: { runId: string; name: string; data: JsonValue },
  at: string,
): SignalRecord {
  const { lastInsertRowid } = c.stmt(
    "INSERT INTO signals(run_id, name, data, created_at) VALUES (?, ?, ?, ?)",
  ).run(signal.runId, signal.name, stringifyJson(signal.data), at);
  const id = Number(lastInsertRowid);
  c.event(
    signal.runId,
    c.rootOf(signal.runId),
    "signal_received",
    null,
    null,
    null,
    stringifyJson({ name: signal.name, signalId: id }),
    at,
  );
  return { id, runId: signal.runId, name: signal.name, data: signal.data, createdAt: at };
}

/** The oldest signal `name` of `runId` not taken yet, taken by `consumer` (again: the same). */
export function takeSignal(
  c: SqliteCore,
  runId: string,
  name: string,
  consumer: string,
): SignalRecord | undefined {
  const mine = c.stmt(
    "SELECT * FROM signals WHERE run_id = ? AND name = ? AND consumed_by = ? ORDER BY id LIMIT 1",
  ).get(runId, name, consumer) as SignalRow | undefined;
  if (mine) return signalFromRow(mine);
  const row = c.stmt(
    `UPDATE signals SET consumed_at = ?, consumed_by = ? WHERE id = (
       SELECT id FROM signals WHERE run_id = ? AND name = ? AND consumed_at IS NULL
       ORDER BY id LIMIT 1) RETURNING *`,
  ).get(nowRfc3339(), consumer, runId, name) as SignalRow | undefined;
  return row ? signalFromRow(row) : undefined;
}

/** Deletes run `runId` and its nested runs; false when it does not exist. */
export function deleteRunTree(c: SqliteCore, runId: string): boolean {
  const ids = tree(c, [runId]);
  if (ids.length === 0) return false;
  deleteRuns(c, ids);
  return true;
}

/** Deletes finished top-level runs (and their nested runs) that ended before `before`. */
export function pruneBefore(c: SqliteCore, before: string): number {
  const roots = (c.stmt(
    `SELECT id FROM runs WHERE parent_run_id IS NULL
       AND status IN ('completed', 'failed', 'cancelled')
       AND COALESCE(completed_at, created_at) < ?`,
  ).all(before) as { id: string }[]).map((r) => r.id);
  if (roots.length === 0) return 0;
  const ids = tree(c, roots);
  deleteRuns(c, ids);
  c.stmt("DELETE FROM batches WHERE id NOT IN (SELECT batch_id FROM batch_runs)").run();
  return ids.length;
}

/** `roots` that exist and every run nested under them. */
function tree(c: SqliteCore, roots: string[]): string[] {
  const rows = c.stmt(
    `WITH RECURSIVE tree(id) AS (
       SELECT id FROM runs WHERE id IN (SELECT value FROM json_each(?))
       UNION SELECT r.id FROM runs r JOIN tree t ON r.parent_run_id = t.id)
     SELECT id FROM tree`,
  ).all(JSON.stringify(roots)) as { id: string }[];
  return rows.map((r) => r.id);
}

function deleteRuns(c: SqliteCore, ids: string[]): void {
  const json = JSON.stringify(ids);
  // events through their (root_run_id, id) index
  c.stmt(
    `DELETE FROM run_events WHERE root_run_id IN (
       SELECT DISTINCT COALESCE(root_run_id, id) FROM runs
       WHERE id IN (SELECT value FROM json_each(?1)))
     AND run_id IN (SELECT value FROM json_each(?1))`,
  ).run(json);
  for (const table of ["step_results", "step_info", "signals", "batch_runs"]) {
    c.stmt(`DELETE FROM ${table} WHERE run_id IN (SELECT value FROM json_each(?))`).run(json);
  }
  c.stmt("DELETE FROM runs WHERE id IN (SELECT value FROM json_each(?))").run(json);
  for (const id of ids) {
    c.open.delete(id);
    c.roots.delete(id);
  }
}
