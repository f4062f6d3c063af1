/**
 * Sending one commit of the PostgreSQL store (src/state/postgres.ts) as one pipeline: `BEGIN`,
 * the fence of the leases its writes are made under, one multi-row statement per table, `COMMIT`.
 * Each table's rows go as one JSON document in one text parameter, parsed once by the server.
 * @module
 */
import type { Batch, CreateRow } from "./postgres_batch.ts";
import type { PgSession, Sql } from "./postgres_client.ts";

/** A piece of SQL put into another query (postgres.js fragments). */
type Fragment = ReturnType<Sql>;
import { FENCE_SQLSTATE, QUEUE_CHANNEL } from "./postgres_schema.ts";

/**
 * Sends one commit as a pipeline on one connection: BEGIN, fence, writes, COMMIT (one round
 * trip). Rejects with the first failing statement's error (`stepflow_fence`'s SF001 when a lease
 * was lost: {@linkcode fencedRuns}).
 */
export async function sendBatch(s: PgSession, b: Batch): Promise<void> {
  const c = await s.sql.reserve();
  try {
    const qs: Promise<unknown>[] = [c`BEGIN`];
    const me = s.engineId;
    if (b.fenceIds.length > 0) {
      qs.push(c`SELECT stepflow_fence(${me}, ${b.fenceIds}::text[], ${b.fenceEpochs}::int[])`);
    }
    if (b.engine) {
      const e = s.engineValues(b.engineUrl);
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
    if (b.creates.length > 0) qs.push(...insertRuns(c, b.creates, s.leaseTtlMs));
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
    // A run that ended other than `completed` (cancelled, failed): its steps still `running`
    // (a call it was waiting for when it was cancelled, or abandoned when it failed) become
    // `failed` (stepflow 0.8 has no `cancelled` step status); after the step rows, so that a
    // start committed with the end is caught too. No statement when every end is `completed`.
    const unfinished = endedUnfinished(b);
    if (unfinished.length > 0) {
      qs.push(c`
        UPDATE step_info s SET status = 'failed', updated_at = (x->>1)::timestamptz
        FROM jsonb_array_elements(${JSON.stringify(unfinished)}::text::jsonb) AS x
        WHERE s.run_id = x->>0 AND s.status = 'running'`);
    }
    for (const bt of b.batches) {
      qs.push(c`
        INSERT INTO batches(id, flow_id, flow_name, total_inputs, status, created_at,
          max_concurrency)
        VALUES (${bt.batchId}, ${bt.flowId}, ${bt.flowName ?? null}, ${bt.totalInputs},
          ${bt.status}, ${bt.createdAt}, ${bt.maxConcurrency ?? null})
        ON CONFLICT (id) DO UPDATE SET flow_id = excluded.flow_id,
          flow_name = excluded.flow_name, total_inputs = excluded.total_inputs,
          status = excluded.status, created_at = excluded.created_at,
          max_concurrency = excluded.max_concurrency`);
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

/** `[runId, completedAt]` of the runs of commit `b` that end other than `completed`. */
function endedUnfinished(b: Batch): [string, string][] {
  const out: [string, string][] = [];
  for (const [id, u] of b.updates) {
    if (u.completedAt !== null && unfinished(u.status)) out.push([id, u.completedAt]);
  }
  for (const r of b.creates) {
    if (r.completedAt !== null && unfinished(r.status)) out.push([r.id, r.completedAt]);
  }
  return out;
}

function unfinished(status: string): boolean {
  return status === "failed" || status === "cancelled";
}

/** Whether a run's key is an Idempotency-Key of the service (`idempotency:...`). */
function idempotent(r: CreateRow): boolean {
  return r.runKey !== null && r.runKey.startsWith("idempotency:");
}

/**
 * Inserts (or replaces) the runs of a commit; a started top-level run gets a lease.
 *
 * A run key held by another run (unique): a nested run's key (`parent/step[/item]`: the step ran
 * again, e.g. retried after a timeout) moves to the new run — the old run keeps its rows without
 * the key —, as in the SQLite store (the insert failed the whole commit with a duplicate key, and
 * so every run of the engine). An Idempotency-Key stays with the run that stored it first, also
 * when two engines insert it at once: that row is not inserted (the service finds the first run
 * by its key: src/server/routes_runs.ts).
 */
function insertRuns(c: Sql, rows: CreateRow[], leaseTtlMs: number): Promise<unknown>[] {
  const out: Promise<unknown>[] = [];
  const other = rows.filter((r) => !idempotent(r));
  if (other.length > 0) {
    const doc = runsDocument(other);
    if (other.some((r) => r.runKey !== null)) {
      out.push(c`
        UPDATE runs o SET run_key = NULL
        FROM jsonb_array_elements(${doc}::text::jsonb) AS x
        WHERE o.run_key = x->>11 AND o.id <> x->>0`);
    }
    out.push(insertStatement(c, doc, leaseTtlMs, c`ON CONFLICT (id)`, c``));
  }
  const keyed = rows.filter(idempotent);
  if (keyed.length > 0) {
    // the same run created again has the same key: updated; another run's key: nothing
    out.push(insertStatement(
      c,
      runsDocument(keyed),
      leaseTtlMs,
      c`ON CONFLICT (run_key) WHERE run_key IS NOT NULL`,
      c`WHERE runs.id = excluded.id`,
    ));
  }
  return out;
}

/** The rows of `runs` to insert as one JSON document (an array of arrays, in column order). */
function runsDocument(rows: CreateRow[]): string {
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
    },${r.debug ? 1 : 0},${js(r.options)},${js(r.limitedBatch ?? null)}]`;
  }
  return doc + "]";
}

/**
 * The INSERT of the runs in `doc`, `conflict` being the arbiter and `guard` the condition of the
 * update. A run created again under the same id replaces it (as the SQLite store's INSERT OR
 * REPLACE), keeping when it was first created and started.
 */
function insertStatement(
  c: Sql,
  doc: string,
  leaseTtlMs: number,
  conflict: Fragment,
  guard: Fragment,
): Promise<unknown> {
  return c`
    INSERT INTO runs(id, flow_id, flow_name, status, input_json, result_json, created_at,
      completed_at, overrides_json, parent_run_id, root_run_id, run_key, variables_json,
      owner_id, lease_epoch, lease_expires_at, started_at, updated_at, debug_mode, options_json,
      limited_batch_id)
    SELECT x->>0, x->>1, x->>2, x->>3, x->>4, x->>5, (x->>6)::timestamptz,
      (x->>7)::timestamptz, x->>8, x->>9,
      COALESCE(x->>10, (SELECT COALESCE(p.root_run_id, p.id) FROM runs p
        WHERE p.id = x->>9), x->>9, x->>0),
      x->>11, x->>12, x->>13, (x->>14)::int,
      CASE WHEN x->>15 = '1' THEN now() + ${leaseTtlMs} * interval '1 millisecond' END,
      (x->>16)::timestamptz, (x->>17)::timestamptz, x->>18 = '1', x->>19, x->>20
    FROM jsonb_array_elements(${doc}::text::jsonb) AS x
    ${conflict} DO UPDATE SET flow_id = excluded.flow_id,
      flow_name = excluded.flow_name, status = excluded.status,
      input_json = excluded.input_json, result_json = excluded.result_json,
      created_at = LEAST(runs.created_at, excluded.created_at),
      completed_at = excluded.completed_at, overrides_json = excluded.overrides_json,
      parent_run_id = excluded.parent_run_id, root_run_id = excluded.root_run_id,
      run_key = excluded.run_key, variables_json = excluded.variables_json,
      owner_id = excluded.owner_id, lease_epoch = excluded.lease_epoch,
      lease_expires_at = excluded.lease_expires_at,
      started_at = COALESCE(runs.started_at, excluded.started_at),
      updated_at = excluded.updated_at, debug_mode = excluded.debug_mode,
      options_json = excluded.options_json,
      limited_batch_id = COALESCE(excluded.limited_batch_id, runs.limited_batch_id)
    ${guard}`;
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
export function fencedRuns(e: unknown): string[] | undefined {
  const err = e as { code?: string; detail?: string };
  if (err?.code !== FENCE_SQLSTATE || typeof err.detail !== "string") return undefined;
  return err.detail.split(",").filter((x) => x !== "");
}
