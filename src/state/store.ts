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
import type { StoreCondition } from "./store_health.ts";
import type {
  BatchFilter,
  BatchRecord,
  ClaimedRun,
  ClaimOptions,
  ClaimResult,
  EngineRecord,
  EventFilter,
  LeaseRenewal,
  RunEventRecord,
  RunEventType,
  RunFilter,
  RunRecord,
  RunStatus,
  SignalRecord,
  StepInfoRecord,
  StepResultRecord,
  StepStartRecord,
  Stored,
  StoredBlob,
} from "./records.ts";

export * from "./records.ts";
export * from "./store_error.ts";

/**
 * Calls `fn` so that the writes it queues on `store` are committed together, all or none
 * ({@linkcode StateStore.atomic}; just `fn()` for a store without it).
 */
export function atomically<T>(store: StateStore, fn: () => T): T {
  return store.atomic === undefined ? fn() : store.atomic(fn);
}
export type { StoreCondition } from "./store_health.ts";

/** What {@linkcode StateStore.claimRunId} records of a new run (its `createRun` the rest). */
export interface NewRunId {
  runId: string;
  flowId: string;
  flowName?: string;
  input: JsonValue;
  /** RFC 3339. */
  createdAt: string;
}

/** Where runs, step results, the journal, signals, blobs and batches are kept. */
export interface StateStore {
  /** `inMemory`, `sqlite` or `postgres`. */
  readonly kind: string;
  /** This store's engine id: the `ownerId` of the runs it creates. */
  readonly engineId: string;
  /**
   * True when the store was opened read-only (SQLite `mode=ro`): its runs can be read, but no run
   * can be recorded in it, so an engine refuses it. Absent or false otherwise.
   */
  readonly readOnly?: boolean;

  // ---- blobs ----
  /**
   * Stores a blob (idempotent: same content, same id) and returns its id. `id`, when given, must
   * be `blobId(data)` (callers that already hashed the data pass it to save hashing again). The
   * blob is stored with the next commit ({@linkcode flush} to wait for it).
   */
  putBlob(data: JsonValue, blobType: "data" | "flow", id?: string): string;
  /** Reads a blob, or undefined for an unknown id. */
  getBlob(id: string): Promise<StoredBlob | undefined>;
  /**
   * Whether blob `id` is here now (synchronous). Optional: only a store that evicts blobs has it
   * (in-memory: flows beyond `maxFlows`); a store without it keeps every blob it stored.
   */
  hasBlob?(id: string): boolean;
  /**
   * Whether flow `id` was evicted from this store (in-memory: `maxFlows`) and not stored again
   * since, as far as the store remembers. Optional, as {@linkcode hasBlob}.
   */
  flowEvicted?(id: string): boolean;

  // ---- runs: writes ----
  /**
   * Records a new run (status `running` unless given; `queued` runs have no owner, except in
   * the SQLite store: the engine that queued it, so that a service on the same file takes it
   * over only once that engine is dead — src/server/runs_resume.ts, orphans.ts) and appends
   * `run_started` / `run_queued`. The store sets `ownerId`, `leaseEpoch` and, for a nested run,
   * `rootRunId` from its parent.
   * @param owned true when the caller hands `run` over and never touches it again (the engine's
   *   own records): a store that keeps records in memory keeps this object instead of a copy
   *   (issue 17: the copy of every map item's record, from records of many shapes, was 5% of a
   *   map's CPU). Others ignore it.
   */
  createRun(run: RunRecord, owned?: boolean): Stored;
  /**
   * Takes `id.runId` for a new top-level run of this engine in one atomic statement, before its
   * {@linkcode createRun}: a row `running`, owned by this engine, with the run's flow and input
   * (its `createRun` then completes it), unless a run with that id is there already — a `queued`
   * one is taken over (status `running`, this engine's). Of two engines given one new id at the
   * same instant on one database, exactly one gets it (before, both looked the id up, found
   * nothing, and both ran under it: one record, their step results mixed). Committed (with the
   * writes queued before it) before the promise resolves.
   * The in-memory store does it in one synchronous step (two engines sharing it in a process).
   * Optional: a store without it is asked with {@linkcode getRun}, which is not atomic.
   * @returns undefined when the id is this engine's now; else the run that holds it.
   * @throws {StoreError} (rejects) when the database cannot be written.
   */
  claimRunId?(id: NewRunId): Promise<RunRecord | undefined>;
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
  /**
   * Calls `fn` and returns what it returns; the writes `fn` queues (synchronously: a batch's
   * record, its runs' rows and its `batch_runs` rows) all go in one commit, one transaction, so
   * they are stored all or none. Without this, a long queue started a commit in their midst: a
   * batch of thousands of runs spanned several commits and was stored in part when a later one
   * failed (its client told 507, its stored runs run after a restart). Optional: a store that
   * applies writes at once (in-memory) needs none; call {@linkcode atomically}.
   */
  atomic?<T>(fn: () => T): T;
  /** Records a batch. */
  createBatch(batch: BatchRecord): Stored;
  /** Adds a run to a batch at `index`. */
  addBatchRun(batchId: string, runId: string, index: number): Stored;
  /** A batch, or undefined. */
  getBatch(batchId: string): Promise<BatchRecord | undefined>;
  /** A batch's run ids by input index. */
  getBatchRuns(batchId: string): Promise<{ runId: string; index: number }[]>;
  /**
   * The batch run `runId` belongs to, or undefined. Optional: a store without it keeps no
   * batches across processes (in-memory), so no batch of it is ever taken over.
   */
  getBatchOfRun?(runId: string): Promise<BatchRecord | undefined>;
  /**
   * Batches matching `filter`, newest first (`GET /api/v1/batches`). Optional: the service lists
   * the batches it created itself from a store without it.
   */
  listBatches?(filter?: BatchFilter): Promise<BatchRecord[]>;

  // ---- lifecycle ----
  /**
   * Whether the store can commit now (the service's `/health`): unhealthy from a failed commit
   * until one succeeds. With `probe`, an unhealthy store first tries a commit of its own.
   * Optional: a store without it is always healthy (in-memory).
   */
  condition?(options?: { probe?: boolean }): Promise<StoreCondition>;
  /**
   * Commits queued writes at the end of the current microtask burst (writes queued before then
   * join the same transaction) and resolves once they are stored.
   * @throws {StoreError} (rejects) when the commit failed.
   */
  flush(): Promise<void>;
  /**
   * A mark of the commits from now on, for {@linkcode failedSince}. Optional: a store without it
   * applies writes at once (in-memory).
   */
  commitMark?(): number;
  /**
   * The error of a commit that failed since `mark` ({@linkcode commitMark}: the commits that may
   * hold a write queued after the mark was taken), or undefined when none did. Read it once
   * {@linkcode flush} settled: a commit still in flight has not failed yet.
   */
  failedSince?(mark: number): unknown;
  /**
   * Commits what is queued and releases resources; safe to call twice. Runs of this store still
   * `running` are marked interrupted (their engine is going away).
   */
  close(): Promise<void>;
}
