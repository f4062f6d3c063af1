/**
 * The runs of one service: starting them on the engine within the service's limit on concurrent
 * runs (a FIFO queue beyond it, 429 when the queue is full), waiting for them, cancelling them
 * (really: running steps are cancelled and the run ends `cancelled`), idempotency keys, and
 * draining at shutdown.
 *
 * One class on purpose (just over 400 lines): a run's way through the service (queued, started,
 * tracked, finished, cancelled) reads in one place; its data and queue are in run_model.ts, the
 * shutdown in runs_drain.ts, resume at start in runs_resume.ts.
 * @module
 */
import type { Engine, ResumeMode } from "../execution/engine.ts";
import { failed, type FlowResult } from "../core/flow_result.ts";
import { CANCELLED } from "../core/error_codes.ts";
import type { RunStatus } from "../state/store.ts";
import { describeError } from "../errors.ts";
import { logger } from "../log.ts";
import { ApiError } from "./api_error.ts";
import { resumeStoredRun, type RunHandle, startRun } from "./engine_adapter.ts";
import type { ServiceMetrics } from "./metrics.ts";
import type { ServiceStore } from "./store_adapter.ts";
import { uuidv7 } from "./ids.ts";
import { RecentKeys } from "./idempotency.ts";
import {
  type ActiveRun,
  type BatchGate,
  nonNegative,
  positive,
  queueFull,
  type ResumeGate,
  Run,
  type RunDistribution,
  type RunLimits,
  type RunOutcome,
  RunQueue,
  type RunRequest,
  shuttingDown,
} from "./run_model.ts";
import { drainLocal, drainShared } from "./runs_drain.ts";

const log = logger("serve");

/** The runs of a service. */
export class RunService {
  readonly maxConcurrent: number;
  readonly maxQueued: number;
  #active = new Map<string, Run>();
  /** FIFO of queued runs; entries cancelled while queued are skipped when dequeued. */
  #queue = new RunQueue();
  #queued = 0;
  #running = 0;
  #accepting = true;
  #keys = new RecentKeys();
  /** Runs accepted by a batch but not submitted yet: how to cancel each. */
  #reserved = new Map<string, () => void>();
  /** Batches with a `maxConcurrency` whose runs were taken over here, by batch id. */
  #batchGates = new Map<string, BatchGate>();
  #distribution?: RunDistribution;
  /** Puts a resumed debug run back under a gate (set by the server: src/server/debug.ts). */
  resumeGate?: ResumeGate;

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

  /**
   * Distributed mode (issue 14): submitted runs are queued in the shared database, and any engine
   * claims them ({@linkcode adopt}) within its own `maxConcurrentRuns`.
   */
  distribute(distribution: RunDistribution): void {
    this.#distribution = distribution;
  }

  /** True in distributed mode. */
  get distributed(): boolean {
    return this.#distribution !== undefined;
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
      throw shuttingDown("accepts no new runs");
    }
    const hasSlot = this.#running < this.maxConcurrent && this.#queued === 0;
    if (!hasSlot && !options.ignoreQueueLimit && this.#queued >= this.maxQueued) {
      this.metrics.runRejected("queue_full");
      throw queueFull(this.#running, this.maxConcurrent, this.#queued, this.maxQueued);
    }
    const run = new Run(options.runId ?? uuidv7(), request.flowId, request);
    this.#active.set(run.runId, run);
    if (this.#distribution !== undefined && request.gate === undefined) {
      // queued in the database: whichever engine has a free slot claims it (maybe this one)
      const stored = this.#storeQueued(run.runId, request);
      run.queuedWrite = stored;
      // its row is not stored (one transaction): it is not run, by any engine; it ends failed
      // (507), and the store records it so, with its input, once it can (its error says so:
      // src/state/store_health.ts); it was unknown to all (404)
      stored?.catch((e) => {
        const result = failed(507, `The run could not be queued: ${describeError(e)}`);
        this.store.finishRun(run.runId, "failed", result);
        this.settle(run.runId, { status: "failed", result });
      });
      run.request = undefined;
      this.#queued++;
      this.#distribution.waiting(run.runId);
      return run;
    }
    if (hasSlot || this.#distribution !== undefined) {
      // (distributed: a run held by a gate here — a debug run — starts here at once)
      this.#start(run);
    } else {
      const w = this.#storeQueued(run.runId, request);
      run.queuedWrite = w;
      // its row never reached the database (disk full, ...): it is not run later unknown to all
      if (w !== undefined) w.catch((e) => this.#notQueued(run, e));
      this.#queue.push(run);
      this.#queued++;
    }
    return run;
  }

  /**
   * A queued run whose `queued` row could not be stored ends failed (507); the store records it
   * failed once it can (its error says so: src/state/store_health.ts).
   */
  #notQueued(run: Run, e: unknown): void {
    if (run.state !== "queued") return; // started meanwhile: its own record fails it (507)
    this.#queued--;
    run.request = undefined;
    const result = failed(507, `The run could not be queued: ${describeError(e)}`);
    this.store.finishRun(run.runId, "failed", result);
    this.#finish(run, result, false);
  }

  /**
   * Resolves once `run`'s record (its `running` or `queued` row) is stored: at once with a store
   * that has no commits (in memory), else with the commit that carries it (one the run waits for
   * anyway). Rejects when that commit failed (the run then ends failed, 507: `done`).
   */
  recorded(run: ActiveRun): Promise<void> {
    const r = run as Run;
    if (r.handle !== undefined) return r.handle.recorded;
    if (r.state === "queued" && r.queuedWrite !== undefined) return Promise.resolve(r.queuedWrite);
    return Promise.resolve();
  }

  #storeQueued(runId: string, request: RunRequest): Promise<void> | void {
    const { flowId, input, overrides, variables, runKey, debugMode } = request;
    const createdAt = this.store.now();
    const flowName = request.flow.name;
    return this.store.createQueuedRun({
      runId,
      flowId,
      flowName,
      input,
      overrides,
      variables,
      runKey,
      createdAt,
      debugMode,
    });
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
        ...(req.gate !== undefined ? { gate: req.gate } : {}),
        ...(req.runKey !== undefined ? { runKey: req.runKey } : {}),
        ...(req.debugMode === true ? { debugMode: true } : {}),
        ...(req.runKey !== undefined ? { onRecorded: () => this.#checkKey(run, req.runKey!) } : {}),
      });
    } catch (e) {
      this.#finish(run, failed(500, `The run could not start: ${describeError(e)}`), true);
      return;
    }
    if (this.#distribution !== undefined) {
      // (a debug run: created here) when its record is not stored, it cannot go on elsewhere
      handle.recorded.catch((error) => run.unrecorded = { error });
    }
    this.#track(run, handle);
  }

  /**
   * Called on the commit of a keyed run's record, before any of its steps with side effects
   * calls: when another service on the same database stored a run with this key first (its
   * insert kept the key: src/state/sqlite_commit.ts), this run is cancelled and the request is
   * answered with that run (src/server/routes_runs.ts).
   */
  #checkKey(run: Run, runKey: string): void {
    const owner = this.store.runIdOfKeyNow(runKey);
    if (owner === null || owner === undefined || owner === run.runId) return;
    run.supersededBy = owner;
    run.handle?.cancel(
      new Error(`run ${owner} of another service holds its key '${runKey}'; this run is not run`),
    );
  }

  /**
   * The run that holds `runKey` (`run`'s Idempotency-Key) in the store once `run`'s record is
   * stored: `run` itself, or the run another service (engine) on the same database stored with
   * the key first — then `run` was not stored, and is cancelled here before any step with side
   * effects (distributed: settled). Every request with the key gets the same answer (a request
   * answered before `run`'s record was stored could name the losing run).
   */
  keyHolder(run: ActiveRun, runKey: string): Promise<string> {
    const r = run as Run;
    return r.keyHolder ??= this.#holderOf(r, runKey);
  }

  async #holderOf(run: Run, runKey: string): Promise<string> {
    if (this.#distribution !== undefined) {
      // queued in the database (or executing here): another engine may have stored the key
      // first (when this commit failed, that run holds the key; else this run answers: failed,
      // 507, once its record is known not stored — src/server/routes_runs.ts)
      await this.store.committed().catch(() => {});
    } else if (run.handle !== undefined) {
      await run.handle.recorded.catch(() => {}); // its onRecorded hook has checked the key
    } else if (run.queuedWrite !== undefined) {
      await Promise.resolve(run.queuedWrite).catch(() => {});
    } else {
      await this.store.committed().catch(() => {});
    }
    if (run.supersededBy !== undefined) return run.supersededBy;
    const now = this.store.runIdOfKeyNow(runKey);
    const holder = now === null ? (await this.store.findRunByKey(runKey))?.runId : now;
    if (holder === undefined || holder === run.runId) return run.runId;
    run.supersededBy = holder;
    const why = `run ${holder} holds the Idempotency-Key '${runKey}'`;
    if (this.#distribution !== undefined) {
      this.settle(run.runId, { status: "cancelled", result: failed(409, why) });
    } else if (run.state === "queued") {
      run.cancelReason = why;
      this.#queued--;
      run.request = undefined;
      this.#finish(run, failed(409, why), false);
    } else {
      run.handle?.cancel(new Error(`${why}; this run is not run`));
    }
    return holder;
  }

  /**
   * Continues stored run `runId` (after a crash or a stop of the engine that ran it, or a
   * failure: `engine.resume`) and tracks it as a running run of this service. Runs taken over
   * from a stopped engine go outside the concurrency limit (they were accepted before);
   * `withinLimit` (a client's `POST /runs/{id}/resume`) refuses the resume with 429 while
   * `maxConcurrentRuns` runs are running.
   * @throws {ApiError} 404 for an unknown run; 409 when it is completed, nested, active here, or
   * executed by another live engine; 429 at the limit with `withinLimit`; 503 while the service
   * shuts down.
   */
  async resume(
    runId: string,
    options: { from?: ResumeMode; withinLimit?: boolean } = {},
  ): Promise<ActiveRun> {
    if (!this.#accepting) throw shuttingDown("resumes no runs");
    if (this.#active.has(runId)) {
      throw new ApiError(409, `Run '${runId}' is running in this service already`);
    }
    if (
      options.withinLimit && this.#distribution === undefined &&
      this.#running >= this.maxConcurrent
    ) {
      // a resumed run executes like any other: within --max-concurrent-runs (it used to start
      // at once, beyond the limit and ahead of the queue)
      throw new ApiError(
        429,
        `Run '${runId}' cannot be resumed now: ${this.#running} runs are running, the limit of ` +
          `this service (--max-concurrent-runs ${this.maxConcurrent})${
            this.#queued > 0 ? `, and ${this.#queued} are queued` : ""
          }; retry later`,
        undefined,
        { "Retry-After": "1" },
      );
    }
    const { flowId, handle, held } = await resumeStoredRun(
      this.engine,
      this.store,
      runId,
      options.from,
      this.resumeGate,
    );
    // (read after the claim: the run is this engine's; a failed read only loses the limit)
    const batch = this.#distribution === undefined
      ? await this.store.getBatchOfRun(runId).catch(() => undefined)
      : undefined;
    const run = this.adopt(runId, flowId, () => handle) as Run;
    held?.attach(run);
    // a running run of a batch counts in the batch's limit for the runs taken over after it
    if (batch?.maxConcurrency !== undefined && run.state === "running" && !run.batch) {
      const gate = this.#batchGate(batch.batchId, batch.maxConcurrency);
      gate.admitted++;
      run.batch = { gate, admitted: true };
    }
    return run;
  }

  /**
   * Takes over stored run `runId`, left `queued` by a service that stopped (killed, crashed,
   * machine restarted) before starting it: claims it for this engine (refused while another live
   * engine owns it: the one that queued it), then queues it here like a submitted run, within
   * `maxConcurrentRuns`; it starts from its stored record (`engine.resume`: input, overrides,
   * variables, options). Runs queued by this service are left alone.
   * @returns false when the run is not taken here (owned by a live engine, queued here already,
   * no longer queued).
   * @throws {ApiError} 503 while the service shuts down; a store error when it cannot claim.
   */
  async takeQueued(runId: string): Promise<boolean> {
    if (!this.#accepting) throw shuttingDown("takes no queued runs");
    if (this.#active.has(runId)) return false;
    const claim = await this.store.claimRun(runId);
    if (!claim.claimed || this.#active.has(runId) || !this.#accepting) return false;
    const record = await this.store.getRun(runId);
    if (record?.status !== "queued" || this.#active.has(runId)) return false;
    // a batch's run keeps to the batch's maxConcurrency (it ran beyond it here)
    const batch = await this.store.getBatchOfRun(runId);
    if (this.#active.has(runId) || !this.#accepting) return false;
    const run = new Run(runId, record.flowId, undefined);
    run.stored = true;
    this.#active.set(runId, run);
    this.#queued++;
    if (batch?.maxConcurrency !== undefined) {
      const gate = this.#batchGate(batch.batchId, batch.maxConcurrency);
      const admitted = gate.admitted < gate.limit;
      run.batch = { gate, admitted };
      if (!admitted) {
        gate.waiting.push(run); // queued once one of the batch's runs ends
        return true;
      }
      gate.admitted++;
    }
    this.#queue.push(run);
    this.#pump();
    return true;
  }

  /** The gate of batch `batchId` (limit: its `maxConcurrency`), made on first use. */
  #batchGate(batchId: string, maxConcurrency: number): BatchGate {
    let gate = this.#batchGates.get(batchId);
    if (gate === undefined) {
      gate = { batchId, limit: Math.max(1, maxConcurrency), admitted: 0, waiting: [] };
      this.#batchGates.set(batchId, gate);
    }
    return gate;
  }

  /**
   * Run `run` of a batch taken over here ended (or was cancelled while waiting): the batch's
   * next waiting runs are queued, within its limit.
   */
  #leaveBatch(run: Run): void {
    const b = run.batch;
    if (b === undefined) return;
    run.batch = undefined;
    const gate = b.gate;
    if (b.admitted) gate.admitted--;
    else gate.waiting = gate.waiting.filter((r) => r !== run);
    while (gate.admitted < gate.limit && gate.waiting.length > 0) {
      const next = gate.waiting.shift()!;
      if (next.state !== "queued") continue;
      gate.admitted++;
      next.batch!.admitted = true;
      this.#queue.push(next);
    }
    if (gate.admitted === 0 && gate.waiting.length === 0) this.#batchGates.delete(gate.batchId);
  }

  /** Starts a run taken over by {@linkcode takeQueued} from its stored record. */
  async #resumeStored(run: Run): Promise<RunHandle> {
    const { handle, held } = await resumeStoredRun(
      this.engine,
      this.store,
      run.runId,
      undefined,
      this.resumeGate,
      true,
    );
    held?.attach(run);
    return handle;
  }

  #track(run: Run, handle: RunHandle): void {
    run.handle = handle;
    handle.result.then(
      (r) => this.#finish(run, r, false),
      (e) =>
        this.#finish(run, failed(500, `The run failed in the engine: ${describeError(e)}`), true),
    );
  }

  /**
   * Executes run `runId` (distributed mode: claimed from the database by this engine; or resumed)
   * with `start`, as a run of this service (cancel, waiters, limits, drain). A run submitted here
   * and waiting is the same run.
   */
  adopt(runId: string, flowId: string, start: () => RunHandle | Promise<RunHandle>): ActiveRun {
    let run = this.#active.get(runId);
    if (run !== undefined && run.state === "running") return run;
    if (run === undefined) {
      run = new Run(runId, flowId, undefined as unknown as RunRequest);
      this.#active.set(runId, run);
    } else {
      this.#queued--;
    }
    run.request = undefined;
    run.abandoned = false;
    run.state = "running";
    run.startedAt = performance.now();
    this.#running++;
    this.metrics.runsStarted++;
    const r = run;
    const started = (handle: RunHandle) => {
      if (r.abandoned) handle.cancel(new Error("the run left this engine"));
      else if (r.cancelReason !== undefined) {
        handle.cancel(new Error(`Run was cancelled: ${r.cancelReason}`));
      }
      this.#track(r, handle);
    };
    try {
      const h = start();
      if (h instanceof Promise) {
        h.then(
          started,
          (e) => this.#finish(r, failed(500, `The run could not start: ${describeError(e)}`), true),
        );
      } else {
        started(h);
      }
    } catch (e) {
      this.#finish(r, failed(500, `The run could not start: ${describeError(e)}`), true);
    }
    return r;
  }

  /**
   * Distributed mode: run `runId`, waiting here, was finished by another engine (or cancelled in
   * the database): its waiters get `outcome`. Nothing is stored.
   */
  settle(runId: string, outcome: RunOutcome): void {
    const run = this.#active.get(runId);
    if (run === undefined || run.state !== "queued") return;
    this.#queued--;
    run.state = "ended";
    this.#active.delete(runId);
    run.resolve(outcome);
  }

  /**
   * Distributed mode: run `runId` left this engine (its lease was lost to another engine, or
   * released at shutdown): it stops here without storing anything, and waits (state `queued`)
   * for whichever engine finishes it.
   */
  abandon(runId: string): void {
    const run = this.#active.get(runId);
    if (run === undefined || run.state !== "running" || run.abandoned) return;
    run.abandoned = true;
    run.handle?.cancel(new Error("the run left this engine"));
  }

  /** Run ids executing on this engine now. */
  runningIds(): string[] {
    return this.activeRuns().filter((r) => r.state === "running" && !r.abandoned).map((r) =>
      r.runId
    );
  }

  /** Run ids waiting here for another engine (distributed mode). */
  waitingIds(): string[] {
    return this.activeRuns().filter((r) => r.state === "queued").map((r) => r.runId);
  }

  #finish(run: Run, result: FlowResult, store: boolean): void {
    if (run.state === "ended") return;
    if (run.unrecorded !== undefined) {
      // its record never reached the database: it ends here, failed with the store's error,
      // which says what becomes of it (its end, kept with its record by the store's completeRun,
      // is recorded once the database can be written)
      run.abandoned = false;
      store = false;
      if (result.outcome !== "failed" || result.error.code !== 507) {
        result = failed(507, describeError(run.unrecorded.error));
      }
    }
    if (run.abandoned && run.state === "running") {
      // it goes on elsewhere: wait for it there (no write: this engine no longer owns it)
      run.abandoned = false;
      run.handle = undefined;
      run.state = "queued";
      this.#running--;
      this.#queued++;
      this.#distribution?.waiting(run.runId);
      this.#pump();
      return;
    }
    const wasRunning = run.state === "running";
    this.#leaveBatch(run);
    run.state = "ended";
    // The run's objects are not needed once it ended (its waiters get the outcome): a Run kept a
    // little longer (by a waiting request, or by V8 until its next full collection) must not
    // keep the whole run with it (measured: 12% of a run's allocations were promoted with it).
    run.handle = undefined;
    this.#active.delete(run.runId);
    if (wasRunning) this.#running--;
    let status: RunStatus = result.outcome === "success" ? "completed" : "failed";
    if (run.cancelReason !== undefined && result.outcome !== "success") {
      status = "cancelled";
      // The engine stores a run that its cancel stopped (code 410) `cancelled` itself (endRun,
      // src/execution/run_lifecycle.ts): a second end journaled `run_completed` twice.
      const engineStoredIt = !store && result.outcome === "failed" &&
        result.error.code === CANCELLED;
      store = !engineStoredIt;
    }
    const write = store ? this.store.finishRun(run.runId, status, result) : undefined;
    this.metrics.runFinished(status, wasRunning ? performance.now() - run.startedAt : -1);
    this.#pump();
    // Answer only once the run's final state is stored (never report a result that a crash
    // could lose). The engine has waited for the commit of the status it wrote (a top-level
    // run's result comes after its last commit); a status written here (cancelled, or a run that
    // could not start) is waited for here — its own commit (runs finishing in the same turn share
    // it), not any commit after it (one that ran first could have failed, or another run's).
    if (!store) {
      run.resolve({ status, result });
      return;
    }
    Promise.resolve(write ?? this.store.committed()).then(
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
    if (this.#distribution !== undefined) {
      this.#distribution.slotFreed();
      return;
    }
    let run: Run | undefined;
    while (this.#running < this.maxConcurrent && (run = this.#queue.shift()) !== undefined) {
      if (run.state !== "queued") continue; // cancelled while queued
      if (run.stored) {
        const r = run;
        this.adopt(r.runId, r.flowId, () => this.#resumeStored(r)); // (counts it started)
        continue;
      }
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
    // distributed: a run waiting here is queued in the database or runs on another engine; the
    // cluster cancels it there (src/server/cluster.ts)
    if (run.state === "queued" && this.#distribution !== undefined) return undefined;
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
    return this.#keys.find(key, fingerprint);
  }

  /** Remembers that `key` started `runId`. */
  remember(key: string, fingerprint: string, runId: string): void {
    this.#keys.remember(key, fingerprint, runId);
  }

  /** Forgets a key whose run no longer exists (deleted). */
  forget(key: string): void {
    this.#keys.forget(key);
  }

  /**
   * Stops accepting runs, lets active runs finish for up to `graceMs`, then cancels the rest
   * (reason: the service stopped); distributed: releases them to the other engines
   * (src/server/runs_drain.ts). Resolves when every run has ended.
   */
  drain(graceMs: number): Promise<{ finished: number; cancelled: number; released?: number }> {
    this.#accepting = false;
    if (this.#distribution !== undefined) return drainShared(this, graceMs, this.#distribution);
    return drainLocal(this, graceMs);
  }

  /** The runs active here (for src/server/runs_drain.ts). */
  activeRuns(): Run[] {
    return [...this.#active.values()];
  }

  /** Runs accepted and not started: queued, and reserved by batches (not submitted yet). */
  get waiting(): number {
    return this.#queued + this.#reserved.size;
  }

  /** The runs reserved by batches and not submitted yet (for src/server/runs_drain.ts). */
  reservedIds(): string[] {
    return [...this.#reserved.keys()];
  }
}
