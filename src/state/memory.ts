/**
 * The in-memory state store (`stateStore: {type: inMemory}`, the default). Everything is lost
 * when the process exits (as in stepflow 0.8).
 * @module
 */
import type { JsonValue } from "../json/exact_json.ts";
import type { FlowResult } from "../core/flow_result.ts";
import { blobId } from "./blob_id.ts";
import {
  type BatchRecord,
  nowRfc3339,
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

  listRuns(): Promise<RunRecord[]> {
    return Promise.resolve([...this.#runs.values()].map((r) => ({ ...r })));
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
