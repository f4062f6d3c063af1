/**
 * A step running when its run is cancelled (fault: it read `blocked` in `GET /runs/{id}/steps`,
 * and `running` for good in the store's step statuses, `stepflow runs show`): it reads `failed`
 * without a result (stepflow 0.8 has no `cancelled` step status; docs/server.md), in the
 * in-memory, SQLite and PostgreSQL stores.
 * @module
 */
import { assertStrictEquals, REPO_ROOT } from "../_assert.ts";
import { PG_URL, withPgDatabase } from "../_postgres.ts";
import { SCHEMA, storeFlow, waitForFile, withServer } from "./_server.ts";

/** nap (a 60 s /py/sleep, writing `ready` when called) → count. */
function napThenCount(readyFile: string) {
  return {
    schema: SCHEMA,
    name: "nap",
    steps: [
      { id: "nap", component: "/py/sleep", input: { ms: 60_000, ready_file: readyFile } },
      {
        id: "count",
        component: "/py/count",
        input: { limit: 100, after: { $from: { step: "nap" } } },
      },
    ],
    output: { $from: { step: "count" } },
  };
}

/** w (a /builtin/wait_for of a signal never sent) → echo. */
const WAIT_THEN_ECHO = {
  schema: SCHEMA,
  name: "wait",
  steps: [
    { id: "w", component: "/builtin/wait_for", input: { name: "go" } },
    {
      id: "echo",
      component: "/builtin/create_messages",
      input: { user_prompt: { $from: { step: "w" }, path: "$.x" } },
    },
  ],
  output: { $from: { step: "echo" } },
};

async function cancelWhileRunning(store: string, cliStore?: (dir: string) => string) {
  await withServer({ args: ["--store", store] }, async (s, dir) => {
    const ready = `${dir}/ready`;
    const flowId = await storeFlow(s, napThenCount(ready));
    const started = await s.call("POST", "/api/v1/runs", { flowId, input: {}, wait: false });
    assertStrictEquals(started.status, 202);
    const runId = started.body.runId;
    await waitForFile(ready);
    const before = await s.call("GET", `/api/v1/runs/${runId}/steps`);
    assertStrictEquals(before.body.steps.nap.status, "running");
    const cancel = await s.call("POST", `/api/v1/runs/${runId}/cancel`);
    assertStrictEquals(cancel.body.status, "cancelled");

    // was: nap "blocked"
    const after = await s.call("GET", `/api/v1/runs/${runId}/steps`);
    assertStrictEquals(after.body.steps.nap.status, "failed", JSON.stringify(after.body));
    assertStrictEquals(after.body.steps.nap.result, undefined);
    assertStrictEquals(after.body.steps.count.status, "blocked", "never started");
    const svg = await s.call("GET", `/api/v1/runs/${runId}/graph`);
    if (svg.status === 200) {
      const text = String(svg.body);
      assertStrictEquals(text.includes("status-failed"), true, "the run's graph agrees");
    }

    // a built-in step (recorded with its result only: no start in the store) waiting for a
    // signal when its run is cancelled: was `blocked`; its start is recorded at the run's end
    const waitId = await storeFlow(s, WAIT_THEN_ECHO);
    const waiting = await s.call("POST", "/api/v1/runs", {
      flowId: waitId,
      input: {},
      wait: false,
    });
    const waitRun = waiting.body.runId;
    const deadline = Date.now() + 30_000;
    for (;;) {
      const st = await s.call("GET", `/api/v1/runs/${waitRun}/steps`);
      if (st.body.steps?.w?.status === "running") break;
      if (Date.now() > deadline) throw new Error(`w never ran: ${JSON.stringify(st.body)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    assertStrictEquals(
      (await s.call("POST", `/api/v1/runs/${waitRun}/cancel`)).body.status,
      "cancelled",
    );
    const waitSteps = await s.call("GET", `/api/v1/runs/${waitRun}/steps`);
    assertStrictEquals(waitSteps.body.steps.w.status, "failed", JSON.stringify(waitSteps.body));
    assertStrictEquals(waitSteps.body.steps.echo.status, "blocked");

    if (cliStore === undefined) return;
    // the store's step statuses (was: `running` for good), as `stepflow runs show` prints them
    const show = async (format: string, id = runId) => {
      const out = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          "--quiet",
          `${REPO_ROOT}/main.ts`,
          "runs",
          "show",
          id,
          "--store",
          cliStore(dir),
          "--format",
          format,
        ],
        cwd: dir,
        env: { NO_COLOR: "1" },
      }).output();
      assertStrictEquals(out.code, 0, new TextDecoder().decode(out.stderr));
      return new TextDecoder().decode(out.stdout);
    };
    const json = JSON.parse(await show("json"));
    assertStrictEquals(json.run.status, "cancelled");
    assertStrictEquals(json.steps.length, 1, "nap only: count never started");
    assertStrictEquals(json.steps[0].stepId, "nap");
    assertStrictEquals(json.steps[0].status, "failed");
    const shown = JSON.parse(await show("json", waitRun));
    assertStrictEquals(shown.steps.length, 1, "w only");
    assertStrictEquals(shown.steps[0].stepId, "w");
    assertStrictEquals(shown.steps[0].status, "failed");
    const table = await show("table");
    assertStrictEquals(
      table.includes("no result: running when the run was cancelled"),
      true,
      table,
    );
  });
}

Deno.test("a step running when its run is cancelled reads failed, not blocked (in-memory store)", () =>
  cancelWhileRunning("memory"));

Deno.test("a step running when its run is cancelled reads failed, not blocked or running (SQLite store)", () =>
  cancelWhileRunning("sqlite:state.db", (dir) => `sqlite:${dir}/state.db`));

if (PG_URL !== undefined) {
  Deno.test("a step running when its run is cancelled reads failed, not blocked or running (PostgreSQL store)", () =>
    withPgDatabase(PG_URL!, (url) => cancelWhileRunning(url, () => url)));
}
