/**
 * The runs of a service as data: what to run ({@linkcode RunRequest}), how it ended
 * ({@linkcode RunOutcome}), a run accepted by the service ({@linkcode ActiveRun}, and the
 * service's own record of it), what distributed mode tells the cluster, and the service's limits.
 * The service itself: src/server/runs.ts.
 * @module
 */
import type { RunHandle, StepGate } from "../execution/engine.ts";
import type { Flow } from "../flow/model.ts";
import type { FlowResult } from "../core/flow_result.ts";
import type { JsonValue } from "../json/exact_json.ts";
import type { RunRecord, RunStatus } from "../state/store.ts";
import { ApiError } from "./api_error.ts";

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
  /** Holds steps before they start (debug mode, src/server/debug.ts). */
  gate?: StepGate;
  /** Stored with the run (`RunRecord.runKey`): the idempotency key, src/server/idempotency.ts. */
  runKey?: string;
  /**
   * A debug run (`RunRecord.debugMode`, stored): `gate` holds its steps; it executes on this
   * engine (its gate is here), also in a cluster.
   */
  debugMode?: boolean;
}

/**
 * A resumed run's gate (debug runs, src/server/debug.ts): `attach` is called with the run once
 * it is tracked, `cancel` when it could not be resumed.
 */
export interface ResumedGate {
  gate: StepGate;
  attach(run: ActiveRun): void;
  cancel(): void;
}

/** Gives a stored run that is resumed its gate again (a debug run), or undefined. */
export type ResumeGate = (record: RunRecord) => Promise<ResumedGate | undefined>;

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
  /**
   * The run that holds this run's Idempotency-Key in the store, when another service on the same
   * database stored it first: this run was cancelled before any step with side effects.
   */
  readonly supersededBy?: string;
}

/** The service's record of a run it accepted (src/server/runs.ts). */
export class Run implements ActiveRun {
  state: "queued" | "running" | "ended" = "queued";
  handle?: RunHandle;
  request?: RunRequest;
  cancelReason?: string;
  supersededBy?: string;
  /** The write of its `queued` row, while it waits for a slot (keyed runs: see keyHolder). */
  queuedWrite?: Promise<void> | void;
  /** The run holding its Idempotency-Key once its record is stored (`RunService.keyHolder`). */
  keyHolder?: Promise<string>;
  /** Queued in the store by a service that stopped, taken over here (`RunService.takeQueued`). */
  stored = false;
  /**
   * A run of a batch with a `maxConcurrency` taken over here (`RunService.takeQueued`, `resume`):
   * the batch's limit, and whether the run counts in it (queued to start, or running) or waits
   * for one of the batch's runs to end.
   */
  batch?: { gate: BatchGate; admitted: boolean };
  /** Distributed: the run left this engine (lease lost, released): nothing more is stored. */
  abandoned = false;
  /**
   * Distributed mode: why the run's record could not be stored (its first commit failed): it
   * is nowhere in the database, so it cannot go on on another engine.
   */
  unrecorded?: { error: unknown };
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

/**
 * What a `RunService` (src/server/runs.ts) in distributed mode (several engines sharing a PostgreSQL store,
 * src/server/cluster.ts) tells the cluster.
 */
export interface RunDistribution {
  /**
   * Run `runId` was queued in the database by this service (or left this engine): any engine may
   * execute it; watch it until it finishes and `RunService.settle` it here.
   */
  waiting(runId: string): void;
  /** A slot freed on this engine: claim more runs. */
  slotFreed(): void;
  /**
   * Gives runs executing here back to the database (graceful shutdown): another engine takes
   * them over at once. Resolves once they are released.
   */
  release(runIds: string[]): Promise<void>;
}

/**
 * Waits for `run` up to `ms` milliseconds (forever when undefined), and no longer than the client
 * that asked is there (`gone`: the request's signal, aborted when its connection closes — a
 * client that gave up kept its connection and this wait open until the run ended: a client
 * retrying a long run with one Idempotency-Key piled up sockets without bound).
 * @returns the outcome, or undefined when the time ran out or the client went first.
 */
export async function waitFor(
  run: ActiveRun,
  ms?: number,
  gone?: AbortSignal,
): Promise<RunOutcome | undefined> {
  if (ms === undefined && gone === undefined) return await run.done;
  if (gone?.aborted) return undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let onGone: (() => void) | undefined;
  const stop = new Promise<undefined>((r) => {
    if (ms !== undefined) timer = setTimeout(() => r(undefined), ms);
    if (gone !== undefined) {
      onGone = () => r(undefined);
      gone.addEventListener("abort", onGone, { once: true });
    }
  });
  try {
    return await Promise.race([run.done, stop]);
  } finally {
    clearTimeout(timer);
    if (onGone !== undefined) gone!.removeEventListener("abort", onGone);
  }
}

/** `v` (a positive integer) or `dflt`. @throws {RangeError} for another number. */
export function positive(v: number | undefined, dflt: number, what: string): number {
  if (v === undefined) return dflt;
  if (!Number.isSafeInteger(v) || v < 1) {
    throw new RangeError(`${what} must be a positive integer, got ${v}`);
  }
  return v;
}

/** `v` (a non-negative integer) or `dflt`. @throws {RangeError} for another number. */
export function nonNegative(v: number | undefined, dflt: number, what: string): number {
  if (v === undefined) return dflt;
  if (!Number.isSafeInteger(v) || v < 0) {
    throw new RangeError(`${what} must be a non-negative integer, got ${v}`);
  }
  return v;
}

/** FIFO of queued runs (entries cancelled while queued are skipped by the caller). */
export class RunQueue {
  #runs: (Run | undefined)[] = [];
  #head = 0;

  push(run: Run): void {
    this.#runs.push(run);
  }

  /** The oldest run, or undefined when empty. */
  shift(): Run | undefined {
    if (this.#head >= this.#runs.length) return undefined;
    const run = this.#runs[this.#head];
    this.#runs[this.#head++] = undefined;
    if (this.#head > 1024 && this.#head * 2 > this.#runs.length) {
      this.#runs = this.#runs.slice(this.#head);
      this.#head = 0;
    }
    return run;
  }
}

/**
 * The runs of one batch taken over from a stopped service (src/server/runs.ts): at most `limit`
 * (the batch's `maxConcurrency`) admitted at once; the others wait, oldest first.
 */
export interface BatchGate {
  batchId: string;
  limit: number;
  /** Runs queued to start or running. */
  admitted: number;
  waiting: Run[];
}

/** 503 while the service shuts down (`what`: "accepts no new runs"). */
export function shuttingDown(what: string): ApiError {
  return new ApiError(503, `The service is shutting down and ${what}`, undefined, {
    "Retry-After": "5",
  });
}

/** 429: the queue is full. */
export function queueFull(
  running: number,
  maxConcurrent: number,
  queued: number,
  maxQueued: number,
): ApiError {
  return new ApiError(
    429,
    `Too many runs: ${running} running (--max-concurrent-runs ${maxConcurrent}) and ${queued} queued (--max-queued-runs ${maxQueued}); retry later`,
    undefined,
    { "Retry-After": "1" },
  );
}
