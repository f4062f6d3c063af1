/**
 * The PostgreSQL state store (`stateStore: {type: postgres, url}`, `--store postgres://...`,
 * issue 14): the store several engines on several machines share. Loaded only when configured
 * (src/state/create.ts imports this module, and it the `postgres` client, dynamically).
 *
 * - Tables: the SQLite store's logical schema in PostgreSQL's types
 *   (src/state/postgres_schema.ts), migrated under an advisory lock on open.
 * - Group commit as in the SQLite store: writes are queued synchronously, and the writes of one
 *   event-loop turn are committed in one transaction, sent as one pipeline (`BEGIN`, the fence,
 *   one multi-row statement per table, `COMMIT`: one round trip); writes made while a commit is in
 *   flight form the next one. Each write returns the promise of its commit. A failed commit
 *   rejects with a {@linkcode StoreError} naming the database (never its password) and the cause,
 *   and fails every unfinished run of this store (their `completeRun` rejects: code 507).
 * - The run queue and leases: a run created `queued` waits in the table; engines claim runs with
 *   one `UPDATE ... FROM (SELECT ... FOR UPDATE SKIP LOCKED LIMIT n) RETURNING` statement
 *   ({@linkcode PostgresStateStore.claimRuns}). A claimed or started top-level run has a lease
 *   (`owner_id`, `lease_epoch`, `lease_expires_at` on the database clock) that this store renews
 *   every `heartbeatMs` with its `engines` row; once it expires, another engine may claim the run
 *   (and resume it from its journal). Nested runs follow their top-level run's lease.
 * - Fencing: every commit first calls `stepflow_fence` with the `(run, epoch)` leases its writes
 *   are made under; when another engine took one over, the transaction aborts, the writes of the
 *   runs of that lease are dropped (their promises reject, their `completeRun` fails the run
 *   with a clear error) and the rest is committed again. A stalled engine that lost its lease
 *   writes nothing.
 * - `LISTEN/NOTIFY` (channel `stepflow_queue`) only wakes claimers when a run is queued or
 *   released ({@linkcode PostgresStateStore.watchQueue}); claimers keep polling.
 * @module
 */
import type postgres from "postgres";
import { type JsonValue, parseJson, stringifyJson } from "../json/exact_json.ts";
import type { FlowResult } from "../core/flow_result.ts";
import { describeError } from "../errors.ts";
import { logger } from "../log.ts";
import { blobId } from "./blob_id.ts";
import { GroupCommit } from "./group_commit.ts";
import { processIdentity } from "./liveness.ts";
import { describePostgresUrl, parsePostgresUrl } from "./postgres_url.ts";
import {
  batchFromRow,
  type BatchRow,
  engineFromRow,
  type EngineRow,
  eventFromRow,
  type EventRow,
  runFromRow,
  type RunRow,
  signalFromRow,
  type SignalRow,
  time,
} from "./rows.ts";
import {
  FENCE_SQLSTATE,
  MIGRATION_LOCK_KEY,
  PG_MIGRATIONS,
  PG_REQUIRED_TABLES,
  QUEUE_CHANNEL,
} from "./postgres_schema.ts";
import {
  type BatchRecord,
  type ClaimedRun,
  type ClaimOptions,
  type ClaimResult,
  type EngineRecord,
  type EventFilter,
  interruptedResult,
  type LeaseRenewal,
  normalizeInstant,
  nowRfc3339,
  type RunEventRecord,
  type RunEventType,
  type RunFilter,
  type RunRecord,
  type RunStatus,
  type SignalRecord,
  type StateStore,
  stepEventData,
  stepEventType,
  type StepInfoRecord,
  type StepResultRecord,
  type StepStartRecord,
  type StepStatus,
  stepStatusOf,
  type StoredBlob,
  StoreError,
} from "./store.ts";

const log = logger("state");

type Sql = postgres.Sql;
type Row = Record<string, unknown>;

/** Options of {@linkcode PostgresStateStore.open}. */
export interface PostgresOpenOptions {
  /** Create or upgrade the tables when needed. @default true */
  autoMigrate?: boolean;
  /** Most connections of this engine's pool (a `LISTEN` takes one more). @default 10 */
  maxConnections?: number;
  /**
   * How long a run's lease lasts without renewal, ms: after an engine stops (killed, stalled,
   * cut off), its runs can be taken over this long after its last heartbeat. @default 30000
   */
  leaseTtlMs?: number;
  /** How often leases and the `engines` heartbeat are renewed, ms. @default leaseTtlMs / 3 */
  heartbeatMs?: number;
  /** How long connecting may take, ms. @default 10000 */
  connectTimeoutMs?: number;
  /**
   * Called with the runs whose lease this engine lost (another engine took them over): their
   * writes are refused from now on; the engine should stop executing them.
   */
  onLeaseLost?: (runIds: string[]) => void;
}

// Tags of the flat write queue; each entry is [tag, lease, ...] with a fixed length per tag.
const BLOB = 0; // [BLOB, null, id, text, type, at]
const CREATE = 1; // [CREATE, lease, row]
const START = 2; // [START, lease, runId, index, stepId, component, attempt, at]
const RESULT = 3; // [RESULT, lease, runId, index, stepId, json, status, event, data, component, attempt, ms, at]
const COMPLETE = 4; // [COMPLETE, lease, runId, status, resultText, at, data]
const STATUS = 5; // [STATUS, lease, runId, status, event, data, at]
const BATCH = 6; // [BATCH, null, batch]
const BATCH_RUN = 7; // [BATCH_RUN, null, batchId, runId, index]
const ENGINE = 8; // [ENGINE, null, url]
const LENGTH = [6, 3, 8, 13, 7, 7, 3, 5, 3];

/** Entries in the queue before a commit is asked for within the turn. */
const MAX_QUEUE_LENGTH = 16_000;

/** A run row waiting to be inserted. */
interface CreateRow {
  id: string;
  flowId: string;
  flowName: string | null;
  status: string;
  input: string;
  result: string | null;
  createdAt: string;
  completedAt: string | null;
  overrides: string | null;
  parent: string | null;
  root: string | null;
  runKey: string | null;
  variables: string | null;
  owner: string | null;
  epoch: number;
  /** Whether the run gets a lease (`lease_expires_at`): a started top-level run. */
  leased: boolean;
  startedAt: string | null;
  updatedAt: string;
}

/** A run this store writes and has not finished. */
interface OpenRun {
  /** Its top-level run (null: looked up by the database). */
  root: string | null;
  /** The run whose lease fences its writes (itself, or its top-level run); null: none. */
  lease: string | null;
  /** The first failure of its writes. */
  error?: StoreError;
  /** The last commit promise handed to its writers, and the promise derived from it. */
  batch?: Promise<void>;
  derived?: Promise<void>;
}

/** One commit's rows, per table, as columns (sent as JSON documents). */
class Batch {
  fenceIds: string[] = [];
  fenceEpochs: (number | null)[] = [];
  blobIds: string[] = [];
  blobData: string[] = [];
  blobTypes: string[] = [];
  blobAt: string[] = [];
  creates: CreateRow[] = [];
  createById = new Map<string, CreateRow>();
  updates = new Map<
    string,
    { status: string; result: string | null; completedAt: string | null; at: string }
  >();
  res: [string[], number[], string[], string[], string[]] = [[], [], [], [], []];
  resAt = new Map<string, number>();
  info: [
    string[],
    number[],
    string[],
    string[],
    string[],
    string[],
    string[],
    number[],
    (number | null)[],
  ] = [[], [], [], [], [], [], [], [], []];
  infoAt = new Map<string, number>();
  ev: [
    string[],
    (string | null)[],
    string[],
    (number | null)[],
    (string | null)[],
    (number | null)[],
    (string | null)[],
    string[],
  ] = [[], [], [], [], [], [], [], []];
  batches: BatchRecord[] = [];
  batchRuns: [string[], string[], number[]] = [[], [], []];
  engine = false;
  engineUrl: string | null = null;
  notify = false;
}

/** A {@linkcode StateStore} in a PostgreSQL database shared by engines. */
export class PostgresStateStore implements StateStore {
  readonly kind = "postgres";
  readonly engineId: string = crypto.randomUUID();
  /** The database as it may be shown: `postgres://user@host:port/db` (no password). */
  readonly database: string;
  /** How long a lease lasts without renewal, ms. */
  readonly leaseTtlMs: number;
  #sql: Sql;
  #q: unknown[] = [];
  #gc: GroupCommit;
  #closed = false;
  #open = new Map<string, OpenRun>();
  /** Leases this engine holds: run id → epoch. */
  #held = new Map<string, number>();
  /** Leases this engine lost: run id → the error its writes get. */
  #lost = new Map<string, StoreError>();
  /** Leases created by runs in the queue (their rows do not exist yet: not fenced). */
  #newLeases = new Set<string>();
  /** Leases created by runs in the commit in flight. */
  #inFlightLeases = new Set<string>();
  #engine: "none" | "queued" | "committed" = "none";
  #heartbeat: ReturnType<typeof setInterval> | undefined;
  #heartbeatMs: number;
  #leaseListeners = new Set<(runIds: string[]) => void>();
  #watchers = new Set<() => void>();
  #listening: Promise<{ unlisten(): Promise<void> } | undefined> | undefined;

  private constructor(sql: Sql, database: string, o: PostgresOpenOptions) {
    this.#sql = sql;
    this.database = database;
    this.leaseTtlMs = o.leaseTtlMs ?? 30_000;
    this.#heartbeatMs = o.heartbeatMs ?? Math.max(100, Math.floor(this.leaseTtlMs / 3));
    if (o.onLeaseLost) this.#leaseListeners.add(o.onLeaseLost);
    this.#gc = new GroupCommit(() => this.#commitQueue());
  }

  /**
   * Connects to the database at `url`, and creates or upgrades its tables (`autoMigrate`).
   * @throws {StoreError} naming the database (without its password) when the URL is invalid,
   * the server cannot be reached or refuses the login, or the tables are missing with
   * `autoMigrate: false`.
   */
  static async open(url: string, options: PostgresOpenOptions = {}): Promise<PostgresStateStore> {
    const database = describePostgresUrl(url);
    try {
      parsePostgresUrl(url);
    } catch (e) {
      throw new StoreError((e as Error).message, database);
    }
    const { default: connect } = await import("postgres");
    const sql = connect(url, {
      ...clientDefaults(url),
      max: options.maxConnections ?? 10,
      connect_timeout: Math.ceil((options.connectTimeoutMs ?? 10_000) / 1000),
      // "relation already exists, skipping" and the like are not for the user
      onnotice: () => {},
      connection: { application_name: "stepflow" },
    });
    const store = new PostgresStateStore(sql, database, options);
    try {
      if (options.autoMigrate ?? true) await store.#migrate();
      else await store.#checkSchema();
    } catch (e) {
      await sql.end({ timeout: 1 }).catch(() => {});
      throw store.#error("cannot open", e);
    }
    return store;
  }

  // ---------------------------------------------------------------- schema

  async #migrate(): Promise<void> {
    const sql = this.#sql;
    const done = async (q: Sql) => {
      const [{ ok }] = await q`SELECT to_regclass('_stepflow_migrations') IS NOT NULL AS ok`;
      if (!ok) return new Set<string>();
      return new Set((await q`SELECT name FROM _stepflow_migrations`).map((r) => r.name));
    };
    // the usual case: nothing to do, and no lock taken
    const before = await done(sql);
    if (PG_MIGRATIONS.every((m) => before.has(m.name))) return;
    await sql.begin(async (tx) => {
      // engines starting at once on a new database: one migrates, the others wait here
      await tx`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK_KEY}::bigint)`;
      const applied = await done(tx as unknown as Sql);
      for (const m of PG_MIGRATIONS) {
        if (applied.has(m.name)) continue;
        await tx.unsafe(m.sql);
        await tx`INSERT INTO _stepflow_migrations(name, applied_at) VALUES (${m.name}, now())
                 ON CONFLICT (name) DO NOTHING`;
      }
    });
  }

  async #checkSchema(): Promise<void> {
    const rows = await this.#sql`
      SELECT t FROM unnest(${PG_REQUIRED_TABLES}::text[]) AS t WHERE to_regclass(t) IS NULL`;
    const missing = rows.map((r) => r.t as string);
    if (missing.length === PG_REQUIRED_TABLES.length) {
      throw new Error("the database has no stepflow tables; set autoMigrate: true");
    }
    if (missing.length > 0) {
      throw new Error(
        `the database lacks the tables ${missing.join(", ")}: open it once with autoMigrate: true`,
      );
    }
  }

  /** A StoreError naming the database (never its password) and the cause. */
  #error(what: string, e: unknown): StoreError {
    if (e instanceof StoreError) return e;
    let cause = describeError(e);
    const err = e as { code?: unknown; detail?: unknown };
    if (typeof err?.code === "string" && /^[0-9A-Z]{5}$/.test(err.code)) {
      cause += ` (SQLSTATE ${err.code})`;
    } else if (err?.code === "ECONNREFUSED" || /ECONNREFUSED/.test(cause)) {
      cause += " (is the PostgreSQL server running, and on that host and port?)";
    }
    const where = what === "cannot open" ? what : `${what} in`;
    return new StoreError(
      `${where} PostgreSQL database '${this.database}': ${cause}`,
      this.database,
      { cause: e },
    );
  }

  // ---------------------------------------------------------------- engine and leases

  /** Queues this store's `engines` row (once), and starts its heartbeat. */
  #ensureEngine(): void {
    if (this.#engine !== "none") return;
    this.#engine = "queued";
    this.#q.push(ENGINE, null, null);
    this.#queued(undefined);
    this.#startHeartbeat();
  }

  #startHeartbeat(): void {
    if (this.#heartbeat !== undefined || this.#closed) return;
    this.#heartbeat = setInterval(() => {
      this.renewLeases().catch((e) => log.warn(this.#error("cannot renew leases", e).message));
    }, this.#heartbeatMs);
    Deno.unrefTimer(this.#heartbeat as unknown as number);
  }

  #engineValues(url: string | null) {
    const id = processIdentity();
    return {
      id: this.engineId,
      host: id.host ?? null,
      pid: id.pid,
      pid_start: id.pidStart ?? null,
      pid_ns: id.pidNs ?? null,
      url,
    };
  }

  /** Marks leases lost: their runs' writes are refused from now on. */
  #loseLeases(ids: string[], why: string): void {
    const fresh: string[] = [];
    for (const id of ids) {
      if (this.#lost.has(id)) continue;
      const epoch = this.#held.get(id);
      this.#markLost(
        id,
        new StoreError(
          `cannot store run state in PostgreSQL database '${this.database}': ${why} (run ${id}` +
            `${epoch === undefined ? "" : `, lease epoch ${epoch}`}); this engine's writes to it ` +
            "are refused",
          this.database,
        ),
      );
      fresh.push(id);
    }
    if (fresh.length === 0) return;
    log.warn(`lost the lease of ${fresh.length} run(s) to another engine: ${fresh.join(", ")}`);
    for (const fn of this.#leaseListeners) {
      try {
        fn(fresh);
      } catch (e) {
        log.error(`onLeaseLost failed: ${describeError(e)}`);
      }
    }
  }

  /** Refuses every later write to the runs of lease `id` (kept after they leave #open). */
  #markLost(id: string, err: StoreError): void {
    this.#held.delete(id);
    this.#lost.set(id, err);
    for (const [runId, r] of this.#open) {
      if (r.lease !== id) continue;
      r.error ??= err;
      this.#lost.set(runId, err);
    }
  }

  // ---------------------------------------------------------------- group commit

  #queued(open: OpenRun | undefined): Promise<void> {
    const p = this.#gc.queued();
    if (this.#q.length >= MAX_QUEUE_LENGTH) this.#gc.now();
    if (open === undefined) return p;
    // writers of a run get a promise that also rejects when the run's own writes were refused
    if (open.batch !== p) {
      open.batch = p;
      const d = open.derived = p.then(() => {
        if (open.error) throw open.error;
      });
      d.catch(() => {});
    }
    return open.derived!;
  }

  /** The refusal of a write to a run whose lease was lost, or undefined. */
  #refused(runId: string, open: OpenRun | undefined): Promise<void> | undefined {
    if (this.#lost.size === 0) return undefined;
    const err = this.#lost.get(runId) ??
      (open?.lease == null ? undefined : this.#lost.get(open.lease));
    if (err === undefined) return undefined;
    const p = Promise.reject(err);
    p.catch(() => {});
    return p;
  }

  /**
   * The lease a write to `runId` is fenced by: its open run's (its top-level run's, or its own),
   * else the run itself (the fence then asks only that this engine own it).
   */
  #leaseOf(runId: string, open: OpenRun | undefined): string {
    return open?.lease ?? runId;
  }

  /** Commits the queue in one transaction; rejects with a StoreError when it failed. */
  async #commitQueue(): Promise<void> {
    let q = this.#q;
    if (q.length === 0) return;
    this.#q = [];
    const newLeases = this.#inFlightLeases = this.#newLeases;
    this.#newLeases = new Set();
    const engineQueued = this.#engine === "queued";
    for (let tries = 0;; tries++) {
      const b = this.#build(q, newLeases);
      try {
        await this.#send(b);
        if (engineQueued && b.engine) this.#engine = "committed";
        this.#inFlightLeases = new Set();
        // this process's claimers need not wait for the NOTIFY to come back
        if (b.notify) this.#wake();
        return;
      } catch (e) {
        const lost = fencedRuns(e);
        if (lost !== undefined && tries < 16) {
          this.#loseLeases(lost, "another engine took the run over");
          q = dropLeases(q, new Set(lost));
          if (q.length === 0) {
            this.#inFlightLeases = new Set();
            return;
          }
          continue;
        }
        this.#inFlightLeases = new Set();
        const err = this.#error("cannot store run state", e);
        for (const r of this.#open.values()) r.error ??= err;
        log.error(err.message);
        throw err;
      }
    }
  }

  /** Sorts the queue's entries into per-table rows (coalescing rows of the same key). */
  #build(q: unknown[], newLeases: Set<string>): Batch {
    const b = new Batch();
    const fenced = new Set<string>();
    const open = this.#open;
    const event = (
      runId: string,
      type: string,
      index: number | null,
      stepId: string | null,
      attempt: number | null,
      data: string | null,
      at: string,
    ) => {
      const ev = b.ev;
      ev[0].push(runId);
      ev[1].push(open.get(runId)?.root ?? null);
      ev[2].push(type);
      ev[3].push(index);
      ev[4].push(stepId);
      ev[5].push(attempt);
      ev[6].push(data);
      ev[7].push(at);
    };
    const info = (
      runId: string,
      index: number,
      stepId: string,
      component: string,
      status: string,
      at: string,
      attempt: number,
      ms: number | null,
    ) => {
      const key = `${runId}\u0000${index}`;
      const f = b.info;
      const i = b.infoAt.get(key);
      if (i === undefined) {
        b.infoAt.set(key, f[0].length);
        f[0].push(runId);
        f[1].push(index);
        f[2].push(stepId);
        f[3].push(component);
        f[4].push(status);
        f[5].push(at);
        f[6].push(at);
        f[7].push(attempt);
        f[8].push(ms);
        return;
      }
      // the same step twice in one commit: merged as the database would merge them
      f[2][i] = stepId;
      if (component !== "") f[3][i] = component;
      f[4][i] = status;
      f[6][i] = at;
      f[7][i] = status === "running" ? attempt : Math.max(f[7][i], attempt);
      f[8][i] = ms;
    };
    for (let i = 0; i < q.length; i += LENGTH[q[i] as number]) {
      const tag = q[i] as number;
      const lease = q[i + 1] as string | null;
      if (lease !== null && !newLeases.has(lease) && !fenced.has(lease)) {
        fenced.add(lease);
        b.fenceIds.push(lease);
        b.fenceEpochs.push(this.#held.get(lease) ?? null);
      }
      switch (tag) {
        case BLOB: {
          b.blobIds.push(q[i + 2] as string);
          b.blobData.push(q[i + 3] as string);
          b.blobTypes.push(q[i + 4] as string);
          b.blobAt.push(q[i + 5] as string);
          break;
        }
        case CREATE: {
          const row = q[i + 2] as CreateRow;
          const prev = b.createById.get(row.id);
          if (prev) b.creates[b.creates.indexOf(prev)] = row;
          else b.creates.push(row);
          b.createById.set(row.id, row);
          b.updates.delete(row.id);
          if (row.status === "queued") b.notify = true;
          event(
            row.id,
            row.status === "queued" ? "run_queued" : "run_started",
            null,
            null,
            null,
            null,
            row.updatedAt,
          );
          break;
        }
        case START: {
          const runId = q[i + 2] as string;
          const index = q[i + 3] as number;
          const stepId = q[i + 4] as string;
          const attempt = q[i + 6] as number;
          const at = q[i + 7] as string;
          info(runId, index, stepId, q[i + 5] as string, "running", at, attempt, null);
          event(runId, "step_started", index, stepId, attempt, null, at);
          break;
        }
        case RESULT: {
          const runId = q[i + 2] as string;
          const index = q[i + 3] as number;
          const stepId = q[i + 4] as string;
          const attempt = q[i + 10] as number | null;
          const at = q[i + 12] as string;
          const key = `${runId}\u0000${index}`;
          const r = b.res;
          const k = b.resAt.get(key);
          if (k === undefined) {
            b.resAt.set(key, r[0].length);
            r[0].push(runId);
            r[1].push(index);
            r[2].push(stepId);
            r[3].push(q[i + 5] as string);
            r[4].push(at);
          } else {
            r[2][k] = stepId;
            r[3][k] = q[i + 5] as string;
            r[4][k] = at;
          }
          info(
            runId,
            index,
            stepId,
            (q[i + 9] as string | null) ?? "",
            q[i + 6] as string,
            at,
            attempt ?? 1,
            q[i + 11] as number | null,
          );
          event(runId, q[i + 7] as string, index, stepId, attempt, q[i + 8] as string | null, at);
          break;
        }
        case COMPLETE: {
          const runId = q[i + 2] as string;
          const status = q[i + 3] as string;
          const result = q[i + 4] as string | null;
          const at = q[i + 5] as string;
          const c = b.createById.get(runId);
          if (c) {
            c.status = status;
            if (result !== null) c.result = result;
            c.completedAt = at;
            c.updatedAt = at;
          } else {
            const u = b.updates.get(runId);
            b.updates.set(runId, {
              status,
              result: result ?? u?.result ?? null,
              completedAt: at,
              at,
            });
          }
          event(runId, "run_completed", null, null, null, q[i + 6] as string, at);
          break;
        }
        case STATUS: {
          const runId = q[i + 2] as string;
          const status = q[i + 3] as string;
          const at = q[i + 6] as string;
          const c = b.createById.get(runId);
          if (c) {
            c.status = status;
            c.updatedAt = at;
          } else {
            const u = b.updates.get(runId);
            b.updates.set(runId, {
              status,
              result: u?.result ?? null,
              completedAt: u?.completedAt ?? null,
              at,
            });
          }
          const type = q[i + 4] as string | null;
          if (type !== null) event(runId, type, null, null, null, q[i + 5] as string | null, at);
          break;
        }
        case BATCH:
          b.batches.push(q[i + 2] as BatchRecord);
          break;
        case BATCH_RUN:
          b.batchRuns[0].push(q[i + 2] as string);
          b.batchRuns[1].push(q[i + 3] as string);
          b.batchRuns[2].push(q[i + 4] as number);
          break;
        case ENGINE:
          b.engine = true;
          b.engineUrl = (q[i + 2] as string | null) ?? b.engineUrl;
          break;
      }
    }
    return b;
  }

  /** Sends one commit as a pipeline on one connection: BEGIN, fence, writes, COMMIT. */
  async #send(b: Batch): Promise<void> {
    const c = await this.#sql.reserve();
    try {
      const qs: Promise<unknown>[] = [c`BEGIN`];
      const me = this.engineId;
      if (b.fenceIds.length > 0) {
        qs.push(c`SELECT stepflow_fence(${me}, ${b.fenceIds}::text[], ${b.fenceEpochs}::int[])`);
      }
      if (b.engine) {
        const e = this.#engineValues(b.engineUrl);
        qs.push(c`
          INSERT INTO engines(id, host, pid, pid_start, pid_ns, url, started_at, heartbeat_at)
          VALUES (${e.id}, ${e.host}, ${e.pid}, ${e.pid_start}, ${e.pid_ns}, ${e.url}, now(), now())
          ON CONFLICT (id) DO UPDATE SET url = COALESCE(excluded.url, engines.url),
            heartbeat_at = now()`);
      }
      // Each table's rows go as one JSON document in one text parameter, parsed once by the
      // server (jsonb): built by string concatenation, it costs the client a fraction of what
      // the client's per-column array parameters do (their serialisation dominated a commit).
      if (b.blobIds.length > 0) {
        const rows = jsonRows([b.blobIds, b.blobData, b.blobTypes, b.blobAt]);
        qs.push(c`
          INSERT INTO blobs(id, data, blob_type, created_at)
          SELECT x->>0, x->>1, x->>2, (x->>3)::timestamptz
          FROM jsonb_array_elements(${rows}::text::jsonb) AS x
          ON CONFLICT (id) DO NOTHING`);
      }
      if (b.creates.length > 0) qs.push(this.#insertRuns(c, b.creates));
      if (b.updates.size > 0) {
        const ids: string[] = [];
        const status: string[] = [];
        const result: (string | null)[] = [];
        const completed: (string | null)[] = [];
        const at: string[] = [];
        for (const [id, u] of b.updates) {
          ids.push(id);
          status.push(u.status);
          result.push(u.result);
          completed.push(u.completedAt);
          at.push(u.at);
        }
        const rows = jsonRows([ids, status, result, completed, at]);
        qs.push(c`
          UPDATE runs r SET status = x->>1, result_json = COALESCE(x->>2, r.result_json),
            completed_at = COALESCE((x->>3)::timestamptz, r.completed_at),
            updated_at = (x->>4)::timestamptz
          FROM jsonb_array_elements(${rows}::text::jsonb) AS x
          WHERE r.id = x->>0`);
      }
      if (b.ev[0].length > 0) {
        // Step results, step statuses and journal events in one statement reading one document
        // (parsed once): {"r": [run ids], "s": [results], "i": [statuses], "e": [events]}, rows
        // naming runs by their position in "r". Event ids follow the rows' order.
        qs.push(c`
          WITH d AS MATERIALIZED (SELECT j, j->'r' AS r FROM (SELECT ${
          stepDocument(b)
        }::text::jsonb AS j) z),
          res AS (
            INSERT INTO step_results(run_id, step_index, step_id, result, created_at)
            SELECT (d.r->>((x->>0)::int)), (x->>1)::int, x->>2, x->>3, (x->>4)::timestamptz
            FROM d, jsonb_array_elements(d.j->'s') AS x
            ON CONFLICT (run_id, step_index) DO UPDATE SET step_id = excluded.step_id,
              result = excluded.result, created_at = excluded.created_at
          ), inf AS (
            -- a start sets the attempt; a result keeps the highest, and the component when it
            -- has none
            INSERT INTO step_info(run_id, step_index, step_id, component, status, created_at,
              updated_at, attempt, duration_ms)
            SELECT (d.r->>((x->>0)::int)), (x->>1)::int, x->>2, x->>3, x->>4,
              (x->>5)::timestamptz, (x->>6)::timestamptz, (x->>7)::int, (x->>8)::float8
            FROM d, jsonb_array_elements(d.j->'i') AS x
            ON CONFLICT (run_id, step_index) DO UPDATE SET status = excluded.status,
              step_id = excluded.step_id, updated_at = excluded.updated_at,
              duration_ms = excluded.duration_ms,
              attempt = CASE WHEN excluded.status = 'running' THEN excluded.attempt
                ELSE GREATEST(step_info.attempt, excluded.attempt) END,
              component = CASE WHEN excluded.component = '' THEN step_info.component
                ELSE excluded.component END
          )
          INSERT INTO run_events(run_id, root_run_id, type, step_index, step_id, attempt, data, at)
          SELECT y.run_id, COALESCE(y.root, (SELECT COALESCE(r.root_run_id, r.id) FROM runs r
              WHERE r.id = y.run_id), y.run_id),
            y.type, y.step_index, y.step_id, y.attempt, y.data, y.at
          FROM (
            SELECT (d.r->>((x->>0)::int)) AS run_id, (d.r->>((x->>1)::int)) AS root,
              x->>2 AS type, (x->>3)::int AS step_index, x->>4 AS step_id,
              (x->>5)::int AS attempt, x->>6 AS data, (x->>7)::timestamptz AS at, e.n
            FROM d, jsonb_array_elements(d.j->'e') WITH ORDINALITY AS e(x, n)
          ) y
          ORDER BY y.n`);
      }
      for (const bt of b.batches) {
        qs.push(c`
          INSERT INTO batches(id, flow_id, flow_name, total_inputs, status, created_at)
          VALUES (${bt.batchId}, ${bt.flowId}, ${bt.flowName ?? null}, ${bt.totalInputs},
            ${bt.status}, ${bt.createdAt})
          ON CONFLICT (id) DO UPDATE SET flow_id = excluded.flow_id,
            flow_name = excluded.flow_name, total_inputs = excluded.total_inputs,
            status = excluded.status, created_at = excluded.created_at`);
      }
      if (b.batchRuns[0].length > 0) {
        const rows = jsonRows(b.batchRuns);
        qs.push(c`
          INSERT INTO batch_runs(batch_id, run_id, batch_input_index)
          SELECT DISTINCT ON (x->>0, x->>1) x->>0, x->>1, (x->>2)::int
          FROM jsonb_array_elements(${rows}::text::jsonb) WITH ORDINALITY AS e(x, n)
          ORDER BY x->>0, x->>1, n DESC
          ON CONFLICT (batch_id, run_id) DO UPDATE
            SET batch_input_index = excluded.batch_input_index`);
      }
      if (b.notify) qs.push(c`SELECT pg_notify(${QUEUE_CHANNEL}, '')`);
      qs.push(c`COMMIT`);
      const settled = await Promise.allSettled(qs);
      // the first failure is the cause; the statements after it only say the transaction aborted
      let failure: unknown;
      for (const s of settled) {
        if (s.status === "rejected") {
          const code = (s.reason as { code?: string }).code;
          if (failure === undefined || (failure as { code?: string }).code === "25P02") {
            if (failure === undefined || code !== "25P02") failure = s.reason;
          }
        }
      }
      if (failure !== undefined) throw failure;
      const commit = (settled[settled.length - 1] as PromiseFulfilledResult<{ command: string }>)
        .value;
      if (commit.command !== "COMMIT") throw new Error("the transaction was rolled back");
    } finally {
      c.release();
    }
  }

  #insertRuns(c: Sql, rows: CreateRow[]): Promise<unknown> {
    let doc = "[";
    for (let i = 0; i < rows.length; i++) {
      const r = rows[i];
      if (i > 0) doc += ",";
      doc += `[${js(r.id)},${js(r.flowId)},${js(r.flowName)},${js(r.status)},${js(r.input)},${
        js(r.result)
      },${js(r.createdAt)},${js(r.completedAt)},${js(r.overrides)},${js(r.parent)},${js(r.root)},${
        js(r.runKey)
      },${js(r.variables)},${js(r.owner)},${r.epoch},${r.leased ? 1 : 0},${js(r.startedAt)},${
        js(r.updatedAt)
      }]`;
    }
    doc += "]";
    // A run created again under the same id replaces it (as the SQLite store's INSERT OR
    // REPLACE), keeping when it was first created and started.
    return c`
      INSERT INTO runs(id, flow_id, flow_name, status, input_json, result_json, created_at,
        completed_at, overrides_json, parent_run_id, root_run_id, run_key, variables_json,
        owner_id, lease_epoch, lease_expires_at, started_at, updated_at)
      SELECT x->>0, x->>1, x->>2, x->>3, x->>4, x->>5, (x->>6)::timestamptz,
        (x->>7)::timestamptz, x->>8, x->>9,
        COALESCE(x->>10, (SELECT COALESCE(p.root_run_id, p.id) FROM runs p
          WHERE p.id = x->>9), x->>9, x->>0),
        x->>11, x->>12, x->>13, (x->>14)::int,
        CASE WHEN x->>15 = '1' THEN now() + ${this.leaseTtlMs} * interval '1 millisecond' END,
        (x->>16)::timestamptz, (x->>17)::timestamptz
      FROM jsonb_array_elements(${doc}::text::jsonb) AS x
      ON CONFLICT (id) DO UPDATE SET flow_id = excluded.flow_id,
        flow_name = excluded.flow_name, status = excluded.status,
        input_json = excluded.input_json, result_json = excluded.result_json,
        created_at = LEAST(runs.created_at, excluded.created_at),
        completed_at = excluded.completed_at, overrides_json = excluded.overrides_json,
        parent_run_id = excluded.parent_run_id, root_run_id = excluded.root_run_id,
        run_key = excluded.run_key, variables_json = excluded.variables_json,
        owner_id = excluded.owner_id, lease_epoch = excluded.lease_epoch,
        lease_expires_at = excluded.lease_expires_at,
        started_at = COALESCE(runs.started_at, excluded.started_at),
        updated_at = excluded.updated_at`;
  }

  /** Waits for the writes queued so far (failures were reported to their writers). */
  async #settled(): Promise<void> {
    try {
      await this.#gc.soon();
    } catch {
      // the writers got the error; a read shows what is stored
    }
  }

  /** Runs a read after this store's queued writes, naming the database when it fails. */
  async #read<T>(what: string, fn: (sql: Sql) => Promise<T>): Promise<T> {
    if (this.#closed) throw new StoreError("the state store is closed", this.database);
    await this.#settled();
    try {
      return await fn(this.#sql);
    } catch (e) {
      throw this.#error(what, e);
    }
  }

  // ---------------------------------------------------------------- blobs

  putBlob(data: JsonValue, blobType: "data" | "flow", knownId?: string): string {
    const id = knownId ?? blobId(data);
    if (this.#closed) return id;
    this.#q.push(BLOB, null, id, stringifyJson(data), blobType, nowRfc3339());
    this.#queued(undefined);
    return id;
  }

  getBlob(id: string): Promise<StoredBlob | undefined> {
    return this.#read("cannot read a blob", async (sql) => {
      const [row] = await sql`SELECT id, data, blob_type FROM blobs WHERE id = ${id.toLowerCase()}`;
      if (!row) return undefined;
      return {
        id: row.id as string,
        data: parseJson(row.data as string),
        blobType: row.blob_type === "flow" ? "flow" : "data",
      };
    });
  }

  // ---------------------------------------------------------------- run writes

  createRun(run: RunRecord): Promise<void> | void {
    if (this.#closed) return;
    const queued = run.status === "queued";
    const parent = run.parentRunId;
    const parentOpen = parent === undefined ? undefined : this.#open.get(parent);
    const root = run.rootRunId ?? (parent === undefined ? run.runId : parentOpen?.root ?? null);
    const at = nowRfc3339();
    let lease: string | null = null;
    let epoch = 0;
    let leased = false;
    let open: OpenRun | undefined;
    if (queued) {
      // a queued nested run is created under its parent's lease
      lease = parentOpen?.lease ?? null;
      const refused = parent === undefined ? undefined : this.#refused(parent, parentOpen);
      if (refused) return refused;
    } else if (parent === undefined) {
      this.#ensureEngine();
      lease = run.runId;
      leased = true;
      const held = this.#held.get(run.runId);
      if (held === undefined) {
        epoch = 1;
        this.#held.set(run.runId, 1);
        this.#lost.delete(run.runId);
        this.#newLeases.add(run.runId);
      } else {
        epoch = held;
      }
      this.#open.set(run.runId, open = { root, lease });
    } else {
      // a nested run follows its parent's lease; without an open parent, it is its own (its row
      // is created by this write: not fenced, then fenced by owner)
      const refused = this.#refused(parent, parentOpen);
      if (refused) return refused;
      this.#ensureEngine();
      lease = parentOpen?.lease ?? run.runId;
      if (lease === run.runId) this.#newLeases.add(lease);
      this.#lost.delete(run.runId);
      epoch = 1;
      this.#open.set(run.runId, open = { root, lease });
    }
    const row: CreateRow = {
      id: run.runId,
      flowId: run.flowId,
      flowName: run.flowName ?? null,
      status: run.status,
      input: stringifyJson(run.input),
      result: run.result === undefined ? null : stringifyJson(run.result),
      createdAt: run.createdAt,
      completedAt: run.completedAt ?? null,
      overrides: run.overrides === undefined ? null : stringifyJson(run.overrides),
      parent: parent ?? null,
      root,
      runKey: run.runKey ?? null,
      variables: run.variables === undefined ? null : stringifyJson(run.variables),
      owner: queued ? null : this.engineId,
      epoch,
      leased,
      startedAt: queued ? null : at,
      updatedAt: at,
    };
    this.#q.push(CREATE, lease, row);
    return this.#queued(open);
  }

  recordStepStarted(runId: string, s: StepStartRecord): Promise<void> | void {
    if (this.#closed) return;
    const open = this.#open.get(runId);
    const refused = this.#refused(runId, open);
    if (refused) return refused;
    this.#q.push(
      START,
      this.#leaseOf(runId, open),
      runId,
      s.stepIndex,
      s.stepId,
      s.component,
      s.attempt,
      s.at ?? nowRfc3339(),
    );
    return this.#queued(open);
  }

  recordStepResult(runId: string, record: StepResultRecord): Promise<void> | void {
    // The hot path: flat queue entries, no closure.
    if (this.#closed) return;
    const open = this.#open.get(runId);
    const refused = this.#refused(runId, open);
    if (refused) return refused;
    const data = stepEventData(record);
    this.#q.push(
      RESULT,
      this.#leaseOf(runId, open),
      runId,
      record.stepIndex,
      record.stepId,
      stringifyJson(record.result),
      stepStatusOf(record.result),
      stepEventType(record.result),
      data === undefined ? null : stringifyJson(data),
      record.component ?? null,
      record.attempt ?? null,
      record.durationMs ?? null,
      record.at ?? nowRfc3339(),
    );
    return this.#queued(open);
  }

  completeRun(runId: string, status: RunStatus, result?: FlowResult): Promise<void> | void {
    if (this.#closed) return;
    const open = this.#open.get(runId);
    const refused = this.#refused(runId, open);
    if (refused) {
      this.#open.delete(runId);
      return refused;
    }
    const at = nowRfc3339();
    const data = stringifyJson(
      result === undefined ? { status } : { status, outcome: result.outcome },
    );
    this.#q.push(
      COMPLETE,
      this.#leaseOf(runId, open),
      runId,
      status,
      result === undefined ? null : stringifyJson(result),
      at,
      data,
    );
    const committed = this.#queued(open);
    const p = committed.then(() => {
      this.#open.delete(runId);
      if (open?.lease === runId) this.#held.delete(runId);
    }, (e) => {
      this.#open.delete(runId);
      throw e;
    });
    p.catch(() => {});
    return p;
  }

  setRunStatus(
    runId: string,
    status: RunStatus,
    event?: RunEventType,
    data?: JsonValue,
  ): Promise<void> | void {
    if (this.#closed) return;
    const open = this.#open.get(runId);
    const refused = this.#refused(runId, open);
    if (refused) return refused;
    this.#q.push(
      STATUS,
      this.#leaseOf(runId, open),
      runId,
      status,
      event ?? null,
      data === undefined ? null : stringifyJson(data),
      nowRfc3339(),
    );
    return this.#queued(open);
  }

  // ---------------------------------------------------------------- run reads

  getRun(runId: string): Promise<RunRecord | undefined> {
    return this.#read("cannot read a run", async (sql) => {
      const [row] = await sql`SELECT * FROM runs WHERE id = ${runId}`;
      return row ? _run(row) : undefined;
    });
  }

  findRunByKey(runKey: string): Promise<RunRecord | undefined> {
    return this.#read("cannot read a run", async (sql) => {
      const [row] = await sql`SELECT * FROM runs WHERE run_key = ${runKey}`;
      return row ? _run(row) : undefined;
    });
  }

  listRuns(filter: RunFilter = {}): Promise<RunRecord[]> {
    const since = filter.since === undefined ? undefined : normalizeInstant(filter.since);
    return this.#read("cannot list runs", async (sql) => {
      const where: string[] = [];
      const args: (string | number | null)[] = [];
      const arg = (v: string | number | null) => {
        args.push(v);
        return `$${args.length}`;
      };
      if (filter.status !== undefined) where.push(`status = ${arg(filter.status)}`);
      if (filter.flowName !== undefined) where.push(`flow_name = ${arg(filter.flowName)}`);
      if (since !== undefined) where.push(`created_at >= ${arg(since)}::timestamptz`);
      if (filter.rootOnly) where.push("parent_run_id IS NULL");
      if (filter.parentRunId !== undefined) {
        where.push(`parent_run_id = ${arg(filter.parentRunId)}`);
      }
      const text = `SELECT * FROM runs${where.length ? ` WHERE ${where.join(" AND ")}` : ""}
        ORDER BY created_at DESC, id ASC LIMIT ${arg(filter.limit ?? null)}::bigint
        OFFSET ${arg(filter.offset ?? 0)}::bigint`;
      const rows = await sql.unsafe(text, args);
      return rows.map(_run);
    });
  }

  getStepResults(runId: string): Promise<StepResultRecord[]> {
    return this.#read("cannot read step results", async (sql) => {
      const rows = await sql`
        SELECT step_index, step_id, result FROM step_results WHERE run_id = ${runId}
        ORDER BY step_index`;
      return rows.map((r) => ({
        stepIndex: Number(r.step_index),
        stepId: r.step_id as string,
        result: parseJson(r.result as string) as unknown as FlowResult,
      }));
    });
  }

  getStepInfo(runId: string): Promise<StepInfoRecord[]> {
    return this.#read("cannot read step statuses", async (sql) => {
      const rows = await sql`
        SELECT step_index, step_id, component, status, attempt, created_at, updated_at,
          duration_ms FROM step_info WHERE run_id = ${runId} ORDER BY step_index`;
      return rows.map((r) => {
        const s: StepInfoRecord = {
          stepIndex: Number(r.step_index),
          stepId: r.step_id as string,
          component: r.component as string,
          status: r.status as StepStatus,
          attempt: Number(r.attempt),
          createdAt: time(r.created_at as Date),
          updatedAt: time(r.updated_at as Date),
        };
        if (r.duration_ms !== null) s.durationMs = Number(r.duration_ms);
        return s;
      });
    });
  }

  getEvents(filter: EventFilter): Promise<RunEventRecord[]> {
    return this.#read("cannot read the journal", async (sql) => {
      const after = filter.afterId ?? 0;
      const limit = filter.limit ?? null;
      let rows: Row[];
      if (filter.runId !== undefined) {
        // through the (root_run_id, id) index
        const root = filter.rootRunId ?? null;
        rows = await sql`
          SELECT * FROM run_events
          WHERE root_run_id = COALESCE(${root}::text, (SELECT COALESCE(root_run_id, id) FROM runs
              WHERE id = ${filter.runId}), ${filter.runId})
            AND run_id = ${filter.runId} AND id > ${after}
          ORDER BY id LIMIT ${limit}::bigint`;
      } else if (filter.rootRunId !== undefined) {
        rows = await sql`
          SELECT * FROM run_events WHERE root_run_id = ${filter.rootRunId} AND id > ${after}
          ORDER BY id LIMIT ${limit}::bigint`;
      } else {
        rows = await sql`
          SELECT * FROM run_events WHERE id > ${after} ORDER BY id LIMIT ${limit}::bigint`;
      }
      return rows.map(_event);
    });
  }

  // ---------------------------------------------------------------- deletion

  deleteRun(runId: string): Promise<boolean> {
    return this.#write("cannot delete a run", async (tx) => {
      const ids = await tree(tx, [runId]);
      if (ids.length === 0) return false;
      await this.#deleteRuns(tx, ids);
      return true;
    });
  }

  pruneRuns(options: { before: string }): Promise<number> {
    const before = normalizeInstant(options.before);
    return this.#write("cannot prune runs", async (tx) => {
      const roots = (await tx`
        SELECT id FROM runs WHERE parent_run_id IS NULL
          AND status IN ('completed', 'failed', 'cancelled')
          AND COALESCE(completed_at, created_at) < ${before}::timestamptz`).map((r) =>
        r.id as string
      );
      if (roots.length === 0) return 0;
      const ids = await tree(tx, roots);
      await this.#deleteRuns(tx, ids);
      await tx`DELETE FROM batches b WHERE NOT EXISTS (
        SELECT 1 FROM batch_runs br WHERE br.batch_id = b.id)`;
      return ids.length;
    });
  }

  async #deleteRuns(tx: Sql, ids: string[]): Promise<void> {
    // events through their (root_run_id, id) index
    await tx`
      DELETE FROM run_events WHERE root_run_id IN (
        SELECT DISTINCT COALESCE(root_run_id, id) FROM runs WHERE id = ANY(${ids}::text[]))
      AND run_id = ANY(${ids}::text[])`;
    await tx`DELETE FROM step_results WHERE run_id = ANY(${ids}::text[])`;
    await tx`DELETE FROM step_info WHERE run_id = ANY(${ids}::text[])`;
    await tx`DELETE FROM signals WHERE run_id = ANY(${ids}::text[])`;
    await tx`DELETE FROM batch_runs WHERE run_id = ANY(${ids}::text[])`;
    await tx`DELETE FROM runs WHERE id = ANY(${ids}::text[])`;
    for (const id of ids) {
      this.#open.delete(id);
      this.#held.delete(id);
    }
  }

  /** Runs a write transaction after the queued writes; resolves once committed. */
  async #write<T>(what: string, fn: (tx: Sql) => Promise<T>): Promise<T> {
    if (this.#closed) throw new StoreError("the state store is closed", this.database);
    await this.#settled();
    try {
      return await this.#sql.begin((tx) => fn(tx as unknown as Sql)) as T;
    } catch (e) {
      throw this.#error(what, e);
    }
  }

  // ---------------------------------------------------------------- signals

  putSignal(signal: { runId: string; name: string; data: JsonValue }): Promise<SignalRecord> {
    const at = nowRfc3339();
    const data = stringifyJson(signal.data);
    return this.#read("cannot store the signal", async (sql) => {
      const [row] = await sql`
        WITH s AS (
          INSERT INTO signals(run_id, name, data, created_at)
          VALUES (${signal.runId}, ${signal.name}, ${data}, ${at}) RETURNING id
        ), e AS (
          INSERT INTO run_events(run_id, root_run_id, type, data, at)
          SELECT ${signal.runId}, COALESCE((SELECT COALESCE(root_run_id, id) FROM runs
              WHERE id = ${signal.runId}), ${signal.runId}), 'signal_received',
            '{"name":' || to_json(${signal.name}::text)::text || ',"signalId":' || s.id || '}',
            ${at}
          FROM s
        )
        SELECT id FROM s`;
      return {
        id: Number(row.id),
        runId: signal.runId,
        name: signal.name,
        data: signal.data,
        createdAt: at,
      };
    });
  }

  consumeSignal(
    runId: string,
    name: string,
    consumer: string,
  ): Promise<SignalRecord | undefined> {
    const at = nowRfc3339();
    return this.#read("cannot take the signal", async (sql) => {
      // the one this consumer took before, else the oldest pending one (two consumers at once
      // never take the same: SKIP LOCKED)
      const [row] = await sql`
        WITH mine AS (
          SELECT * FROM signals WHERE run_id = ${runId} AND name = ${name}
            AND consumed_by = ${consumer} ORDER BY id LIMIT 1
        ), taken AS (
          UPDATE signals SET consumed_at = ${at}, consumed_by = ${consumer}
          WHERE id = (SELECT id FROM signals WHERE run_id = ${runId} AND name = ${name}
              AND consumed_at IS NULL AND NOT EXISTS (SELECT 1 FROM mine)
            ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
          RETURNING *
        )
        SELECT * FROM mine UNION ALL SELECT * FROM taken`;
      return row ? _signal(row) : undefined;
    });
  }

  getSignals(runId: string): Promise<SignalRecord[]> {
    return this.#read("cannot read signals", async (sql) => {
      const rows = await sql`SELECT * FROM signals WHERE run_id = ${runId} ORDER BY id`;
      return rows.map(_signal);
    });
  }

  // ---------------------------------------------------------------- claims and leases

  claimRun(runId: string): Promise<ClaimResult> {
    this.#ensureEngine();
    const me = this.engineId;
    const ttl = this.leaseTtlMs;
    return this.#read("cannot claim the run", async (sql): Promise<ClaimResult> => {
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
        this.#held.set(runId, epoch);
        this.#lost.delete(runId);
        this.#open.set(runId, { root: row.root as string, lease: runId });
        return { claimed: true, leaseEpoch: epoch };
      }
      const [cur] = await sql`
        SELECT r.owner_id, e.* FROM runs r LEFT JOIN engines e ON e.id = r.owner_id
        WHERE r.id = ${runId}`;
      if (!cur) return { claimed: false, reason: "unknown" };
      return {
        claimed: false,
        reason: "owned",
        owner: cur.id ? _engine(cur) : undefined,
      };
    });
  }

  claimRuns(options: ClaimOptions): Promise<ClaimedRun[]> {
    this.#ensureEngine();
    const me = this.engineId;
    const limit = Math.max(0, Math.floor(options.limit));
    const ttl = this.leaseTtlMs;
    return this.#read("cannot claim runs", async (sql) => {
      if (limit === 0) return [];
      // One statement: the oldest claimable runs, skipping those another engine is claiming
      // or committing to right now, become ours with a new epoch and lease, and are journaled.
      const rows = await sql`
        WITH picked AS (
          SELECT id, status AS prev_status FROM runs
          WHERE status = 'queued'
            OR (status IN ('running', 'paused') AND lease_expires_at < now())
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
        const run = _run(row);
        const epoch = run.leaseEpoch ?? 1;
        this.#held.set(run.runId, epoch);
        this.#lost.delete(run.runId);
        this.#open.set(run.runId, { root: run.rootRunId ?? run.runId, lease: run.runId });
        return { run, leaseEpoch: epoch, resumed: row.prev_status !== "queued" };
      });
    });
  }

  async renewLeases(): Promise<LeaseRenewal> {
    if (this.#closed) return { renewed: [], lost: [] };
    const held = [...this.#held];
    const pending = new Set([...this.#newLeases, ...this.#inFlightLeases]);
    const ids = held.map(([id]) => id);
    const epochs = held.map(([, e]) => e);
    const me = this.engineId;
    const ttl = this.leaseTtlMs;
    let rows: Row[];
    try {
      if (this.#engine === "committed") {
        const e = this.#engineValues(null);
        rows = await this.#sql`
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
        rows = ids.length === 0 ? [] : await this.#sql`
          UPDATE runs r SET lease_expires_at = CASE WHEN r.lease_expires_at IS NOT NULL
              THEN now() + ${ttl} * interval '1 millisecond' END
          FROM unnest(${ids}::text[], ${epochs}::int[]) AS h(id, epoch)
          WHERE r.id = h.id AND r.owner_id = ${me} AND r.lease_epoch = h.epoch
          RETURNING r.id`;
      }
    } catch (e) {
      throw this.#error("cannot renew leases", e);
    }
    const renewed = new Set(rows.map((r) => r.id as string));
    // leases whose run's creation was not committed when the renewal started are not lost
    const lost = ids.filter((id) => !renewed.has(id) && this.#held.has(id) && !pending.has(id));
    if (lost.length > 0) this.#loseLeases(lost, "another engine took the run over");
    return { renewed: [...renewed], lost };
  }

  async releaseRuns(runIds?: string[]): Promise<string[]> {
    if (this.#closed) return [];
    const ids = runIds ?? [...this.#held.keys()];
    if (ids.length === 0) return [];
    await this.#settled();
    let rows: Row[];
    try {
      rows = await this.#sql`
        UPDATE runs SET lease_expires_at = now(), updated_at = now()
        WHERE id = ANY(${ids}::text[]) AND owner_id = ${this.engineId}
          AND status IN ('running', 'paused') AND lease_expires_at IS NOT NULL
        RETURNING id`;
      if (rows.length > 0) await this.#sql`SELECT pg_notify(${QUEUE_CHANNEL}, '')`;
    } catch (e) {
      throw this.#error("cannot release runs", e);
    }
    const released = rows.map((r) => r.id as string);
    for (const id of released) {
      this.#markLost(
        id,
        new StoreError(
          `cannot store run state in PostgreSQL database '${this.database}': this engine ` +
            `released run ${id}; its writes to it are refused`,
          this.database,
        ),
      );
      for (const [runId, r] of this.#open) if (r.lease === id) this.#open.delete(runId);
    }
    return released;
  }

  /**
   * Calls `onLost(runIds)` with the runs whose lease this engine loses from now on (another
   * engine took them over: their writes are refused; stop executing them), as the
   * `onLeaseLost` option of {@linkcode PostgresStateStore.open}. Returns the unsubscribe.
   */
  watchLeases(onLost: (runIds: string[]) => void): () => void {
    const fn = (ids: string[]) => onLost(ids);
    this.#leaseListeners.add(fn);
    return () => {
      this.#leaseListeners.delete(fn);
    };
  }

  /** The run ids this engine holds a lease on now. */
  heldRuns(): string[] {
    return [...this.#held.keys()];
  }

  /**
   * The runs among `runIds` that exist, in one query (a service waiting for runs other engines
   * execute polls them).
   */
  getRuns(runIds: string[]): Promise<RunRecord[]> {
    return this.#read("cannot read runs", async (sql) => {
      if (runIds.length === 0) return [];
      const rows = await sql`SELECT * FROM runs WHERE id = ANY(${runIds}::text[])`;
      return rows.map(_run);
    });
  }

  /**
   * The status of each of `runIds` that exists, with the result of those finished (a service
   * waiting for runs other engines execute polls this: one query, results only when finished).
   */
  runStatuses(
    runIds: string[],
  ): Promise<{ runId: string; status: RunStatus; result?: FlowResult }[]> {
    return this.#read("cannot read runs", async (sql) => {
      if (runIds.length === 0) return [];
      const rows = await sql`
        SELECT id, status, CASE WHEN status IN ('completed', 'failed', 'cancelled')
          THEN result_json END AS result
        FROM runs WHERE id = ANY(${runIds}::text[])`;
      return rows.map((r) => {
        const o: { runId: string; status: RunStatus; result?: FlowResult } = {
          runId: r.id as string,
          status: r.status as RunStatus,
        };
        if (r.result !== null) o.result = parseJson(r.result as string) as unknown as FlowResult;
        return o;
      });
    });
  }

  /**
   * Cancels a run that is still `queued` (no engine claimed it), atomically with the claimers:
   * status `cancelled` with `result`, and a `run_completed` event. False when the run is not
   * queued (claimed meanwhile, finished, or unknown). Committed before the promise resolves.
   */
  cancelQueued(runId: string, result: FlowResult): Promise<boolean> {
    const text = stringifyJson(result);
    const data = stringifyJson({ status: "cancelled", outcome: result.outcome });
    return this.#read("cannot cancel the run", async (sql) => {
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
    if (this.#closed) throw new StoreError("the state store is closed", this.database);
    await this.#settled();
    const e = this.#engineValues(info.url ?? null);
    let row: Row;
    try {
      [row] = await this.#sql`
        INSERT INTO engines(id, host, pid, pid_start, pid_ns, url, started_at, heartbeat_at)
        VALUES (${e.id}, ${e.host}, ${e.pid}, ${e.pid_start}, ${e.pid_ns}, ${e.url}, now(), now())
        ON CONFLICT (id) DO UPDATE SET url = COALESCE(excluded.url, engines.url),
          heartbeat_at = now()
        RETURNING *`;
    } catch (err) {
      throw this.#error("cannot register the engine", err);
    }
    this.#engine = "committed";
    this.#startHeartbeat();
    return _engine(row);
  }

  listEngines(): Promise<EngineRecord[]> {
    return this.#read("cannot list engines", async (sql) => {
      const rows = await sql`SELECT * FROM engines ORDER BY started_at, id`;
      return rows.map(_engine);
    });
  }

  watchQueue(onWork: () => void): () => void {
    const fn = () => onWork();
    this.#watchers.add(fn);
    if (this.#listening === undefined && !this.#closed) {
      this.#listening = this.#sql.listen(QUEUE_CHANNEL, () => this.#wake()).then(
        (l) => l,
        (e) => {
          if (!this.#closed) {
            log.warn(this.#error("cannot LISTEN for queued runs (polling only)", e).message);
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

  #wake(): void {
    for (const w of this.#watchers) {
      try {
        w();
      } catch {
        // a watcher's failure is its own
      }
    }
  }

  // ---------------------------------------------------------------- batches

  createBatch(batch: BatchRecord): Promise<void> | void {
    if (this.#closed) return;
    this.#q.push(BATCH, null, { ...batch });
    return this.#queued(undefined);
  }

  addBatchRun(batchId: string, runId: string, index: number): Promise<void> | void {
    if (this.#closed) return;
    this.#q.push(BATCH_RUN, null, batchId, runId, index);
    return this.#queued(undefined);
  }

  getBatch(batchId: string): Promise<BatchRecord | undefined> {
    return this.#read("cannot read a batch", async (sql) => {
      const [row] = await sql`SELECT * FROM batches WHERE id = ${batchId}`;
      return row ? _batch(row) : undefined;
    });
  }

  /** Batches, newest first (the service's `GET /api/v1/batches`). */
  listBatches(
    filter: { status?: string; flowName?: string; limit?: number; offset?: number } = {},
  ): Promise<BatchRecord[]> {
    return this.#read("cannot list batches", async (sql) => {
      const rows = await sql`
        SELECT * FROM batches
        WHERE (${filter.status ?? null}::text IS NULL OR status = ${filter.status ?? null})
          AND (${filter.flowName ?? null}::text IS NULL OR flow_name = ${filter.flowName ?? null})
        ORDER BY created_at DESC, id DESC
        LIMIT ${filter.limit ?? null}::bigint OFFSET ${filter.offset ?? 0}::bigint`;
      return rows.map(_batch);
    });
  }

  getBatchRuns(batchId: string): Promise<{ runId: string; index: number }[]> {
    return this.#read("cannot read a batch", async (sql) => {
      const rows = await sql`
        SELECT run_id, batch_input_index FROM batch_runs WHERE batch_id = ${batchId}
        ORDER BY batch_input_index`;
      return rows.map((r) => ({ runId: r.run_id as string, index: Number(r.batch_input_index) }));
    });
  }

  // ---------------------------------------------------------------- lifecycle

  flush(): Promise<void> {
    return this.#gc.soon();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    await this.#gc.drain();
    if (this.#heartbeat !== undefined) clearInterval(this.#heartbeat);
    this.#heartbeat = undefined;
    // Runs this engine started, did not finish and still holds: its engine is going away.
    const left = [...this.#open].filter(([, r]) => r.lease === null || !this.#lost.has(r.lease));
    if (left.length > 0 || this.#engine === "committed") {
      try {
        await this.#sql.begin(async (tx) => {
          const at = nowRfc3339();
          for (const [runId, open] of left) {
            const reason = "the engine closed its state store before the run finished";
            const result = stringifyJson(interruptedResult(open.root ?? runId, reason));
            const [row] = await tx`
              UPDATE runs SET status = 'failed', result_json = ${result}, completed_at = ${at},
                updated_at = ${at}, lease_expires_at = NULL
              WHERE id = ${runId} AND status = 'running' AND owner_id = ${this.engineId}
              RETURNING COALESCE(root_run_id, id) AS root`;
            if (!row) continue;
            await tx`UPDATE step_info SET status = 'failed', updated_at = ${at}
                     WHERE run_id = ${runId} AND status = 'running'`;
            await tx`
              INSERT INTO run_events(run_id, root_run_id, type, data, at)
              VALUES (${runId}, ${row.root as string}, 'run_interrupted',
                ${stringifyJson({ reason })}, ${at})`;
          }
          await tx`DELETE FROM engines WHERE id = ${this.engineId}`;
        });
      } catch (e) {
        log.error(this.#error("cannot record the end of this engine", e).message);
      }
    }
    this.#open.clear();
    this.#held.clear();
    this.#closed = true;
    this.#watchers.clear();
    const l = this.#listening;
    this.#listening = undefined;
    await l?.then((x) => x?.unlisten()).catch(() => {});
    await this.#sql.end({ timeout: 5 }).catch(() => {});
  }
}

/**
 * The client's defaults for the options the URL does not set. Given explicitly, the client does
 * not look for them in `PG*` environment variables (each read needs `--allow-env` under scoped
 * permissions); a URL's query (`?sslmode=require`) still wins.
 */
function clientDefaults(url: string): Record<string, unknown> {
  const query = new URL(url).searchParams;
  const defaults: Record<string, unknown> = {
    ssl: false,
    sslnegotiation: null,
    idle_timeout: null,
    max_lifetime: () => 60 * (30 + Math.random() * 30),
    max_pipeline: 100,
    backoff: (retries: number) => (0.5 + Math.random() / 2) * Math.min(3 ** retries / 100, 20),
    keep_alive: 60,
    prepare: true,
    debug: false,
    fetch_types: true,
    publications: "alltables",
    target_session_attrs: null,
  };
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(defaults)) {
    if (query.has(k) || (k === "ssl" && query.has("sslmode"))) continue;
    out[k] = v;
  }
  return out;
}

/**
 * The step rows of a commit as one JSON document: `{"r": [run ids], "s": [[run, index, stepId,
 * result, at]], "i": [[run, index, stepId, component, status, createdAt, updatedAt, attempt,
 * durationMs]], "e": [[run, root, type, index, stepId, attempt, data, at]]}`, runs (and roots)
 * given by their position in "r".
 */
function stepDocument(b: Batch): string {
  const ids = new Map<string, number>();
  const list: string[] = [];
  const ref = (id: string | null): string => {
    if (id === null) return "null";
    let k = ids.get(id);
    if (k === undefined) {
      ids.set(id, k = list.length);
      list.push(id);
    }
    return String(k);
  };
  let s = "";
  const r = b.res;
  for (let i = 0; i < r[0].length; i++) {
    s += `${i === 0 ? "" : ","}[${ref(r[0][i])},${r[1][i]},${JSON.stringify(r[2][i])},${
      JSON.stringify(r[3][i])
    },${js(r[4][i])}]`;
  }
  let f = "";
  const n = b.info;
  for (let i = 0; i < n[0].length; i++) {
    f += `${i === 0 ? "" : ","}[${ref(n[0][i])},${n[1][i]},${JSON.stringify(n[2][i])},${
      JSON.stringify(n[3][i])
    },"${n[4][i]}",${js(n[5][i])},${js(n[6][i])},${n[7][i]},${n[8][i] ?? "null"}]`;
  }
  let e = "";
  const v = b.ev;
  for (let i = 0; i < v[0].length; i++) {
    e += `${i === 0 ? "" : ","}[${ref(v[0][i])},${ref(v[1][i])},"${v[2][i]}",${v[3][i] ?? "null"},${
      js(v[4][i])
    },${v[5][i] ?? "null"},${js(v[6][i])},${js(v[7][i])}]`;
  }
  return `{"r":${JSON.stringify(list)},"s":[${s}],"i":[${f}],"e":[${e}]}`;
}

/** A string (or null) as JSON. */
function js(v: string | null): string {
  return v === null ? "null" : JSON.stringify(v);
}

/**
 * Columns as one JSON document of rows (`[[c0, c1, ...], ...]`): strings quoted, numbers as they
 * are, nulls as `null`.
 */
function jsonRows(cols: readonly (readonly unknown[])[]): string {
  const n = cols[0].length;
  const w = cols.length;
  let doc = "[";
  for (let i = 0; i < n; i++) {
    doc += i === 0 ? "[" : ",[";
    for (let k = 0; k < w; k++) {
      if (k > 0) doc += ",";
      const v = cols[k][i];
      doc += v === null || v === undefined
        ? "null"
        : typeof v === "string"
        ? JSON.stringify(v)
        : String(v);
    }
    doc += "]";
  }
  return doc + "]";
}

/** The runs whose lease a commit found lost (`stepflow_fence`), or undefined. */
function fencedRuns(e: unknown): string[] | undefined {
  const err = e as { code?: string; detail?: string };
  if (err?.code !== FENCE_SQLSTATE || typeof err.detail !== "string") return undefined;
  return err.detail.split(",").filter((x) => x !== "");
}

/** The queue without the entries written under the leases `lost`. */
function dropLeases(q: unknown[], lost: Set<string>): unknown[] {
  const out: unknown[] = [];
  for (let i = 0; i < q.length;) {
    const n = LENGTH[q[i] as number];
    const lease = q[i + 1] as string | null;
    if (lease === null || !lost.has(lease)) { for (let k = 0; k < n; k++) out.push(q[i + k]); }
    i += n;
  }
  return out;
}

/** `roots` that exist and every run nested under them. */
async function tree(tx: Sql, roots: string[]): Promise<string[]> {
  const rows = await tx`
    WITH RECURSIVE t(id) AS (
      SELECT id FROM runs WHERE id = ANY(${roots}::text[])
      UNION SELECT r.id FROM runs r JOIN t ON r.parent_run_id = t.id)
    SELECT id FROM t`;
  return rows.map((r) => r.id as string);
}

// The client's rows, with `timestamptz` columns as `Date`s, as records.
const _run = (r: Row) => runFromRow(r as unknown as RunRow<Date>);
const _event = (r: Row) => eventFromRow(r as unknown as EventRow<Date>);
const _signal = (r: Row) => signalFromRow(r as unknown as SignalRow<Date>);
const _engine = (r: Row) => engineFromRow(r as unknown as EngineRow<Date>);
const _batch = (r: Row) => batchFromRow(r as unknown as BatchRow<Date>);
