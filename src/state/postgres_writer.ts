/**
 * The writes of the PostgreSQL store (src/state/postgres.ts), with group commit as in the SQLite
 * store: each write is queued synchronously (src/state/postgres_batch.ts) and returns the promise
 * of its commit; the writes of one event-loop turn are committed in one transaction
 * (src/state/postgres_commit.ts), and writes made while a commit is in flight form the next one.
 * A commit fenced off because another engine took a run over drops that run's writes (they
 * reject) and commits the rest again; any other failure rejects the whole commit and fails
 * every unfinished run of this store.
 * @module
 */
import { type JsonValue, stringifyJson } from "../json/exact_json.ts";
import type { FlowResult } from "../core/flow_result.ts";
import { logger } from "../log.ts";
import { blobId } from "./blob_id.ts";
import { GroupCommit } from "./group_commit.ts";
import {
  BATCH,
  BATCH_RUN,
  BLOB,
  buildBatch,
  COMPLETE,
  CREATE,
  type CreateRow,
  dropLeases,
  ENGINE,
  MAX_QUEUE_LENGTH,
  RESULT,
  START,
  STATUS,
} from "./postgres_batch.ts";
import type { PgSession, Sql } from "./postgres_client.ts";
import { fencedRuns, sendBatch } from "./postgres_commit.ts";
import type { LeaseBook, OpenRun } from "./postgres_leases.ts";
import { unstoredRecordError, unstoredRunError } from "./store_health.ts";
import {
  type BatchRecord,
  nowRfc3339,
  type RunEventType,
  type RunRecord,
  type RunStatus,
  stepEventData,
  stepEventType,
  type StepResultRecord,
  type StepStartRecord,
  stepStatusOf,
  type StoreError,
  storeFailedResult,
} from "./store.ts";

const log = logger("state");

/** What the writer asks of its store. */
export interface WriterHooks {
  /** This engine's `engines` row was queued: start the heartbeat. */
  onEngine(): void;
  /** A commit queued a run: wake this process's claimers. */
  wake(): void;
}

/** The write queue of one PostgreSQL store. */
export class PostgresWriter {
  #s: PgSession;
  #leases: LeaseBook;
  #hooks: WriterHooks;
  #q: unknown[] = [];
  #gc: GroupCommit;
  /** Depth of {@linkcode atomic} calls: while above 0, a long queue does not start a commit. */
  #atomic = 0;

  constructor(session: PgSession, leases: LeaseBook, hooks: WriterHooks) {
    this.#s = session;
    this.#leases = leases;
    this.#hooks = hooks;
    this.#gc = new GroupCommit(() => this.#commitQueue());
  }

  /** Queues this store's `engines` row (once), and starts its heartbeat. */
  ensureEngine(): void {
    if (this.#s.engine !== "none") return;
    this.#s.engine = "queued";
    this.#q.push(ENGINE, null, null);
    this.#queued(undefined);
    this.#hooks.onEngine();
  }

  /**
   * The promise of the commit the entries just queued go with (asked for now when the queue is
   * long); for a run's writes, one that also rejects when that run's writes were refused.
   */
  #queued(open: OpenRun | undefined): Promise<void> {
    const p = this.#gc.queued();
    if (this.#q.length >= MAX_QUEUE_LENGTH && this.#atomic === 0) this.#gc.now();
    if (open === undefined) return p;
    // writers of a run get a promise that also rejects when the run's own writes were refused
    if (open.batch !== p) {
      open.batch = p;
      const d = open.derived = p.then(() => {
        if (open.error) throw open.error;
      });
      d.catch(() => {});
    }
    return open.derived!;
  }

  /**
   * The lease a write to `runId` is fenced by: its open run's (its top-level run's, or its own),
   * else the run itself (the fence then asks only that this engine own it).
   */
  #leaseOf(runId: string, open: OpenRun | undefined): string {
    return open?.lease ?? runId;
  }

  /** Commits the queue in one transaction; rejects with a StoreError when it failed. */
  async #commitQueue(): Promise<void> {
    let q = this.#q;
    if (q.length === 0) return;
    this.#q = [];
    const newLeases = this.#leases.inFlightLeases = this.#leases.newLeases;
    this.#leases.newLeases = new Set();
    const engineQueued = this.#s.engine === "queued";
    for (let tries = 0;; tries++) {
      const b = buildBatch(q, newLeases, this.#leases.held, this.#leases.open);
      try {
        await sendBatch(this.#s, b);
        if (engineQueued && b.engine) this.#s.engine = "committed";
        if (this.#s.rowless.size > 0) { for (const r of b.creates) this.#s.rowless.delete(r.id); }
        if (this.#s.health.faulted) this.#s.health.succeeded();
        this.#leases.inFlightLeases = new Set();
        // this process's claimers need not wait for the NOTIFY to come back
        if (b.notify) this.#hooks.wake();
        return;
      } catch (e) {
        const lost = fencedRuns(e);
        if (lost !== undefined && tries < 16) {
          this.#leases.lose(lost, "another engine took the run over");
          q = dropLeases(q, new Set(lost));
          if (q.length === 0) {
            this.#leases.inFlightLeases = new Set();
            return;
          }
          continue;
        }
        this.#leases.inFlightLeases = new Set();
        const plain = this.#s.error("cannot store run state", e);
        this.#s.health.failed(plain);
        log.error(plain.message);
        // the runs it fails are told what becomes of them (src/state/store_health.ts); the
        // top-level runs whose row went with it are kept in memory, to be recorded failed later
        const err = unstoredRunError(plain);
        const rowless = b.creates.filter((r) => r.parent === null);
        const recordErr = rowless.length > 0 ? unstoredRecordError(plain) : err;
        for (const r of rowless) {
          this.#s.rowless.set(r.id, r);
          // its later writes are refused at once (its lease has no row to fence them by)
          this.#leases.held.delete(r.id);
          this.#leases.lost.set(r.id, recordErr);
        }
        for (const [id, r] of this.#leases.open) {
          r.error ??= this.#s.rowless.has(id) ? recordErr : err;
        }
        throw err;
      }
    }
  }

  /**
   * Calls `fn`, whose writes (queued synchronously) then all go in one commit, one transaction:
   * a long queue does not start a commit in their midst (`StateStore.atomic`).
   */
  atomic<T>(fn: () => T): T {
    this.#atomic++;
    try {
      return fn();
    } finally {
      if (--this.#atomic === 0 && this.#q.length >= MAX_QUEUE_LENGTH) this.#gc.now();
    }
  }

  /** Commits the writes queued so far; rejects when that commit failed. */
  flush(): Promise<void> {
    return this.#gc.soon();
  }

  /** A mark of the commits from now on (`StateStore.commitMark`). */
  commitMark(): number {
    return this.#gc.mark();
  }

  /** The error of a commit since `mark` that failed (`StateStore.failedSince`). */
  failedSince(mark: number): unknown {
    return this.#gc.failedSince(mark);
  }

  /** Waits until nothing is queued or in flight (`close`). */
  drain(): Promise<void> {
    return this.#gc.drain();
  }

  /** Waits for the writes queued so far (failures were reported to their writers). */
  async settled(): Promise<void> {
    try {
      await this.#gc.soon();
    } catch {
      // the writers got the error; a read shows what is stored
    }
  }

  /** Runs `fn` after this store's queued writes, naming the database when it fails. */
  async read<T>(what: string, fn: (sql: Sql) => Promise<T>): Promise<T> {
    if (this.#s.closed) throw this.#s.closedError();
    await this.settled();
    try {
      return await fn(this.#s.sql);
    } catch (e) {
      throw this.#s.error(what, e);
    }
  }

  /** Runs a write transaction after the queued writes; resolves once committed. */
  async transaction<T>(what: string, fn: (tx: Sql) => Promise<T>): Promise<T> {
    if (this.#s.closed) throw this.#s.closedError();
    await this.settled();
    try {
      return await this.#s.sql.begin((tx) => fn(tx as unknown as Sql)) as T;
    } catch (e) {
      throw this.#s.error(what, e);
    }
  }

  putBlob(data: JsonValue, blobType: "data" | "flow", knownId?: string): string {
    const id = knownId ?? blobId(data);
    if (this.#s.closed) return id;
    this.#q.push(BLOB, null, id, stringifyJson(data), blobType, nowRfc3339());
    this.#queued(undefined);
    return id;
  }

  // ---------------------------------------------------------------- run writes

  createRun(run: RunRecord): Promise<void> | void {
    if (this.#s.closed) return;
    const queued = run.status === "queued";
    const parent = run.parentRunId;
    const parentOpen = parent === undefined ? undefined : this.#leases.open.get(parent);
    const root = run.rootRunId ?? (parent === undefined ? run.runId : parentOpen?.root ?? null);
    const at = nowRfc3339();
    let lease: string | null = null;
    let epoch = 0;
    let leased = false;
    let open: OpenRun | undefined;
    if (queued) {
      // a queued nested run is created under its parent's lease
      lease = parentOpen?.lease ?? null;
      const refused = parent === undefined ? undefined : this.#leases.refused(parent, parentOpen);
      if (refused) return refused;
    } else if (parent === undefined) {
      this.ensureEngine();
      lease = run.runId;
      leased = true;
      const held = this.#leases.held.get(run.runId);
      if (held === undefined) {
        epoch = 1;
        this.#leases.held.set(run.runId, 1);
        this.#leases.lost.delete(run.runId);
        this.#leases.newLeases.add(run.runId);
      } else {
        epoch = held;
      }
      this.#leases.open.set(run.runId, open = { root, lease });
    } else {
      // a nested run follows its parent's lease; without an open parent, it is its own (its row
      // is created by this write: not fenced, then fenced by owner)
      const refused = this.#leases.refused(parent, parentOpen);
      if (refused) return refused;
      this.ensureEngine();
      lease = parentOpen?.lease ?? run.runId;
      if (lease === run.runId) this.#leases.newLeases.add(lease);
      this.#leases.lost.delete(run.runId);
      epoch = 1;
      this.#leases.open.set(run.runId, open = { root, lease });
    }
    const row: CreateRow = {
      id: run.runId,
      flowId: run.flowId,
      flowName: run.flowName ?? null,
      status: run.status,
      input: stringifyJson(run.input),
      result: run.result === undefined ? null : stringifyJson(run.result),
      createdAt: run.createdAt,
      completedAt: run.completedAt ?? null,
      overrides: run.overrides === undefined ? null : stringifyJson(run.overrides),
      parent: parent ?? null,
      root,
      runKey: run.runKey ?? null,
      variables: run.variables === undefined ? null : stringifyJson(run.variables),
      owner: queued ? null : this.#s.engineId,
      epoch,
      leased,
      startedAt: queued ? null : at,
      updatedAt: at,
      debug: run.debugMode === true,
      options: run.runOptions === undefined ? null : JSON.stringify(run.runOptions),
    };
    this.#q.push(CREATE, lease, row);
    return this.#queued(open);
  }

  recordStepStarted(runId: string, s: StepStartRecord): Promise<void> | void {
    if (this.#s.closed) return;
    const open = this.#leases.open.get(runId);
    const refused = this.#leases.refused(runId, open);
    if (refused) return refused;
    this.#q.push(
      START,
      this.#leaseOf(runId, open),
      runId,
      s.stepIndex,
      s.stepId,
      s.component,
      s.attempt,
      s.at ?? nowRfc3339(),
    );
    return this.#queued(open);
  }

  recordStepResult(runId: string, record: StepResultRecord): Promise<void> | void {
    // The hot path: flat queue entries, no closure.
    if (this.#s.closed) return;
    const open = this.#leases.open.get(runId);
    const refused = this.#leases.refused(runId, open);
    if (refused) return refused;
    const data = stepEventData(record);
    this.#q.push(
      RESULT,
      this.#leaseOf(runId, open),
      runId,
      record.stepIndex,
      record.stepId,
      stringifyJson(record.result),
      stepStatusOf(record.result),
      stepEventType(record.result),
      data === undefined ? null : stringifyJson(data),
      record.component ?? null,
      record.attempt ?? null,
      record.durationMs ?? null,
      record.at ?? nowRfc3339(),
    );
    return this.#queued(open);
  }

  completeRun(runId: string, status: RunStatus, result?: FlowResult): Promise<void> | void {
    if (this.#s.closed) return;
    const open = this.#leases.open.get(runId);
    const unstored = this.#s.rowless.size > 0 && this.#s.rowless.has(runId)
      ? open?.error ?? this.#leases.lost.get(runId)
      : undefined;
    if (unstored !== undefined) return this.#rowlessEnd(runId, unstored, open, status, result);
    const refused = this.#leases.refused(runId, open);
    if (refused) {
      this.#leases.open.delete(runId);
      return refused;
    }
    const at = nowRfc3339();
    const data = stringifyJson(
      result === undefined ? { status } : { status, outcome: result.outcome },
    );
    this.#q.push(
      COMPLETE,
      this.#leaseOf(runId, open),
      runId,
      status,
      result === undefined ? null : stringifyJson(result),
      at,
      data,
    );
    const committed = this.#queued(open);
    const ends = this.#s.ends;
    const p = committed.then(() => {
      this.#leases.open.delete(runId);
      if (open?.lease === runId) this.#leases.held.delete(runId);
      if (ends.size > 0) ends.delete(runId);
    }, (e) => {
      this.#leases.open.delete(runId);
      // kept (its lease too), and written once commits succeed again — unless the run left
      // this engine (its lease was lost: it goes on elsewhere)
      if (this.#leases.refused(runId, open) === undefined) ends.add(runId, status, result);
      throw e;
    });
    p.catch(() => {});
    return p;
  }

  /**
   * The end of a run whose row never reached the database (a failed commit): kept with its row,
   * both written once commits succeed again (src/state/postgres.ts `#writeEnds`). A run executing
   * here ends failed with its first failure (which says so); another (a queued run) as its
   * caller says. Rejects with that failure.
   */
  #rowlessEnd(
    runId: string,
    err: StoreError,
    open: OpenRun | undefined,
    status: RunStatus,
    result: FlowResult | undefined,
  ): Promise<void> {
    this.#leases.open.delete(runId);
    const dropped = open === undefined
      ? this.#s.ends.add(runId, status, result)
      : this.#s.ends.add(runId, "failed", storeFailedResult(err));
    if (dropped !== undefined) {
      this.#s.rowless.delete(dropped);
      log.error(`too many run ends wait to be stored: run ${dropped} is not recorded`);
    }
    const p = Promise.reject(err);
    p.catch(() => {});
    return p;
  }

  setRunStatus(
    runId: string,
    status: RunStatus,
    event?: RunEventType,
    data?: JsonValue,
  ): Promise<void> | void {
    if (this.#s.closed) return;
    const open = this.#leases.open.get(runId);
    const refused = this.#leases.refused(runId, open);
    if (refused) return refused;
    this.#q.push(
      STATUS,
      this.#leaseOf(runId, open),
      runId,
      status,
      event ?? null,
      data === undefined ? null : stringifyJson(data),
      nowRfc3339(),
    );
    return this.#queued(open);
  }

  createBatch(batch: BatchRecord): Promise<void> | void {
    if (this.#s.closed) return;
    this.#q.push(BATCH, null, { ...batch });
    return this.#queued(undefined);
  }

  addBatchRun(batchId: string, runId: string, index: number): Promise<void> | void {
    if (this.#s.closed) return;
    this.#q.push(BATCH_RUN, null, batchId, runId, index);
    return this.#queued(undefined);
  }
}
