/**
 * Resuming runs in the service (issue 12): a run paused in `/builtin/wait_for` when the service is
 * killed is resumed when the service starts again on the same database, and continues when its
 * signal arrives; `POST /runs/{id}/resume` continues one explicitly (`--no-resume` at start).
 */
import {
  assertEquals,
  assertStrictEquals,
  assertStringIncludes,
  removeTree,
  withTempDir,
} from "../_assert.ts";
import { SCHEMA, startServer, storeFlow, THREE_STEPS, waitForFile, withServer } from "./_server.ts";
import type { RunningServer } from "./_server.ts";

const APPROVAL = {
  schema: SCHEMA,
  name: "approval",
  steps: [
    { id: "ask", component: "/builtin/create_messages", input: { user_prompt: "ship it?" } },
    {
      id: "go",
      component: "/builtin/wait_for",
      input: { name: "go", after: { $from: { step: "ask" } } },
    },
    {
      id: "done",
      component: "/builtin/create_messages",
      input: { user_prompt: { $from: { step: "go" }, path: "note" } },
    },
  ],
  output: { go: { $from: { step: "go" } }, done: { $from: { step: "done" }, path: "messages" } },
};

async function waitForStatus(s: RunningServer, runId: string, status: string): Promise<void> {
  for (let i = 0; i < 400; i++) {
    const r = await s.call("GET", `/api/v1/runs/${runId}`);
    if (r.body?.status === status) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`run ${runId} did not become ${status}`);
}

for (const stop of ["SIGKILL", "SIGTERM"] as const) {
  Deno.test(`serve: a paused run survives ${stop} of the service, is resumed at start and continues on its signal`, () =>
    withTempDir(async (dir) => {
      const args = ["--store", "sqlite:state.db"];
      let s = await startServer(dir, { args });
      let runId: string;
      try {
        const flowId = await storeFlow(s, APPROVAL);
        const started = await s.call("POST", "/api/v1/runs", { flowId, input: {}, wait: false });
        assertStrictEquals(started.status, 202);
        runId = started.body.runId;
        await waitForStatus(s, runId, "paused");
      } finally {
        await s.stop(stop);
      }
      if (stop === "SIGTERM") {
        // a graceful stop leaves a paused run paused instead of cancelling it
        assertStringIncludes(s.stderr(), "left paused");
      }
      // started again on the same database: the paused run is claimed and continued
      s = await startServer(dir, { config: false, args });
      try {
        for (let i = 0; i < 200 && !s.stderr().includes("resumed 1 interrupted run"); i++) {
          await new Promise((r) => setTimeout(r, 25));
        }
        assertStringIncludes(s.stderr(), `resumed 1 interrupted run(s): ${runId}`);
        await waitForStatus(s, runId, "paused");
        const sig = await s.call("POST", `/api/v1/runs/${runId}/signals/go`, { note: "shipped" });
        assertStrictEquals(sig.status, 200);
        await waitForStatus(s, runId, "completed");
        const run = await s.call("GET", `/api/v1/runs/${runId}`);
        assertEquals(run.body.result, {
          outcome: "success",
          result: { go: { note: "shipped" }, done: [{ role: "user", content: "shipped" }] },
        });
        // the engine that resumed it journaled the takeover
        const events = await fetch(`${s.url}/api/v1/runs/${runId}/events`);
        assertStringIncludes(await events.text(), "event: run_resumed");
      } finally {
        await s.stop();
      }
    }));
}

Deno.test("POST /runs/{id}/resume: continues a stopped run (--no-resume at start); 409 for a completed run, 404 for an unknown one", () =>
  withTempDir(async (dir) => {
    const args = ["--store", "sqlite:state.db", "--no-resume"];
    let s = await startServer(dir, { args });
    let runId: string;
    try {
      const flowId = await storeFlow(s, APPROVAL);
      runId = (await s.call("POST", "/api/v1/runs", { flowId, input: {}, wait: false })).body
        .runId;
      await waitForStatus(s, runId, "paused");
    } finally {
      await s.stop("SIGKILL");
    }
    s = await startServer(dir, { config: false, args });
    try {
      // not resumed at start: it stays paused (its engine is gone)
      assertStrictEquals((await s.call("GET", `/api/v1/runs/${runId}`)).body.status, "paused");
      const signal = await s.call("POST", `/api/v1/runs/${runId}/signals/go`, { note: "later" });
      assertStrictEquals(signal.status, 200);
      const r = await s.call("POST", `/api/v1/runs/${runId}/resume?wait=true`);
      assertStrictEquals(r.status, 200, JSON.stringify(r.body));
      assertStrictEquals(r.body.status, "completed");
      assertEquals(r.body.result.result.go, { note: "later" });
      const again = await s.call("POST", `/api/v1/runs/${runId}/resume`);
      assertStrictEquals(again.status, 409);
      assertStringIncludes(again.body.message, "completed");
      const unknown = await s.call("POST", `/api/v1/runs/${crypto.randomUUID()}/resume`);
      assertStrictEquals(unknown.status, 404);
    } finally {
      await s.stop();
    }
  }));

Deno.test("POST /runs/{id}/resume (memory store): a completed run answers 409", () =>
  withServer({ args: ["--store", "memory"] }, async (s) => {
    const flowId = await storeFlow(s, THREE_STEPS);
    const run = await s.call("POST", "/api/v1/runs", { flowId, input: { q: "x" } });
    const r = await s.call("POST", `/api/v1/runs/${run.body.runId}/resume`);
    assertStrictEquals(r.status, 409);
    assertStringIncludes(r.body.message, "nothing to resume");
  }));

Deno.test("POST /runs/{id}/resume keeps --max-concurrent-runs: 429 with Retry-After while the slots are taken", () =>
  withServer({ args: ["--store", "memory", "--max-concurrent-runs", "1"] }, async (s) => {
    const dir = await Deno.makeTempDir();
    try {
      const flowId = await storeFlow(s, {
        schema: SCHEMA,
        name: "nap",
        steps: [{
          id: "nap",
          component: "/py/sleep",
          input: {
            ms: { $from: { workflow: "input" }, path: "ms" },
            ready_file: { $from: { workflow: "input" }, path: "ready" },
          },
        }],
        output: { $from: { step: "nap" } },
      });
      const start = async (name: string) => {
        const ready = `${dir}/${name}`;
        const r = await s.call("POST", "/api/v1/runs", {
          flowId,
          input: { ms: 60000, ready },
          wait: false,
        });
        assertStrictEquals(r.status, 202, JSON.stringify(r.body));
        await waitForFile(ready);
        return r.body.runId as string;
      };
      const first = await start("first");
      assertStrictEquals((await s.call("POST", `/api/v1/runs/${first}/cancel`)).status, 200);
      const second = await start("second"); // takes the one slot
      const refused = await s.call("POST", `/api/v1/runs/${first}/resume`);
      assertStrictEquals(refused.status, 429, JSON.stringify(refused.body));
      assertStrictEquals(refused.headers.get("retry-after"), "1");
      assertStringIncludes(refused.body.message, "--max-concurrent-runs 1");
      // it used to start at once, a second run beyond the limit
      assertStrictEquals((await s.call("GET", `/api/v1/runs/${first}`)).body.status, "cancelled");
      assertStrictEquals((await s.call("POST", `/api/v1/runs/${second}/cancel`)).status, 200);
      const resumed = await s.call("POST", `/api/v1/runs/${first}/resume?from=failed`);
      assertStrictEquals(resumed.status, 202, JSON.stringify(resumed.body));
      await s.call("POST", `/api/v1/runs/${first}/cancel`);
    } finally {
      await removeTree(dir);
    }
  }));
