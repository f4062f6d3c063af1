/**
 * Who executes which run, in the SQLite store (src/state/sqlite.ts): the runs of dead engines
 * marked interrupted when the database is opened, claims (resume, queued runs), lease renewal and
 * release. Each function runs inside the caller's transaction unless it says otherwise.
 * @module
 */
import { stringifyJson } from "../json/exact_json.ts";
import type { SqliteCore } from "./sqlite_core.ts";
import {
  type DatabaseFile,
  fileGone,
  rowOfRunArgs,
  RUN_ARG,
  RUN_COLUMNS,
} from "./sqlite_commit.ts";
import type { UnstoredEnd } from "./store_health.ts";
import { runFromRow, type RunRow } from "./rows.ts";
import {
  type ClaimedRun,
  type ClaimResult,
  type EngineRecord,
  interruptedResult,
  type LeaseRenewal,
  type NewRunId,
  nowRfc3339,
  type RunRecord,
} from "./store.ts";

/**
 * Marks `running` runs whose engine is gone as `failed` (503, `RUN_INTERRUPTED`), with a
 * `run_interrupted` event, their running steps `failed`, and removes the dead engines' rows (in a
 * transaction of its own). Runs without an owner (written by 0.8 or an older version) count as
 * interrupted once they are older than the stale limit.
 */
export function recoverDeadRuns(c: SqliteCore): void {
  const owners = c.stmt(
    "SELECT DISTINCT owner_id FROM runs WHERE status = 'running'",
  ).all() as { owner_id: string | null }[];
  if (owners.length === 0) return;
  const nowMs = Date.now();
  const dead = owners.filter((o) => !c.isAlive(o.owner_id, nowMs));
  if (dead.length === 0) return;
  c.transaction(() => {
    const at = nowRfc3339();
    const staleBefore = new Date(nowMs - c.staleAfterMs).toISOString();
    for (const { owner_id: owner } of dead) {
      // checked again inside the transaction: another process may have done it meanwhile
      if (owner !== null && c.isAlive(owner, Date.now())) continue;
      const eng = owner === null ? undefined : c.engineRecord(owner);
      const reason = owner === null
        ? "it was left running by an engine that recorded no owner"
        : deadEngineReason(eng);
      const runs = (owner === null
        ? c.stmt(
          `SELECT id, COALESCE(root_run_id, id) AS root FROM runs
           WHERE owner_id IS NULL AND status = 'running' AND created_at < ?`,
        ).all(staleBefore)
        : c.stmt(
          `SELECT id, COALESCE(root_run_id, id) AS root FROM runs
           WHERE owner_id = ? AND status = 'running'`,
        ).all(owner)) as { id: string; root: string }[];
      for (const r of runs) markInterrupted(c, r.id, owner, r.root, reason, at);
      if (owner !== null) c.stmt("DELETE FROM engines WHERE id = ?").run(owner);
    }
  });
}

/** Why the runs of a dead engine were interrupted. */
function deadEngineReason(eng: EngineRecord | undefined): string {
  return eng
    ? `the engine running it (pid ${eng.pid ?? "?"}${
      eng.host ? ` on ${eng.host}` : ""
    }, last heartbeat ${eng.heartbeatAt}) stopped before the run finished`
    : "the engine running it stopped before the run finished";
}

/**
 * The engines of other processes on this database that are dead (their process is gone, or —
 * where it cannot be checked — their heartbeat is older than the stale limit). One read of the
 * `engines` table, no transaction.
 */
export function deadEngines(c: SqliteCore): string[] {
  const ids = c.stmt("SELECT id FROM engines WHERE id <> ?").all(c.engineId) as { id: string }[];
  if (ids.length === 0) return [];
  const nowMs = Date.now();
  return ids.map((r) => r.id).filter((id) => !c.isAlive(id, nowMs));
}

/**
 * Recovers the runs of dead engines `ids` (from {@linkcode deadEngines}; checked again here, in
 * the transaction of the caller): their `running` runs are marked interrupted (503,
 * `run_interrupted`, as opening the database does), their `engines` rows removed.
 * @returns the engines recovered, the top-level runs they left unfinished (interrupted now, or
 * `paused`), oldest first: the runs a service may resume; and the runs they had queued and not
 * started, oldest first (still `queued`, owned by the dead engine: any engine may claim them).
 */
export function recoverEngines(
  c: SqliteCore,
  ids: string[],
): { engines: EngineRecord[]; runs: string[]; queued: string[] } {
  const engines: EngineRecord[] = [];
  const roots: string[] = [];
  const queued: string[] = [];
  const at = nowRfc3339();
  for (const id of ids) {
    const eng = c.engineRecord(id);
    // gone: another process recovered it meanwhile; alive: not dead after all
    if (eng === undefined || c.isAlive(id, Date.now())) continue;
    engines.push(eng);
    const reason = deadEngineReason(eng);
    for (
      const r of c.stmt(
        `SELECT id FROM runs WHERE owner_id = ? AND parent_run_id IS NULL
           AND status IN ('running', 'paused') ORDER BY created_at, id`,
      ).all(id) as { id: string }[]
    ) roots.push(r.id);
    for (
      const r of c.stmt(
        `SELECT id FROM runs WHERE owner_id = ? AND parent_run_id IS NULL AND status = 'queued'
           ORDER BY created_at, id`,
      ).all(id) as { id: string }[]
    ) queued.push(r.id);
    const running = c.stmt(
      `SELECT id, COALESCE(root_run_id, id) AS root FROM runs
       WHERE owner_id = ? AND status = 'running'`,
    ).all(id) as { id: string; root: string }[];
    for (const r of running) markInterrupted(c, r.id, id, r.root, reason, at);
    c.stmt("DELETE FROM engines WHERE id = ?").run(id);
  }
  // queued rows without an owner (written before queued rows had one): an engine that stopped
  // may have queued them. They were taken only once no other live engine was left (with two
  // survivors or more they waited for a restart); now the engine recovering the dead ones takes
  // each, in this transaction (one writer at a time: the others see it owned): run once, by one
  if (engines.length > 0) queued.push(...takeUnownedQueued(c, at));
  return { engines, runs: roots, queued };
}

/**
 * Whether an engine of another process on this database is alive. Queued rows without an owner
 * (written by a version before queued rows had one, which ran them itself as slots freed) may be
 * its: a starting engine claims them only once no such engine is left ({@linkcode claimOne}), so
 * each runs once, never twice. (An engine recovering a dead one takes them:
 * {@linkcode recoverEngines}.)
 */
export function otherEngineAlive(c: SqliteCore): boolean {
  const nowMs = Date.now();
  return (c.stmt("SELECT id FROM engines WHERE id <> ?").all(c.engineId) as { id: string }[])
    .some((r) => c.isAlive(r.id, nowMs));
}

/**
 * Makes this engine the owner of the top-level queued runs without an owner (a conditional
 * UPDATE of each: a row another engine took meanwhile is left to it); their ids, oldest first.
 */
function takeUnownedQueued(c: SqliteCore, at: string): string[] {
  const ids = (c.stmt(
    `SELECT id FROM runs WHERE owner_id IS NULL AND parent_run_id IS NULL AND status = 'queued'
     ORDER BY created_at, id`,
  ).all() as { id: string }[]).map((r) => r.id);
  const take = c.stmt(
    `UPDATE runs SET owner_id = ?, updated_at = ?
     WHERE id = ? AND owner_id IS NULL AND status = 'queued'`,
  );
  return ids.filter((id) => Number(take.run(c.engineId, at, id).changes) === 1);
}

/** Marks `runId` interrupted if `owner` still owns it and it is still running. */
export function markInterrupted(
  c: SqliteCore,
  runId: string,
  owner: string | null,
  root: string,
  reason: string,
  at: string,
): void {
  const result = stringifyJson(interruptedResult(root, reason));
  const { changes } = c.stmt(
    `UPDATE runs SET status = 'failed', result_json = ?, completed_at = ?, updated_at = ?
     WHERE id = ? AND status = 'running' AND owner_id IS ?`,
  ).run(result, at, at, runId, owner);
  if (Number(changes) === 0) return;
  c.stmt(
    "UPDATE step_info SET status = 'failed', updated_at = ? WHERE run_id = ? AND status = 'running'",
  ).run(at, runId);
  c.event(runId, root, "run_interrupted", null, null, null, stringifyJson({ reason }), at);
}

/**
 * Takes run `runId` for this engine unless another live engine owns it (a queued row without an
 * owner: unless another engine is alive, {@linkcode otherEngineAlive}).
 */
export function claimOne(c: SqliteCore, runId: string): ClaimResult {
  const row = c.stmt(
    `SELECT owner_id, lease_epoch, status, COALESCE(root_run_id, id) AS root FROM runs
     WHERE id = ?`,
  ).get(runId) as
    | { owner_id: string | null; lease_epoch: number; status: string; root: string }
    | undefined;
  if (!row) return { claimed: false, reason: "unknown" };
  const owner = row.owner_id;
  if (owner !== null && owner !== c.engineId && c.isAlive(owner, Date.now())) {
    return { claimed: false, reason: "owned", owner: c.engineRecord(owner) };
  }
  if (owner === null && row.status === "queued" && otherEngineAlive(c)) {
    return { claimed: false, reason: "owned" };
  }
  const epoch = Number(row.lease_epoch) + 1;
  const at = nowRfc3339();
  c.stmt(
    "UPDATE runs SET owner_id = ?, lease_epoch = ?, updated_at = ? WHERE id = ?",
  ).run(c.engineId, epoch, at, runId);
  c.event(
    runId,
    row.root,
    "run_resumed",
    null,
    null,
    null,
    stringifyJson({ leaseEpoch: epoch, engineId: c.engineId }),
    at,
  );
  c.open.set(runId, { root: row.root });
  return { claimed: true, leaseEpoch: epoch };
}

/**
 * Takes id `r.runId` for a new top-level run of this engine in one statement (see
 * `StateStore.claimRunId`): inserts its row `running`, or takes a `queued` row over.
 * @returns true when the id is this engine's now, false when another run holds it.
 */
export function claimNewRunId(c: SqliteCore, r: NewRunId): boolean {
  const at = nowRfc3339();
  const done = c.stmt(
    `INSERT INTO runs(id, flow_id, flow_name, status, input_json, created_at, root_run_id,
       owner_id, lease_epoch, started_at, updated_at)
     VALUES (?, ?, ?, 'running', ?, ?, ?, ?, 0, ?, ?)
     ON CONFLICT(id) DO UPDATE SET status = 'running', owner_id = excluded.owner_id,
       updated_at = excluded.updated_at
     WHERE runs.status = 'queued'`,
  ).run(
    r.runId,
    r.flowId,
    r.flowName ?? null,
    stringifyJson(r.input),
    r.createdAt,
    r.runId,
    c.engineId,
    at,
    at,
  );
  return Number(done.changes) > 0;
}

/** Takes up to `limit` queued or released runs for this engine, oldest first. */
export function claimMany(c: SqliteCore, limit: number): ClaimedRun[] {
  // queued runs, and runs released by their engine (started, no owner); BEGIN IMMEDIATE
  // makes this one writer at a time, so two processes never claim the same run
  const picked = c.stmt(
    `SELECT id, status, COALESCE(root_run_id, id) AS root FROM runs
     WHERE status = 'queued'
        OR (status IN ('running', 'paused') AND owner_id IS NULL AND started_at IS NOT NULL)
     ORDER BY created_at, id LIMIT ?`,
  ).all(limit) as { id: string; status: string; root: string }[];
  const at = nowRfc3339();
  const out: ClaimedRun[] = [];
  for (const p of picked) {
    const row = c.stmt(
      `UPDATE runs SET owner_id = ?, lease_epoch = lease_epoch + 1,
         status = CASE WHEN status = 'queued' THEN 'running' ELSE status END,
         started_at = COALESCE(started_at, ?), updated_at = ?
       WHERE id = ? RETURNING *`,
    ).get(c.engineId, at, at, p.id) as unknown as RunRow;
    const run = runFromRow(row);
    const resumed = p.status !== "queued";
    c.event(
      p.id,
      p.root,
      resumed ? "run_resumed" : "run_started",
      null,
      null,
      null,
      stringifyJson({ leaseEpoch: run.leaseEpoch ?? 1, engineId: c.engineId }),
      at,
    );
    c.open.set(p.id, { root: p.root });
    out.push({ run, leaseEpoch: run.leaseEpoch ?? 1, resumed });
  }
  return out;
}

/**
 * Renews this engine's heartbeat (its leases).
 * @param committed whether this engine's row was committed (else nothing can be lost yet).
 */
export function renew(c: SqliteCore, committed: boolean): LeaseRenewal {
  const mine = (c.stmt(
    `SELECT id FROM runs WHERE owner_id = ? AND status IN ('running', 'paused')`,
  ).all(c.engineId) as { id: string }[]).map((r) => r.id);
  if (!committed) return { renewed: mine, lost: [] };
  const { changes } = c.stmt("UPDATE engines SET heartbeat_at = ? WHERE id = ?").run(
    nowRfc3339(),
    c.engineId,
  );
  // declared dead by another process: every run it held was taken from it
  if (Number(changes) === 0) return { renewed: [], lost: [...c.open.keys()] };
  return { renewed: mine, lost: [] };
}

/** Gives unfinished runs `ids` of this engine back to the database (no owner). */
export function release(c: SqliteCore, ids: string[]): string[] {
  const at = nowRfc3339();
  const out: string[] = [];
  for (const id of ids) {
    const row = c.stmt(
      `UPDATE runs SET owner_id = NULL, updated_at = ? WHERE id = ? AND owner_id = ?
         AND status NOT IN ('completed', 'failed', 'cancelled') RETURNING id`,
    ).get(at, id, c.engineId);
    if (row) out.push(id);
    c.open.delete(id);
  }
  return out;
}

/**
 * Writes the ends of runs of this engine that could not be stored when they ended (their
 * client was told 507): status and result, their running steps `failed`, and `run_completed`.
 * A run another engine took over meanwhile (its owner changed) is left alone. A run whose row
 * never reached the database (`SqliteCore.rowless`) is written whole, ended (unless a run with
 * its id or key is there by now).
 * @param file the database file as opened: nothing is written when its path names another file.
 * @param committed whether this engine's row was committed (then it must still exist: else this
 *   engine was declared dead, and its runs are another's to resume).
 * @returns how many runs were recorded ended (those whose row was never stored are not).
 * @throws {Error} when the file was deleted or replaced, or this engine was declared dead.
 */
export function writeUnstoredEnds(
  c: SqliteCore,
  ends: [string, UnstoredEnd][],
  file: DatabaseFile | null,
  committed: boolean,
): number {
  const gone = fileGone(file);
  if (gone !== undefined) throw new Error(gone);
  if (committed && !c.stmt("SELECT 1 FROM engines WHERE id = ?").get(c.engineId)) {
    throw new Error(
      `this engine (${c.engineId}) was declared dead by another process; its runs are not its own`,
    );
  }
  let n = 0;
  for (const [runId, end] of ends) {
    const row = c.stmt(
      `UPDATE runs SET status = ?, result_json = COALESCE(?, result_json), completed_at = ?,
         updated_at = ? WHERE id = ? AND owner_id = ?
       RETURNING COALESCE(root_run_id, id) AS root`,
    ).get(
      end.status,
      end.result === undefined ? null : stringifyJson(end.result),
      end.at,
      nowRfc3339(),
      runId,
      c.engineId,
    ) as { root: string } | undefined ?? insertRowless(c, runId, end);
    if (row === undefined) continue;
    n++;
    c.stmt(
      "UPDATE step_info SET status = 'failed', updated_at = ? WHERE run_id = ? AND status = 'running'",
    ).run(end.at, runId);
    const data = end.result === undefined
      ? { status: end.status }
      : { status: end.status, outcome: end.result.outcome };
    c.event(runId, row.root, "run_completed", null, null, null, stringifyJson(data), end.at);
  }
  return n;
}

/** Writes the kept row of run `runId` (never stored), ended as `end` says; its root, or undefined. */
function insertRowless(
  c: SqliteCore,
  runId: string,
  end: UnstoredEnd,
): { root: string } | undefined {
  const kept = c.rowless.get(runId);
  if (kept === undefined) return undefined;
  const args = kept.slice();
  args[RUN_ARG.status] = end.status;
  if (end.result !== undefined) args[RUN_ARG.result] = stringifyJson(end.result);
  args[RUN_ARG.completedAt] = end.at;
  args[RUN_ARG.updatedAt] = nowRfc3339();
  return c.stmt(
    `INSERT INTO runs(${RUN_COLUMNS}) VALUES (${args.map(() => "?").join(", ")})
     ON CONFLICT DO NOTHING RETURNING COALESCE(root_run_id, id) AS root`,
  ).get(...(args as (string | number | null)[])) as { root: string } | undefined;
}

/**
 * Run `runId` as this process knows it when its row never reached the database and its failed
 * end is kept (the client was told 507): undefined otherwise.
 */
export function rowlessRun(c: SqliteCore, runId: string): RunRecord | undefined {
  if (c.rowless.size === 0 || !c.ends.has(runId)) return undefined;
  const kept = c.rowless.get(runId);
  return kept === undefined ? undefined : runFromRow(rowOfRunArgs(kept));
}
