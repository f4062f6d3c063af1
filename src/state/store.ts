/**
 * The StateStore interface: blobs, runs, step results and batches (stepflow 0.8 §9).
 *
 * Writes are synchronous calls that return nothing: an in-memory store applies them at once and
 * a persistent store may queue them (0.8 writes through an async queue too) — the executor never
 * awaits the store on its hot path. {@linkcode StateStore.flush} waits until queued writes are
 * durable. Reads are async so that future stores (remote databases) fit the same interface.
 * @module
 */
import type { JsonValue } from "../json/exact_json.ts";
import type { FlowResult } from "../flow/flow_result.ts";

/**
 * Run status (stepflow 0.8: a skipped outcome is recorded as `failed`). `queued` (extension): the
 * run is accepted but waits for a slot (the service's limit on concurrent runs).
 */
export type RunStatus = "queued" | "running" | "completed" | "failed" | "cancelled" | "paused";

/** Which runs {@linkcode StateStore.listRuns} returns. */
export interface RunFilter {
  status?: RunStatus;
  flowName?: string;
  /** RFC 3339: only runs with `createdAt >= since`. */
  since?: string;
  /** Most runs returned. */
  limit?: number;
  /** Runs skipped first (after filtering and ordering). */
  offset?: number;
  /** Only runs without a parent (no nested `eval`/`map`/`iterate` runs). */
  rootOnly?: boolean;
}

/** Which batches {@linkcode StateStore.listBatches} returns (stepflow 0.8 `BatchFilters`). */
export interface BatchFilter {
  status?: BatchRecord["status"];
  flowName?: string;
  limit?: number;
  offset?: number;
}

/** A stored blob. */
export interface StoredBlob {
  id: string;
  data: JsonValue;
  blobType: "data" | "flow";
}

/** What is known about one run. Times are RFC 3339 strings. */
export interface RunRecord {
  runId: string;
  flowId: string;
  flowName?: string;
  status: RunStatus;
  input: JsonValue;
  result?: FlowResult;
  overrides?: JsonValue;
  createdAt: string;
  completedAt?: string;
  /** The run that started this one (nested `eval`/`map`/`iterate` runs). */
  parentRunId?: string;
}

/** One step's stored result. */
export interface StepResultRecord {
  stepIndex: number;
  stepId: string;
  result: FlowResult;
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

/** Where runs, step results, blobs and batches are kept. */
export interface StateStore {
  /** `inMemory` or `sqlite`. */
  readonly kind: string;
  /**
   * Stores a blob (idempotent: same content, same id) and returns its id. `id`, when given, must
   * be `blobId(data)` (callers that already hashed the data pass it to save hashing again).
   */
  putBlob(data: JsonValue, blobType: "data" | "flow", id?: string): string;
  /** Reads a blob, or undefined for an unknown id. */
  getBlob(id: string): Promise<StoredBlob | undefined>;
  /** Records a new run (status `running` unless given). */
  createRun(run: RunRecord): void;
  /** Records a step's result (replaces an earlier one for the same index). */
  recordStepResult(runId: string, record: StepResultRecord): void;
  /** Marks a run finished with its result. */
  completeRun(runId: string, status: RunStatus, result?: FlowResult): void;
  /** A run, or undefined. */
  getRun(runId: string): Promise<RunRecord | undefined>;
  /** Runs matching `filter`, newest first (createdAt desc, then runId). */
  listRuns(filter?: RunFilter): Promise<RunRecord[]>;
  /**
   * Deletes a run, its step results and its nested runs (and theirs).
   * @returns false when no run has that id.
   */
  deleteRun(runId: string): Promise<boolean>;
  /** A run's step results, by step index. */
  getStepResults(runId: string): Promise<StepResultRecord[]>;
  /** Records a batch (replaces the record of the same id: a status change is a new record). */
  createBatch(batch: BatchRecord): void;
  /** Adds a run to a batch at `index`. */
  addBatchRun(batchId: string, runId: string, index: number): void;
  /** A batch, or undefined. */
  getBatch(batchId: string): Promise<BatchRecord | undefined>;
  /**
   * Batches matching `filter`, newest first (`GET /batches`). Optional: a store without it has
   * its batches listed from the service's memory.
   */
  listBatches?(filter?: BatchFilter): Promise<BatchRecord[]>;
  /** A batch's run ids by input index. */
  getBatchRuns(batchId: string): Promise<{ runId: string; index: number }[]>;
  /** Waits until queued writes are stored. */
  flush(): Promise<void>;
  /** Flushes and releases resources; safe to call twice. */
  close(): Promise<void>;
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
