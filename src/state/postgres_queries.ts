/**
 * The PostgreSQL store's statements outside its write queue (src/state/postgres.ts): reads of
 * blobs, runs, steps, the journal and batches, signals (taken with `FOR UPDATE SKIP LOCKED`:
 * two consumers never take the same), and deleting or pruning runs with their nested runs. Each
 * runs after the writes queued before it, and fails with a StoreError naming the database.
 * @module
 */
import { type JsonValue, parseJson, stringifyJson } from "../json/exact_json.ts";
import type { FlowResult } from "../core/flow_result.ts";
import { batchOf, eventOf, type Row, runOf, signalOf, type Sql } from "./postgres_client.ts";
import type { LeaseBook } from "./postgres_leases.ts";
import type { PostgresWriter } from "./postgres_writer.ts";
import { time } from "./rows.ts";
import {
  type BatchRecord,
  type EventFilter,
  normalizeInstant,
  nowRfc3339,
  type RunEventRecord,
  type RunFilter,
  type RunRecord,
  type RunStatus,
  type SignalRecord,
  type StepInfoRecord,
  type StepResultRecord,
  type StepStatus,
  type StoredBlob,
} from "./store.ts";

/** The reads, signals and deletions of one PostgreSQL store. */
export class PostgresQueries {
  #w: PostgresWriter;
  #leases: LeaseBook;

  constructor(writer: PostgresWriter, leases: LeaseBook) {
    this.#w = writer;
    this.#leases = leases;
  }

  getBlob(id: string): Promise<StoredBlob | undefined> {
    return this.#w.read("cannot read a blob", async (sql) => {
      const [row] = await sql`SELECT id, data, blob_type FROM blobs WHERE id = ${id.toLowerCase()}`;
      if (!row) return undefined;
      return {
        id: row.id as string,
        data: parseJson(row.data as string),
        blobType: row.blob_type === "flow" ? "flow" : "data",
      };
    });
  }

  getRun(runId: string): Promise<RunRecord | undefined> {
    return this.#w.read("cannot read a run", async (sql) => {
      const [row] = await sql`SELECT * FROM runs WHERE id = ${runId}`;
      return row ? runOf(row) : undefined;
    });
  }

  findRunByKey(runKey: string): Promise<RunRecord | undefined> {
    return this.#w.read("cannot read a run", async (sql) => {
      const [row] = await sql`SELECT * FROM runs WHERE run_key = ${runKey}`;
      return row ? runOf(row) : undefined;
    });
  }

  listRuns(filter: RunFilter = {}): Promise<RunRecord[]> {
    const since = filter.since === undefined ? undefined : normalizeInstant(filter.since);
    return this.#w.read("cannot list runs", async (sql) => {
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
      return rows.map(runOf);
    });
  }

  getStepResults(runId: string): Promise<StepResultRecord[]> {
    return this.#w.read("cannot read step results", async (sql) => {
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
    return this.#w.read("cannot read step statuses", async (sql) => {
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
    return this.#w.read("cannot read the journal", async (sql) => {
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
      return rows.map(eventOf);
    });
  }

  /**
   * The runs among `runIds` that exist, in one query (a service waiting for runs other engines
   * execute polls them).
   */
  getRuns(runIds: string[]): Promise<RunRecord[]> {
    return this.#w.read("cannot read runs", async (sql) => {
      if (runIds.length === 0) return [];
      const rows = await sql`SELECT * FROM runs WHERE id = ANY(${runIds}::text[])`;
      return rows.map(runOf);
    });
  }

  /**
   * The status of each of `runIds` that exists, with the result of those finished (a service
   * waiting for runs other engines execute polls this: one query, results only when finished).
   */
  runStatuses(
    runIds: string[],
  ): Promise<{ runId: string; status: RunStatus; result?: FlowResult }[]> {
    return this.#w.read("cannot read runs", async (sql) => {
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

  deleteRun(runId: string): Promise<boolean> {
    return this.#w.transaction("cannot delete a run", async (tx) => {
      const ids = await tree(tx, [runId]);
      if (ids.length === 0) return false;
      await this.#deleteRuns(tx, ids);
      return true;
    });
  }

  pruneRuns(options: { before: string }): Promise<number> {
    const before = normalizeInstant(options.before);
    return this.#w.transaction("cannot prune runs", async (tx) => {
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
    this.#leases.deleted(ids);
  }

  putSignal(signal: { runId: string; name: string; data: JsonValue }): Promise<SignalRecord> {
    const at = nowRfc3339();
    const data = stringifyJson(signal.data);
    return this.#w.read("cannot store the signal", async (sql) => {
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
    return this.#w.read("cannot take the signal", async (sql) => {
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
      return row ? signalOf(row) : undefined;
    });
  }

  getSignals(runId: string): Promise<SignalRecord[]> {
    return this.#w.read("cannot read signals", async (sql) => {
      const rows = await sql`SELECT * FROM signals WHERE run_id = ${runId} ORDER BY id`;
      return rows.map(signalOf);
    });
  }

  getBatch(batchId: string): Promise<BatchRecord | undefined> {
    return this.#w.read("cannot read a batch", async (sql) => {
      const [row] = await sql`SELECT * FROM batches WHERE id = ${batchId}`;
      return row ? batchOf(row) : undefined;
    });
  }

  /** Batches, newest first (the service's `GET /api/v1/batches`). */
  listBatches(
    filter: { status?: string; flowName?: string; limit?: number; offset?: number } = {},
  ): Promise<BatchRecord[]> {
    return this.#w.read("cannot list batches", async (sql) => {
      const rows = await sql`
        SELECT * FROM batches
        WHERE (${filter.status ?? null}::text IS NULL OR status = ${filter.status ?? null})
          AND (${filter.flowName ?? null}::text IS NULL OR flow_name = ${filter.flowName ?? null})
        ORDER BY created_at DESC, id DESC
        LIMIT ${filter.limit ?? null}::bigint OFFSET ${filter.offset ?? 0}::bigint`;
      return rows.map(batchOf);
    });
  }

  getBatchOfRun(runId: string): Promise<BatchRecord | undefined> {
    return this.#w.read("cannot read a batch", async (sql) => {
      const [row] = await sql`
        SELECT b.* FROM batch_runs r JOIN batches b ON b.id = r.batch_id
        WHERE r.run_id = ${runId} LIMIT 1`;
      return row ? batchOf(row) : undefined;
    });
  }

  getBatchRuns(batchId: string): Promise<{ runId: string; index: number }[]> {
    return this.#w.read("cannot read a batch", async (sql) => {
      const rows = await sql`
        SELECT run_id, batch_input_index FROM batch_runs WHERE batch_id = ${batchId}
        ORDER BY batch_input_index`;
      return rows.map((r) => ({ runId: r.run_id as string, index: Number(r.batch_input_index) }));
    });
  }
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
