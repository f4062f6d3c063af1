/**
 * The service's only way to the state store. The durable-runs work is rewriting src/state (run
 * events journal, resume, signals); keeping every store call of the service here makes that
 * switch one file.
 * @module
 */
import { setImmediate } from "node:timers";
import type { FlowResult } from "../core/flow_result.ts";
import type { JsonValue } from "../json/exact_json.ts";
import {
  atomically,
  type BatchFilter,
  type BatchRecord,
  type ClaimResult,
  type EventFilter,
  nowRfc3339,
  type RunEventRecord,
  type RunEventType,
  type RunFilter,
  type RunRecord,
  type RunStatus,
  type SignalRecord,
  type StateStore,
  type StepInfoRecord,
  type StepResultRecord,
  type StoreCondition,
  type StoredBlob,
} from "../state/store.ts";

const RESOLVED = Promise.resolve();

/** Terminal run statuses: nothing more happens to such a run. */
export const TERMINAL_STATUSES: ReadonlySet<RunStatus> = new Set([
  "completed",
  "failed",
  "cancelled",
]);

/** The store calls of the service. */
export class ServiceStore {
  /** Batches created by this process, for stores without `listBatches`. */
  #batches = new Map<string, BatchRecord>();

  constructor(readonly store: StateStore) {}

  /** `inMemory`, `sqlite`, ... */
  get kind(): string {
    return this.store.kind;
  }

  getRun(runId: string): Promise<RunRecord | undefined> {
    return this.store.getRun(runId);
  }

  /** The runs among `runIds` that exist (one query on a PostgreSQL store). */
  async getRuns(runIds: string[]): Promise<RunRecord[]> {
    const many = (this.store as { getRuns?: (ids: string[]) => Promise<RunRecord[]> }).getRuns;
    if (many !== undefined) return await many.call(this.store, runIds);
    const all = await Promise.all(runIds.map((id) => this.store.getRun(id)));
    return all.filter((r): r is RunRecord => r !== undefined);
  }

  listRuns(filter: RunFilter): Promise<RunRecord[]> {
    return this.store.listRuns(filter);
  }

  deleteRun(runId: string): Promise<boolean> {
    return this.store.deleteRun(runId);
  }

  getStepResults(runId: string): Promise<StepResultRecord[]> {
    return this.store.getStepResults(runId);
  }

  /** A run's step statuses (steps that never started have none). */
  getStepInfo(runId: string): Promise<StepInfoRecord[]> {
    return this.store.getStepInfo(runId);
  }

  getBlob(id: string): Promise<StoredBlob | undefined> {
    return this.store.getBlob(id);
  }

  /**
   * When flow `id` was evicted from the in-memory store (`stateStore.maxFlows`): its limit;
   * undefined for a flow never stored, or a store that keeps every flow.
   */
  flowEvicted(id: string): { maxFlows?: number } | undefined {
    if (this.store.flowEvicted?.(id) !== true) return undefined;
    const max = (this.store as { maxFlows?: number }).maxFlows;
    return max === undefined ? {} : { maxFlows: max };
  }

  /**
   * Takes run `runId` over for this engine (`StateStore.claimRun`): refused when another live
   * engine owns it.
   */
  claimRun(runId: string): Promise<ClaimResult> {
    return this.store.claimRun(runId);
  }

  /** Records a run accepted but not started yet (status `queued`). */
  createQueuedRun(run: {
    runId: string;
    flowId: string;
    flowName?: string;
    input: JsonValue;
    overrides?: JsonValue;
    variables?: Record<string, JsonValue>;
    runKey?: string;
    createdAt: string;
    debugMode?: boolean;
  }): Promise<void> | void {
    const r: RunRecord = { ...run, status: "queued" };
    if (r.debugMode !== true) delete r.debugMode;
    if (r.variables === undefined || Object.keys(r.variables).length === 0) delete r.variables;
    if (r.runKey === undefined) delete r.runKey;
    return this.store.createRun(r);
  }

  /** Changes a run's status without finishing it (debug mode: `paused` ↔ `running`). */
  setRunStatus(runId: string, status: RunStatus, event?: RunEventType, data?: JsonValue): void {
    this.store.setRunStatus(runId, status, event, data);
  }

  /** The run stored with `runKey` (an idempotency key), if any. */
  findRunByKey(runKey: string): Promise<RunRecord | undefined> {
    return this.store.findRunByKey(runKey);
  }

  /**
   * The id of the committed run holding `runKey`, read at once; null when the store cannot say
   * so synchronously (only the SQLite store can: src/state/sqlite.ts `runIdOfKeyNow`).
   */
  runIdOfKeyNow(runKey: string): string | undefined | null {
    const now = (this.store as { runIdOfKeyNow?: (k: string) => string | undefined })
      .runIdOfKeyNow;
    return now === undefined ? null : now.call(this.store, runKey);
  }

  /**
   * Sets a run's final status (and result); resolves once it is stored (`StateStore.completeRun`:
   * rejects when its commit failed, or an earlier write of the run did).
   */
  finishRun(runId: string, status: RunStatus, result?: FlowResult): Promise<void> | void {
    return this.store.completeRun(runId, status, result);
  }

  /**
   * Calls `fn`; the writes it queues (a batch's record and runs) are stored all or none, in one
   * commit (`StateStore.atomic`).
   */
  atomic<T>(fn: () => T): T {
    return atomically(this.store, fn);
  }

  /** Records a batch; resolves once it is stored (rejects when its commit failed). */
  createBatch(batch: BatchRecord): Promise<void> | void {
    const w = this.store.createBatch(batch);
    if (!this.store.listBatches) this.#batches.set(batch.batchId, batch);
    return w;
  }

  /** A batch's new status (the record is written again: stores replace by id). */
  setBatchStatus(batch: BatchRecord, status: BatchRecord["status"]): void {
    this.createBatch({ ...batch, status })?.catch(() => {});
  }

  /** Adds a run to a batch; resolves once it is stored (rejects when its commit failed). */
  addBatchRun(batchId: string, runId: string, index: number): Promise<void> | void {
    return this.store.addBatchRun(batchId, runId, index);
  }

  getBatch(batchId: string): Promise<BatchRecord | undefined> {
    return this.store.getBatch(batchId);
  }

  getBatchRuns(batchId: string): Promise<{ runId: string; index: number }[]> {
    return this.store.getBatchRuns(batchId);
  }

  /** The batch run `runId` belongs to (undefined: none, or a store without batches of others). */
  async getBatchOfRun(runId: string): Promise<BatchRecord | undefined> {
    return await this.store.getBatchOfRun?.(runId);
  }

  /** Journal events (ascending id): of one run, or of a run and its nested runs. */
  getEvents(filter: EventFilter): Promise<RunEventRecord[]> {
    return this.store.getEvents(filter);
  }

  /** Stores a signal for a run (committed when the promise resolves). */
  putSignal(signal: { runId: string; name: string; data: JsonValue }): Promise<SignalRecord> {
    return this.store.putSignal(signal);
  }

  /** Batches, newest first: from the store, or those this process created. */
  listBatches(filter: BatchFilter): Promise<BatchRecord[]> {
    if (this.store.listBatches) return this.store.listBatches(filter);
    const offset = filter.offset ?? 0;
    const list = [...this.#batches.values()].reverse().filter((b) =>
      (filter.status === undefined || b.status === filter.status) &&
      (filter.flowName === undefined || b.flowName === filter.flowName)
    );
    return Promise.resolve(
      list.slice(offset, filter.limit === undefined ? undefined : offset + filter.limit),
    );
  }

  /**
   * Whether the store can commit now (`StateStore.condition`; a store without it is healthy).
   * With `probe`, an unhealthy store tries a commit first; the answer comes within `waitMs` even
   * when that commit is still waiting (e.g. for a lock).
   */
  async condition(probe: boolean, waitMs = 2_000): Promise<StoreCondition> {
    const s = this.store;
    if (s.condition === undefined) return { healthy: true, kind: s.kind };
    if (!probe) return await s.condition();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<undefined>((r) => timer = setTimeout(() => r(undefined), waitMs));
    try {
      return await Promise.race([s.condition({ probe: true }), late]) ?? await s.condition();
    } finally {
      clearTimeout(timer);
    }
  }

  /** Waits until queued writes are stored. */
  flush(): Promise<void> {
    return this.store.flush();
  }

  #barrier?: Promise<void>;

  /**
   * A mark of the store's commits from now on (`StateStore.commitMark`), for
   * {@linkcode committed}; undefined for a store that applies writes at once.
   */
  commitMark(): number | undefined {
    return this.store.commitMark?.();
  }

  /**
   * Resolves once every write queued so far is stored. Callers in the same event-loop iteration
   * share one commit: it happens after the iteration's I/O callbacks (`setImmediate`), so runs
   * finishing together are committed together, without a timer's millisecond of delay.
   * @param since a {@linkcode commitMark} taken earlier (before the writes waited for were
   *   queued); now by default.
   * @throws {Error} (rejects) when the store could not commit: the commit waited for, or any
   * commit since `since` — one that ran before this commit (the store's own turn, or a write
   * waited for by the engine) failed too (it resolved then: a run's 507 was answered as stored).
   */
  committed(since: number | undefined = this.commitMark()): Promise<void> {
    if (this.store.kind === "inMemory") return RESOLVED; // applied at once: nothing to wait for
    const barrier = this.#barrier ??= new Promise<void>((resolve, reject) => {
      setImmediate(() => {
        this.#barrier = undefined;
        this.store.flush().then(resolve, reject);
      });
    });
    if (since === undefined || this.store.failedSince === undefined) return barrier;
    return barrier.then(() => {
      const failed = this.store.failedSince!(since);
      if (failed !== undefined) throw failed;
    });
  }

  /** The time now as stored (RFC 3339, ms). */
  now(): string {
    return nowRfc3339();
  }
}
