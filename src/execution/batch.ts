/**
 * Batches: many runs of one flow with at most `maxConcurrency` in flight (stepflow 0.8 §11;
 * `/map`, `flows/submit_batch`, `flows/get_batch`). A run's final status is `completed` with its
 * result on success, and `failed` with no result on failure or skip (as in 0.8).
 * @module
 */
import type { JsonValue } from "../json/exact_json.ts";
import type { FlowResult } from "../flow/flow_result.ts";
import type { BatchDetails, BatchOutputInfo } from "../plugins/plugin.ts";
import type { StateStore } from "../state/store.ts";
import { nowRfc3339 } from "../state/store.ts";

/** Runs one batch item: the engine's `run` for the batch's flow. */
export type BatchItemRunner = (input: JsonValue, runId: string) => Promise<FlowResult>;

interface BatchState {
  details: BatchDetails;
  statuses: BatchOutputInfo["status"][];
  results: (FlowResult | undefined)[];
  done: Promise<void>;
}

/**
 * Finished batches kept in memory (oldest dropped first); older ones are answered from the state
 * store (batch record, its runs and their results), so memory does not grow with every `/map`.
 */
export const MAX_FINISHED_BATCHES_IN_MEMORY = 100;

/** Keeps the batches of one engine. */
export class BatchManager {
  #batches = new Map<string, BatchState>();
  #finished: string[] = [];

  constructor(readonly store: StateStore) {}

  /**
   * Starts a batch and returns at once. `maxConcurrency` defaults to all inputs at once (0.8).
   * Item runs never throw (the runner returns FlowResults); a runner that throws marks the item
   * `failed`.
   */
  submit(
    flowId: string,
    flowName: string | undefined,
    inputs: JsonValue[],
    runner: BatchItemRunner,
    maxConcurrency?: number,
  ): { batch_id: string; total_runs: number } {
    const batchId = crypto.randomUUID();
    const n = inputs.length;
    const details: BatchDetails = {
      batch_id: batchId,
      flow_id: flowId,
      total_runs: n,
      status: "running",
      created_at: nowRfc3339(),
      completed_runs: 0,
      running_runs: n,
      failed_runs: 0,
      cancelled_runs: 0,
      paused_runs: 0,
    };
    if (flowName !== undefined) details.flow_name = flowName;
    this.store.createBatch({
      batchId,
      flowId,
      flowName,
      totalInputs: n,
      status: "running",
      createdAt: details.created_at,
    });
    const state: BatchState = {
      details,
      statuses: new Array(n).fill("running"),
      results: new Array(n),
      done: Promise.resolve(),
    };
    const runIds = inputs.map(() => crypto.randomUUID());
    runIds.forEach((id, i) => this.store.addBatchRun(batchId, id, i));
    const limit = Math.max(
      1,
      Math.min(maxConcurrency && maxConcurrency > 0 ? maxConcurrency : n, n),
    );
    let next = 0;
    const worker = async () => {
      while (next < n) {
        const i = next++;
        let r: FlowResult | undefined;
        try {
          r = await runner(inputs[i], runIds[i]);
        } catch {
          r = undefined;
        }
        details.running_runs--;
        if (r?.outcome === "success") {
          state.statuses[i] = "completed";
          state.results[i] = r;
          details.completed_runs++;
        } else {
          state.statuses[i] = "failed";
          details.failed_runs++;
        }
      }
    };
    const workers: Promise<void>[] = [];
    for (let k = 0; k < limit && n > 0; k++) workers.push(worker());
    state.done = Promise.all(workers).then(() => {
      details.completed_at = nowRfc3339();
      this.#finished.push(batchId);
      while (this.#finished.length > MAX_FINISHED_BATCHES_IN_MEMORY) {
        this.#batches.delete(this.#finished.shift()!);
      }
    });
    this.#batches.set(batchId, state);
    return { batch_id: batchId, total_runs: n };
  }

  /**
   * A batch's details and, with `includeResults`, one output per input in order.
   * `wait` waits until no run is running.
   * @throws {Error} `Not found: batch with ID '<id>'` for an unknown id.
   */
  async get(
    batchId: string,
    options: { wait?: boolean; includeResults?: boolean } = {},
  ): Promise<{ details: BatchDetails; outputs?: BatchOutputInfo[] | null }> {
    const state = this.#batches.get(batchId);
    if (!state) return await this.#fromStore(batchId, options.includeResults === true);
    if (options.wait) await state.done;
    const details = { ...state.details };
    if (!options.includeResults) return { details, outputs: null };
    const outputs: BatchOutputInfo[] = state.statuses.map((status, i) => {
      const o: BatchOutputInfo = { batch_input_index: i, status };
      const r = state.results[i];
      if (r !== undefined) o.result = r;
      return o;
    });
    return { details, outputs };
  }

  /** A batch no longer in memory, rebuilt from the state store. */
  async #fromStore(
    batchId: string,
    includeResults: boolean,
  ): Promise<{ details: BatchDetails; outputs?: BatchOutputInfo[] | null }> {
    const batch = await this.store.getBatch(batchId);
    if (!batch) throw new Error(`Not found: batch with ID '${batchId}'`);
    const runs = await this.store.getBatchRuns(batchId);
    const outputs: BatchOutputInfo[] = [];
    const details: BatchDetails = {
      batch_id: batchId,
      flow_id: batch.flowId,
      total_runs: batch.totalInputs,
      status: batch.status,
      created_at: batch.createdAt,
      completed_runs: 0,
      running_runs: 0,
      failed_runs: 0,
      cancelled_runs: 0,
      paused_runs: 0,
    };
    if (batch.flowName !== undefined) details.flow_name = batch.flowName;
    let last = "";
    for (const { runId, index } of runs.sort((a, b) => a.index - b.index)) {
      const run = await this.store.getRun(runId);
      // a queued run (not started yet) reads as running on the wire (0.8 has no `queued`)
      const status = run === undefined || run.status === "queued" ? "running" : run.status;
      if (status === "completed") details.completed_runs++;
      else if (status === "failed") details.failed_runs++;
      else if (status === "cancelled") details.cancelled_runs++;
      else if (status === "paused") details.paused_runs++;
      else details.running_runs++;
      if (run?.completedAt && run.completedAt > last) last = run.completedAt;
      const o: BatchOutputInfo = { batch_input_index: index, status };
      if (status === "completed" && run?.result !== undefined) o.result = run.result;
      outputs.push(o);
    }
    if (details.running_runs === 0 && last) details.completed_at = last;
    return { details, outputs: includeResults ? outputs : null };
  }

  /** Drops a finished batch from memory (the state store keeps its records). */
  forget(batchId: string): void {
    this.#batches.delete(batchId);
  }
}
