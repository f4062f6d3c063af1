/**
 * Reads of the SQLite store (src/state/sqlite.ts): runs, step results and statuses, the journal,
 * signals, batches and engines. Each reads what is committed: the store commits its queue first.
 * @module
 */
import { parseJson } from "../json/exact_json.ts";
import type { FlowResult } from "../core/flow_result.ts";
import type { SqliteCore } from "./sqlite_core.ts";
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
  type EngineRecord,
  type EventFilter,
  normalizeInstant,
  type RunEventRecord,
  type RunFilter,
  type RunRecord,
  type SignalRecord,
  type StepInfoRecord,
  type StepResultRecord,
  type StepStatus,
  type StoredBlob,
} from "./store.ts";

/** Run `runId`. */
export function readRun(c: SqliteCore, runId: string): RunRecord | undefined {
  const row = c.stmt("SELECT * FROM runs WHERE id = ?").get(runId) as RunRow | undefined;
  return row ? runFromRow(row) : undefined;
}

/** The run recorded with idempotency key `runKey`. */
export function readRunByKey(c: SqliteCore, runKey: string): RunRecord | undefined {
  const row = c.stmt("SELECT * FROM runs WHERE run_key = ?").get(runKey) as RunRow | undefined;
  return row ? runFromRow(row) : undefined;
}

/** Runs matching `filter`, newest first. */
export function readRuns(c: SqliteCore, filter: RunFilter): RunRecord[] {
  const { where, args } = whereEqual([
    ["status = ?", filter.status],
    ["flow_name = ?", filter.flowName],
    ["created_at >= ?", filter.since === undefined ? undefined : normalizeInstant(filter.since)],
    ["parent_run_id = ?", filter.parentRunId],
  ], filter.rootOnly ? ["parent_run_id IS NULL"] : []);
  const sql = `SELECT * FROM runs${where} ORDER BY created_at DESC, id ASC LIMIT ? OFFSET ?`;
  args.push(filter.limit ?? -1, filter.offset ?? 0);
  const rows = c.stmt(sql).all(...args) as unknown as RunRow[];
  return rows.map(runFromRow);
}

/**
 * A ` WHERE ...` clause (or "") of the conditions whose value is defined, ANDed with `always`,
 * and its arguments in order.
 */
function whereEqual(
  conditions: [sql: string, value: string | number | undefined][],
  always: string[] = [],
): { where: string; args: (string | number)[] } {
  const parts: string[] = [];
  const args: (string | number)[] = [];
  for (const [sql, value] of conditions) {
    if (value === undefined) continue;
    parts.push(sql);
    args.push(value);
  }
  parts.push(...always);
  return { where: parts.length ? ` WHERE ${parts.join(" AND ")}` : "", args };
}

/** The stored step results of `runId`, by step index. */
export function readStepResults(c: SqliteCore, runId: string): StepResultRecord[] {
  const rows = c.stmt(
    "SELECT step_index, step_id, result FROM step_results WHERE run_id = ? ORDER BY step_index",
  ).all(runId) as { step_index: number; step_id: string; result: string }[];
  return rows.map((r) => ({
    stepIndex: Number(r.step_index),
    stepId: r.step_id,
    result: parseJson(r.result) as unknown as FlowResult,
  }));
}

/** The step statuses of `runId`, by step index. */
export function readStepInfo(c: SqliteCore, runId: string): StepInfoRecord[] {
  const rows = c.stmt(
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
  return rows.map((r) => {
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
  });
}

/** Journal events matching `filter`, in order. */
export function readEvents(c: SqliteCore, filter: EventFilter): RunEventRecord[] {
  const where = ["id > ?"];
  const args: (string | number)[] = [filter.afterId ?? 0];
  if (filter.runId !== undefined) {
    // through the (root_run_id, id) index: the events table has no index of its own on run_id
    where.push("root_run_id = ?", "run_id = ?");
    args.push(filter.rootRunId ?? c.rootOf(filter.runId), filter.runId);
  } else if (filter.rootRunId !== undefined) {
    where.push("root_run_id = ?");
    args.push(filter.rootRunId);
  }
  args.push(filter.limit ?? -1);
  const rows = c.stmt(
    `SELECT * FROM run_events WHERE ${where.join(" AND ")} ORDER BY id LIMIT ?`,
  ).all(...args) as unknown as EventRow[];
  return rows.map(eventFromRow);
}

/** The signals sent to `runId`, oldest first. */
export function readSignals(c: SqliteCore, runId: string): SignalRecord[] {
  const rows = c.stmt("SELECT * FROM signals WHERE run_id = ? ORDER BY id").all(
    runId,
  ) as unknown as SignalRow[];
  return rows.map(signalFromRow);
}

/** The engines registered in the database. */
export function readEngines(c: SqliteCore): EngineRecord[] {
  const rows = c.stmt("SELECT * FROM engines ORDER BY started_at, id")
    .all() as unknown as EngineRow[];
  return rows.map(engineFromRow);
}

/** Batch `batchId`. */
export function readBatch(c: SqliteCore, batchId: string): BatchRecord | undefined {
  const row = c.stmt("SELECT * FROM batches WHERE id = ?").get(batchId) as BatchRow | undefined;
  return row ? batchFromRow(row) : undefined;
}

/** The batch run `runId` belongs to. */
export function readBatchOfRun(c: SqliteCore, runId: string): BatchRecord | undefined {
  const row = c.stmt(
    `SELECT b.* FROM batch_runs r JOIN batches b ON b.id = r.batch_id WHERE r.run_id = ?
     LIMIT 1`,
  ).get(runId) as BatchRow | undefined;
  return row ? batchFromRow(row) : undefined;
}

/** Batches matching `filter`, newest first. */
export function readBatches(c: SqliteCore, filter: BatchFilter): BatchRecord[] {
  const { where, args } = whereEqual([
    ["status = ?", filter.status],
    ["flow_name = ?", filter.flowName],
  ]);
  const rows = c.stmt(
    `SELECT * FROM batches${where} ORDER BY created_at DESC, rowid DESC LIMIT ? OFFSET ?`,
  ).all(...args, filter.limit ?? -1, filter.offset ?? 0) as unknown as BatchRow[];
  return rows.map(batchFromRow);
}

/** The runs of batch `batchId`, by input index. */
export function readBatchRuns(c: SqliteCore, batchId: string): { runId: string; index: number }[] {
  const rows = c.stmt(
    "SELECT run_id, batch_input_index FROM batch_runs WHERE batch_id = ? ORDER BY batch_input_index",
  ).all(batchId) as { run_id: string; batch_input_index: number }[];
  return rows.map((r) => ({ runId: r.run_id, index: Number(r.batch_input_index) }));
}

/** Blob `id` (lower-case) from the table. */
export function readBlob(c: SqliteCore, id: string): StoredBlob | undefined {
  const row = c.stmt("SELECT id, data, blob_type FROM blobs WHERE id = ?").get(id) as
    | { id: string; data: string; blob_type: string }
    | undefined;
  if (!row) return undefined;
  return {
    id: row.id,
    data: parseJson(row.data),
    blobType: row.blob_type === "flow" ? "flow" : "data",
  };
}
