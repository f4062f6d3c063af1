/**
 * The StateStore interface: blobs, runs, step results and batches (stepflow 0.8 §9).
 *
 * Writes return nothing or a commit promise: an in-memory store applies them at once and returns
 * nothing (the executor then pays no microtask per step); a durable store may return a promise
 * that settles when the write is committed (group commit per event-loop turn). The engine waits
 * for a returned promise before anything depends on the write (src/execution/pipeline.ts: a
 * step's result is committed before any dependent step starts or the run's output is built) and
 * fails the run when it rejects. {@linkcode StateStore.flush} waits until queued writes are
 * durable. Reads are async so that future stores (remote databases) fit the same interface.
 * @module
 */
import type { JsonValue } from "../json/exact_json.ts";
import type { FlowResult } from "../core/flow_result.ts";

/** Run status (stepflow 0.8: a skipped outcome is recorded as `failed`). */
export type RunStatus = "running" | "completed" | "failed" | "cancelled" | "paused";

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
  /** Records a new run (status `running` unless given); a promise: when committed. */
  createRun(run: RunRecord): void | Promise<void>;
  /**
   * Records a step's result (replaces an earlier one for the same index). A returned promise
   * settles when the result is committed; the engine starts no dependent step before.
   */
  recordStepResult(runId: string, record: StepResultRecord): void | Promise<void>;
  /** Marks a run finished with its result; a promise: when committed. */
  completeRun(runId: string, status: RunStatus, result?: FlowResult): void | Promise<void>;
  /** A run, or undefined. */
  getRun(runId: string): Promise<RunRecord | undefined>;
  /** Every run, oldest first. */
  listRuns(): Promise<RunRecord[]>;
  /** A run's step results, by step index. */
  getStepResults(runId: string): Promise<StepResultRecord[]>;
  /** Records a batch. */
  createBatch(batch: BatchRecord): void;
  /** Adds a run to a batch at `index`. */
  addBatchRun(batchId: string, runId: string, index: number): void;
  /** A batch, or undefined. */
  getBatch(batchId: string): Promise<BatchRecord | undefined>;
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
