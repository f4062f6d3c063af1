/**
 * The service resumes a run with the options it was started with (`RunRecord.runOptions`): a run
 * started by `stepflow run --timeout` and killed is resumed when `stepflow serve` starts on its
 * database, and still ends at its run timeout (the service keeps its own config).
 */
import { assertStrictEquals, assertStringIncludes, runCli, withTempDir } from "../_assert.ts";
import { SqliteStateStore } from "../../src/state/sqlite.ts";
import { startServer } from "./_server.ts";

const WAIT = `schema: https://stepflow.org/schemas/v1/flow.json
name: wait
steps:
  - { id: w, component: /builtin/wait_for, input: { name: go } }
output: { $from: { step: w } }
`;

async function statusOf(db: string, runId: string): Promise<string | undefined> {
  const s = SqliteStateStore.open(`sqlite:${db}?mode=ro`);
  try {
    return (await s.getRun(runId))?.status;
  } finally {
    await s.close();
  }
}

Deno.test("serve: a killed `stepflow run --timeout` resumed at the service's start still ends at its run timeout", () =>
  withTempDir(async (dir) => {
    const db = `${dir}/state.db`;
    await Deno.writeTextFile(`${dir}/wait.yaml`, WAIT);
    await Deno.writeTextFile(
      `${dir}/stepflow-config.yml`,
      'plugins: { builtin: { type: builtin } }\nroutes: { "/builtin/{*component}": [{ plugin: builtin }] }\n',
    );
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "--quiet",
        new URL("../../main.ts", import.meta.url).pathname,
        "run",
        "--flow",
        "wait.yaml",
        "--store",
        db,
        "--timeout",
        "4s",
        "--input-json",
        "{}",
      ],
      cwd: dir,
      env: { NO_COLOR: "1" },
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    let runId: string | undefined;
    const ended = child.status.then(() => runId === undefined);
    try {
      for (let i = 0; i < 1000 && runId === undefined; i++) {
        if (await Promise.race([ended, false])) throw new Error("stepflow run ended first");
        await new Promise((r) => setTimeout(r, 10));
        const s = await Deno.stat(db).then(() => SqliteStateStore.open(`sqlite:${db}?mode=ro`))
          .catch(() => undefined);
        if (s === undefined) continue;
        try {
          const [run] = await s.listRuns();
          if (run?.status === "paused") runId = run.runId;
        } finally {
          await s.close();
        }
      }
    } finally {
      try {
        child.kill("SIGKILL");
      } catch {
        // ended already
      }
      await child.status;
    }
    if (runId === undefined) throw new Error("the run did not pause");
    // killed while it waited, well before its timeout
    assertStrictEquals(await statusOf(db, runId), "paused");
    const s = await startServer(dir, { config: false, args: ["--store", `sqlite:${db}`] });
    try {
      let body;
      for (let i = 0; i < 400; i++) {
        body = (await s.call("GET", `/api/v1/runs/${runId}`)).body;
        if (body?.status === "failed") break;
        await new Promise((r) => setTimeout(r, 25));
      }
      assertStringIncludes(s.stderr(), `resumed 1 interrupted run(s): ${runId}`);
      assertStrictEquals(body?.status, "failed", JSON.stringify(body));
      assertStrictEquals(body.result.error.code, 524);
      assertStringIncludes(body.result.error.message, "(timeout: 4000 ms)");
    } finally {
      await s.stop();
    }
    // from another directory, the CLI finds the run's config file by itself
    const again = await runCli(["resume", runId, "--store", db, "--timeout", "1ms"]);
    assertStrictEquals(again.code, 1, again.stderr);
    assertStringIncludes(again.stdout, "(timeout: 1 ms)");
    assertStrictEquals(again.stderr.includes("note:"), false, again.stderr);
  }));
