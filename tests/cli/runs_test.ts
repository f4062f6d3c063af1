/**
 * `stepflow runs list|show|prune` and `stepflow signal` on a database written by real runs.
 */
import {
  assert,
  assertEquals,
  assertMatch,
  assertStrictEquals,
  assertStringIncludes,
  REPO_ROOT,
  runCli,
  withTempDir,
} from "../_assert.ts";
import { parseJson } from "../../src/json/exact_json.ts";
import { SqliteStateStore } from "../../src/state/sqlite.ts";
import { parseAge, parseSince } from "../../src/cli/runs.ts";

const DIR = `${REPO_ROOT}/tests/fixtures/cli/durable`;

type Summary = { runId: string; status: string; flowName?: string; outcome?: string };

/** Runs fan.yaml (2 items) and greet.yaml twice (one fails) into `db`; returns the run ids. */
async function record(db: string): Promise<{ fan: string; ok: string; bad: string }> {
  const ids: string[] = [];
  for (
    const [flow, input] of [
      ["fan.yaml", { items: ["x", "y"] }],
      ["greet.yaml", { who: "Ada" }],
      ["greet.yaml", { nobody: true }],
    ] as const
  ) {
    const r = await runCli([
      "run",
      "--flow",
      `${DIR}/${flow}`,
      "--store",
      db,
      "--input-json",
      JSON.stringify(input),
    ]);
    const m = /run_id: (\S+)/.exec(r.stderr);
    assert(m, `run id on stderr: ${r.stderr}`);
    ids.push(m[1]);
  }
  return { fan: ids[0], ok: ids[1], bad: ids[2] };
}

Deno.test("stepflow runs list: newest first, filters, JSON and table", async () => {
  await withTempDir(async (dir) => {
    const db = `${dir}/runs.db`;
    const { fan, ok, bad } = await record(db);
    const list = async (...args: string[]) => {
      const r = await runCli(["runs", "list", "--store", db, "--format", "json", ...args]);
      assertStrictEquals(r.code, 0, r.stderr);
      return parseJson(r.stdout) as Summary[];
    };
    assertEquals((await list()).map((r) => r.runId), [bad, ok, fan]);
    assertStrictEquals((await list("--all")).length, 5);
    assertEquals((await list("--status", "failed")).map((r) => r.runId), [bad]);
    assertEquals((await list("--flow", "fan")).map((r) => r.runId), [fan]);
    assertEquals((await list("--limit", "1")).map((r) => r.runId), [bad]);
    assertStrictEquals((await list("--since", "1h")).length, 3);
    assertStrictEquals((await list("--since", "2999-01-01T00:00:00Z")).length, 0);
    assertStrictEquals((await list("--since", "2999-01-01")).length, 0);
    for (const since of ["99999-01-01", "0", "2026-02-30"]) { // used to list every run
      const r = await runCli(["runs", "list", "--store", db, "--since", since]);
      assertStrictEquals(r.code, 2, `${since}: ${r.stdout}`);
      assertStringIncludes(r.stderr, `--since must be a duration ago (1h, 7d) or an RFC 3339`);
    }
    const first = (await list())[2];
    assertStrictEquals(first.outcome, "success");
    const table = await runCli(["runs", "list", "--store", db]);
    assertStrictEquals(table.code, 0, table.stderr);
    const lines = table.stdout.trimEnd().split("\n");
    assertMatch(lines[0], /^RUN ID\s+STATUS\s+FLOW\s+CREATED\s+DURATION\s+RESULT$/);
    assertStringIncludes(lines[1], `${bad}  failed`);
    assertStrictEquals(lines.length, 4);
    const badUsage = await runCli(["runs", "list", "--store", db, "--status", "done"]);
    assertStrictEquals(badUsage.code, 2);
    assertStringIncludes(badUsage.stderr, "--status must be one of queued, running, completed");
  });
});

Deno.test("stepflow runs show: steps with status, attempts and result; nested runs; unknown id", async () => {
  await withTempDir(async (dir) => {
    const db = `${dir}/runs.db`;
    const { fan, bad } = await record(db);
    const r = await runCli(["runs", "show", fan, "--store", db]);
    assertStrictEquals(r.code, 0, r.stderr);
    assertStringIncludes(r.stdout, `run:       ${fan}`);
    assertStringIncludes(r.stdout, "status:    completed");
    assertMatch(r.stdout, /0\s+each\s+\/builtin\/map\s+completed\s+1\s+/);
    assertStringIncludes(r.stdout, "nested runs: 2");
    const j = await runCli(["runs", "show", bad, "--store", db, "--format", "json"]);
    const detail = parseJson(j.stdout) as {
      run: { status: string; result: { error: { message: string } } };
      steps: unknown[];
    };
    assertStrictEquals(detail.run.status, "failed");
    // the step's input could not be resolved: the run aborted before the step ran (0.8)
    assertStringIncludes(detail.run.result.error.message, "step 'hello'");
    assertEquals(detail.steps, []);
    // before: "no step has started", also for a run interrupted inside a /map step (built-ins
    // are recorded only when they finish)
    const table = await runCli(["runs", "show", bad, "--store", db]);
    assertStringIncludes(table.stdout, "no step recorded yet (steps without side effects");
    const none = await runCli(["runs", "show", "nope", "--store", db]);
    assertStrictEquals(none.code, 1);
    assertStringIncludes(none.stderr, "no run 'nope'");
  });
});

Deno.test("stepflow runs prune --older-than deletes finished runs with their nested runs", async () => {
  await withTempDir(async (dir) => {
    const db = `${dir}/runs.db`;
    await record(db);
    const keep = await runCli(["runs", "prune", "--older-than", "30d", "--store", db]);
    assertStrictEquals(keep.code, 0, keep.stderr);
    assertStringIncludes(keep.stderr, "deleted 0 runs");
    const all = await runCli(["runs", "prune", "--older-than", "0s", "--store", db]);
    assertStrictEquals(all.code, 0, all.stderr);
    assertStringIncludes(all.stderr, "deleted 5 runs");
    const s = SqliteStateStore.open(`sqlite:${db}`);
    try {
      assertEquals(await s.listRuns(), []);
      assertEquals(await s.getEvents({}), []);
    } finally {
      await s.close();
    }
    const bad = await runCli(["runs", "prune", "--older-than", "soon", "--store", db]);
    assertStrictEquals(bad.code, 2);
    assertStringIncludes(bad.stderr, "--older-than must be a duration such as 30d");
  });
});

Deno.test("stepflow runs without a persistent store says how to name one", async () => {
  await withTempDir(async (dir) => {
    const r = await runCli(["runs", "list"], { cwd: dir });
    assertStrictEquals(r.code, 2);
    assertStringIncludes(r.stderr, "no run history");
    assertStringIncludes(r.stderr, "--store sqlite:FILE");
    const m = await runCli(["runs", "list", "--store", "memory"], { cwd: dir });
    assertStrictEquals(m.code, 2);
    const pg = await runCli(["runs", "list", "--store", "postgres://ada:pw-x@/y"], { cwd: dir });
    assertStrictEquals(pg.code, 2);
    assertStringIncludes(pg.stderr, "Invalid PostgreSQL URL 'postgres:///y'");
    assertStrictEquals(pg.stderr.includes("pw-x"), false);
  });
});

Deno.test("stepflow signal stores a signal for a waiting run; refuses finished and unknown runs", async () => {
  await withTempDir(async (dir) => {
    const db = `${dir}/runs.db`;
    const { ok } = await record(db);
    const s0 = SqliteStateStore.open(`sqlite:${db}`);
    s0.createRun({
      runId: "waiting",
      flowId: "f".repeat(64),
      status: "paused",
      input: null,
      createdAt: new Date().toISOString(),
    });
    await s0.close();
    const r = await runCli([
      "signal",
      "waiting",
      "approve",
      "--data-json",
      '{"ok":true,"n":9007199254740993}',
      "--store",
      db,
    ]);
    assertStrictEquals(r.code, 0, r.stderr);
    const sig = parseJson(r.stdout) as { id: number; name: string; runId: string };
    assertStrictEquals(sig.name, "approve");
    assertStrictEquals(sig.runId, "waiting");
    assertStringIncludes(r.stdout, '"n":9007199254740993');
    const s = SqliteStateStore.open(`sqlite:${db}`);
    try {
      const [stored] = await s.getSignals("waiting");
      assertStrictEquals(stored.id, sig.id);
      const taken = await s.consumeSignal("waiting", "approve", "waiting/w");
      assertStringIncludes(JSON.stringify(taken?.data), '"ok":true');
    } finally {
      await s.close();
    }
    const done = await runCli(["signal", ok, "approve", "--store", db]);
    assertStrictEquals(done.code, 1);
    assertStringIncludes(done.stderr, "is completed; a signal cannot change it");
    const unknown = await runCli(["signal", "nope", "approve", "--store", db]);
    assertStrictEquals(unknown.code, 1);
    assertStringIncludes(unknown.stderr, "no run 'nope'");
  });
});

Deno.test("parseAge() and parseSince() read durations and instants", () => {
  assertStrictEquals(parseAge("30d", "x"), 30 * 86_400_000);
  assertStrictEquals(parseAge("2w", "x"), 14 * 86_400_000);
  assertStrictEquals(parseAge("1.5h", "x"), 5_400_000);
  assertStrictEquals(
    parseSince("1h", Date.parse("2024-05-01T10:00:00Z")),
    "2024-05-01T09:00:00.000Z",
  );
  assertStrictEquals(parseSince("2024-05-01T12:00:00+02:00", 0), "2024-05-01T10:00:00.000Z");
});

Deno.test("runs list --since / prune --older-than: an age reaching before year 0000 means 0000-01-01 (was: 'Invalid time value', exit 1)", async () => {
  const now = Date.parse("2024-05-01T10:00:00Z");
  for (const age of ["99999999999w", `1${"0".repeat(400)}d`]) {
    assertStrictEquals(parseSince(age, now), "0000-01-01T00:00:00.000Z");
  }
  await withTempDir(async (dir) => {
    const made = await runCli([
      "run",
      "--flow",
      `${DIR}/greet.yaml`,
      "--input-json",
      '{"who":"a"}',
      "--store",
      "runs.db",
    ], { cwd: dir });
    assertStrictEquals(made.code, 0, made.stderr);
    const prune = await runCli(
      ["runs", "prune", "--older-than", "99999999999w", "--store", "runs.db"],
      { cwd: dir },
    );
    assertStrictEquals(prune.code, 0, prune.stderr);
    assertStringIncludes(prune.stderr, "deleted 0 runs");
    const list = await runCli(
      ["runs", "list", "--since", "99999999999w", "--format", "json", "--store", "runs.db"],
      { cwd: dir },
    );
    assertStrictEquals(list.code, 0, list.stderr);
    assertStrictEquals(JSON.parse(list.stdout).length, 1);
  });
});

Deno.test("stepflow permissions --store: the database of run --store is readable and writable", async () => {
  await withTempDir(async (dir) => {
    const r = await runCli(["permissions", "--flow", `${DIR}/greet.yaml`, "--store", "runs.db"], {
      cwd: dir,
    });
    assertStrictEquals(r.code, 0, r.stderr);
    assertMatch(r.stdout, /--allow-read=[^ ]*\.\/runs\.db/);
    assertMatch(r.stdout, /--allow-write=\.\/runs\.db/);
  });
});
