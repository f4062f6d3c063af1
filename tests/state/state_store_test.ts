import {
  assert,
  assertEquals,
  assertRejects,
  assertStrictEquals,
  assertStringIncludes,
  assertThrows,
  withTempDir,
} from "../_assert.ts";
import { blobId, isBlobId } from "../../src/state/blob_id.ts";
import { MemoryStateStore } from "../../src/state/memory.ts";
import { SqliteStateStore } from "../../src/state/sqlite.ts";
import { parseSqliteUrl } from "../../src/config/store_url.ts";
import { type StateStore, StoreError } from "../../src/state/store.ts";
import { createStateStore, openStateStore, storeConfigFromUrl } from "../../src/state/create.ts";
import {
  describePostgresUrl,
  postgresEnvVars,
  postgresNetHost,
} from "../../src/state/postgres_url.ts";
import { parseJson, stringifyJson } from "../../src/json/exact_json.ts";
import { pgTest, withPgDatabase } from "../_postgres.ts";
import { DatabaseSync } from "node:sqlite";

Deno.test("blobId() equals stepflow 0.8's ids (SHA-256 of compact JSON in insertion order)", () => {
  // From the 0.8 test suite (tests/builtins/blob_test.yaml).
  assertStrictEquals(
    blobId({ message: "Hello, blobs!", number: 42, nested: { array: [1, 2, 3], boolean: true } }),
    "868591347a854ba1d0f4875b2dd44e1e8335052af03725a9819f89e0142318b0",
  );
  assertStrictEquals(
    blobId({ simple: "test", complex: { deeply: { nested: { value: "works" } } } }),
    "aa05cc227a02bd66a2a91fde7500be122d28e87c45832d1aa9cb0b432eef7e04",
  );
  // Exact numbers hash as written.
  const a = blobId(parseJson('{"x":15.0}'));
  const b = blobId(parseJson('{"x":15}'));
  assertStrictEquals(a === b, false);
  assertStrictEquals(isBlobId(a), true);
});

async function exercise(store: StateStore) {
  const id = store.putBlob(parseJson('{"n":9007199254740993}'), "data");
  assertStrictEquals(store.putBlob(parseJson('{"n":9007199254740993}'), "data"), id);
  const blob = await store.getBlob(id);
  assertStrictEquals(stringifyJson(blob?.data), '{"n":9007199254740993}');
  assertStrictEquals(await store.getBlob("0".repeat(64)), undefined);
  store.createRun({
    runId: "r1",
    flowId: "f",
    status: "running",
    input: { a: 1 },
    createdAt: new Date().toISOString(),
  });
  store.recordStepResult("r1", { stepIndex: 1, stepId: "b", result: { outcome: "skipped" } });
  store.recordStepResult("r1", {
    stepIndex: 0,
    stepId: "a",
    result: { outcome: "success", result: 1 },
  });
  store.completeRun("r1", "completed", { outcome: "success", result: 2 });
  const run = await store.getRun("r1");
  assertStrictEquals(run?.status, "completed");
  assertEquals(run?.result, { outcome: "success", result: 2 });
  assertEquals((await store.getStepResults("r1")).map((s) => s.stepId), ["a", "b"]);
  store.createBatch({
    batchId: "b1",
    flowId: "f",
    totalInputs: 2,
    status: "running",
    createdAt: new Date().toISOString(),
  });
  store.addBatchRun("b1", "r2", 1);
  store.addBatchRun("b1", "r1", 0);
  assertEquals((await store.getBatchRuns("b1")).map((r) => r.runId).sort(), ["r1", "r2"]);
  assertStrictEquals((await store.getBatch("b1"))?.totalInputs, 2);
  assertStrictEquals((await store.listRuns()).length, 1);
}

Deno.test("MemoryStateStore stores blobs, runs, step results and batches", async () => {
  const s = new MemoryStateStore();
  await exercise(s);
  await s.close();
});

Deno.test("SqliteStateStore stores the same, in 0.8's tables, and survives reopening a file", async () => {
  const mem = SqliteStateStore.open("sqlite::memory:");
  await exercise(mem);
  await mem.close();
  await withTempDir(async (dir) => {
    const url = `sqlite:${dir}/state.db?mode=rwc`;
    const s1 = SqliteStateStore.open(url);
    const id = s1.putBlob({ k: "v" }, "data");
    await s1.close();
    const s2 = SqliteStateStore.open(url);
    assertEquals((await s2.getBlob(id))?.data, { k: "v" });
    await s2.close();
  });
});

Deno.test("parseSqliteUrl() reads memory, relative and absolute URLs and rejects others", () => {
  assertEquals(parseSqliteUrl("sqlite::memory:"), { path: ":memory:", mode: "rwc" });
  assertEquals(parseSqliteUrl("sqlite:x.db?mode=rw", "/w"), { path: "/w/x.db", mode: "rw" });
  assertEquals(parseSqliteUrl("sqlite:///tmp/x.db"), { path: "/tmp/x.db", mode: "rwc" });
  assertThrows(() => parseSqliteUrl("postgres://x"), Error, "Invalid SQLite databaseUrl");
});

Deno.test("SqliteStateStore.open() adds its extra columns to a database created by stepflow 0.8", async () => {
  await withTempDir(async (dir) => {
    const { DatabaseSync } = await import("node:sqlite");
    const db = new DatabaseSync(`${dir}/old.db`);
    db.exec(`CREATE TABLE runs (id TEXT PRIMARY KEY, flow_id TEXT NOT NULL, flow_name TEXT,
      flow_label TEXT, status TEXT NOT NULL DEFAULT 'running', debug_mode INTEGER NOT NULL DEFAULT 0,
      input_json TEXT, result_json TEXT, created_at TEXT NOT NULL, completed_at TEXT,
      overrides_json TEXT);
      CREATE TABLE step_results (run_id TEXT NOT NULL, step_index INTEGER NOT NULL,
      step_id TEXT NOT NULL, result TEXT NOT NULL, PRIMARY KEY (run_id, step_index));`);
    db.close();
    const s = SqliteStateStore.open(`sqlite:${dir}/old.db`);
    s.createRun({
      runId: "r",
      flowId: "f",
      status: "running",
      input: null,
      createdAt: new Date().toISOString(),
      parentRunId: "p",
    });
    s.recordStepResult("r", { stepIndex: 0, stepId: "a", result: { outcome: "skipped" } });
    assertStrictEquals((await s.getRun("r"))?.parentRunId, "p");
    assertStrictEquals((await s.getStepResults("r")).length, 1);
    await s.close();
  });
});

Deno.test("openStateStore(): a file that is not a database names the setting and the file", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/junk.db`, "not a database, just text\n");
    await assertRejects(
      () =>
        openStateStore({ type: "sqlite", databaseUrl: "sqlite:junk.db", autoMigrate: true }, dir),
      Error,
      `stateStore.databaseUrl 'sqlite:junk.db': cannot open '${dir}/junk.db': file is not a database (point databaseUrl at a new file`,
    );
  });
});

Deno.test("openStateStore(): a damaged database says to restore or recover it, not to point elsewhere", async () => {
  await withTempDir(async (dir) => {
    // a stepflow database cut short (a copy interrupted, a disk failing): was told "point
    // databaseUrl at a new file, or at a database written by stepflow", which it is
    const src = openStateStore(
      { type: "sqlite", databaseUrl: "sqlite:whole.db", autoMigrate: true },
      dir,
    );
    await (await src).close();
    const bytes = await Deno.readFile(`${dir}/whole.db`);
    await Deno.writeFile(`${dir}/cut.db`, bytes.subarray(0, 20_000));
    await assertRejects(
      () =>
        openStateStore({ type: "sqlite", databaseUrl: "sqlite:cut.db", autoMigrate: true }, dir),
      Error,
      "malformed (the file is damaged: stop the processes using it, then restore a backup or " +
        "rescue what is left with `sqlite3 FILE .recover`)",
    );
  });
});

Deno.test("createStateStore(): inMemory retention settings from the config", async () => {
  const { parseConfigValue } = await import("../../src/config/load.ts");
  const loaded = parseConfigValue({
    plugins: {},
    stateStore: { type: "inMemory", maxFinishedRuns: 1, maxFinishedAge: "1h" },
  }, { workingDirectory: "/" });
  const s = createStateStore(loaded.config.stateStore, "/");
  for (const id of ["a", "b"]) {
    s.createRun({ runId: id, flowId: "f", status: "running", input: null, createdAt: "x" });
    s.completeRun(id, "completed");
  }
  assertEquals((await s.listRuns()).map((r) => r.runId), ["b"]);
  await s.close();
});

Deno.test("--store postgres://: a PostgreSQL store config; shown without password or query", () => {
  assertEquals(storeConfigFromUrl("postgres://ada:pw@db.internal:5433/runs?sslmode=require"), {
    type: "postgres",
    url: "postgres://ada:pw@db.internal:5433/runs?sslmode=require",
    autoMigrate: true,
  });
  assertStrictEquals(storeConfigFromUrl("postgresql://db/runs").type, "postgres");
  const e = assertThrows(() => storeConfigFromUrl("postgres://ada:pw@[::1/runs"), Error);
  assertStrictEquals(e.message.includes("pw"), false);
  assertThrows(() => storeConfigFromUrl("mysql://db/runs"), Error, "expected sqlite:FILE");
  assertStrictEquals(
    describePostgresUrl("postgres://ada:p%40ss@db.internal:5433/runs?password=x"),
    "postgres://ada@db.internal:5433/runs",
  );
  assertStrictEquals(describePostgresUrl("postgres://ada:pw@[::1/runs"), "postgres://[::1/runs");
  assertStrictEquals(postgresNetHost("postgres://ada:pw@db.internal/runs"), "db.internal:5432");
  assertEquals(postgresEnvVars("postgres://ada:pw@db:5432/runs"), [
    "PGAPPNAME",
    "PGTARGETSESSIONATTRS",
  ]);
  assert(postgresEnvVars("postgres://db/runs").includes("PGPASSWORD"));
  assertThrows(
    () => createStateStore({ type: "postgres", url: "postgres://db/x", autoMigrate: true }, "."),
    Error,
    "openStateStore",
  );
});

Deno.test("PostgresStateStore.open() names an unreachable database without its password", async () => {
  const { PostgresStateStore } = await import("../../src/state/postgres.ts");
  const e = await assertRejects(
    () => PostgresStateStore.open("postgres://ada:hunter2@127.0.0.1:1/runs"),
    StoreError,
  );
  assertStringIncludes(
    e.message,
    "cannot open PostgreSQL database 'postgres://ada@127.0.0.1:1/runs'",
  );
  assertStringIncludes(e.message, "ECONNREFUSED");
  assertStrictEquals(e.message.includes("hunter2"), false);
  assertStrictEquals((e as StoreError).database, "postgres://ada@127.0.0.1:1/runs");
});

async function exerciseListBatches(store: StateStore) {
  const batch = (batchId: string, createdAt: string, extra: Record<string, unknown> = {}) =>
    store.createBatch({
      batchId,
      flowId: "f",
      totalInputs: 1,
      status: "running",
      createdAt,
      ...extra,
    });
  batch("x", "2025-01-01T00:00:00.000Z", { flowName: "one" });
  batch("y", "2025-01-02T00:00:00.000Z");
  // a status change writes the record again
  batch("x", "2025-01-01T00:00:00.000Z", { flowName: "one", status: "cancelled" });
  const ids = async (f?: Parameters<NonNullable<StateStore["listBatches"]>>[0]) =>
    (await store.listBatches!(f)).map((b) => b.batchId);
  assertEquals(await ids(), ["y", "x"]);
  assertEquals(await ids({ status: "cancelled" }), ["x"]);
  assertEquals(await ids({ flowName: "one" }), ["x"]);
  assertEquals(await ids({ limit: 1, offset: 1 }), ["x"]);
  assertStrictEquals((await store.listBatches!({ status: "running" }))[0].flowName, undefined);
}

Deno.test("listBatches(filter): newest first, by status and flow name, paged", async () => {
  await exerciseListBatches(new MemoryStateStore());
  const s = SqliteStateStore.open("sqlite::memory:");
  await exerciseListBatches(s);
  await s.close();
});

pgTest(
  "PostgresStateStore: listBatches(filter): newest first, by status and flow name, paged",
  (server) =>
    withPgDatabase(server, async (url) => {
      const { PostgresStateStore } = await import("../../src/state/postgres.ts");
      const s = await PostgresStateStore.open(url);
      try {
        await exerciseListBatches(s);
      } finally {
        await s.close();
      }
    }),
);

/** A batch's maxConcurrency is stored (migration 0004), and the batch of a run is found. */
async function exerciseBatchLimit(store: StateStore) {
  const at = "2025-01-01T00:00:00.000Z";
  store.createBatch({
    batchId: "z",
    flowId: "f",
    totalInputs: 2,
    status: "running",
    createdAt: at,
    maxConcurrency: 2,
  });
  store.createBatch({
    batchId: "w",
    flowId: "f",
    totalInputs: 1,
    status: "running",
    createdAt: at,
  });
  store.addBatchRun("z", "r1", 1);
  store.addBatchRun("w", "r2", 0);
  await store.flush();
  assertStrictEquals((await store.getBatch("z"))?.maxConcurrency, 2);
  assertStrictEquals("maxConcurrency" in (await store.getBatch("w"))!, false);
  assertStrictEquals((await store.getBatchOfRun!("r1"))?.batchId, "z");
  assertStrictEquals((await store.getBatchOfRun!("r1"))?.maxConcurrency, 2);
  assertStrictEquals((await store.getBatchOfRun!("r2"))?.maxConcurrency, undefined);
  assertStrictEquals(await store.getBatchOfRun!("nope"), undefined);
}

Deno.test("SqliteStateStore: a batch's maxConcurrency is stored, and getBatchOfRun finds a run's batch", async () => {
  const s = SqliteStateStore.open("sqlite::memory:");
  try {
    await exerciseBatchLimit(s);
  } finally {
    await s.close();
  }
});

pgTest(
  "PostgresStateStore: a batch's maxConcurrency is stored, and getBatchOfRun finds a run's batch",
  (server) =>
    withPgDatabase(server, async (url) => {
      const { PostgresStateStore } = await import("../../src/state/postgres.ts");
      const s = await PostgresStateStore.open(url);
      try {
        await exerciseBatchLimit(s);
      } finally {
        await s.close();
      }
    }),
);

Deno.test("SqliteStateStore: a blob still queued is read back without forcing a commit", async () => {
  await withTempDir(async (dir) => {
    const s = SqliteStateStore.open(`sqlite:${dir}/b.db`);
    try {
      const id = s.putBlob(parseJson('{"n":9007199254740993}'), "data");
      const other = new DatabaseSync(`${dir}/b.db`, { readOnly: true });
      try {
        const got = await s.getBlob(id);
        assertStrictEquals(stringifyJson(got?.data), '{"n":9007199254740993}');
        assertStrictEquals(got?.blobType, "data");
        // read from memory: not committed yet
        assertStrictEquals(other.prepare("SELECT id FROM blobs WHERE id = ?").get(id), undefined);
        await s.flush();
        assertStrictEquals(
          (other.prepare("SELECT id FROM blobs WHERE id = ?").get(id) as { id: string }).id,
          id,
        );
        assertStrictEquals(stringifyJson((await s.getBlob(id))?.data), '{"n":9007199254740993}');
      } finally {
        other.close();
      }
    } finally {
      await s.close();
    }
  });
});
