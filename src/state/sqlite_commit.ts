/**
 * One group commit of the SQLite store (src/state/sqlite_writer.ts) as data, and where it runs.
 *
 * The queued writes are a flat array of operations ({@linkcode Op}); {@linkcode applyBatch}
 * commits them in one `BEGIN IMMEDIATE` transaction (first checking that this engine was not
 * declared dead: fencing), the step rows and journal events many rows per statement.
 * `node:sqlite` is synchronous, so a commit on the event loop holds every request of the process
 * for its duration; {@linkcode CommitWorker} runs the same function in a worker thread with its
 * own connection instead, and the store's commit becomes a message and its answer. The
 * durability rule is unchanged: a write's promise resolves only once the worker's COMMIT
 * returned, and commits stay in order (one in flight at a time).
 *
 * {@linkcode applyBatch} refers to nothing outside itself: the worker's code is its source text
 * (so the bundled program needs no second file).
 * @module
 */

import type { RunRow } from "./rows.ts";

/** Operation tags of the flat queue (see {@linkcode applyBatch}). */
export const OP_SQL = 0; // [OP_SQL, statement, argc, ...args]
export const OP_RESULT = 1; // [OP_RESULT, run, index, stepId, json, status, event, data, component, attempt, ms, at, root]
export const OP_START = 2; // [OP_START, run, index, stepId, component, attempt, at, root]
export const OP_EVENT = 3; // [OP_EVENT, run, root, type, index, stepId, attempt, data, at]

/** Statements of `OP_SQL`, by number (the worker gets numbers, not SQL text). */
export const SQL_ENGINE = 0;
export const SQL_HEARTBEAT = 1;
export const SQL_BLOB = 2;
export const SQL_RUN = 3;
/** Positions of `SQL_RUN`'s arguments that a run's end changes (see `applyBatch`'s SQL). */
export const RUN_ARG = { status: 3, result: 5, completedAt: 7, updatedAt: 16 } as const;
/** The columns of `SQL_RUN`, in the order of its arguments. */
export const RUN_COLUMNS = "id, flow_id, flow_name, status, input_json, result_json, " +
  "created_at, completed_at, overrides_json, parent_run_id, root_run_id, run_key, " +
  "variables_json, owner_id, lease_epoch, started_at, updated_at, debug_mode, options_json";

/** `SQL_RUN`'s arguments as a `runs` row (a run whose row is not stored, read from memory). */
export function rowOfRunArgs(a: unknown[]): RunRow {
  const names = RUN_COLUMNS.split(", ");
  const row: Record<string, unknown> = {};
  names.forEach((n, i) => row[n] = a[i]);
  return row as unknown as RunRow;
}
export const SQL_RUN_END = 4;
export const SQL_RUN_STATUS = 5;
export const SQL_BATCH = 6;
export const SQL_BATCH_RUN = 7;
export const SQL_ENGINE_URL = 8;
/**
 * A run that ended other than `completed` (cancelled, failed): its steps still `running` (a call
 * it was waiting for when it was cancelled, or abandoned when it failed) become `failed`
 * (stepflow 0.8 has no `cancelled` step status). Applied after the commit's step rows, so that a
 * start committed with the end is caught too. Arguments: `[at, runId]`.
 */
export const SQL_STEPS_END = 9;

/** What {@linkcode applyBatch} keeps between commits of one connection. */
export interface CommitCache {
  stmts: Map<string, unknown>;
  /** Size and modification time of the database file when its header was last found sound. */
  fileStamp?: string;
  /** Size of the database file at the last commit, bytes. */
  fileSize?: number;
  /**
   * The database file opened to read its header, kept open until the connection is closed
   * (then closed with {@linkcode closeCommitCache}): never closed while SQLite has the file open.
   */
  headFile?: Deno.FsFile;
}

/**
 * Commits `ops` on `db` (a `node:sqlite` DatabaseSync) in one transaction; throws (after a
 * rollback) when it failed.
 * @param fenceEngine when set, the transaction first checks that this engine's `engines` row
 *   exists, and fails with `fenceMessage` when it does not.
 * @param file the database file as opened (its path, device and inode): the commit fails when
 *   the path no longer names that file (deleted, or replaced), since what it would commit then
 *   goes to a file no one can open again (SQLite in WAL mode writes on without an error); and
 *   when the file was emptied or overwritten in place (`: > runs.db`): whenever its size or
 *   modification time changed, its 100-byte header is read, and an empty file or one whose
 *   header is not SQLite's fails the commit (SQLite wrote on into the WAL, and the next
 *   checkpoint left a malformed database while every run was answered as stored), and one cut
 *   short past its header (shorter than the pages its header counts, and smaller than at the
 *   last commit: a checkpoint under way leaves the file short for a moment too, as it writes
 *   page 1 before the pages past the file's end, but never makes it smaller). A file cut short
 *   and made whole again (zeros) by a checkpoint before the next commit is not caught; reads of
 *   its lost pages fail as a damaged database.
 */
export function applyBatch(
  // deno-lint-ignore no-explicit-any
  db: any,
  cache: CommitCache,
  ops: unknown[],
  fenceEngine: string | null,
  fenceMessage: string,
  file?: DatabaseFile | null,
): void {
  if (file) {
    let st: Deno.FileInfo | undefined;
    try {
      st = Deno.statSync(file.path);
    } catch {
      // gone
    }
    if (st === undefined || st.dev !== file.dev || st.ino !== file.ino) {
      throw new Error(
        `the database file was ${st === undefined ? "deleted" : "replaced"} while this ` +
          "process had it open; nothing more can be stored in it: restart the process (it opens " +
          "the file at that path again)",
      );
    }
    // (inline, no helpers: this function's source also runs alone in the commit worker)
    const stamp = `${st.size}:${st.mtime?.getTime()}`;
    // smaller than at the last commit (or at the store's open): only a cut does that
    const shrunk = st.size < (cache.fileSize ?? file.size ?? 0);
    cache.fileSize = st.size;
    if (cache.fileStamp !== stamp) {
      let damage: string | undefined;
      if (st.size < 100) {
        damage = st.size === 0 ? "it is empty" : `it is ${st.size} bytes, shorter than its header`;
      } else {
        // One descriptor kept open for the connection's life (closed after it): closing a
        // descriptor of the database file drops every POSIX lock this process holds on it,
        // SQLite's shared lock included, after which another process closing its last
        // connection takes the file for its own and deletes the WAL this one writes into.
        const head = new Uint8Array(100);
        let got = 0;
        const f = cache.headFile ??= Deno.openSync(file.path, { read: true });
        f.seekSync(0, Deno.SeekMode.Start);
        while (got < 100) {
          const n = f.readSync(head.subarray(got));
          if (n === null || n === 0) break;
          got += n;
        }
        const magic = "SQLite format 3\0";
        if (got < 100 || [...magic].some((c, i) => head[i] !== c.charCodeAt(0))) {
          damage = "its header is no longer SQLite's";
        } else {
          // Cut short past its header: shorter than the size its header gives (pages × page
          // size; valid when the change counter at 24 equals the one at 92), and smaller than
          // at the last commit. A checkpoint in progress leaves the file short for a moment
          // too (it writes page 1, with the new size, before the pages past the file's end),
          // but it only ever makes the file larger, or at its end exactly the header's size:
          // a short file that did not shrink is not judged, and looked at again at the next
          // commit (its stamp is not kept). (The WAL index, `-shm`, would say whether a
          // checkpoint runs, but it must not be opened here: closing any descriptor of a file
          // drops every POSIX lock this process holds on it, SQLite's included.)
          const u32 = (o: number) =>
            ((head[o] << 24) | (head[o + 1] << 16) | (head[o + 2] << 8) | head[o + 3]) >>> 0;
          const raw = (head[16] << 8) | head[17];
          const pageSize = raw === 1 ? 65536 : raw;
          const pages = u32(28);
          if (pages > 0 && u32(24) === u32(92) && st.size < pages * pageSize) {
            damage = shrunk ? `it is ${st.size} bytes, its header says ${pages * pageSize}` : "";
          }
        }
      }
      if (damage === "") {
        // not judged now (see above): the stamp is not kept, the next commit looks again
      } else if (damage !== undefined) {
        throw new Error(
          `the database file was truncated or overwritten while this process had it open ` +
            `(${damage}); nothing more can be stored in it: stop the process, then restore the ` +
            "file from a backup (or recover it with sqlite3's .recover)",
        );
      } else {
        cache.fileStamp = stamp;
      }
    }
  }
  // every column of `runs` but its id, set from the row being inserted
  const RUN_COLUMNS_SET = [
    "flow_id",
    "flow_name",
    "status",
    "input_json",
    "result_json",
    "created_at",
    "completed_at",
    "overrides_json",
    "parent_run_id",
    "root_run_id",
    "run_key",
    "variables_json",
    "owner_id",
    "lease_epoch",
    "started_at",
    "updated_at",
    "debug_mode",
    "options_json",
  ].map((c) => `${c} = excluded.${c}`).join(", ");
  const SQL = [
    `INSERT OR REPLACE INTO engines(id, host, pid, pid_start, pid_ns, url, started_at,
       heartbeat_at) VALUES (?, ?, ?, ?, ?, NULL, ?, ?)`,
    "UPDATE engines SET heartbeat_at = ? WHERE id = ?",
    "INSERT OR IGNORE INTO blobs(id, data, blob_type, created_at) VALUES (?, ?, ?, ?)",
    // A run key held by another run: a nested run's key (`parent/step[/item]`, a step run
    // again) moves to the new run, as INSERT OR REPLACE did; an Idempotency-Key
    // (`idempotency:...`) stays with the run that stored it first, and this insert does nothing
    // (two services on one database given one key: the second finds the first's run by its key,
    // src/server/runs.ts, instead of deleting it and running the request twice).
    `INSERT INTO runs(id, flow_id, flow_name, status, input_json, result_json,
       created_at, completed_at, overrides_json, parent_run_id, root_run_id, run_key,
       variables_json, owner_id, lease_epoch, started_at, updated_at, debug_mode, options_json)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT(id) DO UPDATE SET ${RUN_COLUMNS_SET}
     ON CONFLICT(run_key) WHERE run_key IS NOT NULL DO UPDATE SET id = excluded.id,
       ${RUN_COLUMNS_SET} WHERE substr(runs.run_key, 1, 12) <> 'idempotency:'`,
    `UPDATE runs SET status = ?, result_json = COALESCE(?, result_json), completed_at = ?,
       updated_at = ? WHERE id = ?`,
    "UPDATE runs SET status = ?, updated_at = ? WHERE id = ?",
    `INSERT OR REPLACE INTO batches(id, flow_id, flow_name, total_inputs, status, created_at,
       max_concurrency) VALUES (?, ?, ?, ?, ?, ?, ?)`,
    "INSERT OR REPLACE INTO batch_runs(batch_id, run_id, batch_input_index) VALUES (?, ?, ?)",
    "UPDATE engines SET url = ? WHERE id = ?",
    "UPDATE step_info SET status = 'failed', updated_at = ? WHERE run_id = ? AND status = 'running'",
  ];
  // deno-lint-ignore no-explicit-any
  const stmt = (sql: string): any => {
    let s = cache.stmts.get(sql);
    if (s === undefined) cache.stmts.set(sql, s = db.prepare(sql));
    return s;
  };
  const RESULTS =
    "INSERT OR REPLACE INTO step_results(run_id, step_index, step_id, result, created_at)";
  const INFOS = `INSERT INTO step_info(run_id, step_index, step_id, component, status,
       created_at, updated_at, attempt, duration_ms)`;
  // a start sets the attempt; a result keeps the highest, and the component when it has none
  const INFOS_TAIL = `ON CONFLICT(run_id, step_index) DO UPDATE SET status = excluded.status,
       updated_at = excluded.updated_at, duration_ms = excluded.duration_ms,
       attempt = CASE WHEN excluded.status = 'running' THEN excluded.attempt
         ELSE max(step_info.attempt, excluded.attempt) END,
       component = CASE WHEN excluded.component = '' THEN step_info.component
         ELSE excluded.component END`;
  const EVENTS =
    "INSERT INTO run_events(run_id, root_run_id, type, step_index, step_id, attempt, data, at)";
  const results: unknown[] = [];
  const infos: unknown[] = [];
  const events: unknown[] = [];
  /** Arguments of the commit's `SQL_STEPS_END` (9), applied after its step rows. */
  const stepsEnd: unknown[][] = [];
  /** Writes rows many per statement (a statement call costs about as much as a row). */
  const writeRows = (args: unknown[], width: number, head: string, tail: string) => {
    let off = 0;
    let left = args.length / width;
    while (left > 0) {
      let k = 32;
      while (k > left) k >>= 1;
      const tuple = `(${new Array(width).fill("?").join(", ")})`;
      stmt(`${head} VALUES ${new Array(k).fill(tuple).join(", ")} ${tail}`)
        .run(...args.slice(off, off + k * width));
      off += k * width;
      left -= k;
    }
  };
  stmt("BEGIN IMMEDIATE").run();
  try {
    if (fenceEngine !== null && !stmt("SELECT 1 FROM engines WHERE id = ?").get(fenceEngine)) {
      throw new Error(fenceMessage);
    }
    for (let i = 0; i < ops.length;) {
      const tag = ops[i];
      if (tag === 0) {
        const argc = ops[i + 2] as number;
        if (ops[i + 1] === 9) stepsEnd.push(ops.slice(i + 3, i + 3 + argc));
        else stmt(SQL[ops[i + 1] as number]).run(...ops.slice(i + 3, i + 3 + argc));
        i += 3 + argc;
      } else if (tag === 1) {
        const runId = ops[i + 1];
        const index = ops[i + 2];
        const stepId = ops[i + 3];
        const attempt = ops[i + 9];
        const at = ops[i + 11];
        results.push(runId, index, stepId, ops[i + 4], at);
        const component = ops[i + 8] ?? "";
        infos.push(runId, index, stepId, component, ops[i + 5], at, at, attempt ?? 1, ops[i + 10]);
        events.push(runId, ops[i + 12], ops[i + 6], index, stepId, attempt, ops[i + 7], at);
        i += 13;
      } else if (tag === 2) {
        const runId = ops[i + 1];
        const index = ops[i + 2];
        const stepId = ops[i + 3];
        const attempt = ops[i + 5];
        const at = ops[i + 6];
        infos.push(runId, index, stepId, ops[i + 4], "running", at, at, attempt, null);
        events.push(runId, ops[i + 7], "step_started", index, stepId, attempt, null, at);
        i += 8;
      } else {
        for (let k = 1; k <= 8; k++) events.push(ops[i + k]);
        i += 9;
      }
    }
    writeRows(results, 5, RESULTS, "");
    writeRows(infos, 9, INFOS, INFOS_TAIL);
    for (const args of stepsEnd) stmt(SQL[9]).run(...args);
    writeRows(events, 8, EVENTS, "");
    stmt("COMMIT").run();
  } catch (e) {
    try {
      stmt("ROLLBACK").run();
    } catch {
      // no transaction open (SQLite rolled it back itself)
    }
    throw e;
  }
}

/**
 * Closes what {@linkcode applyBatch} kept open in `cache` (the database file's descriptor for its
 * header): once the connection is closed, as the descriptor's close drops this process's POSIX
 * locks on the file. Self-contained, as `applyBatch` is: the commit worker runs its source too.
 */
export function closeCommitCache(cache: CommitCache): void {
  try {
    cache.headFile?.close();
  } catch {
    // closed already
  }
  cache.headFile = undefined;
}

/** The database file a store opened, to notice it was deleted or replaced (see applyBatch). */
export interface DatabaseFile {
  path: string;
  dev: number;
  ino: number;
  /** Its size when the store opened it, bytes (a commit finding it smaller: it was cut). */
  size?: number;
}

/**
 * Why a commit must not go to `file` (the database file as opened): its path was deleted or names
 * another file now; undefined when it still names the file. The same check as
 * {@linkcode applyBatch}'s (which cannot call it: its source runs in the worker on its own).
 */
export function fileGone(file: DatabaseFile | null): string | undefined {
  if (!file) return undefined;
  let st: Deno.FileInfo | undefined;
  try {
    st = Deno.statSync(file.path);
  } catch {
    // gone
  }
  if (st !== undefined && st.dev === file.dev && st.ino === file.ino) return undefined;
  return `the database file was ${st === undefined ? "deleted" : "replaced"} while this ` +
    "process had it open; nothing more can be stored in it: restart the process (it opens " +
    "the file at that path again)";
}

/** The device and inode of the database file at `path` now (null: no such file, not known). */
export function databaseFile(path: string): DatabaseFile | null {
  if (path === ":memory:" || path === "") return null;
  try {
    const st = Deno.statSync(path);
    return st.dev !== null && st.ino !== null
      ? { path, dev: st.dev, ino: st.ino, size: st.size }
      : null;
  } catch {
    return null;
  }
}

/** The worker's code: a connection of its own, {@linkcode applyBatch} per `commit` message. */
const WORKER_SOURCE = `
import { DatabaseSync } from "node:sqlite";
const applyBatch = ${applyBatch.toString()};
const closeCommitCache = ${closeCommitCache.toString()};
let db;
const cache = { stmts: new Map() };
self.onmessage = (e) => {
  const m = e.data;
  if (m.type === "open") {
    try {
      db = new DatabaseSync(m.path, { timeout: m.busyTimeoutMs });
      db.exec("PRAGMA synchronous=NORMAL");
      db.exec("PRAGMA wal_autocheckpoint=0");
      db.exec("PRAGMA cache_size=-16000");
      self.postMessage({ type: "opened" });
    } catch (err) {
      self.postMessage({ type: "failed", message: String(err && err.message || err) });
    }
  } else if (m.type === "commit") {
    try {
      applyBatch(db, cache, m.ops, m.fence, m.fenceMessage, m.file);
      self.postMessage({ type: "committed" });
    } catch (err) {
      self.postMessage({ type: "error", message: String(err && err.message || err) });
    }
  } else if (m.type === "close") {
    try {
      db?.close();
    } catch {
      // closing what could not be opened
    }
    db = undefined;
    closeCommitCache(cache); // (after the connection: its close drops this process's locks)
    self.postMessage({ type: "closed" });
  }
};
`;

/**
 * A worker thread committing the store's batches on its own connection. Messages are answered
 * in order; one commit is in flight at a time (the group commit waits for it).
 */
export class CommitWorker {
  #worker: Worker;
  #waiting: { resolve: () => void; reject: (e: Error) => void }[] = [];
  #dead?: string;

  private constructor(worker: Worker) {
    this.#worker = worker;
  }

  /**
   * Starts the worker and opens its connection to `path`.
   * @throws {Error} (rejects) when workers are not available or the database cannot be opened.
   */
  static async start(path: string, busyTimeoutMs: number): Promise<CommitWorker> {
    const url = URL.createObjectURL(new Blob([WORKER_SOURCE], { type: "application/javascript" }));
    let w: Worker;
    try {
      w = new Worker(url, { type: "module" });
    } finally {
      URL.revokeObjectURL(url);
    }
    const cw = new CommitWorker(w);
    w.onmessage = (e: MessageEvent) => cw.#answer(e.data as { type: string; message?: string });
    w.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      cw.#fail(`the SQLite commit worker failed: ${e.message}`);
    };
    const opened = new Promise<void>((resolve, reject) => cw.#waiting.push({ resolve, reject }));
    w.postMessage({ type: "open", path, busyTimeoutMs });
    try {
      await opened;
    } catch (e) {
      w.terminate();
      throw e;
    }
    return cw;
  }

  #answer(m: { type: string; message?: string }): void {
    const w = this.#waiting.shift();
    if (m.type === "error" || m.type === "failed") w?.reject(new Error(m.message));
    else w?.resolve();
  }

  #fail(message: string): void {
    this.#dead = message;
    for (const w of this.#waiting.splice(0)) w.reject(new Error(message));
    this.#worker.terminate();
  }

  /** Commits `ops` in the worker; resolves once its COMMIT returned. */
  commit(
    ops: unknown[],
    fence: string | null,
    fenceMessage: string,
    file: DatabaseFile | null,
  ): Promise<void> {
    if (this.#dead !== undefined) return Promise.reject(new Error(this.#dead));
    const p = new Promise<void>((resolve, reject) => this.#waiting.push({ resolve, reject }));
    this.#worker.postMessage({ type: "commit", ops, fence, fenceMessage, file });
    return p;
  }

  /** Closes the worker's connection (after the commit in flight) and stops it. */
  async close(): Promise<void> {
    if (this.#dead !== undefined) return;
    const closed = new Promise<void>((resolve, reject) => this.#waiting.push({ resolve, reject }));
    this.#worker.postMessage({ type: "close" });
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await Promise.race([closed, new Promise((r) => timer = setTimeout(r, 5_000))]);
    } catch {
      // closed anyway
    } finally {
      clearTimeout(timer);
      this.#dead = "the SQLite commit worker is closed";
      this.#worker.terminate();
    }
  }
}
