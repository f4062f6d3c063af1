/**
 * The StateStore interface: blobs, runs, step results and statuses, the run journal, signals and
 * batches (stepflow 0.8 §9, plus what durable runs need: issue 12).
 *
 * **Writes** are synchronous calls that queue the write and return a {@linkcode Stored}: nothing
 * (`undefined`) from a store that applied the write at once (in-memory), or the promise of the
 * *group commit* holding the write (SQLite, later PostgreSQL). Every write queued during one
 * event-loop turn is committed in one transaction; the promise resolves once that transaction is
 * durable and rejects with a {@linkcode StoreError} naming the database and the cause when it is
 * not. A caller that must not go on before the write is stored (the durability rule: a step's
 * result is committed before a dependent step starts: src/execution/pipeline.ts) awaits the promise; a caller that does not
 * care may drop it (it never becomes an unhandled rejection). {@linkcode StateStore.flush} asks
 * for the commit at the end of the current microtask burst instead of the next macrotask.
 *
 * **Reads** are async so that remote databases fit; a store's reads see its own earlier writes.
 *
 * **Ownership** (issue 10 item 5, issue 14): a run being executed is owned by one engine
 * (`ownerId`, `leaseEpoch`). Writes are fenced: an engine that lost a run writes nothing more to
 * it. The SQLite store marks the runs of a dead engine `failed` with code
 * {@linkcode RUN_INTERRUPTED} when it is next opened; the PostgreSQL store gives each run a lease
 * (`leaseExpiresAt`, on the database clock) that its engine renews, and a run whose lease expired
 * is taken over by another engine ({@linkcode StateStore.claimRuns}).
 *
 * **The run queue** (issue 14): a run created `queued` waits for an engine. Every store offers the
 * same claim/lease API — {@linkcode StateStore.claimRuns}, {@linkcode StateStore.renewLeases},
 * {@linkcode StateStore.releaseRuns}, {@linkcode StateStore.registerEngine},
 * {@linkcode StateStore.listEngines}, {@linkcode StateStore.watchQueue} — with one engine per
 * in-memory store, and (SQLite) the engines of the processes sharing one database file.
 * @module
 */
import type { JsonValue } from "../json/exact_json.ts";
import type { FlowResult } from "../core/flow_result.ts";
import { failed } from "../core/flow_result.ts";
import { RUN_INTERRUPTED, STORE_FAILED } from "../core/error_codes.ts";

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
 * promise of the commit holding it. The promise rejects with a {@linkcode StoreError}; dropping it
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
   * a re-run parent finds its nested run by key ({@linkcode StateStore.findRunByKey}) instead of
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
}

/** Which runs {@linkcode StateStore.listRuns} returns. */
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

/** Which events {@linkcode StateStore.getEvents} returns (ascending id). */
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

/** What {@linkcode StateStore.claimRun} says. */
export type ClaimResult =
  | { claimed: true; leaseEpoch: number }
  | { claimed: false; reason: "unknown" | "owned"; owner?: EngineRecord };

/** What {@linkcode StateStore.claimRuns} takes. */
export interface ClaimOptions {
  /** Most runs claimed at once (a positive integer). */
  limit: number;
}

/** A run taken by {@linkcode StateStore.claimRuns}. */
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

/** What {@linkcode StateStore.renewLeases} found. */
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
}

/** Which batches {@linkcode StateStore.listBatches} returns (stepflow 0.8 `BatchFilters`). */
export interface BatchFilter {
  status?: BatchRecord["status"];
  flowName?: string;
  /** Most batches returned (default: all). */
  limit?: number;
  /** Batches skipped before the first returned (paging). */
  offset?: number;
}

/** Where runs, step results, the journal, signals, blobs and batches are kept. */
export interface StateStore {
  /** `inMemory`, `sqlite` or `postgres`. */
  readonly kind: string;
  /** This store's engine id: the `ownerId` of the runs it creates. */
  readonly engineId: string;

  // ---- blobs ----
  /**
   * Stores a blob (idempotent: same content, same id) and returns its id. `id`, when given, must
   * be `blobId(data)` (callers that already hashed the data pass it to save hashing again). The
   * blob is stored with the next commit ({@linkcode flush} to wait for it).
   */
  putBlob(data: JsonValue, blobType: "data" | "flow", id?: string): string;
  /** Reads a blob, or undefined for an unknown id. */
  getBlob(id: string): Promise<StoredBlob | undefined>;

  // ---- runs: writes ----
  /**
   * Records a new run (status `running` unless given; `queued` runs have no owner) and appends
   * `run_started` / `run_queued`. The store sets `ownerId`, `leaseEpoch` and, for a nested run,
   * `rootRunId` from its parent.
   */
  createRun(run: RunRecord): Stored;
  /** Records that a step attempt started: `step_info` status `running`, event `step_started`. */
  recordStepStarted(runId: string, start: StepStartRecord): Stored;
  /**
   * Records a step's result (replaces an earlier one for the same index), its `step_info` status
   * (`completed`, `failed` or `skipped`) and event (`step_completed`, ...).
   */
  recordStepResult(runId: string, record: StepResultRecord): Stored;
  /**
   * Marks a run finished with its result and appends `run_completed`. The returned promise (from
   * a committing store) also rejects when an earlier write of this run failed: a run whose state
   * was not all stored must not be reported as a success.
   */
  completeRun(runId: string, status: RunStatus, result?: FlowResult): Stored;
  /** Changes a run's status without finishing it (`paused` ↔ `running`), with an event. */
  setRunStatus(runId: string, status: RunStatus, event?: RunEventType, data?: JsonValue): Stored;

  // ---- runs: reads ----
  /** A run, or undefined. */
  getRun(runId: string): Promise<RunRecord | undefined>;
  /** The nested run with this key, or undefined. */
  findRunByKey(runKey: string): Promise<RunRecord | undefined>;
  /** Runs matching `filter`, newest first (createdAt desc, then runId). */
  listRuns(filter?: RunFilter): Promise<RunRecord[]>;
  /** A run's step results, by step index. */
  getStepResults(runId: string): Promise<StepResultRecord[]>;
  /** A run's step statuses, by step index (steps that never started have none). */
  getStepInfo(runId: string): Promise<StepInfoRecord[]>;
  /** Journal events, ascending id. */
  getEvents(filter: EventFilter): Promise<RunEventRecord[]>;

  // ---- runs: deletion ----
  /**
   * Deletes the run, its step results and statuses, its events and signals, and every run
   * nested under it. Returns false for an unknown run.
   */
  deleteRun(runId: string): Promise<boolean>;
  /**
   * Deletes finished top-level runs (completed, failed, cancelled) that finished before `before`
   * (RFC 3339), with everything {@linkcode deleteRun} deletes. Blobs are kept (they are shared by
   * content). Returns how many runs were deleted, nested ones included.
   */
  pruneRuns(options: { before: string }): Promise<number>;

  // ---- signals ----
  /** Stores a signal for a run (committed before the promise resolves). */
  putSignal(signal: { runId: string; name: string; data: JsonValue }): Promise<SignalRecord>;
  /**
   * Takes the oldest pending signal `name` of `runId` for `consumer` (`<runId>/<stepId>`), or
   * returns the one this consumer took before (so a re-executed step gets the same signal).
   * Undefined when none is pending. Committed before the promise resolves.
   */
  consumeSignal(runId: string, name: string, consumer: string): Promise<SignalRecord | undefined>;
  /** A run's signals, oldest first. */
  getSignals(runId: string): Promise<SignalRecord[]>;

  // ---- ownership ----
  /**
   * Takes a run over for this engine (to resume it): succeeds when the run has no owner, this
   * engine owns it, or its owner is known to be gone (PostgreSQL: its lease expired); increments
   * `leaseEpoch` and appends `run_resumed`. The status is left as it is. Committed before the
   * promise resolves.
   */
  claimRun(runId: string): Promise<ClaimResult>;
  /**
   * Claims up to `limit` runs for this engine, oldest first: `queued` runs, and runs whose owner
   * lost them (PostgreSQL: `running`/`paused` runs whose lease expired; SQLite and in-memory:
   * runs released with {@linkcode releaseRuns}). Each claimed run gets this engine as owner,
   * `leaseEpoch + 1`, a fresh lease, status `running` (a `paused` run stays `paused`) and a
   * journal event (`run_started` for a queued run, `run_resumed` for one taken over). Two
   * engines never claim the same run (PostgreSQL: one `UPDATE ... FOR UPDATE SKIP LOCKED`
   * statement). Committed before the promise resolves.
   * @throws {StoreError} (rejects) when the database cannot be written.
   */
  claimRuns(options: ClaimOptions): Promise<ClaimedRun[]>;
  /**
   * Renews the leases of the runs this engine holds and its `engines` heartbeat (the store also
   * does it on its own timer). Runs another engine took over are reported `lost`.
   * @throws {StoreError} (rejects) when the database cannot be reached.
   */
  renewLeases(): Promise<LeaseRenewal>;
  /**
   * Gives runs this engine holds back (all of them without `runIds`) so another engine can take
   * them over at once (PostgreSQL: the lease ends now; SQLite, in-memory: the owner is cleared),
   * e.g. before a graceful shutdown. Their status is left as it is. Returns the ids released.
   */
  releaseRuns(runIds?: string[]): Promise<string[]>;
  /**
   * Records this engine in the `engines` registry (or updates its `url`) and starts its
   * heartbeat. Writing a run registers the engine too; this names its URL (`serve`).
   */
  registerEngine(info?: { url?: string }): Promise<EngineRecord>;
  /** The engines in the registry (alive or not yet cleaned up), oldest first. */
  listEngines(): Promise<EngineRecord[]>;
  /**
   * Calls `onWork` when runs may have become claimable (a run queued or released, by any engine
   * on PostgreSQL through `LISTEN/NOTIFY`; in this process otherwise). A hint only: wake-ups can
   * be lost or spurious, so a claimer keeps polling. Returns the function that stops it.
   */
  watchQueue(onWork: () => void): () => void;

  // ---- batches ----
  /** Records a batch. */
  createBatch(batch: BatchRecord): Stored;
  /** Adds a run to a batch at `index`. */
  addBatchRun(batchId: string, runId: string, index: number): Stored;
  /** A batch, or undefined. */
  getBatch(batchId: string): Promise<BatchRecord | undefined>;
  /** A batch's run ids by input index. */
  getBatchRuns(batchId: string): Promise<{ runId: string; index: number }[]>;
  /**
   * Batches matching `filter`, newest first (`GET /api/v1/batches`). Optional: the service lists
   * the batches it created itself from a store without it.
   */
  listBatches?(filter?: BatchFilter): Promise<BatchRecord[]>;

  // ---- lifecycle ----
  /**
   * Commits queued writes at the end of the current microtask burst (writes queued before then
   * join the same transaction) and resolves once they are stored.
   * @throws {StoreError} (rejects) when the commit failed.
   */
  flush(): Promise<void>;
  /**
   * Commits what is queued and releases resources; safe to call twice. Runs of this store still
   * `running` are marked interrupted (their engine is going away).
   */
  close(): Promise<void>;
}

/**
 * A write (or read) of the state store failed: the message names the database and the cause
 * (`cannot store run state in SQLite database '/srv/runs.db': database or disk is full`).
 */
export class StoreError extends Error {
  override name = "StoreError";
  constructor(message: string, readonly database: string, options?: ErrorOptions) {
    super(message, options);
  }
}

export { RUN_INTERRUPTED, STORE_FAILED } from "../core/error_codes.ts";

/** The failed result of a run whose writes failed: code 507, kind `STORE_FAILED`. */
export function storeFailedResult(error: unknown): FlowResult {
  const message = error instanceof Error ? error.message : String(error);
  const data: { [k: string]: JsonValue } = { kind: "STORE_FAILED" };
  if (error instanceof StoreError) data.database = error.database;
  return failed(STORE_FAILED, message, data);
}

/** The failed result of an interrupted run: code 503, kind `RUN_INTERRUPTED`. */
export function interruptedResult(runId: string, reason: string): FlowResult {
  return failed(
    RUN_INTERRUPTED,
    `run interrupted: ${reason}; continue it with 'stepflow resume ${runId}'`,
    { kind: "RUN_INTERRUPTED" },
  );
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

/**
 * An RFC 3339 instant normalised to the stores' form (`2024-05-01T10:00:00.000Z`), so that text
 * comparison orders instants.
 * @throws {RangeError} for text that is not a date-time.
 */
export function normalizeInstant(text: string): string {
  const ms = Date.parse(text);
  if (Number.isNaN(ms)) {
    throw new RangeError(`'${text}' is not an RFC 3339 date-time (e.g. 2024-05-01T10:00:00Z)`);
  }
  return new Date(ms).toISOString();
}

/** Compares runs newest first: createdAt descending, then runId ascending. */
export function compareNewestFirst(a: RunRecord, b: RunRecord): number {
  if (a.createdAt !== b.createdAt) return a.createdAt < b.createdAt ? 1 : -1;
  return a.runId < b.runId ? -1 : a.runId > b.runId ? 1 : 0;
}
