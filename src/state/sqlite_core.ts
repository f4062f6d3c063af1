/**
 * The connection-level part of the SQLite store (src/state/sqlite.ts): the database handle and
 * what every part of the store shares — prepared statements, `BEGIN IMMEDIATE` transactions with
 * rows buffered for multi-row INSERTs, the journal, the runs this engine has open, errors naming
 * the database, and the liveness of engines.
 * @module
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import { describeError } from "../errors.ts";
import { sqliteHint } from "./sqlite_hint.ts";
import { MIGRATIONS, REQUIRED_TABLES, schemaBehindError } from "./schema.ts";
import { isOwnerAlive } from "./liveness.ts";
import { engineFromRow, type EngineRow } from "./rows.ts";
import { type EngineRecord, nowRfc3339, StoreError } from "./store.ts";
import { StoreHealth, UnstoredEnds } from "./store_health.ts";

/** Options of `SqliteStateStore.open` (src/state/sqlite.ts). */
export interface SqliteOpenOptions {
  /** Create or upgrade the tables when needed. @default true */
  autoMigrate?: boolean;
  /** Directory relative database paths resolve against. @default Deno.cwd() */
  workingDirectory?: string;
  /** How long a write waits for another process's transaction, ms. @default 10000 */
  busyTimeoutMs?: number;
  /** How often this engine's heartbeat is written while it has runs, ms. @default 10000 */
  heartbeatMs?: number;
  /**
   * An engine whose heartbeat is older than this is dead, ms (used when its process cannot be
   * checked directly: another host or container, or no `/proc`). @default 60000
   */
  staleAfterMs?: number;
  /**
   * Who runs WAL checkpoints: `worker` (a worker thread with its own connection, so the event
   * loop never waits for one: src/state/sqlite_checkpoint.ts) or `auto` (SQLite's automatic
   * checkpoint on this connection, every 10,000 pages). @default "worker"
   */
  checkpoint?: "worker" | "auto";
}

/**
 * Sets the connection's pragmas: WAL, `synchronous=NORMAL`, who checkpoints, a 16 MB page cache.
 */
export function configureConnection(
  db: DatabaseSync,
  path: string,
  readOnly: boolean,
  checkpoint: "worker" | "auto",
): void {
  if (path !== ":memory:" && !readOnly) {
    db.exec("PRAGMA journal_mode=WAL");
    db.exec("PRAGMA synchronous=NORMAL");
    // Checkpoints in a worker thread (src/state/sqlite_checkpoint.ts), or with `auto` every
    // 10,000 pages (40 MB of WAL) instead of 1,000: writing a step costs a third less. The
    // WAL file is cut back to 64 MB when it starts over.
    db.exec(`PRAGMA wal_autocheckpoint=${checkpoint === "auto" ? 10000 : 0}`);
    db.exec("PRAGMA journal_size_limit=67108864");
  }
  db.exec("PRAGMA cache_size=-16000");
}

/** Most rows in one INSERT statement (a power of two; SQLite allows 32766 parameters). */
const ROWS_PER_STATEMENT = 32;

/** Rows of one table waiting to be written by a multi-row INSERT. */
export class RowBuffer {
  /** The rows' values, flat. */
  args: (string | number | null)[] = [];
  /** Prepared statements by number of rows. */
  stmts: StatementSync[] = [];
  constructor(
    readonly width: number,
    readonly head: string,
    readonly tuple: string,
    readonly tail: string,
  ) {}
}

/** An unfinished run this store wrote: its root, and the first write failure it suffered. */
export interface OpenRun {
  root: string;
  error?: StoreError;
}

/** The database of one SQLite store and the state its parts share. */
export class SqliteCore {
  readonly stmts = new Map<string, StatementSync>();
  /** Unfinished runs this engine wrote or claimed. */
  readonly open = new Map<string, OpenRun>();
  /** Root runs of runs read from the database (a cache). */
  readonly roots = new Map<string, string>();
  /** Rows buffered by a transaction, written before it commits. */
  readonly results = new RowBuffer(
    5,
    "INSERT OR REPLACE INTO step_results(run_id, step_index, step_id, result, created_at)",
    "(?, ?, ?, ?, ?)",
    "",
  );
  readonly infos = new RowBuffer(
    9,
    `INSERT INTO step_info(run_id, step_index, step_id, component, status, created_at,
       updated_at, attempt, duration_ms)`,
    "(?, ?, ?, ?, ?, ?, ?, ?, ?)",
    // a start sets the attempt; a result keeps the highest, and the component when it has none
    `ON CONFLICT(run_id, step_index) DO UPDATE SET status = excluded.status,
       updated_at = excluded.updated_at, duration_ms = excluded.duration_ms,
       attempt = CASE WHEN excluded.status = 'running' THEN excluded.attempt
         ELSE max(step_info.attempt, excluded.attempt) END,
       component = CASE WHEN excluded.component = '' THEN step_info.component
         ELSE excluded.component END`,
  );
  readonly events = new RowBuffer(
    8,
    "INSERT INTO run_events(run_id, root_run_id, type, step_index, step_id, attempt, data, at)",
    "(?, ?, ?, ?, ?, ?, ?, ?)",
    "",
  );
  /** Set once the store is closed. */
  closed = false;
  /** Whether commits succeed (the service's `/health`). */
  readonly health = new StoreHealth();
  /** Ends of runs of this engine that could not be stored, written once commits succeed. */
  readonly ends = new UnstoredEnds();
  /**
   * The rows (`SQL_RUN`'s arguments) of runs of this engine whose first row was in a commit that
   * failed and is not in the database: written, ended, with their kept end
   * (src/state/sqlite_ownership.ts `writeUnstoredEnds`) or by their `completeRun`.
   */
  readonly rowless = new Map<string, unknown[]>();

  constructor(
    readonly db: DatabaseSync,
    /** The database file (`:memory:` for an in-memory database). */
    readonly path: string,
    readonly readOnly: boolean,
    readonly engineId: string,
    /** How long a write waits for another process's transaction, ms. */
    readonly busyMs: number,
    /** An engine whose heartbeat is older than this is dead, ms. */
    readonly staleAfterMs: number,
  ) {}

  /** A prepared statement (cached by its text). */
  stmt(sql: string): StatementSync {
    let s = this.stmts.get(sql);
    if (s === undefined) this.stmts.set(sql, s = this.db.prepare(sql));
    return s;
  }

  /** Runs `fn` in a `BEGIN IMMEDIATE` transaction (rolled back when it throws). */
  transaction<T>(fn: () => T): T {
    this.stmt("BEGIN IMMEDIATE").run();
    try {
      const r = fn();
      this.#writeRows(this.results);
      this.#writeRows(this.infos);
      this.#writeRows(this.events);
      this.stmt("COMMIT").run();
      return r;
    } catch (e) {
      this.results.args.length = 0;
      this.infos.args.length = 0;
      this.events.args.length = 0;
      try {
        this.stmt("ROLLBACK").run();
      } catch {
        // no transaction open (SQLite rolled it back itself)
      }
      throw e;
    }
  }

  /**
   * Runs a write transaction now: resolves with its value once committed. Its success or failure
   * is the store's health ({@linkcode health}).
   */
  writeNow<T>(what: string, fn: () => T): Promise<T> {
    if (this.closed) return Promise.reject(new StoreError("the state store is closed", this.path));
    let value: T;
    try {
      value = this.transaction(fn);
    } catch (e) {
      const err = this.error(what, e);
      this.health.failed(err);
      return Promise.reject(err);
    }
    if (this.health.faulted) this.health.succeeded();
    return Promise.resolve(value);
  }

  /** A StoreError naming the database and the cause. */
  error(what: string, e: unknown): StoreError {
    if (e instanceof StoreError) return e;
    const cause = describeError(e);
    const hint = sqliteHint(cause, this.busyMs);
    return new StoreError(
      `${what} in SQLite database '${this.path}': ${cause}${hint}`,
      this.path,
      { cause: e },
    );
  }

  /** Appends a journal event; written with the transaction's other rows, in order. */
  event(
    runId: string,
    root: string,
    type: string,
    stepIndex: number | null,
    stepId: string | null,
    attempt: number | null,
    data: string | null,
    at: string,
  ): void {
    this.events.args.push(runId, root, type, stepIndex, stepId, attempt, data, at);
  }

  /**
   * Writes the buffered rows, many per statement (each statement call costs 2-4 µs here whatever
   * it does, about as much as a row), in the order they were buffered.
   */
  #writeRows(rows: RowBuffer): void {
    const args = rows.args;
    if (args.length === 0) return;
    const w = rows.width;
    let off = 0;
    let left = args.length / w;
    while (left > 0) {
      let k = ROWS_PER_STATEMENT;
      while (k > left) k >>= 1;
      let stmt = rows.stmts[k];
      if (stmt === undefined) {
        stmt = rows.stmts[k] = this.db.prepare(
          `${rows.head} VALUES ${new Array(k).fill(rows.tuple).join(", ")} ${rows.tail}`,
        );
      }
      stmt.run(...args.slice(off, off + k * w));
      off += k * w;
      left -= k;
    }
    args.length = 0;
  }

  /** The root run of `runId` (inside a commit: the run's row may be in the same batch). */
  rootOf(runId: string): string {
    const open = this.open.get(runId);
    if (open) return open.root;
    let root = this.roots.get(runId);
    if (root === undefined) {
      const row = this.stmt("SELECT COALESCE(root_run_id, id) AS root FROM runs WHERE id = ?")
        .get(runId) as { root: string } | undefined;
      root = row?.root ?? runId;
      if (this.roots.size > 10_000) this.roots.clear();
      this.roots.set(runId, root);
    }
    return root;
  }

  /** The `engines` row of `id`. */
  engineRecord(id: string): EngineRecord | undefined {
    const row = this.stmt("SELECT * FROM engines WHERE id = ?").get(id) as
      | EngineRow
      | undefined;
    return row ? engineFromRow(row) : undefined;
  }

  /** Whether engine `engineId` is alive (this one: until it closes). */
  isAlive(engineId: string | null, nowMs: number): boolean {
    if (engineId === null) return false;
    if (engineId === this.engineId) return !this.closed;
    const row = this.stmt("SELECT * FROM engines WHERE id = ?").get(engineId) as
      | EngineRow
      | undefined;
    if (!row) return false;
    return isOwnerAlive(
      { pid: row.pid, pidStart: row.pid_start, pidNs: row.pid_ns, heartbeatAt: row.heartbeat_at },
      this.staleAfterMs,
      nowMs,
    );
  }

  // ---------------------------------------------------------------- schema

  /** Creates or upgrades the tables (one transaction; a no-op when up to date). */
  migrate(): void {
    const db = this.db;
    const has = (t: string) =>
      db.prepare("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?").get(t) !== undefined;
    if (has("_stepflow_migrations")) {
      const done = new Set(
        (db.prepare("SELECT name FROM _stepflow_migrations").all() as { name: string }[])
          .map((r) => r.name),
      );
      if (MIGRATIONS.every((m) => done.has(m.name))) return;
    }
    this.transaction(() => {
      db.exec(MIGRATIONS[0].sql); // creates _stepflow_migrations, and 0.8's tables when missing
      const done = new Set(
        (db.prepare("SELECT name FROM _stepflow_migrations").all() as { name: string }[])
          .map((r) => r.name),
      );
      for (const m of MIGRATIONS) {
        if (done.has(m.name) && m !== MIGRATIONS[0]) continue;
        for (const [table, column, type] of m.columns ?? []) {
          const cols = db.prepare(`PRAGMA table_info(${table})`).all() as { name: string }[];
          if (!cols.some((c) => c.name === column)) {
            db.exec(`ALTER TABLE ${table} ADD COLUMN ${column} ${type}`);
          }
        }
        db.exec(m.sql);
        db.prepare("INSERT OR IGNORE INTO _stepflow_migrations(name, applied_at) VALUES (?, ?)")
          .run(m.name, nowRfc3339());
      }
    });
  }

  /**
   * Checks that the tables exist (without `autoMigrate`), and, unless the database is opened
   * read-only, that every migration was applied (runs could not be stored otherwise).
   * @throws {Error} naming the missing tables or migrations and what to do.
   */
  checkSchema(): void {
    const missing = REQUIRED_TABLES.filter((t) =>
      this.db.prepare("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?").get(t) ===
        undefined
    );
    if (missing.length === REQUIRED_TABLES.length) {
      throw new Error("SQLite database has no stepflow tables; set autoMigrate: true");
    }
    if (missing.length > 0) {
      throw new Error(
        `SQLite database lacks the tables ${missing.join(", ")} (written by stepflow 0.8 or an ` +
          "older version): open it once with autoMigrate: true (and not mode=ro) to add them",
      );
    }
    if (this.readOnly) return; // reading a database as an older stepflow left it works
    const recorded = this.db.prepare(
      "SELECT 1 FROM sqlite_master WHERE type='table' AND name='_stepflow_migrations'",
    ).get() !== undefined;
    const done = new Set(
      recorded
        ? (this.db.prepare("SELECT name FROM _stepflow_migrations").all() as { name: string }[])
          .map((r) => r.name)
        : [],
    );
    const behind = MIGRATIONS.map((m) => m.name).filter((n) => !done.has(n));
    if (behind.length > 0) {
      throw schemaBehindError(`SQLite database '${this.path}'`, behind, true);
    }
  }
}
