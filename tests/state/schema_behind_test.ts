/**
 * A database written by an older stepflow (before migration 0003_run_options, which added
 * `runs.options_json`) opened with `autoMigrate: false` (issue 13, wave 6). Before: it opened,
 * and every run then failed with 507 "table runs has no column named options_json" (`stepflow
 * run`, every run of `stepflow serve`). Now opening it says which migration it lacks, what that
 * adds, and what to do — in `stepflow run`, `stepflow serve`, `stepflow runs ...`, for SQLite and
 * PostgreSQL — and reading it as it is with `?mode=ro` still works.
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import {
  assertRejects,
  assertStrictEquals,
  assertStringIncludes,
  assertThrows,
  runCli,
  withTempDir,
} from "../_assert.ts";
import { SqliteStateStore } from "../../src/state/sqlite.ts";
import { pgTest, withClient, withPgDatabase } from "../_postgres.ts";

const FLOW = `schema: https://stepflow.org/schemas/v1/flow.json
name: hi
steps:
  - id: a
    component: /builtin/create_messages
    input: { user_prompt: hi }
output: { $from: { step: a } }
`;

function configText(store: string): string {
  return `plugins:
  builtin: { type: builtin }
routes:
  "/builtin/{*component}": [{ plugin: builtin }]
stateStore: ${store}
`;
}

/** A database with one run, as a stepflow before migration 0003 left it. */
async function olderDatabase(dir: string): Promise<string> {
  const db = `${dir}/runs.db`;
  await Deno.writeTextFile(`${dir}/flow.yaml`, FLOW);
  await Deno.writeTextFile(`${dir}/stepflow-config.yml`, configText("{ type: inMemory }"));
  const r = await runCli(["run", "--flow", "flow.yaml", "--store", db, "--input-json", "{}"], {
    cwd: dir,
  });
  assertStrictEquals(r.code, 0, r.stderr);
  const old = new DatabaseSync(db);
  try {
    old.exec("ALTER TABLE runs DROP COLUMN options_json");
    old.exec("DELETE FROM _stepflow_migrations WHERE name = '0003_run_options'");
  } finally {
    old.close();
  }
  await Deno.writeTextFile(
    `${dir}/stepflow-config.yml`,
    configText(`{ type: sqlite, databaseUrl: "sqlite:runs.db", autoMigrate: false }`),
  );
  return db;
}

function assertExplains(text: string, database: string): void {
  assertStringIncludes(text, `${database} was written by an older stepflow`);
  assertStringIncludes(
    text,
    "0003_run_options (how each run was started: column runs.options_json)",
  );
  assertStringIncludes(text, "Open it once with autoMigrate: true to upgrade it");
  if (text.includes("no such column") || text.includes("has no column named")) {
    throw new Error(`a bare SQLite error: ${text}`);
  }
}

Deno.test("SQLite before migration 0003 with autoMigrate: false: opening says what it lacks and what to do; ?mode=ro reads it", async () => {
  await withTempDir(async (dir) => {
    const db = await olderDatabase(dir);
    const e = assertThrows(() => SqliteStateStore.open(`sqlite:${db}`, { autoMigrate: false }));
    assertExplains((e as Error).message, `SQLite database '${db}'`);
    assertStringIncludes((e as Error).message, "?mode=ro");
    const ro = SqliteStateStore.open(`sqlite:${db}?mode=ro`, { autoMigrate: false });
    try {
      const runs = await ro.listRuns();
      assertStrictEquals(runs.length, 1);
      assertStrictEquals(runs[0].status, "completed");
    } finally {
      await ro.close();
    }
  });
});

Deno.test("SQLite before migration 0003 with autoMigrate: false: stepflow run, serve and runs say so (it was a bare 'no column' 507 on every run)", async () => {
  await withTempDir(async (dir) => {
    const db = await olderDatabase(dir);
    const where = `SQLite database '${db}'`;
    const run = await runCli(["run", "--flow", "flow.yaml", "--input-json", "{}"], { cwd: dir });
    assertStrictEquals(run.code, 1, run.stderr);
    assertStrictEquals(run.stdout, "");
    assertExplains(run.stderr, where);
    const serve = await runCli(["serve", "--port", "0"], { cwd: dir });
    assertStrictEquals(serve.code, 1, serve.stderr);
    assertStringIncludes(serve.stderr, "error: cannot open the state store");
    assertExplains(serve.stderr, where);
    const list = await runCli(["runs", "list"], { cwd: dir });
    assertStrictEquals(list.code, 1, list.stderr);
    assertExplains(list.stderr, where);
    // as it says: read it as it is, or let it be upgraded
    const ro = await runCli(["runs", "list", "--store", `sqlite:${db}?mode=ro`], { cwd: dir });
    assertStrictEquals(ro.code, 0, ro.stderr);
    assertStringIncludes(ro.stdout, "completed");
    const up = await runCli(["run", "--flow", "flow.yaml", "--store", db, "--input-json", "{}"], {
      cwd: dir,
    });
    assertStrictEquals(up.code, 0, up.stderr);
    const again = await runCli(["run", "--flow", "flow.yaml", "--input-json", "{}"], { cwd: dir });
    assertStrictEquals(again.code, 0, again.stderr);
  });
});

pgTest(
  "PostgreSQL before migration 0003 with autoMigrate: false: opening says what it lacks and what to do",
  (server) =>
    withPgDatabase(server, async (url) => {
      const { PostgresStateStore } = await import("../../src/state/postgres.ts");
      const store = await PostgresStateStore.open(url); // migrated
      const database = store.database;
      await store.close();
      await withClient(url, (sql) =>
        sql.unsafe(`ALTER TABLE runs DROP COLUMN options_json;
          DELETE FROM _stepflow_migrations WHERE name = '0003_run_options'`));
      const e = await assertRejects(() => PostgresStateStore.open(url, { autoMigrate: false }));
      assertExplains((e as Error).message, `PostgreSQL database '${database}'`);
      await withTempDir(async (dir) => {
        await Deno.writeTextFile(`${dir}/flow.yaml`, FLOW);
        await Deno.writeTextFile(
          `${dir}/stepflow-config.yml`,
          configText(`{ type: postgres, url: "${url}", autoMigrate: false }`),
        );
        const run = await runCli(["run", "--flow", "flow.yaml", "--input-json", "{}"], {
          cwd: dir,
        });
        assertStrictEquals(run.code, 1, run.stderr);
        assertExplains(run.stderr, `PostgreSQL database '${database}'`);
        const serve = await runCli(["serve", "--port", "0"], { cwd: dir });
        assertStrictEquals(serve.code, 1, serve.stderr);
        assertExplains(serve.stderr, `PostgreSQL database '${database}'`);
      });
    }),
);
