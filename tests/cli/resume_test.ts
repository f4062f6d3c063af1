/**
 * `stepflow resume` and `/builtin/wait_for` with real processes (issue 12): a failed run re-driven
 * from its failed step, a run paused at two signals and killed between them, and the runs that
 * cannot be resumed.
 */
import {
  assertEquals,
  assertStrictEquals,
  assertStringIncludes,
  REPO_ROOT,
  runCli,
  withTempDir,
} from "../_assert.ts";
import { parseJson } from "../../src/json/exact_json.ts";
import { SqliteStateStore } from "../../src/state/sqlite.ts";
import { readStderr } from "./_stderr.ts";

const DIR = `${REPO_ROOT}/tests/fixtures/cli/durable`;
const CONFIG = `${DIR}/stepflow-config.yml`;

/** `<run> <step> <attempt>` of every line of a journal file. */
async function journal(path: string): Promise<string[]> {
  const text = await Deno.readTextFile(path).catch(() => "");
  return text.split("\n").filter((l) => l !== "").map((l) => l.split(" ").slice(1, 3).join(" "));
}

async function statusOf(db: string, runId: string): Promise<string | undefined> {
  const s = SqliteStateStore.open(`sqlite:${db}?mode=ro`);
  try {
    return (await s.getRun(runId))?.status;
  } finally {
    await s.close();
  }
}

Deno.test("stepflow resume re-drives a failed run from its failed step, keeping what succeeded", async () => {
  await withTempDir(async (dir) => {
    const db = `${dir}/runs.db`;
    const j = `${dir}/journal.txt`;
    const file = `${dir}/data.json`;
    const input = JSON.stringify({ value: 1, journal: j, file });
    const run = await runCli([
      "run",
      "--flow",
      `${DIR}/retry_file.yaml`,
      "--config",
      CONFIG,
      "--store",
      db,
      "--input-json",
      input,
    ]);
    assertStrictEquals(run.code, 1, run.stderr);
    const runId = /run_id: (\S+)/.exec(run.stderr)![1];
    await Deno.writeTextFile(file, '{"n": 41}');
    const resumed = await runCli(["resume", runId, "--config", CONFIG, "--store", db]);
    assertStrictEquals(resumed.code, 0, resumed.stderr);
    assertEquals(parseJson(resumed.stdout), { outcome: "success", result: { first: 2, last: 42 } });
    // `first` succeeded before: not run again; `last` ran once, after the resume
    assertEquals(await journal(j), ["first 1", "last 1"]);
    // a completed run cannot be resumed
    const again = await runCli(["resume", runId, "--config", CONFIG, "--store", db]);
    assertStrictEquals(again.code, 1);
    assertStringIncludes(again.stderr, "nothing to resume");
    const unknown = await runCli(["resume", crypto.randomUUID(), "--store", db]);
    assertStrictEquals(unknown.code, 1);
    assertStringIncludes(unknown.stderr, "no run");
    const bad = await runCli(["resume", runId, "--store", db, "--from", "middle"]);
    assertStrictEquals(bad.code, 2);
  });
});

Deno.test("a run paused at two signals, killed between them, signalled and resumed has both values", async () => {
  await withTempDir(async (dir) => {
    const db = `${dir}/runs.db`;
    const j = `${dir}/journal.txt`;
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "--quiet",
        `${REPO_ROOT}/main.ts`,
        "run",
        "--flow",
        `${DIR}/approve.yaml`,
        "--config",
        CONFIG,
        "--store",
        db,
        "--input-json",
        JSON.stringify({ value: 1, journal: j }),
      ],
      env: { NO_COLOR: "1" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const stderr = readStderr(child.stderr);
    const stdout = new Response(child.stdout).text();
    try {
      // awaits the line itself (the text is read from the pipe before it is checked)
      const runId = (await stderr.until(/run_id: (\S+)/))[1];
      const waitStatus = async (status: string, steps: number) => {
        for (let i = 0; i < 2000; i++) {
          if (
            (await journal(j)).length >= steps && await statusOf(db, runId!) === status
          ) return;
          await new Promise((r) => setTimeout(r, 10));
        }
        throw new Error(`run not ${status} after ${steps} steps: ${stderr.text}`);
      };
      await waitStatus("paused", 1);
      // printed as the step starts waiting; the test's read of the pipe may come after the
      // database says `paused`, so the line is awaited, not looked for in what was read so far
      await stderr.until(/waits for signal 'review'/);
      // the first signal goes to the live engine (another process: seen within 200 ms)
      const review = await runCli([
        "signal",
        runId,
        "review",
        "--data-json",
        '{"ok":true}',
        "--store",
        db,
      ]);
      assertStrictEquals(review.code, 0, review.stderr);
      await waitStatus("paused", 2); // `revise` ran, then `publish` waits
      child.kill("SIGKILL");
      await child.status;
      const publish = await runCli([
        "signal",
        runId,
        "publish",
        "--data-json",
        '"now"',
        "--store",
        db,
      ]);
      assertStrictEquals(publish.code, 0, publish.stderr);
      const resumed = await runCli(["resume", runId, "--config", CONFIG, "--store", db]);
      assertStrictEquals(resumed.code, 0, resumed.stderr);
      assertEquals(parseJson(resumed.stdout), {
        outcome: "success",
        result: { review: { ok: true }, publish: "now", value: 3 },
      });
      assertEquals(await journal(j), ["draft 1", "revise 1"]);
    } finally {
      try {
        child.kill("SIGKILL");
      } catch {
        // gone
      }
      await child.status;
      await stderr.done;
      await stdout;
    }
  });
});
