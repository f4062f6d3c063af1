/**
 * The write side of the SQLite store (src/state/sqlite.ts): writes are queued in memory in the
 * order they happen (a flat array: the hot step writes as plain values, others as closures) and
 * committed in one transaction per event-loop turn (src/state/group_commit.ts); each write
 * returns the commit's promise. Also this engine's `engines` row and heartbeat, and the fencing
 * check: an engine declared dead by another process has every commit refused.
 * @module
 */
import { type JsonValue, parseJson, stringifyJson } from "../json/exact_json.ts";
import type { FlowResult } from "../core/flow_result.ts";
import { blobId } from "./blob_id.ts";
import { GroupCommit } from "./group_commit.ts";
import type { Checkpointer } from "./sqlite_checkpoint.ts";
import { processIdentity } from "./liveness.ts";
import type { SqliteCore } from "./sqlite_core.ts";
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
  type StoredBlob,
} from "./store.ts";
import { logger } from "../log.ts";

const log = logger("state");

/** Queue entries (flat array, tag first) before a commit is forced within the turn. */
const MAX_QUEUE_LENGTH = 16_000;

// Tags of the flat write queue.
const FN = 0; // [FN, () => void]
const RESULT = 1; // [RESULT, runId, index, stepId, json, status, event, data, component, attempt, ms, at]
const START = 2; // [START, runId, index, stepId, component, attempt, at]

/** The journal data of a step result as JSON text, or null. */
function eventDataText(record: StepResultRecord): string | null {
  const data = stepEventData(record);
  return data === undefined ? null : stringifyJson(data);
}

/** The queued writes of one SQLite store and their group commit. */
export class SqliteWriter {
  #q: unknown[] = [];
  /** Blobs queued and not committed yet, by id (read back without forcing a commit). */
  #pendingBlobs = new Map<string, { text: string; blobType: "data" | "flow" }>();
  #gc: GroupCommit;
  /** Whether this engine's `engines` row is written. */
  engine: "none" | "queued" | "committed" = "none";
  #engineInBatch = false;
  #heartbeat: ReturnType<typeof setInterval> | undefined;
  /** Runs WAL checkpoints in a worker (undefined: SQLite does, on the store's connection). */
  checkpointer: Checkpointer | undefined;

  constructor(readonly c: SqliteCore, readonly heartbeatMs: number) {
    this.#gc = new GroupCommit(() => this.#commitQueue());
  }

  /** Queues `fn` (statements run inside the next commit). */
  push(fn: () => void): Promise<void> {
    this.#q.push(FN, fn);
    return this.#queued();
  }

  /** Commits what is queued now, so that a read sees it (a failure was logged and reported). */
  sync(): void {
    this.#gc.now();
  }

  /** Resolves once what is queued now is committed (at the end of the microtask burst). */
  flush(): Promise<void> {
    return this.#gc.soon();
  }

  /** Commits everything queued; resolves when nothing is queued or in flight. */
  drain(): Promise<void> {
    return this.#gc.drain();
  }

  /** Stops the heartbeat. */
  stop(): void {
    if (this.#heartbeat !== undefined) clearInterval(this.#heartbeat);
  }

  /** Queues this store's `engines` row (once), and starts its heartbeat. */
  ensureEngine(): void {
    if (this.engine !== "none") return;
    this.engine = "queued";
    const c = this.c;
    const id = processIdentity();
    const at = nowRfc3339();
    this.push(() => {
      c.stmt(
        `INSERT OR REPLACE INTO engines(id, host, pid, pid_start, pid_ns, url, started_at,
           heartbeat_at) VALUES (?, ?, ?, ?, ?, NULL, ?, ?)`,
      ).run(c.engineId, id.host ?? null, id.pid, id.pidStart ?? null, id.pidNs ?? null, at, at);
      this.#engineInBatch = true;
    });
    this.#heartbeat = setInterval(() => {
      const now = nowRfc3339();
      this.push(() => {
        c.stmt("UPDATE engines SET heartbeat_at = ? WHERE id = ?").run(now, c.engineId);
      });
    }, this.heartbeatMs);
    Deno.unrefTimer(this.#heartbeat as unknown as number);
  }

  #queued(): Promise<void> {
    const p = this.#gc.queued();
    if (this.#q.length >= MAX_QUEUE_LENGTH) this.#gc.now();
    return p;
  }

  /** Commits the queue in one transaction; throws (a StoreError) when it failed. */
  #commitQueue(): void {
    const q = this.#q;
    if (q.length === 0) return;
    this.#q = [];
    this.#pendingBlobs.clear();
    this.#engineInBatch = false;
    const c = this.c;
    try {
      c.transaction(() => {
        if (
          this.engine === "committed" &&
          !c.stmt("SELECT 1 FROM engines WHERE id = ?").get(c.engineId)
        ) {
          throw new Error(
            `this engine (${c.engineId}) was declared dead by another process (no heartbeat ` +
              `for ${c.staleAfterMs} ms) and its runs were marked interrupted; its writes ` +
              "are refused",
          );
        }
        this.#apply(q);
      });
      if (this.#engineInBatch) this.engine = "committed";
      this.checkpointer?.committed();
    } catch (e) {
      const err = c.error("cannot store run state", e);
      for (const r of c.open.values()) r.error ??= err;
      log.error(err.message);
      throw err;
    }
  }

  #apply(q: unknown[]): void {
    const c = this.c;
    const results = c.results.args;
    const infos = c.infos.args;
    for (let i = 0; i < q.length;) {
      const tag = q[i];
      if (tag === FN) {
        (q[i + 1] as () => void)();
        i += 2;
      } else if (tag === RESULT) {
        const runId = q[i + 1] as string;
        const index = q[i + 2] as number;
        const stepId = q[i + 3] as string;
        const attempt = q[i + 9] as number | null;
        const at = q[i + 11] as string;
        results.push(runId, index, stepId, q[i + 4] as string, at);
        const component = (q[i + 8] as string | null) ?? "";
        const ms = q[i + 10] as number | null;
        infos.push(runId, index, stepId, component, q[i + 5] as string, at, at, attempt ?? 1, ms);
        const data = q[i + 7] as string | null;
        c.event(runId, c.rootOf(runId), q[i + 6] as string, index, stepId, attempt, data, at);
        i += 12;
      } else {
        const runId = q[i + 1] as string;
        const index = q[i + 2] as number;
        const stepId = q[i + 3] as string;
        const attempt = q[i + 5] as number;
        const at = q[i + 6] as string;
        infos.push(runId, index, stepId, q[i + 4] as string, "running", at, at, attempt, null);
        c.event(runId, c.rootOf(runId), "step_started", index, stepId, attempt, null, at);
        i += 7;
      }
    }
  }

  // ---------------------------------------------------------------- the writes

  /** Queues a blob (content-addressed: written once); returns its id. */
  putBlob(data: JsonValue, blobType: "data" | "flow", knownId?: string): string {
    const id = knownId ?? blobId(data);
    if (this.c.closed) return id;
    const text = stringifyJson(data);
    const at = nowRfc3339();
    this.#pendingBlobs.set(id, { text, blobType });
    this.push(() =>
      this.c.stmt(
        "INSERT OR IGNORE INTO blobs(id, data, blob_type, created_at) VALUES (?, ?, ?, ?)",
      ).run(id, text, blobType, at)
    );
    return id;
  }

  /** A blob still queued (blobs never change: read from memory, no commit forced). */
  pendingBlob(id: string): StoredBlob | undefined {
    const pending = this.#pendingBlobs.get(id);
    return pending && { id, data: parseJson(pending.text), blobType: pending.blobType };
  }

  /** Queues a run's row and its `run_started` (`run_queued`) event. */
  createRun(run: RunRecord): Promise<void> {
    const c = this.c;
    const queued = run.status === "queued";
    const parent = run.parentRunId;
    const root = run.rootRunId ??
      (parent === undefined ? run.runId : c.open.get(parent)?.root ?? c.rootOf(parent));
    if (!queued) {
      this.ensureEngine();
      c.open.set(run.runId, { root });
    }
    const r = { ...run };
    const at = nowRfc3339();
    return this.push(() => {
      c.stmt(
        `INSERT OR REPLACE INTO runs(id, flow_id, flow_name, status, input_json, result_json,
           created_at, completed_at, overrides_json, parent_run_id, root_run_id, run_key,
           variables_json, owner_id, lease_epoch, started_at, updated_at, debug_mode)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ).run(
        r.runId,
        r.flowId,
        r.flowName ?? null,
        r.status,
        stringifyJson(r.input),
        r.result === undefined ? null : stringifyJson(r.result),
        r.createdAt,
        r.completedAt ?? null,
        r.overrides === undefined ? null : stringifyJson(r.overrides),
        parent ?? null,
        root,
        r.runKey ?? null,
        r.variables === undefined ? null : stringifyJson(r.variables),
        queued ? null : c.engineId,
        queued ? 0 : 1,
        queued ? null : at,
        at,
        r.debugMode ? 1 : 0,
      );
      c.event(r.runId, root, queued ? "run_queued" : "run_started", null, null, null, null, at);
    });
  }

  /** Queues a step's start (`step_info` running, `step_started`). */
  stepStarted(runId: string, s: StepStartRecord): Promise<void> {
    this.#q.push(START, runId, s.stepIndex, s.stepId, s.component, s.attempt, s.at ?? nowRfc3339());
    return this.#queued();
  }

  /** Queues a step's result, status and event (the hot path: flat entries, no closure). */
  stepResult(runId: string, record: StepResultRecord): Promise<void> {
    const ms = record.durationMs;
    // the common event data built as text (JSON.stringify of it costs more than the row)
    const dataText = record.result.outcome !== "failed" && typeof ms === "number" &&
        Number.isSafeInteger(ms)
      ? `{"durationMs":${ms}}`
      : eventDataText(record);
    this.#q.push(
      RESULT,
      runId,
      record.stepIndex,
      record.stepId,
      stringifyJson(record.result),
      stepStatusOf(record.result),
      stepEventType(record.result),
      dataText,
      record.component ?? null,
      record.attempt ?? null,
      record.durationMs ?? null,
      record.at ?? nowRfc3339(),
    );
    return this.#queued();
  }

  /** Queues a run's end (status, result, `run_completed`). */
  completeRun(runId: string, status: RunStatus, result?: FlowResult): Promise<void> {
    const c = this.c;
    const text = result === undefined ? null : stringifyJson(result);
    const at = nowRfc3339();
    const data = stringifyJson(
      result === undefined ? { status } : { status, outcome: result.outcome },
    );
    return this.push(() => {
      c.stmt(
        `UPDATE runs SET status = ?, result_json = COALESCE(?, result_json), completed_at = ?,
           updated_at = ? WHERE id = ?`,
      ).run(status, text, at, at, runId);
      c.event(runId, c.rootOf(runId), "run_completed", null, null, null, data, at);
    });
  }

  /** Queues a run's new status, with an event when given. */
  setRunStatus(
    runId: string,
    status: RunStatus,
    event?: RunEventType,
    data?: JsonValue,
  ): Promise<void> {
    const c = this.c;
    const at = nowRfc3339();
    const text = data === undefined ? null : stringifyJson(data);
    return this.push(() => {
      c.stmt("UPDATE runs SET status = ?, updated_at = ? WHERE id = ?").run(status, at, runId);
      if (event) c.event(runId, c.rootOf(runId), event, null, null, null, text, at);
    });
  }

  /** Queues a batch's row. */
  createBatch(batch: BatchRecord): Promise<void> {
    const b = { ...batch };
    return this.push(() =>
      this.c.stmt(
        `INSERT OR REPLACE INTO batches(id, flow_id, flow_name, total_inputs, status, created_at)
         VALUES (?, ?, ?, ?, ?, ?)`,
      ).run(b.batchId, b.flowId, b.flowName ?? null, b.totalInputs, b.status, b.createdAt)
    );
  }

  /** Queues a run of a batch. */
  addBatchRun(batchId: string, runId: string, index: number): Promise<void> {
    return this.push(() =>
      this.c.stmt(
        "INSERT OR REPLACE INTO batch_runs(batch_id, run_id, batch_input_index) VALUES (?, ?, ?)",
      ).run(batchId, runId, index)
    );
  }
}
