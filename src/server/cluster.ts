/**
 * The service as one of N engines sharing a PostgreSQL store (issue 14, docs/deployment.md).
 *
 * - Runs submitted to any engine are queued in the database (`status = queued`); every engine
 *   claims them with {@linkcode PostgresStateStore.claimRuns} (one `UPDATE ... FOR UPDATE SKIP
 *   LOCKED` statement) while it has free slots (`--max-concurrent-runs`), and executes them
 *   without creating them again (`RunOptions.existing`).
 * - Wake-ups: `LISTEN stepflow_queue` (a run queued or released anywhere), a slot freeing here,
 *   and a poll every `pollMs` (a notification is only a hint; expired leases notify nobody).
 * - Leases: the store renews the leases of the runs this engine holds with its `engines`
 *   heartbeat; a run whose lease expired (its engine died or stalled) is claimed like a queued
 *   one and continued from its journal with `engine.resume` (steps whose results were committed
 *   do not run again). A run whose lease this engine lost is stopped here without writing.
 * - Waiting: a client waiting on a run executed by another engine is answered when the database
 *   says the run finished (one query per `watchMs` for all the runs waited on here).
 * - Cancel: a queued run is cancelled in the database; a run executing on another engine is
 *   cancelled by that engine (the request is forwarded to its URL from the `engines` table).
 * - Shutdown: no more claims; runs still executing after the grace period are released
 *   (`releaseRuns`): another engine takes them over at once.
 *
 * One class on purpose (just over 400 lines): claims, leases, wake-ups and forwarding share the
 * engine's view of which runs it holds; the SQL is in src/state/postgres_cluster.ts.
 * @module
 */
import type { PostgresStateStore } from "../state/postgres.ts";
import type { ClaimedRun, EngineRecord, RunRecord } from "../state/store.ts";
import type { JsonValue } from "../json/exact_json.ts";
import type { FlowResult } from "../core/flow_result.ts";
import { failed } from "../core/flow_result.ts";
import { describeError } from "../errors.ts";
import { logger } from "../log.ts";
import type { RunHandle } from "./engine_adapter.ts";
import type { RunDistribution } from "./run_model.ts";
import type { RunService } from "./runs.ts";
import type { Engine } from "../execution/engine.ts";
import { TERMINAL_STATUSES } from "./store_adapter.ts";

const log = logger("serve");

/** Settings of a {@linkcode Cluster}. */
export interface ClusterOptions {
  /** How often the queue is polled besides wake-ups, ms. @default min(1000, leaseTtl / 2) */
  pollMs?: number;
  /**
   * How often runs waited on here but executed elsewhere are looked up, ms (doubling up to 8
   * times while none finishes). @default 100
   */
  watchMs?: number;
  /** Most runs claimed by one statement. @default 32 */
  claimBatch?: number;
  /** The service's token, sent with requests forwarded to the other engines (same token). */
  token?: string;
}

/** What the engines route answers per engine. */
export interface EngineInfo extends EngineRecord {
  /** True for the engine answering. */
  self: boolean;
  /** Whether its heartbeat is recent (within the lease TTL). */
  alive: boolean;
}

/**
 * An answer the cluster gives for a route instead of this engine: a forwarded cancel's answer
 * (`body`), or the run it cancelled in the database (`run`, answered as its summary).
 */
export interface ForwardedAnswer {
  status: number;
  body?: unknown;
  run?: RunRecord;
}

/** This engine's part in a cluster of engines sharing one PostgreSQL store. */
export class Cluster implements RunDistribution {
  readonly #store: PostgresStateStore;
  readonly #runs: RunService;
  readonly #engine: Engine;
  readonly #pollMs: number;
  readonly #watchMs: number;
  readonly #claimBatch: number;
  readonly #token?: string;
  #started = false;
  #stopped = false;
  #claiming = false;
  #again = false;
  #poll?: ReturnType<typeof setInterval>;
  #watch?: ReturnType<typeof setTimeout>;
  #unwatchQueue?: () => void;
  #unwatchLeases?: () => void;
  #engines?: { at: number; list: Promise<EngineRecord[]> };
  /** Look-ups in a row that settled nothing (backs the look-up off). */
  #idle = 0;

  constructor(engine: Engine, runs: RunService, options: ClusterOptions = {}) {
    this.#engine = engine;
    this.#store = engine.store as PostgresStateStore;
    this.#runs = runs;
    const ttl = this.#store.leaseTtlMs;
    this.#pollMs = options.pollMs ?? Math.max(50, Math.min(1000, Math.floor(ttl / 2)));
    this.#watchMs = options.watchMs ?? 100;
    this.#claimBatch = options.claimBatch ?? 32;
    this.#token = options.token;
    runs.distribute(this);
  }

  /** This engine's id (the `owner` of the runs it executes). */
  get engineId(): string {
    return this.#store.engineId;
  }

  /** The lease TTL of the store, ms. */
  get leaseTtlMs(): number {
    return this.#store.leaseTtlMs;
  }

  /**
   * Registers this engine (with the service's `url`) and starts claiming runs.
   * @throws {StoreError} when the database cannot be written.
   */
  async start(url?: string): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    await this.#store.registerEngine(url === undefined ? {} : { url });
    this.#unwatchLeases = this.#store.watchLeases((ids) => {
      for (const id of ids) this.#runs.abandon(id);
    });
    this.#unwatchQueue = this.#store.watchQueue(() => this.#kick());
    this.#poll = setInterval(() => this.#kick(), this.#pollMs);
    this.#kick();
    if (this.#runs.waitingIds().length > 0) this.waiting("");
  }

  /** Stops claiming (shutdown); runs executing here go on. */
  stop(): void {
    this.#stopped = true;
    if (this.#poll !== undefined) clearInterval(this.#poll);
    this.#unwatchQueue?.();
    this.#unwatchQueue = undefined;
  }

  /** Stops everything (after the drain). */
  close(): void {
    this.stop();
    this.#unwatchLeases?.();
    if (this.#watch !== undefined) clearTimeout(this.#watch);
    this.#watch = undefined;
  }

  // ---------------------------------------------------------------- RunDistribution

  waiting(_runId: string): void {
    if (this.#watch !== undefined || !this.#started) return;
    this.#watch = setTimeout(() => this.#lookUp(), this.#watchMs);
  }

  slotFreed(): void {
    this.#kick();
  }

  async release(runIds: string[]): Promise<void> {
    this.stop();
    await this.#store.releaseRuns(runIds);
  }

  // ---------------------------------------------------------------- claiming

  #kick(): void {
    if (!this.#started || this.#stopped) return;
    if (this.#claiming) {
      this.#again = true;
      return;
    }
    this.#claiming = true;
    this.#claim().finally(() => {
      this.#claiming = false;
      if (this.#again) {
        this.#again = false;
        this.#kick();
      }
    });
  }

  async #claim(): Promise<void> {
    while (!this.#stopped && this.#runs.accepting) {
      const free = this.#runs.maxConcurrent - this.#runs.running;
      if (free <= 0) return;
      const limit = Math.min(free, this.#claimBatch);
      let claimed: ClaimedRun[];
      try {
        claimed = await this.#store.claimRuns({ limit });
      } catch (e) {
        log.warn(`cannot claim runs: ${describeError(e)}`);
        return;
      }
      for (const c of claimed) this.#execute(c);
      if (claimed.length < limit) return;
    }
  }

  /** Executes a claimed run here: continued from its journal when it had started before. */
  #execute(c: ClaimedRun): void {
    const run = c.run;
    this.#runs.adopt(run.runId, run.flowId, async (): Promise<RunHandle> => {
      if (c.resumed) {
        // its engine died, stalled past its lease or released it: continue from its journal
        // (committed steps are not run again)
        log.info(`run ${run.runId}: taken over (lease epoch ${c.leaseEpoch}); resuming it`);
        // a debug run is held again here (its gate was on the engine that stopped)
        const held = run.debugMode ? await this.#runs.resumeGate?.(run) : undefined;
        try {
          const handle = await this.#engine.resume(run.runId, {
            claimed: true,
            ...(held !== undefined ? { gate: held.gate } : {}),
          });
          const active = this.#runs.get(run.runId);
          if (held !== undefined && active !== undefined) held.attach(active);
          return handle;
        } catch (e) {
          held?.cancel();
          throw e;
        }
      }
      const flow = await this.#engine.getFlow(run.flowId);
      return this.#engine.start(flow, run.input, {
        runId: run.runId,
        existing: true,
        ...(run.overrides !== undefined && run.overrides !== null
          ? { overrides: run.overrides }
          : {}),
        ...(run.variables !== undefined ? { variables: run.variables } : {}),
      });
    });
  }

  // ---------------------------------------------------------------- waiting for other engines

  async #lookUp(): Promise<void> {
    const ids = this.#runs.waitingIds();
    if (ids.length === 0) {
      this.#watch = undefined;
      return;
    }
    let settled = 0;
    try {
      const found = new Map((await this.#store.runStatuses(ids)).map((r) => [r.runId, r]));
      for (const id of ids) {
        const r = found.get(id);
        if (r === undefined) {
          settled++;
          this.#runs.settle(id, {
            status: "failed",
            result: failed(404, `Run '${id}' was deleted before it finished`),
          });
        } else if (TERMINAL_STATUSES.has(r.status)) {
          settled++;
          this.#runs.settle(id, { status: r.status, result: r.result ?? noResult(id, r.status) });
        }
      }
    } catch (e) {
      log.warn(`cannot look up runs executing on other engines: ${describeError(e)}`);
    }
    this.#watch = undefined;
    // every watchMs while runs finish; slower (doubling, up to 8 times) while none does
    this.#idle = settled > 0 ? 0 : Math.min(this.#idle + 1, 3);
    if (this.#runs.waitingIds().length > 0) {
      this.#watch = setTimeout(() => this.#lookUp(), this.#watchMs * 2 ** this.#idle);
    }
  }

  // ---------------------------------------------------------------- routes

  /** The engines in the registry, oldest first, with whether each is this one and alive. */
  async engines(): Promise<EngineInfo[]> {
    const list = await this.#store.listEngines();
    const ttl = this.#store.leaseTtlMs;
    const now = Date.now();
    return list.map((e) => ({
      ...e,
      self: e.engineId === this.engineId,
      alive: now - Date.parse(e.heartbeatAt) <= ttl,
    }));
  }

  /** An engine of the registry (cached for a second), or undefined. */
  async engine(engineId: string): Promise<EngineRecord | undefined> {
    const now = Date.now();
    if (this.#engines === undefined || now - this.#engines.at > 1000) {
      const list = this.#store.listEngines();
      list.catch(() => {});
      this.#engines = { at: now, list };
    }
    try {
      return (await this.#engines.list).find((e) => e.engineId === engineId);
    } catch {
      this.#engines = undefined;
      return undefined;
    }
  }

  /**
   * Cancels run `runId` when it is not executing here: a queued run in the database; a run of
   * another engine by forwarding the request to it. Undefined when the route's own handling
   * applies (executing here, finished, unknown).
   */
  async cancel(
    runId: string,
    reason: string,
    authorization?: string,
  ): Promise<ForwardedAnswer | undefined> {
    const local = this.#runs.get(runId);
    if (local !== undefined && local.state === "running") return undefined;
    for (let tries = 0; tries < 3; tries++) {
      const r = await this.#store.getRun(runId);
      if (r === undefined || TERMINAL_STATUSES.has(r.status)) return undefined;
      if (r.status === "queued") {
        const result = failed(410, `Run was cancelled before it started: ${reason}`);
        if (await this.#store.cancelQueued(runId, result)) {
          this.#runs.settle(runId, { status: "cancelled", result });
          const after = await this.#store.getRun(runId);
          return { status: 200, run: after ?? r };
        }
        continue; // claimed meanwhile
      }
      if (r.ownerId === this.engineId) {
        // claimed by this engine a moment ago: cancel it here
        const outcome = await this.#runs.cancel(runId, reason);
        if (outcome !== undefined) return undefined;
        continue;
      }
      return await this.forward(
        runId,
        r.ownerId,
        "cancel",
        "POST",
        `/api/v1/runs/${runId}/cancel`,
        undefined,
        authorization,
      );
    }
    return undefined;
  }

  /**
   * Sends a request about run `runId` to the engine executing it (`ownerId`, its URL from the
   * `engines` table) and returns its answer; 503 naming the owner when it has no URL or does not
   * answer. `what` names the request in messages ("cancel", "debug request").
   */
  async forward(
    runId: string,
    ownerId: string | undefined,
    what: string,
    method: string,
    path: string,
    body: unknown,
    authorization?: string,
  ): Promise<ForwardedAnswer> {
    const owner = ownerId === undefined ? undefined : await this.engine(ownerId);
    if (owner?.url === undefined) {
      return {
        status: 503,
        body: {
          code: 503,
          message:
            `Run '${runId}' is executing on engine ${ownerId}, which has no service URL to forward the ${what} to; retry once it was taken over`,
        },
      };
    }
    const headers: Record<string, string> = authorization !== undefined
      ? { authorization }
      : this.#token !== undefined
      ? { authorization: `Bearer ${this.#token}` }
      : {};
    if (body !== undefined) headers["content-type"] = "application/json";
    try {
      const res = await fetch(`${owner.url}${path}`, {
        method,
        headers,
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(60_000),
      });
      return { status: res.status, body: await res.json() };
    } catch (e) {
      return {
        status: 503,
        body: {
          code: 503,
          message:
            `Run '${runId}' is executing on engine ${ownerId} at ${owner.url}, which does not answer (${
              describeError(e)
            }); retry later: once its lease expires another engine takes the run over`,
        },
      };
    }
  }

  /**
   * A debug request (`/debug/...`) for run `runId` when its debug session is on another engine:
   * forwarded to the engine executing the run (a debug run is pinned to the engine holding its
   * gate). Undefined when the route's own handling applies (the run is here, finished, unknown,
   * not a debug run, or queued).
   */
  async forwardDebug(
    runId: string,
    method: string,
    path: string,
    body: unknown,
    authorization?: string,
  ): Promise<ForwardedAnswer | undefined> {
    if (this.#runs.get(runId)?.state === "running") return undefined;
    const r = await this.#store.getRun(runId);
    if (r === undefined || !r.debugMode || TERMINAL_STATUSES.has(r.status)) return undefined;
    if (r.ownerId === undefined || r.ownerId === this.engineId) return undefined;
    return await this.forward(runId, r.ownerId, "debug request", method, path, body, authorization);
  }
}

/** The result of a finished run stored without one. */
function noResult(runId: string, status: string): FlowResult {
  return failed(500, `Run ${runId} ended ${status} without a stored result`);
}

/** The `owner` part of a run's details: its engine and lease. */
export function ownerOf(
  r: RunRecord,
  engine: EngineRecord | undefined,
): { [k: string]: JsonValue } | undefined {
  if (r.ownerId === undefined) return undefined;
  const o: { [k: string]: JsonValue } = { engineId: r.ownerId };
  if (r.leaseEpoch !== undefined) o.leaseEpoch = r.leaseEpoch;
  if (r.leaseExpiresAt !== undefined) o.leaseExpiresAt = r.leaseExpiresAt;
  if (engine?.url !== undefined) o.url = engine.url;
  if (engine?.host !== undefined) o.host = engine.host;
  if (engine?.pid !== undefined) o.pid = engine.pid;
  return o;
}
