/**
 * A durable store whose commits fail (issue 13, wave 6): it says so (`condition()`, the service's
 * `/health`) until a commit succeeds again, and a run told 507 meanwhile is recorded `failed`
 * (507) as soon as the database can be written, so that a restart does not resume it as if
 * nothing happened. Before: the store reported nothing, and the run stayed `running` in the
 * database — resumed at the next start although its client was told it failed.
 *
 * The commit failure here is real and recoverable without root: another connection holds the
 * SQLite database's write lock longer than the store's busy timeout (`database is locked`), then
 * lets go; for PostgreSQL a trigger refuses step results as a full disk would, then is dropped.
 * (The service's tests do it with a full disk: tests/server/store_faults_test.ts.)
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import {
  assert,
  assertEquals,
  assertStrictEquals,
  assertStringIncludes,
  withTempDir,
} from "../_assert.ts";
import { Engine } from "../../src/execution/engine.ts";
import { SqliteStateStore } from "../../src/state/sqlite.ts";
import { RUN_INTERRUPTED, STORE_FAILED } from "../../src/state/store.ts";
import type { StateStore } from "../../src/state/store.ts";
import { flow, testConfig } from "../execution/_engine_helpers.ts";
import { allowWrites, pgTest, refuseWrites, withClient, withPgDatabase } from "../_postgres.ts";

const TWO_STEPS = flow(`steps:
  - { id: a, component: /builtin/create_messages, input: { user_prompt: hi } }
  - id: b
    component: /builtin/create_messages
    input: { user_prompt: { $from: { step: a }, path: "$.messages[0].content" } }
output: { $from: { step: b }, path: "$.messages[0].content" }
`);

/**
 * Starts TWO_STEPS on `engine` with step b held until `fail()` has made the store's commits
 * fail; resolves with the run id and its result (507).
 */
async function runThroughFailure(
  engine: Engine,
  store: StateStore,
  fail: () => Promise<void>,
): Promise<{ runId: string; result: Awaited<ReturnType<Engine["run"]>> }> {
  let release!: () => void;
  const held = new Promise<void>((r) => release = r);
  let atGate!: () => void;
  const reached = new Promise<void>((r) => atGate = r);
  const h = engine.start(TWO_STEPS, {}, {
    gate: (step) => {
      if (step.id !== "b") return undefined;
      atGate();
      return held;
    },
  });
  await reached;
  await store.flush(); // the run's row and step a are stored
  await fail();
  release();
  return { runId: h.runId, result: await h.result };
}

Deno.test("SQLite: failing commits make the store unhealthy until one succeeds; a run told 507 is recorded failed, not resumed", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/runs.db`;
    const store = SqliteStateStore.open(`sqlite:${path}`, { busyTimeoutMs: 100 });
    const engine = await Engine.create(testConfig(), { store });
    const lock = new DatabaseSync(path, { timeout: 5_000 });
    let locked = false;
    try {
      assertEquals(await store.condition(), {
        healthy: true,
        kind: "sqlite",
        database: path,
      });
      const { runId, result } = await runThroughFailure(engine, store, () => {
        lock.exec("BEGIN IMMEDIATE"); // holds the write lock past the busy timeout
        locked = true;
        return Promise.resolve();
      });
      assertStrictEquals(result.outcome, "failed");
      if (result.outcome !== "failed") return;
      assertStrictEquals(result.error.code, STORE_FAILED);
      assertStringIncludes(result.error.message, `SQLite database '${path}': database is locked`);
      // the 507 says what becomes of the run
      assertStringIncludes(result.error.message, "It is recorded failed with this error as soon");
      assertStringIncludes(result.error.message, "resumed from its last stored step");

      const sick = await store.condition({ probe: true }); // the probe fails too
      assertStrictEquals(sick.healthy, false);
      assertStringIncludes(sick.error!, "database is locked");
      assertStringIncludes(sick.error!, "busy timeout of 100 ms");
      assert(sick.failedCommits! >= 1, JSON.stringify(sick));
      assertStrictEquals(sick.unstoredRunEnds, 1);
      // this process shows the run as its client was told; the database still says running
      const seen = await store.getRun(runId);
      assertStrictEquals(seen?.status, "failed");
      const reader = new DatabaseSync(path, { readOnly: true });
      try {
        const row = reader.prepare("SELECT status FROM runs WHERE id = ?").get(runId);
        assertStrictEquals(row?.status, "running");
      } finally {
        reader.close();
      }

      lock.exec("ROLLBACK");
      locked = false;
      const well = await store.condition({ probe: true });
      assertEquals(well, { healthy: true, kind: "sqlite", database: path });
    } finally {
      if (locked) lock.exec("ROLLBACK");
      lock.close();
      await engine.close();
    }
    // a restart: the run was recorded failed with 507 and is not an interrupted run to resume
    const again = SqliteStateStore.open(`sqlite:${path}`);
    try {
      const [run] = await again.listRuns();
      assertStrictEquals(run.status, "failed");
      assertStrictEquals(run.result?.outcome === "failed" && run.result.error.code, STORE_FAILED);
      const steps = await again.getStepInfo(run.runId);
      assert(steps.every((s) => s.status !== "running"), JSON.stringify(steps));
      const events = await again.getEvents({ runId: run.runId });
      assertStrictEquals(events.at(-1)?.type, "run_completed");
    } finally {
      await again.close();
    }
  });
});

Deno.test("SQLite: a store closed while its commits still fail leaves the run as stored: the next open finds it interrupted (resumable)", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/runs.db`;
    const store = SqliteStateStore.open(`sqlite:${path}`, { busyTimeoutMs: 100 });
    const engine = await Engine.create(testConfig(), { store });
    const lock = new DatabaseSync(path, { timeout: 5_000 });
    let runId = "";
    try {
      const r = await runThroughFailure(engine, store, () => {
        lock.exec("BEGIN IMMEDIATE");
        return Promise.resolve();
      });
      runId = r.runId;
      assertStrictEquals(r.result.outcome === "failed" && r.result.error.code, STORE_FAILED);
      await engine.close(); // cannot write the run's end (nor mark it interrupted)
    } finally {
      lock.exec("ROLLBACK");
      lock.close();
    }
    const db = new DatabaseSync(path);
    try {
      const row = db.prepare("SELECT status FROM runs WHERE id = ?").get(runId);
      assertStrictEquals(row?.status, "running", "left as it was stored");
      // the engine's process ends (this test's process goes on: its row goes instead)
      db.exec("DELETE FROM engines");
    } finally {
      db.close();
    }
    const again = SqliteStateStore.open(`sqlite:${path}`);
    try {
      const run = await again.getRun(runId);
      assertStrictEquals(run?.status, "failed");
      assertStrictEquals(
        run?.result?.outcome === "failed" && run.result.error.code,
        RUN_INTERRUPTED,
        "as the 507 said: left as stored, then found interrupted (the service resumes it)",
      );
    } finally {
      await again.close();
    }
  });
});

pgTest(
  "PostgreSQL: failing commits make the store unhealthy until one succeeds; a run told 507 is recorded failed",
  (server) =>
    withPgDatabase(server, async (url) => {
      const { PostgresStateStore } = await import("../../src/state/postgres.ts");
      const store = await PostgresStateStore.open(url);
      const engine = await Engine.create(testConfig(), { store });
      let runId = "";
      try {
        assertEquals(await store.condition(), {
          healthy: true,
          kind: "postgres",
          database: store.database,
        });
        const r = await runThroughFailure(
          engine,
          store,
          () => refuseWrites(url, ["step_results", "runs"]),
        );
        runId = r.runId;
        const result = r.result;
        assertStrictEquals(result.outcome === "failed" && result.error.code, STORE_FAILED);
        if (result.outcome !== "failed") return;
        assertStringIncludes(result.error.message, "No space left on device");
        assertStringIncludes(result.error.message, "It is recorded failed with this error");
        const sick = await store.condition({ probe: true }); // the probe fails too
        assertStrictEquals(sick.healthy, false);
        assertStringIncludes(sick.error!, "No space left on device (SQLSTATE 53100)");
        assertStrictEquals(sick.unstoredRunEnds, 1);
        // this process shows the run as its client was told; the database still says running
        assertStrictEquals((await store.getRun(runId))?.status, "failed");
        const before = await withClient(url, (sql) => sql`SELECT status FROM runs`);
        assertStrictEquals(before[0].status, "running");

        await allowWrites(url, ["step_results", "runs"]);
        const well = await store.condition({ probe: true });
        assertStrictEquals(well.healthy, true, JSON.stringify(well));
      } finally {
        await engine.close();
      }
      const stored = await withClient(url, async (sql) => {
        const [row] = await sql`SELECT status, result_json FROM runs WHERE id = ${runId}`;
        return row;
      });
      assertStrictEquals(stored.status, "failed");
      assertStrictEquals(JSON.parse(stored.result_json as string).error.code, STORE_FAILED);
    }),
);
