/**
 * `stepflow resume` continues a run as it was started, with real processes: a `stepflow run`
 * killed with SIGKILL mid-flight is resumed without `--config` (the config file, run timeout and
 * max concurrency are stored with the run), a stored config that changed or is gone stops the
 * resume until `--config` is given, the run timeout is kept (`--timeout` replaces it), and runs
 * recorded before run options were stored still resume with `--config`. The PostgreSQL case is
 * skipped without STEPFLOW_TEST_PG_URL (tests/_postgres.ts).
 */
import { DatabaseSync } from "node:sqlite";
import {
  assert,
  assertEquals,
  assertStrictEquals,
  assertStringIncludes,
  REPO_ROOT,
  runCli,
  withTempDir,
} from "../_assert.ts";
import { pgTest, withClient, withPgDatabase } from "../_postgres.ts";
import { parseJson } from "../../src/json/exact_json.ts";
import { SqliteStateStore } from "../../src/state/sqlite.ts";
import { sha256OfBytes } from "../../src/execution/resume.ts";
import type { RunRecord } from "../../src/state/store.ts";
import { readStderr } from "./_stderr.ts";

const DIR = `${REPO_ROOT}/tests/fixtures/cli/durable`;
const WORKER = `${REPO_ROOT}/tests/fixtures/workers/journal_worker.ts`;

/** A config of built-ins and the journal step service, as a user's file (absolute worker path). */
function configText(extra = ""): string {
  return [
    "plugins:",
    "  builtin: { type: builtin }",
    "  journal:",
    "    type: stepflow",
    "    command: deno",
    `    args: [run, --quiet, -A, ${JSON.stringify(WORKER)}]`,
    'routes: { "/builtin/{*component}": [{ plugin: builtin }], "/journal/{*component}": [{ plugin: journal }] }',
    extra,
  ].join("\n") + "\n";
}

/** `<step> <attempt>` of every line of a journal file. */
async function journal(path: string): Promise<string[]> {
  const text = await Deno.readTextFile(path).catch(() => "");
  return text.split("\n").filter((l) => l !== "").map((l) => l.split(" ").slice(1, 3).join(" "));
}

async function storedRun(db: string, runId: string): Promise<RunRecord | undefined> {
  const s = SqliteStateStore.open(`sqlite:${db}?mode=ro`);
  try {
    return await s.getRun(runId);
  } finally {
    await s.close();
  }
}

/**
 * Starts `stepflow run` of tests/fixtures/cli/durable/hold_first.yaml with `args`, waits until
 * its second step runs (attempt 1 never answers), kills the process with SIGKILL and returns the
 * run id. Files: `<dir>/ready` (a FIFO), `<dir>/journal.txt`.
 */
async function runAndKill(
  dir: string,
  args: string[],
  input: Record<string, unknown> = {},
): Promise<string> {
  const ready = `${dir}/ready`;
  await Deno.remove(ready).catch(() => {});
  const mk = await new Deno.Command("mkfifo", { args: [ready] }).output();
  assert(mk.success, "mkfifo");
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--quiet",
      `${REPO_ROOT}/main.ts`,
      "run",
      "--flow",
      `${DIR}/hold_first.yaml`,
      "--input-json",
      JSON.stringify({
        value: 1,
        ready,
        journal: `${dir}/journal.txt`,
        then_delay_ms: 0,
        ...input,
      }),
      ...args,
    ],
    cwd: dir,
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const stderr = readStderr(child.stderr);
  let read = false;
  const ended = child.status.then(async () => {
    // ended before its step ran: the FIFO is opened once for writing so the read below ends
    if (!read) (await Deno.open(ready, { write: true })).close();
  });
  try {
    // the worker writes to the FIFO once the second step runs; the id was printed before
    const text = await Deno.readTextFile(ready);
    read = true;
    if (text !== "ready\n") throw new Error(`stepflow run ended first: ${await stderr.done}`);
    return (await stderr.until(/run_id: (\S+)/))[1];
  } finally {
    read = true;
    try {
      child.kill("SIGKILL");
    } catch {
      // already gone
    }
    await ended;
    await stderr.done;
  }
}

Deno.test("a run killed with SIGKILL mid-flight resumes without --config, from another directory, as it was started", async () => {
  await withTempDir(async (dir) => {
    await Deno.mkdir(`${dir}/project`);
    await Deno.mkdir(`${dir}/elsewhere`);
    const config = `${dir}/project/stepflow-config.yml`;
    await Deno.writeTextFile(config, configText());
    const runId = await runAndKill(dir, [
      "--config",
      "project/stepflow-config.yml",
      "--store",
      "runs.db",
      "--timeout",
      "10m",
      "--max-concurrency",
      "3",
    ]);
    const stored = (await storedRun(`${dir}/runs.db`, runId))?.runOptions;
    assertEquals(stored, {
      configPath: config,
      configSha256: sha256OfBytes(await Deno.readFile(config)),
      timeoutMs: 600_000,
      maxConcurrency: 3,
    });
    const resumed = await runCli(["resume", runId, "--store", "../runs.db"], {
      cwd: `${dir}/elsewhere`,
    });
    assertStrictEquals(resumed.code, 0, resumed.stderr);
    assertEquals(parseJson(resumed.stdout), {
      outcome: "success",
      result: { first: 2, attempt: 2 },
    });
    assert(!resumed.stderr.includes("note:"), resumed.stderr);
    // `first` was committed before the kill: not run again; `wait` ran again as attempt 2
    assertEquals(await journal(`${dir}/journal.txt`), ["first 1", "wait 1", "wait 2"]);
  });
});

Deno.test("a stored config that changed or is gone stops the resume; --config resumes with it", async () => {
  await withTempDir(async (dir) => {
    const config = `${dir}/stepflow-config.yml`;
    await Deno.writeTextFile(config, configText());
    const runId = await runAndKill(dir, ["--config", config, "--store", "runs.db"]);
    await Deno.writeTextFile(config, configText("# edited after the run started"));
    const changed = await runCli(["resume", runId, "--store", `${dir}/runs.db`]);
    assertStrictEquals(changed.code, 2, changed.stderr);
    assertStringIncludes(changed.stderr, `the config ${config} changed since run ${runId} started`);
    assertStringIncludes(changed.stderr, `give --config ${config}`);
    assertStringIncludes(changed.stderr, "Nothing was run");
    await Deno.rename(config, `${dir}/moved.yml`);
    const gone = await runCli(["resume", runId, "--store", `${dir}/runs.db`]);
    assertStrictEquals(gone.code, 2, gone.stderr);
    assertStringIncludes(gone.stderr, `was started with the config ${config}, which is gone`);
    assertStringIncludes(gone.stderr, "give --config FILE");
    // nothing ran meanwhile
    assertEquals(await journal(`${dir}/journal.txt`), ["first 1", "wait 1"]);
    const given = await runCli([
      "resume",
      runId,
      "--store",
      `${dir}/runs.db`,
      "--config",
      `${dir}/moved.yml`,
    ]);
    assertStrictEquals(given.code, 0, given.stderr);
    assertStringIncludes(
      given.stderr,
      `note: resuming with --config ${dir}/moved.yml; run ${runId} was started with ${config}`,
    );
    assertEquals(parseJson(given.stdout), { outcome: "success", result: { first: 2, attempt: 2 } });
  });
});

Deno.test("a resumed run keeps the run timeout it was started with; --timeout gives it a new one", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/stepflow-config.yml`, configText());
    // once resumed, the held step answers only after a minute: the run's timeout ends it first
    const runId = await runAndKill(dir, [
      "--config",
      "stepflow-config.yml",
      "--store",
      "runs.db",
      "--timeout",
      "2s",
    ], {
      then_delay_ms: 60_000,
    });
    const kept = await runCli(["resume", runId, "--store", `${dir}/runs.db`], { cwd: dir });
    assertStrictEquals(kept.code, 1, kept.stderr);
    const result = parseJson(kept.stdout) as { error: { code: number; message: string } };
    assertStrictEquals(result.error.code, 524);
    assertStringIncludes(result.error.message, "(timeout: 2000 ms)");
    assertStringIncludes(kept.stderr, "give --timeout DURATION");
    // re-driven with a limit of its own
    const given = await runCli(["resume", runId, "--store", `${dir}/runs.db`, "--timeout", "1s"]);
    assertStrictEquals(given.code, 1, given.stderr);
    assertStringIncludes(
      (parseJson(given.stdout) as { error: { message: string } }).error.message,
      "(timeout: 1000 ms)",
    );
    assert(!given.stderr.includes("give --timeout"), given.stderr);
    const bad = await runCli(["resume", runId, "--store", `${dir}/runs.db`, "--timeout", "soon"]);
    assertStrictEquals(bad.code, 2, bad.stderr);
    assertStringIncludes(bad.stderr, "--timeout");
    // the stored options are the run's as started, whatever a resume was given
    assertStrictEquals((await storedRun(`${dir}/runs.db`, runId))?.runOptions?.timeoutMs, 2000);
  });
});

Deno.test("a run recorded before run options were stored resumes with --config, and says what is missing without it", async () => {
  await withTempDir(async (dir) => {
    const db = `${dir}/runs.db`;
    const file = `${dir}/data.json`;
    const run = await runCli([
      "run",
      "--flow",
      `${DIR}/retry_file.yaml`,
      "--config",
      `${DIR}/stepflow-config.yml`,
      "--store",
      db,
      "--input-json",
      JSON.stringify({ value: 1, journal: `${dir}/journal.txt`, file }),
    ]);
    assertStrictEquals(run.code, 1, run.stderr);
    const runId = /run_id: (\S+)/.exec(run.stderr)![1];
    // the database as an older stepflow left it: no options_json, migration 0003 not applied
    const old = new DatabaseSync(db);
    try {
      old.exec("ALTER TABLE runs DROP COLUMN options_json");
      old.exec("DELETE FROM _stepflow_migrations WHERE name = '0003_run_options'");
    } finally {
      old.close();
    }
    await Deno.writeTextFile(file, '{"n": 41}');
    await Deno.mkdir(`${dir}/empty`);
    const bare = await runCli(["resume", runId, "--store", db], { cwd: `${dir}/empty` });
    assertStrictEquals(bare.code, 1, bare.stderr);
    assertStringIncludes(bare.stderr, `warning: run ${runId} has no config stored with it`);
    assertStringIncludes(bare.stderr, "give --config FILE");
    const given = await runCli([
      "resume",
      runId,
      "--store",
      db,
      "--config",
      `${DIR}/stepflow-config.yml`,
    ]);
    assertStrictEquals(given.code, 0, given.stderr);
    assertEquals(parseJson(given.stdout), {
      outcome: "success",
      result: { first: 2, last: 42 },
    });
    // migrated again on open; the old run still has no options
    assertStrictEquals((await storedRun(db, runId))?.runOptions, undefined);
  });
});

pgTest(
  "PostgreSQL: a run killed with SIGKILL resumes without --config once its lease ran out",
  (server) =>
    withPgDatabase(server, async (url) => {
      await withTempDir(async (dir) => {
        const config = `${dir}/stepflow-config.yml`;
        await Deno.writeTextFile(
          config,
          configText(`stateStore: { type: postgres, url: "${url}", leaseTtl: 1s }`),
        );
        const runId = await runAndKill(dir, ["--config", config, "--timeout", "10m"]);
        const stored = await withClient(url, async (sql) => {
          // the killed engine's lease runs out 1 s after its last renewal
          for (let i = 0; i < 200; i++) {
            const [row] = await sql`
              SELECT lease_expires_at < now() AS gone FROM runs WHERE id = ${runId}`;
            if (row?.gone) break;
            await new Promise((r) => setTimeout(r, 50));
          }
          const [row] = await sql`SELECT options_json FROM runs WHERE id = ${runId}`;
          return JSON.parse(row.options_json as string);
        });
        assertEquals(stored.configPath, config);
        assertStrictEquals(stored.timeoutMs, 600_000);
        await Deno.mkdir(`${dir}/elsewhere`);
        const resumed = await runCli(["resume", runId, "--store", url], {
          cwd: `${dir}/elsewhere`,
        });
        assertStrictEquals(resumed.code, 0, resumed.stderr);
        assertEquals(parseJson(resumed.stdout), {
          outcome: "success",
          result: { first: 2, attempt: 2 },
        });
        assertEquals(await journal(`${dir}/journal.txt`), ["first 1", "wait 1", "wait 2"]);
      });
    }),
);
