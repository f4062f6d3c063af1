/**
 * The runs of one service: starting them on the engine within the service's limit on concurrent
 * runs (a FIFO queue beyond it, 429 when the queue is full), waiting for them, cancelling them
 * (really: running steps are cancelled and the run ends `cancelled`), idempotency keys, and
 * draining at shutdown.
 * @module
 */
import type { Engine, ResumeMode } from "../execution/engine.ts";
import { wasInterrupted } from "../execution/resume.ts";
import type { Flow } from "../flow/model.ts";
import { failed, type FlowResult } from "../core/flow_result.ts";
import type { JsonValue } from "../json/exact_json.ts";
import type { RunStatus } from "../state/store.ts";
import { describeError, RunNotResumableError } from "../errors.ts";
import { logger } from "../log.ts";
import { ApiError } from "./api_error.ts";
import { resumeRun, type RunHandle, startRun } from "./engine_adapter.ts";
import type { ServiceMetrics } from "./metrics.ts";
import type { ServiceStore } from "./store_adapter.ts";
import { uuidv7 } from "./ids.ts";

const log = logger("serve");

/** Limits of the service on runs. */
export interface RunLimits {
  /** Runs executing at once; more wait in the queue. @default 100 */
  maxConcurrentRuns?: number;
  /** Runs waiting for a slot; more are refused with 429. @default 10000 */
  maxQueuedRuns?: number;
}

/** What to run. */
export interface RunRequest {
  flow: Flow;
  flowId: string;
  input: JsonValue;
  overrides?: JsonValue;
  variables?: Record<string, JsonValue>;
}

/** How a run ended. */
export interface RunOutcome {
  status: RunStatus;
  result: FlowResult;
}

/** A run accepted by this service and not finished yet. */
export interface ActiveRun {
  readonly runId: string;
  readonly flowId: string;
  /** `queued` until a slot frees, then `running`; `ended` once it finished. */
  readonly state: "queued" | "running" | "ended";
  /** Settles (never rejects) when the run has ended and its final status is stored. */
  readonly done: Promise<RunOutcome>;
  /** Steps running now (empty while queued). */
  inFlight(): { stepId: string; attempt: number; startedAt: number }[];
}

class Run implements ActiveRun {
  state: "queued" | "running" | "ended" = "queued";
  handle?: RunHandle;
  request?: RunRequest;
  cancelReason?: string;
  startedAt = 0;
  resolve!: (o: RunOutcome) => void;
  readonly done: Promise<RunOutcome>;

  constructor(readonly runId: string, readonly flowId: string, request?: RunRequest) {
    this.request = request;
    this.done = new Promise((r) => this.resolve = r);
  }

  inFlight() {
    return this.handle?.inFlight() ?? [];
  }
}

interface IdempotencyEntry {
  runId: string;
  fingerprint: string;
  at: number;
}

/** Idempotency keys remembered (oldest forgotten first). */
const MAX_IDEMPOTENCY_KEYS = 10_000;
/** How long an idempotency key is remembered: 24 h. */
const IDEMPOTENCY_TTL_MS = 24 * 3600 * 1000;

/** The runs of a service. */
export class RunService {
  readonly maxConcurrent: number;
  readonly maxQueued: number;
  #active = new Map<string, Run>();
  /** FIFO of queued runs; entries cancelled while queued are skipped when dequeued. */
  #queue: Run[] = [];
  #head = 0;
  #queued = 0;
  #running = 0;
  #accepting = true;
  #idempotency = new Map<string, IdempotencyEntry>();
  /** Runs accepted by a batch but not submitted yet: how to cancel each. */
  #reserved = new Map<string, () => void>();

  constructor(
    readonly engine: Engine,
    readonly store: ServiceStore,
    readonly metrics: ServiceMetrics,
    limits: RunLimits = {},
  ) {
    this.maxConcurrent = positive(limits.maxConcurrentRuns, 100, "maxConcurrentRuns");
    this.maxQueued = nonNegative(limits.maxQueuedRuns, 10_000, "maxQueuedRuns");
    metrics.gauges.active = () => this.#running;
    metrics.gauges.queued = () => this.#queued;
  }

  /** Runs executing now. */
  get running(): number {
    return this.#running;
  }

  /** Runs waiting for a slot. */
  get queued(): number {
    return this.#queued;
  }

  /** False once {@linkcode drain} began. */
  get accepting(): boolean {
    return this.#accepting;
  }

  /** The active (queued or running) run `runId`, if any. */
  get(runId: string): ActiveRun | undefined {
    return this.#active.get(runId);
  }

  /**
   * Accepts a run: starts it now if a slot is free, else queues it (status `queued`).
   * @param options.runId the id to use (batches choose theirs); a new UUID v7 by default.
   * @param options.ignoreQueueLimit batch items: queued whatever the queue's size (the batch
   * was accepted as a whole).
   * @throws {ApiError} 503 while the service shuts down; 429 when the queue is full.
   */
  submit(
    request: RunRequest,
    options: { runId?: string; ignoreQueueLimit?: boolean } = {},
  ): ActiveRun {
    if (!this.#accepting) {
      this.metrics.runRejected("shutting_down");
      throw new ApiError(503, "The service is shutting down and accepts no new runs", undefined, {
        "Retry-After": "5",
      });
    }
    const hasSlot = this.#running < this.maxConcurrent && this.#queued === 0;
    if (!hasSlot && !options.ignoreQueueLimit && this.#queued >= this.maxQueued) {
      this.metrics.runRejected("queue_full");
      throw new ApiError(
        429,
        `Too many runs: ${this.#running} running (--max-concurrent-runs ${this.maxConcurrent}) and ${this.#queued} queued (--max-queued-runs ${this.maxQueued}); retry later`,
        undefined,
        { "Retry-After": "1" },
      );
    }
    const run = new Run(options.runId ?? uuidv7(), request.flowId, request);
    this.#active.set(run.runId, run);
    if (hasSlot) {
      this.#start(run);
    } else {
      this.store.createQueuedRun({
        runId: run.runId,
        flowId: request.flowId,
        flowName: request.flow.name,
        input: request.input,
        overrides: request.overrides,
        createdAt: this.store.now(),
      });
      this.#queue.push(run);
      this.#queued++;
    }
    return run;
  }

  #start(run: Run): void {
    const req = run.request!;
    run.request = undefined;
    run.state = "running";
    run.startedAt = performance.now();
    this.#running++;
    this.metrics.runsStarted++;
    let handle: RunHandle;
    try {
      handle = startRun(this.engine, req.flow, req.input, {
        runId: run.runId,
        overrides: req.overrides,
        variables: req.variables,
      });
    } catch (e) {
      this.#finish(run, failed(500, `The run could not start: ${describeError(e)}`), true);
      return;
    }
    this.#track(run, handle);
  }

  /**
   * Continues stored run `runId` (after a crash or a stop of the engine that ran it, or a
   * failure: `engine.resume`) and tracks it as a running run of this service (outside the
   * concurrency limit: it was accepted before).
   * @throws {ApiError} 404 for an unknown run; 409 when it is completed, nested, active here, or
   * executed by another live engine; 503 while the service shuts down.
   */
  async resume(runId: string, options: { from?: ResumeMode } = {}): Promise<ActiveRun> {
    if (!this.#accepting) {
      throw new ApiError(503, "The service is shutting down and resumes no runs", undefined, {
        "Retry-After": "5",
      });
    }
    if (this.#active.has(runId)) {
      throw new ApiError(409, `Run '${runId}' is running in this service already`);
    }
    let handle: RunHandle;
    let flowId: string;
    try {
      flowId = (await this.store.getRun(runId))?.flowId ?? "";
      handle = await resumeRun(this.engine, runId, options.from);
    } catch (e) {
      if (e instanceof RunNotResumableError) {
        throw new ApiError(e.reason === "unknown" ? 404 : 409, e.message);
      }
      throw e;
    }
    const run = new Run(runId, flowId);
    this.#active.set(runId, run);
    run.state = "running";
    run.startedAt = performance.now();
    this.#running++;
    this.metrics.runsStarted++;
    this.#track(run, handle);
    return run;
  }

  #track(run: Run, handle: RunHandle): void {
    run.handle = handle;
    handle.result.then(
      (r) => this.#finish(run, r, false),
      (e) =>
        this.#finish(run, failed(500, `The run failed in the engine: ${describeError(e)}`), true),
    );
  }

  #finish(run: Run, result: FlowResult, store: boolean): void {
    if (run.state === "ended") return;
    const wasRunning = run.state === "running";
    run.state = "ended";
    this.#active.delete(run.runId);
    if (wasRunning) this.#running--;
    let status: RunStatus = result.outcome === "success" ? "completed" : "failed";
    if (run.cancelReason !== undefined && result.outcome !== "success") {
      status = "cancelled";
      store = true;
    }
    if (store) this.store.finishRun(run.runId, status, result);
    this.metrics.runFinished(status, wasRunning ? performance.now() - run.startedAt : -1);
    this.#pump();
    // Answer only once the run's final state is stored (never report a result that a crash
    // could lose). The engine has waited for the commit of the status it wrote (a top-level
    // run's result comes after its last commit); a status written here (cancelled, or a run that
    // could not start) is waited for here — runs finishing in the same turn share the commit.
    if (!store) {
      run.resolve({ status, result });
      return;
    }
    this.store.committed().then(
      () => run.resolve({ status, result }),
      (e) => {
        log.error(`run ${run.runId}: its final state could not be stored: ${describeError(e)}`);
        run.resolve({
          status: "failed",
          result: failed(507, `The run's state could not be stored: ${describeError(e)}`),
        });
      },
    );
  }

  /** Starts queued runs while slots are free. */
  #pump(): void {
    while (this.#running < this.maxConcurrent && this.#head < this.#queue.length) {
      const run = this.#queue[this.#head];
      this.#queue[this.#head++] = undefined as unknown as Run;
      if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
        this.#queue = this.#queue.slice(this.#head);
        this.#head = 0;
      }
      if (run.state !== "queued") continue; // cancelled while queued
      this.#queued--;
      this.#start(run);
    }
  }

  /**
   * Cancels run `runId` if it is active here: a queued run ends at once; a running one has its
   * running steps cancelled (their step service calls abandoned) and ends `cancelled` with a
   * `failed` result of code 410. Resolves when the run has ended and its status is stored.
   * @returns the outcome (status `completed`/`failed` when the run ended before the cancel took
   * effect), or undefined when the run is not active here.
   */
  async cancel(runId: string, reason: string): Promise<RunOutcome | undefined> {
    const run = this.#active.get(runId);
    if (!run) {
      const reserved = this.#reserved.get(runId);
      if (!reserved) return undefined;
      this.#reserved.delete(runId);
      reserved();
      const result = failed(410, `Run was cancelled before it started: ${reason}`);
      this.store.finishRun(runId, "cancelled", result);
      this.metrics.runFinished("cancelled", -1);
      return { status: "cancelled", result };
    }
    if (run.state === "queued") {
      run.cancelReason = reason;
      this.#queued--;
      run.request = undefined;
      this.#finish(run, failed(410, `Run was cancelled before it started: ${reason}`), true);
      return await run.done;
    }
    if (run.cancelReason === undefined) {
      run.cancelReason = reason;
      run.handle?.cancel(new Error(`Run was cancelled: ${reason}`));
    }
    return await run.done;
  }

  /**
   * Marks `runId` as accepted by a batch but not submitted yet: cancelling it calls `onCancel`
   * (the batch then never submits it) and stores it `cancelled`.
   */
  reserve(runId: string, onCancel: () => void): void {
    this.#reserved.set(runId, onCancel);
  }

  /** Ends a {@linkcode reserve}ation (the run is being submitted, or dropped). */
  release(runId: string): void {
    this.#reserved.delete(runId);
  }

  /**
   * The run an idempotency key already named, when the request is the same.
   * @throws {ApiError} 422 when the key was used for a different request.
   */
  idempotent(key: string, fingerprint: string): string | undefined {
    const e = this.#idempotency.get(key);
    if (!e) return undefined;
    if (Date.now() - e.at > IDEMPOTENCY_TTL_MS) {
      this.#idempotency.delete(key);
      return undefined;
    }
    if (e.fingerprint !== fingerprint) {
      throw new ApiError(
        422,
        `Idempotency-Key '${key}' was used for a different request (run ${e.runId}): use a new key for a new request`,
      );
    }
    return e.runId;
  }

  /** Remembers that `key` started `runId`. */
  remember(key: string, fingerprint: string, runId: string): void {
    this.#idempotency.delete(key);
    this.#idempotency.set(key, { runId, fingerprint, at: Date.now() });
    if (this.#idempotency.size > MAX_IDEMPOTENCY_KEYS) {
      this.#idempotency.delete(this.#idempotency.keys().next().value!);
    }
  }

  /** Forgets a key whose run no longer exists (deleted). */
  forget(key: string): void {
    this.#idempotency.delete(key);
  }

  /**
   * Stops accepting runs, lets active runs finish for up to `graceMs`, then cancels the rest
   * (reason: the service stopped). Resolves when every run has ended.
   */
  async drain(graceMs: number): Promise<{ finished: number; cancelled: number }> {
    this.#accepting = false;
    // A run paused for a signal (/builtin/wait_for) is neither waited for nor cancelled: it stays
    // `paused` in the store and continues when the service starts again (issue 12).
    const isPaused = async (r: Run) =>
      r.state === "running" &&
      (await this.store.getRun(r.runId).catch(() => undefined))?.status === "paused";
    const runs: Run[] = [];
    let paused = 0;
    for (const r of this.#active.values()) {
      if (await isPaused(r)) paused++;
      else runs.push(r);
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const all = Promise.all(runs.map((r) => r.done));
    await Promise.race([all, new Promise((r) => timer = setTimeout(r, graceMs))]);
    clearTimeout(timer);
    const left: Run[] = [];
    let finished = 0;
    for (const r of runs) {
      if (r.state === "ended") finished++;
      else if (await isPaused(r)) paused++;
      else left.push(r);
    }
    if (paused > 0) {
      log.warn(
        `shutdown: ${paused} run(s) paused for a signal are left paused; they continue when the service starts again on this store`,
      );
    }
    for (const id of [...this.#reserved.keys()]) {
      await this.cancel(id, "the service stopped before the run started");
    }
    if (left.length > 0) {
      log.warn(
        `shutdown: ${left.length} run(s) still active after ${graceMs} ms; cancelling them`,
      );
      await Promise.all(
        left.map((r) => this.cancel(r.runId, `the service stopped (grace period ${graceMs} ms)`)),
      );
    }
    return { finished, cancelled: left.length };
  }
}

/**
 * Waits for `run` up to `ms` milliseconds (forever when undefined).
 * @returns the outcome, or undefined when the time ran out first.
 */
export async function waitFor(run: ActiveRun, ms?: number): Promise<RunOutcome | undefined> {
  if (ms === undefined) return await run.done;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<undefined>((r) => timer = setTimeout(() => r(undefined), ms));
  try {
    return await Promise.race([run.done, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function positive(v: number | undefined, dflt: number, what: string): number {
  if (v === undefined) return dflt;
  if (!Number.isSafeInteger(v) || v < 1) {
    throw new RangeError(`${what} must be a positive integer, got ${v}`);
  }
  return v;
}

function nonNegative(v: number | undefined, dflt: number, what: string): number {
  if (v === undefined) return dflt;
  if (!Number.isSafeInteger(v) || v < 0) {
    throw new RangeError(`${what} must be a non-negative integer, got ${v}`);
  }
  return v;
}

/** Most runs of each status looked at by {@linkcode resumeInterruptedRuns}. */
const RESUME_SCAN_LIMIT = 1000;

/**
 * Resumes the unfinished top-level runs of engines that stopped (issue 12: in-flight runs survive
 * a restart of the service): `running` and `paused` runs, and runs marked interrupted (code 503)
 * when the store was opened. Each is claimed first (`engine.resume`), so a run another live
 * engine executes is left to it, and two services starting at once never both resume one.
 * @returns the runs resumed, and those that could not be (with why).
 */
export async function resumeInterruptedRuns(
  runs: RunService,
  store: ServiceStore,
): Promise<{ resumed: string[]; skipped: { runId: string; reason: string }[] }> {
  const candidates: string[] = [];
  for (const status of ["running", "paused", "failed"] as const) {
    const found = await store.listRuns({ status, rootOnly: true, limit: RESUME_SCAN_LIMIT });
    for (const r of found) {
      if (status !== "failed" || wasInterrupted(r)) candidates.push(r.runId);
    }
  }
  const resumed: string[] = [];
  const skipped: { runId: string; reason: string }[] = [];
  for (const runId of candidates.reverse()) { // oldest first
    try {
      await runs.resume(runId);
      resumed.push(runId);
    } catch (e) {
      skipped.push({ runId, reason: describeError(e) });
    }
  }
  return { resumed, skipped };
}
