/**
 * Batches of the service (stepflow 0.8 `/batches`): many runs of one flow, at most
 * `maxConcurrency` of them at once (and within the service's limit on runs). Unlike 0.8, the
 * batch's overrides are applied, and cancelling a batch cancels its runs.
 * @module
 */
import type { Flow } from "../flow/model.ts";
import type { FlowResult } from "../core/flow_result.ts";
import type { JsonValue } from "../json/exact_json.ts";
import type { BatchRecord, RunStatus } from "../state/store.ts";
import { logger } from "../log.ts";
import { describeError } from "../errors.ts";
import type { ServiceStore } from "./store_adapter.ts";
import type { RunService } from "./runs.ts";
import type { ServiceMetrics } from "./metrics.ts";
import { uuidv7 } from "./ids.ts";
import { ApiError } from "./api_error.ts";
import { StoreError } from "../state/store.ts";

const log = logger("serve");

/** 0.8 `BatchDetails` (camelCase, flattened). */
export interface BatchDetailsBody {
  batchId: string;
  flowId: string;
  flowName: string | null;
  totalInputs: number;
  createdAt: string;
  status: "running" | "cancelled";
  completedRuns: number;
  runningRuns: number;
  failedRuns: number;
  cancelledRuns: number;
  pausedRuns: number;
  completedAt: string | null;
}

interface LiveBatch {
  record: BatchRecord;
  runIds: string[];
  statuses: RunStatus[];
  counts: { completed: number; failed: number; cancelled: number };
  cancelled: boolean;
  completedAt?: string;
  done: Promise<void>;
}

/** Options of a batch (`POST /batches`). */
interface BatchOptions {
  maxConcurrency?: number;
  overrides?: JsonValue;
  variables?: Record<string, JsonValue>;
}

/** Finished batches kept in memory for quick answers; older ones are read from the store. */
const MAX_FINISHED_IN_MEMORY = 100;

/** The batches of a service. */
export class BatchService {
  #live = new Map<string, LiveBatch>();
  #finished: string[] = [];
  #running = 0;
  /**
   * Distributed mode (several engines on a PostgreSQL store, src/server/cluster.ts): a batch's
   * runs are queued in the database at once and claimed by any engine; this cancels one of them
   * wherever it is.
   */
  distributedCancel?: (runId: string, reason: string) => Promise<unknown>;

  constructor(
    readonly runs: RunService,
    readonly store: ServiceStore,
    metrics: ServiceMetrics,
  ) {
    metrics.gauges.batches = () => this.#running;
  }

  /**
   * Starts a batch: one run per input (ids and `queued` records made now, in input order),
   * executed with at most `maxConcurrency` at once (default: all), once the batch's records are
   * stored. Returns at once; `stored` resolves once they are, and rejects with an
   * {@linkcode ApiError} 507 when they cannot be (disk full, ...): then no run starts, and each is
   * recorded failed with that error once the store can be written again. The batch's record and
   * its runs' rows are stored in one commit, all or none (`StateStore.atomic`): before, a batch
   * of thousands of runs spanned several commits, and a failure of a later one left the batch and
   * its first runs stored — run after a restart although its client was told 507.
   */
  submit(
    flow: Flow,
    flowId: string,
    inputs: JsonValue[],
    options: BatchOptions = {},
  ): { batchId: string; totalInputs: number; stored: Promise<void> } {
    return this.store.atomic(() => this.#create(flow, flowId, inputs, options));
  }

  #create(
    flow: Flow,
    flowId: string,
    inputs: JsonValue[],
    options: BatchOptions,
  ): { batchId: string; totalInputs: number; stored: Promise<void> } {
    const batchId = uuidv7();
    const n = inputs.length;
    const record: BatchRecord = {
      batchId,
      flowId,
      flowName: flow.name,
      totalInputs: n,
      status: "running",
      createdAt: this.store.now(),
    };
    // kept with the batch: a service taking its runs over keeps to it (src/server/runs.ts)
    if (options.maxConcurrency !== undefined) record.maxConcurrency = options.maxConcurrency;
    // the commit carrying the batch's records (the same promise for every write of one group
    // commit, and `atomic` keeps them in one), waited for before its runs start
    const writes = new Set<Promise<void>>();
    const note = (w: Promise<void> | void) => {
      if (w !== undefined) writes.add(w);
    };
    note(this.store.createBatch(record));
    if (this.distributedCancel !== undefined) {
      // every engine claims the batch's runs from the database, within each engine's
      // --max-concurrent-runs and, over all the engines, the batch's maxConcurrency (counted by
      // the claims: src/state/postgres_cluster.ts; the runs are linked to the batch in this commit)
      const at = this.store.now();
      const runIds: string[] = [];
      for (let i = 0; i < n; i++) {
        const runId = uuidv7();
        this.store.createQueuedRun({
          runId,
          flowId,
          flowName: flow.name,
          input: inputs[i],
          overrides: options.overrides,
          variables: options.variables,
          createdAt: at,
        });
        note(this.store.addBatchRun(batchId, runId, i));
        runIds.push(runId);
      }
      const stored = this.#stored(writes);
      // its rows are not stored: no engine runs them; each is recorded failed (as its 507 says)
      stored.catch((e: ApiError) => {
        const result: FlowResult = { outcome: "failed", error: { code: 507, message: e.message } };
        for (const runId of runIds) this.store.finishRun(runId, "failed", result);
      });
      return { batchId, totalInputs: n, stored };
    }
    const b: LiveBatch = {
      record,
      runIds: [],
      statuses: new Array(n).fill("queued"),
      counts: { completed: 0, failed: 0, cancelled: 0 },
      cancelled: false,
      done: Promise.resolve(),
    };
    const createdAt = this.store.now();
    for (let i = 0; i < n; i++) {
      const runId = uuidv7();
      b.runIds.push(runId);
      this.store.createQueuedRun({
        runId,
        flowId,
        flowName: flow.name,
        input: inputs[i],
        overrides: options.overrides,
        variables: options.variables,
        createdAt,
      });
      note(this.store.addBatchRun(batchId, runId, i));
      const index = i;
      this.runs.reserve(runId, () => {
        b.statuses[index] = "cancelled";
        b.counts.cancelled++;
      });
    }
    const limit = Math.max(1, Math.min(options.maxConcurrency ?? n, n));
    let next = 0;
    const worker = async () => {
      while (next < n) {
        const i = next++;
        const runId = b.runIds[i];
        if (b.statuses[i] !== "queued") continue; // cancelled before it started
        this.runs.release(runId);
        if (b.cancelled) {
          b.statuses[i] = "cancelled";
          b.counts.cancelled++;
          this.store.finishRun(runId, "cancelled", cancelledResult());
          continue;
        }
        let outcome: { status: RunStatus; result: FlowResult };
        try {
          b.statuses[i] = "running";
          const run = this.runs.submit({
            flow,
            flowId,
            input: inputs[i],
            overrides: options.overrides,
            variables: options.variables,
          }, { runId, ignoreQueueLimit: true });
          outcome = await run.done;
        } catch (e) {
          // the service is shutting down: the run never starts
          log.debug(`batch ${batchId}: run ${i} not started: ${describeError(e)}`);
          outcome = { status: "cancelled", result: cancelledResult() };
          this.store.finishRun(runId, "cancelled", outcome.result);
        }
        b.statuses[i] = outcome.status;
        if (outcome.status === "completed") b.counts.completed++;
        else if (outcome.status === "cancelled") b.counts.cancelled++;
        else b.counts.failed++;
      }
    };
    this.#running++;
    // started once its records are stored: a batch answered with an id is found by that id
    // after a restart, and its runs are there to be taken over (src/server/runs_resume.ts)
    const stored = this.#stored(writes);
    const workers = stored.then(() => {
      const all: Promise<void>[] = [];
      for (let k = 0; k < limit && n > 0; k++) all.push(worker());
      return Promise.all(all);
    }, (e: ApiError) => {
      const result: FlowResult = { outcome: "failed", error: { code: 507, message: e.message } };
      b.runIds.forEach((runId, i) => {
        this.runs.release(runId);
        if (b.statuses[i] !== "queued") return; // cancelled meanwhile
        b.statuses[i] = "failed";
        b.counts.failed++;
        this.store.finishRun(runId, "failed", result);
      });
    });
    b.done = workers.then(() => {
      this.#running--;
      b.completedAt = this.store.now();
      this.#finished.push(batchId);
      while (this.#finished.length > MAX_FINISHED_IN_MEMORY) {
        this.#live.delete(this.#finished.shift()!);
      }
    });
    this.#live.set(batchId, b);
    return { batchId, totalInputs: n, stored };
  }

  /** Resolves once the commits `writes` succeeded; rejects with a 507 otherwise. */
  #stored(writes: Set<Promise<void>>): Promise<void> {
    return Promise.all(writes).then(() => {}, (e) => {
      throw new ApiError(
        507,
        `The batch could not be stored: ${describeError(plainCause(e))}. None of its runs ` +
          "started; each is recorded failed with this error as soon as the database can be " +
          "written again (nothing of the batch is stored if the service stops before). Submit the " +
          "batch again",
      );
    });
  }

  /** The batch's details, or undefined for an unknown id. */
  async details(batchId: string): Promise<BatchDetailsBody | undefined> {
    const b = this.#live.get(batchId);
    if (b) {
      const { completed, failed, cancelled } = b.counts;
      return {
        ...metadata(b.record),
        status: b.cancelled ? "cancelled" : "running",
        completedRuns: completed,
        runningRuns: b.record.totalInputs - completed - failed - cancelled,
        failedRuns: failed,
        cancelledRuns: cancelled,
        pausedRuns: 0,
        completedAt: b.completedAt ?? null,
      };
    }
    const record = await this.store.getBatch(batchId);
    if (!record) return undefined;
    const d: BatchDetailsBody = {
      ...metadata(record),
      completedRuns: 0,
      runningRuns: 0,
      failedRuns: 0,
      cancelledRuns: 0,
      pausedRuns: 0,
      completedAt: null,
    };
    let last = "";
    const ids = (await this.store.getBatchRuns(batchId)).map((r) => r.runId);
    const runs = new Map((await this.store.getRuns(ids)).map((r) => [r.runId, r]));
    for (const runId of ids) {
      const run = runs.get(runId);
      const status = run?.status ?? "cancelled";
      if (status === "completed") d.completedRuns++;
      else if (status === "failed") d.failedRuns++;
      else if (status === "cancelled") d.cancelledRuns++;
      else if (status === "paused") d.pausedRuns++;
      else d.runningRuns++;
      if (run?.completedAt && run.completedAt > last) last = run.completedAt;
    }
    if (d.runningRuns === 0 && d.pausedRuns === 0) d.completedAt = last || record.createdAt;
    return d;
  }

  /** The batch record, or undefined. */
  async record(batchId: string): Promise<BatchRecord | undefined> {
    return this.#live.get(batchId)?.record ?? await this.store.getBatch(batchId);
  }

  /**
   * Cancels a batch: runs not started yet never start, running ones are cancelled.
   * @returns `unknown`, `already` (cancelled before), `finished` (every run had ended), or
   * `cancelled`.
   */
  async cancel(batchId: string): Promise<"unknown" | "already" | "finished" | "cancelled"> {
    const b = this.#live.get(batchId);
    if (!b) {
      const record = await this.store.getBatch(batchId);
      if (!record) return "unknown";
      if (record.status === "cancelled") return "already";
      const d = await this.details(batchId);
      if (d && d.runningRuns === 0) return "finished";
      // a batch of an earlier service process (or of the engines sharing the database): its runs
      // are not running here
      this.store.setBatchStatus(record, "cancelled");
      const ids = (await this.store.getBatchRuns(batchId)).map((r) => r.runId);
      const cancels: Promise<unknown>[] = [];
      for (const run of await this.store.getRuns(ids)) {
        if (run.status !== "queued" && run.status !== "running" && run.status !== "paused") {
          continue;
        }
        if (this.distributedCancel !== undefined) {
          cancels.push(
            this.distributedCancel(run.runId, `batch ${batchId} was cancelled`).catch(() => {}),
          );
        } else this.store.finishRun(run.runId, "cancelled", cancelledResult());
      }
      await Promise.all(cancels);
      return "cancelled";
    }
    if (b.cancelled) return "already";
    if (b.completedAt !== undefined) return "finished";
    b.cancelled = true;
    b.record = { ...b.record, status: "cancelled" };
    this.store.setBatchStatus(b.record, "cancelled");
    const cancels: Promise<unknown>[] = [];
    b.runIds.forEach((runId, i) => {
      if (b.statuses[i] === "queued" || b.statuses[i] === "running") {
        cancels.push(this.runs.cancel(runId, `batch ${batchId} was cancelled`));
      }
    });
    await Promise.all(cancels);
    return "cancelled";
  }

  /** Waits until every run of the batch has ended (tests, shutdown). */
  async settled(batchId: string): Promise<void> {
    await this.#live.get(batchId)?.done;
  }
}

function metadata(r: BatchRecord) {
  return {
    batchId: r.batchId,
    flowId: r.flowId,
    flowName: r.flowName ?? null,
    totalInputs: r.totalInputs,
    createdAt: r.createdAt,
    status: r.status,
  };
}

function cancelledResult(): FlowResult {
  return {
    outcome: "failed",
    error: { code: 410, message: "Run was cancelled before it started: its batch was cancelled" },
  };
}

/** The store's own failure inside an error that also says what becomes of a run. */
function plainCause(e: unknown): unknown {
  return e instanceof StoreError && e.cause instanceof StoreError ? e.cause : e;
}
