/**
 * The in-memory state store (`stateStore: {type: inMemory}`, the default). Everything is lost
 * when the process exits (as in stepflow 0.8).
 * @module
 */
import type { JsonValue } from "../json/exact_json.ts";
import type { FlowResult } from "../flow/flow_result.ts";
import { blobId } from "./blob_id.ts";
import {
  type BatchFilter,
  type BatchRecord,
  nowRfc3339,
  type RunFilter,
  type RunRecord,
  type RunStatus,
  type StateStore,
  type StepResultRecord,
  type StoredBlob,
} from "./store.ts";

/** A {@linkcode StateStore} kept in maps; every write is applied synchronously. */
export class MemoryStateStore implements StateStore {
  readonly kind = "inMemory";
  #blobs = new Map<string, StoredBlob>();
  #runs = new Map<string, RunRecord>();
  /** Step results per run, indexed by step index (sparse until every step has run). */
  #steps = new Map<string, (StepResultRecord | undefined)[]>();
  #batches = new Map<string, BatchRecord>();
  #batchRuns = new Map<string, { runId: string; index: number }[]>();

  putBlob(data: JsonValue, blobType: "data" | "flow", knownId?: string): string {
    const id = knownId ?? blobId(data);
    if (!this.#blobs.has(id)) this.#blobs.set(id, { id, data, blobType });
    return id;
  }

  getBlob(id: string): Promise<StoredBlob | undefined> {
    return Promise.resolve(this.#blobs.get(id.toLowerCase()));
  }

  createRun(run: RunRecord): void {
    this.#runs.set(run.runId, { ...run });
  }

  recordStepResult(runId: string, record: StepResultRecord): void {
    let list = this.#steps.get(runId);
    if (!list) this.#steps.set(runId, list = []);
    list[record.stepIndex] = record;
  }

  completeRun(runId: string, status: RunStatus, result?: FlowResult): void {
    const run = this.#runs.get(runId);
    if (!run) return;
    run.status = status;
    if (result !== undefined) run.result = result;
    run.completedAt = nowRfc3339();
  }

  getRun(runId: string): Promise<RunRecord | undefined> {
    const r = this.#runs.get(runId);
    return Promise.resolve(r ? { ...r } : undefined);
  }

  listRuns(filter: RunFilter = {}): Promise<RunRecord[]> {
    const out: RunRecord[] = [];
    for (const r of this.#runs.values()) {
      if (filter.status !== undefined && r.status !== filter.status) continue;
      if (filter.flowName !== undefined && r.flowName !== filter.flowName) continue;
      if (filter.since !== undefined && r.createdAt < filter.since) continue;
      if (filter.rootOnly && r.parentRunId !== undefined) continue;
      out.push({ ...r });
    }
    out.sort((a, b) =>
      a.createdAt !== b.createdAt
        ? (a.createdAt < b.createdAt ? 1 : -1)
        : (a.runId < b.runId ? -1 : a.runId > b.runId ? 1 : 0)
    );
    return Promise.resolve(page(out, filter.offset, filter.limit));
  }

  deleteRun(runId: string): Promise<boolean> {
    if (!this.#runs.has(runId)) return Promise.resolve(false);
    const doomed = new Set([runId]);
    // nested runs (and theirs): parents are created before their children
    for (const r of this.#runs.values()) {
      if (r.parentRunId !== undefined && doomed.has(r.parentRunId)) doomed.add(r.runId);
    }
    for (const id of doomed) {
      this.#runs.delete(id);
      this.#steps.delete(id);
    }
    return Promise.resolve(true);
  }

  getStepResults(runId: string): Promise<StepResultRecord[]> {
    const list = this.#steps.get(runId) ?? [];
    return Promise.resolve(list.filter((r): r is StepResultRecord => r !== undefined));
  }

  createBatch(batch: BatchRecord): void {
    this.#batches.set(batch.batchId, { ...batch });
  }

  addBatchRun(batchId: string, runId: string, index: number): void {
    let l = this.#batchRuns.get(batchId);
    if (!l) this.#batchRuns.set(batchId, l = []);
    l.push({ runId, index });
  }

  getBatch(batchId: string): Promise<BatchRecord | undefined> {
    const b = this.#batches.get(batchId);
    return Promise.resolve(b ? { ...b } : undefined);
  }

  listBatches(filter: BatchFilter = {}): Promise<BatchRecord[]> {
    const out = [...this.#batches.values()].filter((b) =>
      (filter.status === undefined || b.status === filter.status) &&
      (filter.flowName === undefined || b.flowName === filter.flowName)
    ).map((b) => ({ ...b })).reverse();
    out.sort((a, b) => (a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : 0));
    return Promise.resolve(page(out, filter.offset, filter.limit));
  }

  getBatchRuns(batchId: string): Promise<{ runId: string; index: number }[]> {
    return Promise.resolve([...(this.#batchRuns.get(batchId) ?? [])]);
  }

  flush(): Promise<void> {
    return Promise.resolve();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

function page<T>(items: T[], offset = 0, limit?: number): T[] {
  return items.slice(offset, limit === undefined ? undefined : offset + limit);
}
