/**
 * Batches: many runs of one flow with at most `maxConcurrency` in flight (stepflow 0.8 §11;
 * `/map`, `flows/submit_batch`, `flows/get_batch`). A run's final status is `completed` with its
 * result on success, and `failed` with no result on failure or skip (as in 0.8).
 * @module
 */
import type { JsonValue } from "../json/exact_json.ts";
import type { FlowResult } from "../core/flow_result.ts";
import type { BatchDetails, BatchOutputInfo } from "../plugins/plugin.ts";
import type { StateStore } from "../state/store.ts";
import { atomically, nowRfc3339 } from "../state/store.ts";
import { onNextTurn, turnDue } from "../core/turn.ts";

/** Runs one batch item (its input, run id and index): the engine's `run` for the batch's flow. */
export type BatchItemRunner = (
  input: JsonValue,
  runId: string,
  index: number,
) => Promise<FlowResult>;

/** Options of {@linkcode BatchManager.submit}. */
export interface BatchOptions {
  /** Most runs in flight; default all inputs at once (0.8). */
  maxConcurrency?: number;
  /** When aborted (the parent run ended), items not started yet are `cancelled`, not run. */
  signal?: AbortSignal;
  /**
   * The run id of each item, where one exists already (a resumed parent's nested runs, found by
   * their keys); a new UUID for the others.
   */
  runIds?: readonly (string | undefined)[];
}

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
   * Starts a batch and returns at once. Item runs never throw (the runner returns FlowResults); a
   * runner that throws marks the item `failed`.
   */
  submit(
    flowId: string,
    flowName: string | undefined,
    inputs: JsonValue[],
    runner: BatchItemRunner,
    options: BatchOptions = {},
  ): { batch_id: string; total_runs: number } {
    const { maxConcurrency, signal } = options;
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
    const state: BatchState = {
      details,
      statuses: new Array(n).fill("running"),
      results: new Array(n),
      done: Promise.resolve(),
    };
    const known = options.runIds;
    const runIds = inputs.map((_, i) => known?.[i] ?? crypto.randomUUID());
    // the batch's record and its runs' rows in one commit: all or none (StateStore.atomic)
    atomically(this.store, () => {
      this.store.createBatch({
        batchId,
        flowId,
        flowName,
        totalInputs: n,
        status: "running",
        createdAt: details.created_at,
      });
      runIds.forEach((id, i) => this.store.addBatchRun(batchId, id, i));
    });
    const limit = Math.max(
      1,
      Math.min(maxConcurrency && maxConcurrency > 0 ? maxConcurrency : n, n),
    );
    // Items run in `limit` loops; each loop takes the next item when its previous one is done.
    // The loops start in turns of the event loop (src/core/turn.ts): 100,000 of them started at
    // once would keep a run timeout or Ctrl-C waiting.
    let next = 0;
    let loopsLeft = n > 0 ? limit : 0;
    let allDone!: () => void;
    const finished = new Promise<void>((resolve) => allDone = resolve);
    const loop = async () => {
      while (next < n) {
        const i = next++;
        if (signal?.aborted) {
          details.running_runs--;
          state.statuses[i] = "cancelled";
          details.cancelled_runs++;
          continue;
        }
        let r: FlowResult | undefined;
        try {
          r = await runner(inputs[i], runIds[i], i);
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
      if (--loopsLeft === 0) allDone();
    };
    let started = 0;
    const startLoops = () => {
      while (started < limit && next < n) {
        if (turnDue()) {
          onNextTurn(startLoops);
          return;
        }
        started++;
        void loop();
      }
      // items ran out before every loop started (the first ones were quick)
      loopsLeft -= limit - started;
      started = limit;
      if (loopsLeft === 0) allDone();
    };
    if (n === 0) allDone();
    else startLoops();
    state.done = finished.then(() => {
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
