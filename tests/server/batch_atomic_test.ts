/**
 * A batch's record and its runs' rows are stored in one commit, all or none, on SQLite and
 * PostgreSQL (`StateStore.atomic`). Before: the writes of a batch of thousands of runs filled the
 * store's write queue past its length, which started a commit in their midst, so the batch
 * spanned several commits; when a later one failed, the client was told 507 ("None of its runs
 * started ... Submit the batch again") while the batch's record and its first runs were stored,
 * `queued` — run after a restart, and run again when the client resubmitted.
 *
 * The failure is injected mid-batch with a trigger refusing the last `batch_runs` row (as a full
 * disk refuses a write); without STEPFLOW_TEST_PG_URL the PostgreSQL test is skipped.
 */
import { DatabaseSync } from "node:sqlite";
import { assertEquals, assertStrictEquals, assertStringIncludes, withTempDir } from "../_assert.ts";
import { Engine } from "../../src/execution/engine.ts";
import { createServer } from "../../src/server/server.ts";
import { testConfig } from "../execution/_engine_helpers.ts";
import {
  PG_REQUIRED,
  PG_SKIPPED,
  PG_URL,
  pgTest,
  withClient,
  withPgDatabase,
} from "../_postgres.ts";
import { SCHEMA } from "./_server.ts";
import type { JsonValue } from "../../src/json/exact_json.ts";

if (PG_URL === undefined && !PG_REQUIRED) {
  Deno.test({ name: `batch_atomic: ${PG_SKIPPED}`, ignore: true, fn() {} });
}

/** Inputs of the batch: enough rows for several commits of either store's write queue. */
const N = 5_000;

const FLOW = {
  schema: SCHEMA,
  name: "echo",
  steps: [{
    id: "m",
    component: "/builtin/create_messages",
    input: { user_prompt: { $from: { workflow: "input" }, path: "$.q" } },
  }],
  output: { $from: { step: "m" }, path: "$.messages[0].content" },
};

/**
 * Posts a batch of {@linkcode N} inputs to a service on `stateStore`, whose database refuses the
 * batch's last `batch_runs` row once `refuseLast` ran; expects the 507.
 */
async function postFailingBatch(
  stateStore: JsonValue,
  refuseLast: () => Promise<void>,
): Promise<void> {
  const engine = await Engine.create(testConfig({}, { stateStore }));
  const server = createServer(engine);
  try {
    await refuseLast();
    const call = async (path: string, body: unknown) => {
      const res = await server.fetch(
        new Request(`http://127.0.0.1${path}`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify(body),
        }),
      );
      return { status: res.status, body: await res.json() };
    };
    const { body: stored } = await call("/api/v1/flows", { flow: FLOW });
    const inputs = Array.from({ length: N }, (_, i) => ({ q: `item ${i}` }));
    const r = await call("/api/v1/batches", { flowId: stored.flowId, inputs });
    assertStrictEquals(r.status, 507, JSON.stringify(r.body).slice(0, 500));
    assertStringIncludes(r.body.message, "The batch could not be stored");
  } finally {
    await server.shutdown(1_000);
    await engine.close();
  }
}

Deno.test("SQLite: a batch whose last row cannot be stored is stored not at all (was: its first runs, queued)", async () => {
  await withTempDir(async (dir) => {
    const file = `${dir}/runs.db`;
    await postFailingBatch({ type: "sqlite", databaseUrl: `sqlite:${file}` }, () => {
      const db = new DatabaseSync(file);
      try {
        db.exec(`CREATE TRIGGER refuse_last BEFORE INSERT ON batch_runs
          WHEN NEW.batch_input_index = ${N - 1}
          BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END;`);
      } finally {
        db.close();
      }
      return Promise.resolve();
    });
    const db = new DatabaseSync(file, { readOnly: true });
    try {
      const count = (sql: string) => Number(Object.values(db.prepare(sql).get()!)[0]);
      assertEquals(
        {
          batches: count("SELECT COUNT(*) FROM batches"),
          batchRuns: count("SELECT COUNT(*) FROM batch_runs"),
          // recorded failed later (as the 507 says) at most; never queued or running
          waiting: count("SELECT COUNT(*) FROM runs WHERE status IN ('queued', 'running')"),
        },
        { batches: 0, batchRuns: 0, waiting: 0 },
      );
    } finally {
      db.close();
    }
  });
});

pgTest(
  "PostgreSQL: a batch whose last row cannot be stored is stored not at all (was: its first runs, queued)",
  (server) =>
    withPgDatabase(server, async (url) => {
      await postFailingBatch({ type: "postgres", url }, () =>
        withClient(url, async (sql) => {
          await sql.unsafe(`
          CREATE FUNCTION refuse_last() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
            IF NEW.batch_input_index = ${N - 1} THEN
              RAISE EXCEPTION USING ERRCODE = '53100',
                MESSAGE = 'could not extend file "base/1/2": No space left on device';
            END IF;
            RETURN NEW;
          END $$;
          CREATE TRIGGER refuse_last BEFORE INSERT ON batch_runs FOR EACH ROW
            EXECUTE FUNCTION refuse_last();`);
        }));
      await withClient(url, async (sql) => {
        const [c] = await sql.unsafe(`SELECT
        (SELECT COUNT(*) FROM batches)::int AS batches,
        (SELECT COUNT(*) FROM batch_runs)::int AS "batchRuns",
        (SELECT COUNT(*) FROM runs WHERE status IN ('queued', 'running'))::int AS waiting`);
        assertEquals({ ...c }, { batches: 0, batchRuns: 0, waiting: 0 });
      });
    }),
);

Deno.test("SQLite store: the writes of atomic() go in one commit however many (the library's batches: record and batch_runs rows)", async () => {
  await withTempDir(async (dir) => {
    const { SqliteStateStore } = await import("../../src/state/sqlite.ts");
    const { atomically } = await import("../../src/state/store.ts");
    const store = SqliteStateStore.open(`sqlite:${dir}/runs.db`);
    try {
      const db = new DatabaseSync(`${dir}/runs.db`);
      db.exec(`CREATE TRIGGER refuse_last BEFORE INSERT ON batch_runs
        WHEN NEW.batch_input_index = ${N - 1}
        BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END;`);
      const writes = new Set<Promise<void> | void>();
      atomically(store, () => {
        writes.add(store.createBatch({
          batchId: "b",
          flowId: "f".repeat(64),
          totalInputs: N,
          status: "running",
          createdAt: "2024-01-01T00:00:00.000Z",
        }));
        for (let i = 0; i < N * 4; i++) {
          writes.add(store.addBatchRun("b", `r${i % N}-${i}`, i % N));
        }
      });
      assertStrictEquals(writes.size, 1); // one commit's promise
      const failed = await Promise.all(writes).then(() => false, () => true);
      assertStrictEquals(failed, true);
      const count = (sql: string) => Number(Object.values(db.prepare(sql).get()!)[0]);
      assertStrictEquals(count("SELECT COUNT(*) FROM batches"), 0);
      assertStrictEquals(count("SELECT COUNT(*) FROM batch_runs"), 0);
      db.close();
    } finally {
      await store.close();
    }
  });
});
