/**
 * The durable store with real `stepflow run` processes (issue 10 items 3-5, issue 12): several
 * processes on one SQLite file, write failures that fail the run, and a killed run.
 */
import {
  assert,
  assertEquals,
  assertStrictEquals,
  assertStringIncludes,
  REPO_ROOT,
  runCli,
  withTempDir,
} from "../_assert.ts";
import { parseJson } from "../../src/json/exact_json.ts";
import { SqliteStateStore } from "../../src/state/sqlite.ts";
import { RUN_INTERRUPTED, STORE_FAILED } from "../../src/state/store.ts";

const DIR = `${REPO_ROOT}/tests/fixtures/cli/durable`;
const MAIN = `${REPO_ROOT}/main.ts`;

function cli(args: string[]): Deno.Command {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", MAIN, ...args],
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  });
}

Deno.test("six stepflow run processes on one database all succeed and store every run", async () => {
  await withTempDir(async (dir) => {
    const items = Array.from({ length: 150 }, (_, i) => `item ${i}`);
    const procs = Array.from({ length: 6 }, () =>
      cli([
        "run",
        "--flow",
        `${DIR}/fan.yaml`,
        "--store",
        `${dir}/runs.db`,
        "--input-json",
        JSON.stringify({ items }),
      ]).output());
    const outs = await Promise.all(procs);
    const dec = new TextDecoder();
    for (const o of outs) {
      assertStrictEquals(o.code, 0, dec.decode(o.stderr));
      assertEquals(parseJson(dec.decode(o.stdout)), {
        outcome: "success",
        result: { successful: 150 },
      });
    }
    const s = SqliteStateStore.open(`sqlite:${dir}/runs.db`);
    try {
      const runs = await s.listRuns();
      assertStrictEquals(runs.length, 6 * 151);
      assertStrictEquals(runs.filter((r) => r.status !== "completed").length, 0);
      const roots = await s.listRuns({ rootOnly: true });
      assertStrictEquals(roots.length, 6);
      for (const root of roots) {
        assertStrictEquals((await s.listRuns({ parentRunId: root.runId })).length, 150);
        assertEquals((await s.getStepInfo(root.runId)).map((i) => i.status), ["completed"]);
      }
      const item = runs.find((r) => r.parentRunId !== undefined)!;
      assertEquals((await s.getStepResults(item.runId)).map((r) => r.stepId), ["m", "n"]);
    } finally {
      await s.close();
    }
  });
});

Deno.test("a read-only database (mode=ro) is refused before the run with exit 1, naming the database and the cause", async () => {
  await withTempDir(async (dir) => {
    const db = `${dir}/runs.db`;
    const ok = await runCli([
      "run",
      "--flow",
      `${DIR}/greet.yaml`,
      "--store",
      db,
      "--input-json",
      '{"who":"Ada"}',
    ]);
    assertStrictEquals(ok.code, 0, ok.stderr);
    const r = await runCli([
      "run",
      "--flow",
      `${DIR}/greet.yaml`,
      "--store",
      `sqlite:${db}?mode=ro`,
      "--input-json",
      '{"who":"Bo"}',
    ]);
    // refused before the run (it used to run and fail with 507 at its first commit)
    assertStrictEquals(r.code, 1, r.stderr);
    assertStrictEquals(r.stdout, "");
    assertStringIncludes(r.stderr, `SQLite database '${db}'`);
    assertStringIncludes(r.stderr, "is opened read-only (mode=ro): runs cannot be recorded in it");
    // nothing of the second run was stored
    const s = SqliteStateStore.open(`sqlite:${db}`);
    try {
      assertStrictEquals((await s.listRuns()).length, 1);
    } finally {
      await s.close();
    }
  });
});

Deno.test("a full disk (file size limit) fails the run with exit 1, naming the database", async () => {
  await withTempDir(async (dir) => {
    await Deno.mkdir(`${dir}/small`);
    // the run's input (300 KB) does not fit under a 200 KiB file size limit
    await Deno.writeTextFile(`${dir}/big.json`, JSON.stringify({ who: "a".repeat(300_000) }));
    const db = `${dir}/small/runs.db`;
    // SIGXFSZ ignored: a write past the limit fails with EFBIG instead of killing the process
    const script = `trap '' XFSZ; ulimit -f 200; exec "$0" "$@"`;
    const out = await new Deno.Command("bash", {
      args: [
        "-c",
        script,
        Deno.execPath(),
        "run",
        "-A",
        "--quiet",
        MAIN,
        "run",
        "--flow",
        `${DIR}/greet.yaml`,
        "--store",
        db,
        "--input",
        `${dir}/big.json`,
      ],
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assertStrictEquals(out.code, 1, stderr);
    const result = parseJson(new TextDecoder().decode(out.stdout)) as {
      outcome: string;
      error: { code: number; message: string };
    };
    assertStrictEquals(result.outcome, "failed");
    assertStrictEquals(result.error.code, STORE_FAILED);
    assertStringIncludes(result.error.message, `SQLite database '${db}'`);
    assertStringIncludes(result.error.message, "disk");
  });
});

Deno.test("a killed run is marked failed (interrupted) when the store is next opened", async () => {
  await withTempDir(async (dir) => {
    const db = `${dir}/runs.db`;
    const ready = `${dir}/ready`;
    const journal = `${dir}/journal.txt`;
    const mk = await new Deno.Command("mkfifo", { args: [ready] }).output();
    assert(mk.success, "mkfifo");
    const child = cli([
      "run",
      "--flow",
      `${DIR}/hold.yaml`,
      "--store",
      db,
      "--input-json",
      JSON.stringify({ value: 1, ready, journal }),
    ]).spawn();
    try {
      // the worker writes to the FIFO once the second step runs
      assertStrictEquals(await Deno.readTextFile(ready), "ready\n");
      let runId: string;
      const live = SqliteStateStore.open(`sqlite:${db}`);
      try {
        const [run] = await live.listRuns();
        runId = run.runId;
        // its engine is alive: the run stays running
        assertStrictEquals(run.status, "running");
      } finally {
        await live.close();
      }
      child.kill("SIGKILL");
      await child.status;
      const show = await runCli(["runs", "show", runId, "--store", db, "--format", "json"]);
      assertStrictEquals(show.code, 0, show.stderr);
      const detail = parseJson(show.stdout) as {
        run: { status: string; result: { error: { code: number; message: string } } };
        steps: { stepId: string; status: string }[];
      };
      assertStrictEquals(detail.run.status, "failed");
      assertStrictEquals(detail.run.result.error.code, RUN_INTERRUPTED);
      assertStringIncludes(detail.run.result.error.message, `stepflow resume ${runId}`);
      assertEquals(detail.steps.map((s) => [s.stepId, s.status]).slice(0, 1), [
        ["first", "completed"],
      ]);
      // the table says why the step that was running has no result (before: an empty cell)
      const table = await runCli(["runs", "show", runId, "--store", db]);
      assertStringIncludes(table.stdout, "no result: interrupted while running");
      const s = SqliteStateStore.open(`sqlite:${db}`);
      try {
        const types = (await s.getEvents({ runId })).map((e) => e.type);
        assertEquals(types.at(-1), "run_interrupted");
      } finally {
        await s.close();
      }
      // the first step ran once
      const lines = (await Deno.readTextFile(journal)).trim().split("\n");
      assertStrictEquals(lines.filter((l) => l.split(" ")[1] === "first").length, 1);
    } finally {
      try {
        child.kill("SIGKILL");
      } catch {
        // already gone
      }
      await child.status;
      await child.stdout.cancel();
      await child.stderr.cancel();
    }
  });
});
