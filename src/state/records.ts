/**
 * The records of the state store (src/state/store.ts): runs, step results and statuses, journal
 * events, signals, engines, claims and batches, with the helpers that derive their fields (a
 * step result's status and event, times as RFC 3339, the newest-first order). Times are RFC 3339
 * strings (UTC, milliseconds). Import them from src/state/store.ts, which re-exports them.
 * @module
 */
import type { JsonValue } from "../json/exact_json.ts";
import type { FlowResult } from "../core/flow_result.ts";

/**
 * Run status. stepflow 0.8's five (a skipped outcome is recorded as `failed`), plus `queued`: a
 * run accepted but not started by any engine yet (service, PostgreSQL queue).
 */
export type RunStatus = "queued" | "running" | "completed" | "failed" | "cancelled" | "paused";

/** Every {@linkcode RunStatus}. */
export const RUN_STATUSES: readonly RunStatus[] = [
  "queued",
  "running",
  "completed",
  "failed",
  "cancelled",
  "paused",
];

/** Statuses of a run that will not change again (unless the run is resumed). */
export function isFinished(status: RunStatus): boolean {
  return status === "completed" || status === "failed" || status === "cancelled";
}

/** Step status (stepflow 0.8's `step_info.status`). */
export type StepStatus = "blocked" | "runnable" | "running" | "completed" | "skipped" | "failed";

/**
 * What a write returns: `undefined` when the write is already applied (in-memory store), or the
 * promise of the commit holding it. The promise rejects with a `StoreError`; dropping it
 * is safe (it is marked handled).
 */
export type Stored = void | Promise<void>;

/** A stored blob. */
export interface StoredBlob {
  id: string;
  data: JsonValue;
  blobType: "data" | "flow";
}

/** What is known about one run. Times are RFC 3339 strings (UTC, milliseconds). */
export interface RunRecord {
  /** Hyphenated UUID. */
  runId: string;
  /** Blob id of the flow (the flow is stored as a `flow` blob). */
  flowId: string;
  flowName?: string;
  status: RunStatus;
  input: JsonValue;
  result?: FlowResult;
  overrides?: JsonValue;
  /** Run variables (§1.8) as given to the run (needed to re-drive it). */
  variables?: Record<string, JsonValue>;
  createdAt: string;
  completedAt?: string;
  /** The run that started this one (nested `eval`/`map`/`iterate` runs, batch items). */
  parentRunId?: string;
  /**
   * The top-level run of a tree of nested runs (its own id for a top-level run). Filled in by
   * the store from the parent when not given.
   */
  rootRunId?: string;
  /**
   * Deterministic key of a nested run, `<parentRunId>/<stepId>[/<item>]`, unique in the store:
   * a re-run parent finds its nested run by key (`StateStore.findRunByKey`) instead of
   * starting another.
   */
  runKey?: string;
  /** Engine that executes (or last executed) the run; set by the store on `createRun`. */
  ownerId?: string;
  /** Incremented each time another engine takes the run over; fences the old owner's writes. */
  leaseEpoch?: number;
  /**
   * When the owner's lease ends unless renewed, RFC 3339 (PostgreSQL: set on the runs an engine
   * claimed or started at top level; nested runs follow their top-level run's lease). After it,
   * another engine may take the run over.
   */
  leaseExpiresAt?: string;
  /**
   * Started in debug mode (stepflow 0.8: `runs.debug_mode`): its steps wait for debug commands,
   * also after the run is resumed.
   */
  debugMode?: boolean;
  /**
   * How a top-level run was started, so that a resume continues it the same way (`stepflow
   * resume`, `POST /runs/{id}/resume`): absent for nested runs, runs queued by a service and runs
   * recorded before this was stored (schema migration `0003_run_options`).
   */
  runOptions?: StoredRunOptions;
}

/**
 * The options a top-level run was started with that are not in its flow, input, variables or
 * overrides (`runs.options_json`). Limits are the ones in effect when the run started (a flag,
 * else the config's).
 */
export interface StoredRunOptions {
  /** Absolute path of the config file (absent: the run had no config file, e.g. the default). */
  configPath?: string;
  /** SHA-256 (lowercase hex) of the config file's bytes when the run started. */
  configSha256?: string;
  /**
   * Absolute directory relative paths resolved against, for a run without a config file (the
   * default config's: the flow's directory); with one, it follows from the file.
   */
  workingDirectory?: string;
  /**
   * The run timeout, ms (`--timeout`, config `runTimeout`): a resumed run whose engine stopped
   * gets what is left of it (src/execution/resume.ts).
   */
  timeoutMs?: number;
  /** Most steps in flight at once (`--max-concurrency`, config `maxConcurrency`). */
  maxConcurrency?: number;
  /** Most nested runs (`RunOptions.maxNestedRuns`), when given to the run. */
  maxNestedRuns?: number;
  /** Most steps started (`RunOptions.maxRunSteps`), when given to the run. */
  maxRunSteps?: number;
}

/** Which runs `StateStore.listRuns` returns. */
export interface RunFilter {
  status?: RunStatus;
  flowName?: string;
  /** RFC 3339: runs created at or after this instant. */
  since?: string;
  /** Most runs returned (default: all). */
  limit?: number;
  /** Runs skipped before the first returned (paging). */
  offset?: number;
  /** Only runs without a parent (top-level runs). */
  rootOnly?: boolean;
  /** Only the runs started by this run (its nested runs, one level). */
  parentRunId?: string;
}

/** One step's stored result. */
export interface StepResultRecord {
  stepIndex: number;
  stepId: string;
  result: FlowResult;
  /** The component path as written in the flow; fills `step_info.component`. */
  component?: string;
  /** 1 for the first attempt (as `components/execute` carries it). */
  attempt?: number;
  /** How long the step took, ms (all its attempts). */
  durationMs?: number;
  /** When the step finished, RFC 3339 (default: now). */
  at?: string;
}

/** A step attempt that started. */
export interface StepStartRecord {
  stepIndex: number;
  stepId: string;
  component: string;
  /** 1 for the first attempt. */
  attempt: number;
  /** When it started, RFC 3339 (default: now). */
  at?: string;
}

/** A step's status (stepflow 0.8's `step_info` row, plus attempt and duration). */
export interface StepInfoRecord {
  stepIndex: number;
  stepId: string;
  component: string;
  status: StepStatus;
  /** The last attempt started (1 for the first). */
  attempt: number;
  /** When the first attempt started. */
  createdAt: string;
  updatedAt: string;
  /** Set once the step finished. */
  durationMs?: number;
}

/**
 * Kinds of journal events (append-only, in commit order):
 * - `run_queued` / `run_started`: a run was created queued / started running;
 * - `run_resumed`: an engine took the run over to continue it (`data.leaseEpoch`);
 * - `run_interrupted`: the run's engine stopped before it finished (`data.reason`);
 * - `run_paused`: the run waits for something outside (a signal);
 * - `step_started`: a step attempt started (`attempt`);
 * - `step_completed` / `step_failed` / `step_skipped`: a step's result was stored
 *   (`data.durationMs`; `data.error: {code, message}` for failures);
 * - `signal_received`: a signal was stored for the run (`data.name`, `data.signalId`);
 * - `run_completed`: the run finished (`data.status`, `data.outcome`).
 */
export type RunEventType =
  | "run_queued"
  | "run_started"
  | "run_resumed"
  | "run_interrupted"
  | "run_paused"
  | "step_started"
  | "step_completed"
  | "step_failed"
  | "step_skipped"
  | "signal_received"
  | "run_completed";

/** One journal entry. */
export interface RunEventRecord {
  /** Increases with every event in the store (commit order); resume a stream after it. */
  id: number;
  runId: string;
  /** The top-level run of `runId` (itself for a top-level run). */
  rootRunId: string;
  type: RunEventType;
  stepIndex?: number;
  stepId?: string;
  attempt?: number;
  data?: JsonValue;
  /** RFC 3339. */
  at: string;
}

/** Which events `StateStore.getEvents` returns (ascending id). */
export interface EventFilter {
  /** Events of this run only. */
  runId?: string;
  /** Events of this run and every run nested under it. */
  rootRunId?: string;
  /** Only events with a larger id (an SSE stream's `Last-Event-ID`). */
  afterId?: number;
  /** Most events returned. */
  limit?: number;
}

/** A signal sent to a run (human in the loop, `/builtin/wait_for`). */
export interface SignalRecord {
  id: number;
  runId: string;
  name: string;
  data: JsonValue;
  createdAt: string;
  /** Set once a waiting step took it. */
  consumedAt?: string;
  /** Who took it (`<runId>/<stepId>`). */
  consumedBy?: string;
}

/** An engine that owns runs in the store (the `engines` table). */
export interface EngineRecord {
  engineId: string;
  host?: string;
  pid?: number;
  /** Where the engine's service answers (`serve`), when it has one. */
  url?: string;
  /** RFC 3339. */
  startedAt: string;
  /** RFC 3339: the engine's last heartbeat. */
  heartbeatAt: string;
}

/** What `StateStore.claimRun` says. */
export type ClaimResult =
  | { claimed: true; leaseEpoch: number }
  | { claimed: false; reason: "unknown" | "owned"; owner?: EngineRecord };

/** What `StateStore.claimRuns` takes. */
export interface ClaimOptions {
  /** Most runs claimed at once (a positive integer). */
  limit: number;
}

/** A run taken by `StateStore.claimRuns`. */
export interface ClaimedRun {
  /** The run as stored after the claim: status `running` (or `paused`), owned by this engine. */
  run: RunRecord;
  /** The epoch that fences this engine's writes to the run. */
  leaseEpoch: number;
  /**
   * True when the run had started before (its engine died, stalled past its lease, or released
   * it): continue it from its journal; false for a run taken from the queue.
   */
  resumed: boolean;
}

/** What `StateStore.renewLeases` found. */
export interface LeaseRenewal {
  /** Runs whose lease this engine still holds (renewed until now + the lease TTL). */
  renewed: string[];
  /**
   * Runs this engine held and lost: another engine took them over (or they were deleted). Every
   * later write of this engine to them is refused; the engine should stop executing them.
   */
  lost: string[];
}

/** A batch of runs of one flow (`/map`, `flows/submit_batch`). */
export interface BatchRecord {
  batchId: string;
  flowId: string;
  flowName?: string;
  totalInputs: number;
  status: "running" | "cancelled";
  createdAt: string;
  /**
   * Most runs of the batch at once (`POST /batches` `maxConcurrency`), kept so that an engine
   * taking the batch over keeps to it; absent when none was given, and for batches recorded
   * before it was stored (schema migration `0004_batch_max_concurrency`).
   */
  maxConcurrency?: number;
}

/** Which batches `StateStore.listBatches` returns (stepflow 0.8 `BatchFilters`). */
export interface BatchFilter {
  status?: BatchRecord["status"];
  flowName?: string;
  /** Most batches returned (default: all). */
  limit?: number;
  /** Batches skipped before the first returned (paging). */
  offset?: number;
}

/** The journal event type of a stored step result. */
export function stepEventType(result: FlowResult): RunEventType {
  return result.outcome === "success"
    ? "step_completed"
    : result.outcome === "failed"
    ? "step_failed"
    : "step_skipped";
}

/** The `step_info` status of a stored step result. */
export function stepStatusOf(result: FlowResult): StepStatus {
  return result.outcome === "success"
    ? "completed"
    : result.outcome === "failed"
    ? "failed"
    : "skipped";
}

/** Journal data of a stored step result: duration and, for a failure, the error's code/message. */
export function stepEventData(record: StepResultRecord): JsonValue | undefined {
  const r = record.result;
  if (r.outcome === "failed") {
    const d: { [k: string]: JsonValue } = {
      error: { code: r.error.code, message: r.error.message },
    };
    if (record.durationMs !== undefined) d.durationMs = record.durationMs;
    return d;
  }
  return record.durationMs === undefined ? undefined : { durationMs: record.durationMs };
}

let lastMs = -1;
let lastText = "";

/** The current time as RFC 3339 (UTC, milliseconds); formatted at most once per millisecond. */
export function nowRfc3339(): string {
  const ms = Date.now();
  if (ms !== lastMs) {
    lastMs = ms;
    lastText = new Date(ms).toISOString();
  }
  return lastText;
}

/** `2024-05-01`, optionally with a time (`T` or a space), fraction and offset. */
const RFC3339 =
  /^(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?(?:[Zz]|[+-](\d{2}):(\d{2}))?)?$/;

/**
 * An RFC 3339 instant normalised to the stores' form (`2024-05-01T10:00:00.000Z`), so that text
 * comparison orders instants. A date alone is its midnight UTC; a time without an offset is local
 * time. Only years 0000-9999 and real calendar dates are taken: `99999-01-01` (which would print
 * as `+099999-...` and compare before every stored time), `0` (which `Date.parse` reads as the
 * year 2000) or `2026-02-30` (which it rolls over to March) are refused.
 * @throws {RangeError} for text that is not such a date-time.
 */
export function normalizeInstant(text: string): string {
  const m = RFC3339.exec(text.trim());
  const ms = m && validFields(m) ? Date.parse(text.trim()) : NaN;
  if (Number.isNaN(ms)) {
    throw new RangeError(`'${text}' is not an RFC 3339 date-time (e.g. 2024-05-01T10:00:00Z)`);
  }
  const iso = new Date(ms).toISOString();
  if (!/^\d{4}-/.test(iso)) {
    throw new RangeError(`'${text}' is out of range: give a year from 0000 to 9999`);
  }
  return iso;
}

function validFields(m: RegExpExecArray): boolean {
  const [year, month, day] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (month < 1 || month > 12 || day < 1) return false;
  const days = new Date(Date.UTC(2000, month, 0)).getUTCDate(); // 29 for February
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  if (day > (month === 2 && !leap ? 28 : days)) return false;
  if (m[4] !== undefined && (Number(m[4]) > 23 || Number(m[5]) > 59)) return false;
  if (m[6] !== undefined && Number(m[6]) > 59) return false;
  if (m[7] !== undefined && (Number(m[7]) > 23 || Number(m[8]) > 59)) return false;
  return true;
}

/** Compares runs newest first: createdAt descending, then runId ascending. */
export function compareNewestFirst(a: RunRecord, b: RunRecord): number {
  if (a.createdAt !== b.createdAt) return a.createdAt < b.createdAt ? 1 : -1;
  return a.runId < b.runId ? -1 : a.runId > b.runId ? 1 : 0;
}
