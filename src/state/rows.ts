/**
 * Rows of the persistent stores' tables as records, shared by the SQLite store (times are RFC 3339
 * text) and the PostgreSQL store (times are `timestamptz`, read as `Date`).
 * @module
 */
import { type JsonValue, parseJson } from "../json/exact_json.ts";
import type { FlowResult } from "../core/flow_result.ts";
import type {
  BatchRecord,
  EngineRecord,
  RunEventRecord,
  RunEventType,
  RunRecord,
  RunStatus,
  SignalRecord,
  StoredRunOptions,
} from "./store.ts";

/** A time column as RFC 3339: text as stored (SQLite), a `Date` in UTC with milliseconds. */
export function time(v: string | Date): string {
  return typeof v === "string" ? v : v.toISOString();
}

export interface RunRow<Time = string> {
  id: string;
  flow_id: string;
  flow_name: string | null;
  status: string;
  input_json: string | null;
  result_json: string | null;
  created_at: Time;
  completed_at: Time | null;
  overrides_json: string | null;
  parent_run_id: string | null;
  root_run_id: string | null;
  run_key: string | null;
  variables_json: string | null;
  owner_id: string | null;
  lease_epoch: number | null;
  lease_expires_at?: Time | null;
  /** 0/1 in SQLite, a boolean in PostgreSQL. */
  debug_mode?: number | boolean | null;
  /** `StoredRunOptions` as JSON (migration `0003_run_options`; absent before it). */
  options_json?: string | null;
}

/** A `runs` row as a {@linkcode RunRecord}. */
export function runFromRow(row: RunRow<string | Date>): RunRecord {
  const r: RunRecord = {
    runId: row.id,
    flowId: row.flow_id,
    status: row.status as RunStatus,
    input: row.input_json === null ? null : parseJson(row.input_json),
    createdAt: time(row.created_at),
  };
  if (row.flow_name !== null) r.flowName = row.flow_name;
  if (row.result_json !== null) r.result = parseJson(row.result_json) as unknown as FlowResult;
  if (row.completed_at !== null) r.completedAt = time(row.completed_at);
  if (row.overrides_json !== null) r.overrides = parseJson(row.overrides_json);
  if (row.variables_json != null) {
    r.variables = parseJson(row.variables_json) as Record<string, JsonValue>;
  }
  if (row.parent_run_id !== null) r.parentRunId = row.parent_run_id;
  r.rootRunId = row.root_run_id ?? row.id;
  if (row.run_key != null) r.runKey = row.run_key;
  if (row.owner_id != null) r.ownerId = row.owner_id;
  if (row.lease_epoch != null) r.leaseEpoch = Number(row.lease_epoch);
  if (row.lease_expires_at != null) r.leaseExpiresAt = time(row.lease_expires_at);
  if (row.debug_mode) r.debugMode = true;
  if (row.options_json != null) {
    const options = runOptionsFromJson(row.options_json);
    if (options !== undefined) r.runOptions = options;
  }
  return r;
}

/** `runs.options_json` as {@linkcode StoredRunOptions}; undefined when it is not an object. */
function runOptionsFromJson(text: string): StoredRunOptions | undefined {
  try {
    const v = JSON.parse(text);
    return v !== null && typeof v === "object" && !Array.isArray(v) ? v : undefined;
  } catch {
    return undefined; // unreadable: the run resumes as a run recorded without options
  }
}

export interface EventRow<Time = string> {
  id: number;
  run_id: string;
  root_run_id: string;
  type: string;
  step_index: number | null;
  step_id: string | null;
  attempt: number | null;
  data: string | null;
  at: Time;
}

/** A `run_events` row as a {@linkcode RunEventRecord}. */
export function eventFromRow(row: EventRow<string | Date>): RunEventRecord {
  const e: RunEventRecord = {
    id: Number(row.id),
    runId: row.run_id,
    rootRunId: row.root_run_id,
    type: row.type as RunEventType,
    at: time(row.at),
  };
  if (row.step_index !== null) e.stepIndex = Number(row.step_index);
  if (row.step_id !== null) e.stepId = row.step_id;
  if (row.attempt !== null) e.attempt = Number(row.attempt);
  if (row.data !== null) e.data = parseJson(row.data);
  return e;
}

export interface SignalRow<Time = string> {
  id: number;
  run_id: string;
  name: string;
  data: string;
  created_at: Time;
  consumed_at: Time | null;
  consumed_by: string | null;
}

/** A `signals` row as a {@linkcode SignalRecord}. */
export function signalFromRow(row: SignalRow<string | Date>): SignalRecord {
  const s: SignalRecord = {
    id: Number(row.id),
    runId: row.run_id,
    name: row.name,
    data: parseJson(row.data),
    createdAt: time(row.created_at),
  };
  if (row.consumed_at !== null) s.consumedAt = time(row.consumed_at);
  if (row.consumed_by !== null) s.consumedBy = row.consumed_by;
  return s;
}

export interface EngineRow<Time = string> {
  id: string;
  host: string | null;
  pid: number | null;
  pid_start: string | null;
  pid_ns: string | null;
  url: string | null;
  started_at: Time;
  heartbeat_at: Time;
}

/** An `engines` row as an {@linkcode EngineRecord}. */
export function engineFromRow(row: EngineRow<string | Date>): EngineRecord {
  const e: EngineRecord = {
    engineId: row.id,
    startedAt: time(row.started_at),
    heartbeatAt: time(row.heartbeat_at),
  };
  if (row.host !== null) e.host = row.host;
  if (row.pid !== null) e.pid = Number(row.pid);
  if (row.url !== null) e.url = row.url;
  return e;
}

export interface BatchRow<Time = string> {
  id: string;
  flow_id: string;
  flow_name: string | null;
  total_inputs: number;
  status: string;
  created_at: Time;
  /** Migration `0004_batch_max_concurrency`; absent before it. */
  max_concurrency?: number | null;
}

/** A `batches` row as a {@linkcode BatchRecord}. */
export function batchFromRow(row: BatchRow<string | Date>): BatchRecord {
  const b: BatchRecord = {
    batchId: row.id,
    flowId: row.flow_id,
    totalInputs: Number(row.total_inputs),
    status: row.status === "cancelled" ? "cancelled" : "running",
    createdAt: time(row.created_at),
  };
  if (row.flow_name !== null) b.flowName = row.flow_name;
  if (row.max_concurrency != null) b.maxConcurrency = Number(row.max_concurrency);
  return b;
}
