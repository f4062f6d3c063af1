/**
 * The PostgreSQL store's part in a cluster of engines (src/state/postgres.ts, issue 14): the
 * `engines` row and its heartbeat, claiming runs (one `UPDATE ... FROM (SELECT ... FOR UPDATE
 * SKIP LOCKED LIMIT n) RETURNING` statement; the runs of a batch with a `maxConcurrency` within
 * it, counted in the database: `stepflow_batch_admit` in src/state/postgres_schema.ts), renewing and releasing leases, cancelling a queued
 * run atomically with the claimers, and `LISTEN/NOTIFY` on `stepflow_queue`, which only wakes
 * claimers (they keep polling). A claimed or started top-level run has a lease (`owner_id`,
 * `lease_epoch`, `lease_expires_at` on the database clock) renewed every `heartbeatMs`; nested
 * runs follow their top-level run's lease.
 * @module
 */
import { stringifyJson } from "../json/exact_json.ts";
import type { FlowResult } from "../core/flow_result.ts";
import { logger } from "../log.ts";
import { engineOf, type PgSession, type Row, runOf } from "./postgres_client.ts";
import type { LeaseBook } from "./postgres_leases.ts";
import { QUEUE_CHANNEL } from "./postgres_schema.ts";
import type { PostgresWriter } from "./postgres_writer.ts";
import {
  type ClaimedRun,
  type ClaimOptions,
  type ClaimResult,
  type EngineRecord,
  interruptedResult,
  type LeaseRenewal,
  nowRfc3339,
  StoreError,
} from "./store.ts";

const log = logger("state");

/** Claims, leases and the queue's wake-ups of one PostgreSQL store. */
export class PostgresCluster {
  #s: PgSession;
  #leases: LeaseBook;
  #w: PostgresWriter;
  #heartbeat: ReturnType<typeof setInterval> | undefined;
  #heartbeatMs: number;
  #watchers = new Set<() => void>();
  #listening: Promise<{ unlisten(): Promise<void> } | undefined> | undefined;

  constructor(session: PgSession, leases: LeaseBook, writer: PostgresWriter, heartbeatMs: number) {
    this.#s = session;
    this.#leases = leases;
    this.#w = writer;
    this.#heartbeatMs = heartbeatMs;
  }

  /** Renews this engine's leases and heartbeat every `heartbeatMs` (once started). */
  startHeartbeat(): void {
    if (this.#heartbeat !== undefined || this.#s.closed) return;
    this.#heartbeat = setInterval(() => {
      this.renewLeases().catch((e) => log.warn(this.#s.error("cannot renew leases", e).message));
    }, this.#heartbeatMs);
    Deno.unrefTimer(this.#heartbeat as unknown as number);
  }

  claimRun(runId: string): Promise<ClaimResult> {
    this.#w.ensureEngine();
    const me = this.#s.engineId;
    const ttl = this.#s.leaseTtlMs;
    return this.#w.read("cannot claim the run", async (sql): Promise<ClaimResult> => {
      // Free, ours, its lease expired, or (a nested run, without a lease of its own) its
      // engine stopped beating. A top-level run gets a lease; a nested one follows its root.
      const [row] = await sql`
        WITH c AS (
          UPDATE runs r SET owner_id = ${me}, lease_epoch = r.lease_epoch + 1,
            lease_expires_at = CASE WHEN r.parent_run_id IS NULL OR r.lease_expires_at IS NOT NULL
              THEN now() + ${ttl} * interval '1 millisecond' END,
            updated_at = now()
          WHERE r.id = ${runId} AND (r.owner_id IS NULL OR r.owner_id = ${me}
            OR r.lease_expires_at < now()
            OR (r.lease_expires_at IS NULL AND NOT EXISTS (SELECT 1 FROM engines e
              WHERE e.id = r.owner_id
                AND e.heartbeat_at > now() - ${ttl} * interval '1 millisecond'))
            -- a nested run whose top-level run this engine holds (taken over or released to it)
            OR (r.lease_expires_at IS NULL AND r.root_run_id IS NOT NULL AND EXISTS (
              SELECT 1 FROM runs p WHERE p.id = r.root_run_id AND p.owner_id = ${me})))
          RETURNING r.id, r.lease_epoch, r.owner_id, COALESCE(r.root_run_id, r.id) AS root
        ), ev AS (
          INSERT INTO run_events(run_id, root_run_id, type, data, at)
          SELECT id, root, 'run_resumed',
            '{"leaseEpoch":' || lease_epoch || ',"engineId":' || to_json(owner_id)::text || '}',
            now()
          FROM c
        )
        SELECT * FROM c`;
      if (row) {
        const epoch = Number(row.lease_epoch);
        this.#leases.claimed(runId, epoch, row.root as string);
        return { claimed: true, leaseEpoch: epoch };
      }
      const [cur] = await sql`
        SELECT r.owner_id, e.* FROM runs r LEFT JOIN engines e ON e.id = r.owner_id
        WHERE r.id = ${runId}`;
      if (!cur) return { claimed: false, reason: "unknown" };
      return {
        claimed: false,
        reason: "owned",
        owner: cur.id ? engineOf(cur) : undefined,
      };
    });
  }

  async claimRuns(options: ClaimOptions): Promise<ClaimedRun[]> {
    // a claim is a commit: its failure or success is the store's health
    const h = this.#s.health;
    try {
      const claimed = await this.#claimRuns(options);
      if (h.faulted && options.limit >= 1) h.succeeded();
      return claimed;
    } catch (e) {
      if (e instanceof StoreError) h.failed(e);
      throw e;
    }
  }

  #claimRuns(options: ClaimOptions): Promise<ClaimedRun[]> {
    this.#w.ensureEngine();
    const me = this.#s.engineId;
    const limit = Math.max(0, Math.floor(options.limit));
    const ttl = this.#s.leaseTtlMs;
    return this.#w.read("cannot claim runs", async (sql) => {
      if (limit === 0) return [];
      // One statement: the oldest claimable runs, skipping those another engine is claiming
      // or committing to right now, become ours with a new epoch and lease, and are journaled.
      // A queued run of a batch with a maxConcurrency (`limited_batch_id`) is claimable only
      // when `stepflow_batch_admit` admits it: counted in the database under the batch's lock,
      // so the engines together never run more of the batch at once (a run taken over after
      // its lease expired was counted all along). Runs of no such batch pay one column test
      // (the function is called once, and probes an empty index when no such batch is queued).
      const rows = await sql`
        WITH picked AS (
          SELECT id, status AS prev_status FROM runs
          WHERE (status = 'queued' AND limited_batch_id IS NULL)
            OR (status IN ('running', 'paused') AND lease_expires_at < now())
            OR (status = 'queued' AND id = ANY(ARRAY(SELECT stepflow_batch_admit(${limit}))))
          ORDER BY created_at, id
          FOR UPDATE SKIP LOCKED
          LIMIT ${limit}
        ), claimed AS (
          UPDATE runs r SET owner_id = ${me}, lease_epoch = r.lease_epoch + 1,
            lease_expires_at = now() + ${ttl} * interval '1 millisecond',
            status = CASE WHEN r.status = 'queued' THEN 'running' ELSE r.status END,
            started_at = COALESCE(r.started_at, now()), updated_at = now()
          FROM picked p WHERE r.id = p.id
          RETURNING r.*, p.prev_status
        ), ev AS (
          INSERT INTO run_events(run_id, root_run_id, type, data, at)
          SELECT id, COALESCE(root_run_id, id),
            CASE WHEN prev_status = 'queued' THEN 'run_started' ELSE 'run_resumed' END,
            '{"leaseEpoch":' || lease_epoch || ',"engineId":' || to_json(owner_id)::text || '}',
            now()
          FROM (SELECT * FROM claimed ORDER BY created_at, id) x
        )
        SELECT * FROM claimed ORDER BY created_at, id`;
      return rows.map((row): ClaimedRun => {
        const run = runOf(row);
        const epoch = run.leaseEpoch ?? 1;
        this.#leases.claimed(run.runId, epoch, run.rootRunId ?? run.runId);
        return { run, leaseEpoch: epoch, resumed: row.prev_status !== "queued" };
      });
    });
  }

  async renewLeases(): Promise<LeaseRenewal> {
    if (this.#s.closed) return { renewed: [], lost: [] };
    const held = [...this.#leases.held];
    const pending = new Set([...this.#leases.newLeases, ...this.#leases.inFlightLeases]);
    const ids = held.map(([id]) => id);
    const epochs = held.map(([, e]) => e);
    const me = this.#s.engineId;
    const ttl = this.#s.leaseTtlMs;
    let rows: Row[];
    try {
      if (this.#s.engine === "committed") {
        const e = this.#s.engineValues(null);
        rows = await this.#s.sql`
          WITH hb AS (
            INSERT INTO engines(id, host, pid, pid_start, pid_ns, url, started_at, heartbeat_at)
            VALUES (${e.id}, ${e.host}, ${e.pid}, ${e.pid_start}, ${e.pid_ns}, NULL, now(), now())
            ON CONFLICT (id) DO UPDATE SET heartbeat_at = now()
          ), gone AS (
            DELETE FROM engines WHERE id <> ${me}
              AND heartbeat_at < now() - ${10 * ttl} * interval '1 millisecond'
          )
          UPDATE runs r SET lease_expires_at = CASE WHEN r.lease_expires_at IS NOT NULL
              THEN now() + ${ttl} * interval '1 millisecond' END
          FROM unnest(${ids}::text[], ${epochs}::int[]) AS h(id, epoch)
          WHERE r.id = h.id AND r.owner_id = ${me} AND r.lease_epoch = h.epoch
          RETURNING r.id`;
      } else {
        rows = ids.length === 0 ? [] : await this.#s.sql`
          UPDATE runs r SET lease_expires_at = CASE WHEN r.lease_expires_at IS NOT NULL
              THEN now() + ${ttl} * interval '1 millisecond' END
          FROM unnest(${ids}::text[], ${epochs}::int[]) AS h(id, epoch)
          WHERE r.id = h.id AND r.owner_id = ${me} AND r.lease_epoch = h.epoch
          RETURNING r.id`;
      }
    } catch (e) {
      const err = this.#s.error("cannot renew leases", e);
      this.#s.health.failed(err);
      throw err;
    }
    if (this.#s.health.faulted && (this.#s.engine === "committed" || ids.length > 0)) {
      this.#s.health.succeeded(); // a write was committed
    }
    const renewed = new Set(rows.map((r) => r.id as string));
    // leases whose run's creation was not committed when the renewal started are not lost
    const lost = ids.filter((id) =>
      !renewed.has(id) && this.#leases.held.has(id) && !pending.has(id)
    );
    if (lost.length > 0) this.#leases.lose(lost, "another engine took the run over");
    return { renewed: [...renewed], lost };
  }

  async releaseRuns(runIds?: string[]): Promise<string[]> {
    if (this.#s.closed) return [];
    const ids = runIds ?? [...this.#leases.held.keys()];
    if (ids.length === 0) return [];
    await this.#w.settled();
    let rows: Row[];
    try {
      rows = await this.#s.sql`
        UPDATE runs SET lease_expires_at = now(), updated_at = now()
        WHERE id = ANY(${ids}::text[]) AND owner_id = ${this.#s.engineId}
          AND status IN ('running', 'paused') AND lease_expires_at IS NOT NULL
        RETURNING id`;
      if (rows.length > 0) await this.#s.sql`SELECT pg_notify(${QUEUE_CHANNEL}, '')`;
    } catch (e) {
      throw this.#s.error("cannot release runs", e);
    }
    const released = rows.map((r) => r.id as string);
    for (const id of released) this.#leases.released(id);
    return released;
  }

  /**
   * Calls `onLost(runIds)` with the runs whose lease this engine loses from now on (another
   * engine took them over: their writes are refused; stop executing them), as the
   * `onLeaseLost` option of {@linkcode PostgresStateStore.open}. Returns the unsubscribe.
   */
  watchLeases(onLost: (runIds: string[]) => void): () => void {
    const fn = (ids: string[]) => onLost(ids);
    this.#leases.listeners.add(fn);
    return () => {
      this.#leases.listeners.delete(fn);
    };
  }

  /** The run ids this engine holds a lease on now. */
  heldRuns(): string[] {
    return [...this.#leases.held.keys()];
  }

  /**
   * Cancels a run that is still `queued` (no engine claimed it), atomically with the claimers:
   * status `cancelled` with `result`, and a `run_completed` event. False when the run is not
   * queued (claimed meanwhile, finished, or unknown). Committed before the promise resolves.
   */
  cancelQueued(runId: string, result: FlowResult): Promise<boolean> {
    const text = stringifyJson(result);
    const data = stringifyJson({ status: "cancelled", outcome: result.outcome });
    return this.#w.read("cannot cancel the run", async (sql) => {
      const rows = await sql`
        WITH c AS (
          UPDATE runs SET status = 'cancelled', result_json = ${text}, completed_at = now(),
            updated_at = now()
          WHERE id = (SELECT id FROM runs WHERE id = ${runId} AND status = 'queued'
            FOR UPDATE SKIP LOCKED)
          RETURNING id, COALESCE(root_run_id, id) AS root
        ), ev AS (
          INSERT INTO run_events(run_id, root_run_id, type, data, at)
          SELECT id, root, 'run_completed', ${data}, now() FROM c
        )
        SELECT id FROM c`;
      return rows.length > 0;
    });
  }

  async registerEngine(info: { url?: string } = {}): Promise<EngineRecord> {
    if (this.#s.closed) throw this.#s.closedError();
    await this.#w.settled();
    const e = this.#s.engineValues(info.url ?? null);
    let row: Row;
    try {
      [row] = await this.#s.sql`
        INSERT INTO engines(id, host, pid, pid_start, pid_ns, url, started_at, heartbeat_at)
        VALUES (${e.id}, ${e.host}, ${e.pid}, ${e.pid_start}, ${e.pid_ns}, ${e.url}, now(), now())
        ON CONFLICT (id) DO UPDATE SET url = COALESCE(excluded.url, engines.url),
          heartbeat_at = now()
        RETURNING *`;
    } catch (err) {
      throw this.#s.error("cannot register the engine", err);
    }
    this.#s.engine = "committed";
    this.startHeartbeat();
    return engineOf(row);
  }

  listEngines(): Promise<EngineRecord[]> {
    return this.#w.read("cannot list engines", async (sql) => {
      const rows = await sql`SELECT * FROM engines ORDER BY started_at, id`;
      return rows.map(engineOf);
    });
  }

  watchQueue(onWork: () => void): () => void {
    const fn = () => onWork();
    this.#watchers.add(fn);
    if (this.#listening === undefined && !this.#s.closed) {
      this.#listening = this.#s.sql.listen(QUEUE_CHANNEL, () => this.wake()).then(
        (l) => l,
        (e) => {
          if (!this.#s.closed) {
            log.warn(this.#s.error("cannot LISTEN for queued runs (polling only)", e).message);
          }
          return undefined;
        },
      );
    }
    return () => {
      this.#watchers.delete(fn);
      if (this.#watchers.size === 0 && this.#listening !== undefined) {
        const l = this.#listening;
        this.#listening = undefined;
        l.then((x) => x?.unlisten()).catch(() => {});
      }
    };
  }

  /**
   * Resolves once this store's `LISTEN` (started by {@linkcode watchQueue}) is active: true, or
   * false when there is none or it failed (claimers then only poll).
   */
  async listening(): Promise<boolean> {
    return (await this.#listening) !== undefined;
  }

  /** Calls the queue watchers (this process need not wait for its own NOTIFY). */
  wake(): void {
    for (const w of this.#watchers) {
      try {
        w();
      } catch {
        // a watcher's failure is its own
      }
    }
  }

  /**
   * Stops the heartbeat, fails the runs this engine started, did not finish and still holds
   * (`run_interrupted`), and removes its `engines` row (`close`, after the last commit).
   */
  async leave(): Promise<void> {
    if (this.#heartbeat !== undefined) clearInterval(this.#heartbeat);
    this.#heartbeat = undefined;
    // Runs this engine started, did not finish and still holds: its engine is going away.
    const left = [...this.#leases.open].filter(([, r]) =>
      r.lease === null || !this.#leases.lost.has(r.lease)
    );
    if (left.length > 0 || this.#s.engine === "committed") {
      try {
        await this.#s.sql.begin(async (tx) => {
          const at = nowRfc3339();
          for (const [runId, open] of left) {
            const reason = "the engine closed its state store before the run finished";
            const result = stringifyJson(interruptedResult(open.root ?? runId, reason));
            const [row] = await tx`
            UPDATE runs SET status = 'failed', result_json = ${result}, completed_at = ${at},
              updated_at = ${at}, lease_expires_at = NULL
            WHERE id = ${runId} AND status = 'running' AND owner_id = ${this.#s.engineId}
            RETURNING COALESCE(root_run_id, id) AS root`;
            if (!row) continue;
            await tx`UPDATE step_info SET status = 'failed', updated_at = ${at}
                   WHERE run_id = ${runId} AND status = 'running'`;
            await tx`
            INSERT INTO run_events(run_id, root_run_id, type, data, at)
            VALUES (${runId}, ${row.root as string}, 'run_interrupted',
              ${stringifyJson({ reason })}, ${at})`;
          }
          await tx`DELETE FROM engines WHERE id = ${this.#s.engineId}`;
        });
      } catch (e) {
        log.error(this.#s.error("cannot record the end of this engine", e).message);
      }
    }
  }

  /** Stops the queue's `LISTEN` and forgets its watchers (`close`). */
  async unlisten(): Promise<void> {
    this.#watchers.clear();
    const l = this.#listening;
    this.#listening = undefined;
    await l?.then((x) => x?.unlisten()).catch(() => {});
  }
}
