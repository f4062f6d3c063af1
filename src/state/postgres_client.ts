/**
 * The PostgreSQL store's connection (src/state/postgres.ts): opening the `postgres` client
 * (loaded only here, dynamically) with defaults that read no `PG*` environment variables,
 * migrating or checking the tables, the errors that name the database (never its password), and
 * the client's rows as store records.
 * @module
 */
import type postgres from "postgres";
import { describeError } from "../errors.ts";
import { processIdentity } from "./liveness.ts";
import { MIGRATION_LOCK_KEY, PG_MIGRATIONS, PG_REQUIRED_TABLES } from "./postgres_schema.ts";
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
} from "./rows.ts";
import type { CreateRow } from "./postgres_batch.ts";
import { StoreError } from "./store.ts";
import { schemaBehindError } from "./schema.ts";
import { StoreHealth, UnstoredEnds } from "./store_health.ts";

/** The client's connection (a pool), or a transaction or reserved connection of it. */
export type Sql = postgres.Sql;
/** A row as the client returns it. */
export type Row = Record<string, unknown>;

/** What a store's parts share: its connection, its engine and its state. */
export class PgSession {
  /** This engine's id (`engines.id`, `runs.owner_id`). */
  readonly engineId: string = crypto.randomUUID();
  /** Set by `close`: writes are ignored and reads refused from then on. */
  closed = false;
  /** This engine's `engines` row: not written, queued with the next commit, or committed. */
  engine: "none" | "queued" | "committed" = "none";
  /** Whether commits succeed (the service's `/health`). */
  readonly health = new StoreHealth();
  /** Ends of runs of this engine that could not be stored, written once commits succeed. */
  readonly ends = new UnstoredEnds();
  /**
   * Top-level runs whose row (`CREATE`) went with a failed commit, by run id: kept to be written
   * whole, ended, with their end (src/state/postgres.ts `#writeEnds`).
   */
  readonly rowless = new Map<string, CreateRow>();

  constructor(
    readonly sql: Sql,
    /** The database as it may be shown: `postgres://user@host:port/db` (no password). */
    readonly database: string,
    /** How long a lease lasts without renewal, ms. */
    readonly leaseTtlMs: number,
  ) {}

  /** A StoreError naming the database (never its password) and the cause. */
  error(what: string, e: unknown): StoreError {
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

  /** The error of a read or write after `close`. */
  closedError(): StoreError {
    return new StoreError("the state store is closed", this.database);
  }

  /** This engine's `engines` row (`url` null: keep the stored one). */
  engineValues(url: string | null) {
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
}

/**
 * Opens the client's pool on `url` (checked by the caller) without connecting yet.
 * `maxConnections` and `connectTimeoutMs` as in `PostgresOpenOptions`.
 */
export async function connectPostgres(
  url: string,
  o: { maxConnections?: number; connectTimeoutMs?: number },
): Promise<Sql> {
  const { default: connect } = await import("postgres");
  return connect(url, {
    ...clientDefaults(url),
    max: o.maxConnections ?? 10,
    connect_timeout: Math.ceil((o.connectTimeoutMs ?? 10_000) / 1000),
    // "relation already exists, skipping" and the like are not for the user
    onnotice: () => {},
    connection: { application_name: "stepflow" },
  });
}

/** Applies the migrations the database lacks, under an advisory lock (once per database). */
export async function migrate(sql: Sql): Promise<void> {
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

/**
 * @throws {Error} saying which tables or migrations are missing (`autoMigrate: false`): runs
 * could not be stored.
 */
export async function checkSchema(sql: Sql, database: string): Promise<void> {
  const rows = await sql`
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
  const [{ recorded }] =
    await sql`SELECT to_regclass('_stepflow_migrations') IS NOT NULL AS recorded`;
  const done = new Set(
    recorded ? (await sql`SELECT name FROM _stepflow_migrations`).map((r) => r.name) : [],
  );
  const behind = PG_MIGRATIONS.map((m) => m.name).filter((n) => !done.has(n));
  if (behind.length > 0) {
    throw schemaBehindError(`PostgreSQL database '${database}'`, behind, false);
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

// The client's rows, with `timestamptz` columns as `Date`s, as records.
export const runOf = (r: Row) => runFromRow(r as unknown as RunRow<Date>);
export const eventOf = (r: Row) => eventFromRow(r as unknown as EventRow<Date>);
export const signalOf = (r: Row) => signalFromRow(r as unknown as SignalRow<Date>);
export const engineOf = (r: Row) => engineFromRow(r as unknown as EngineRow<Date>);
export const batchOf = (r: Row) => batchFromRow(r as unknown as BatchRow<Date>);
