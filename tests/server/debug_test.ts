/**
 * Debug mode (stepflow 0.8 §8): a run started with `debug: true` stops before each step;
 * `/debug/runnable` lists the steps ready to run, `/debug/step` runs the named ones and answers
 * their results, `/debug/continue` runs to the end.
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import { assertEquals, assertStrictEquals, assertStringIncludes, withTempDir } from "../_assert.ts";
import { type RunningServer, SCHEMA, startServer, storeFlow, withServer } from "./_server.ts";

const DIAMOND = {
  schema: SCHEMA,
  name: "diamond",
  steps: [
    {
      id: "a",
      component: "/builtin/create_messages",
      input: { user_prompt: { $from: { workflow: "input" }, path: "$.q" } },
    },
    { id: "b", component: "/builtin/create_messages", input: { user_prompt: "b" } },
    {
      id: "c",
      component: "/builtin/put_blob",
      input: {
        data: { a: { $from: { step: "a" } }, b: { $from: { step: "b" } } },
        blob_type: "data",
      },
    },
  ],
  output: { $from: { step: "c" }, path: "$.blob_id" },
};

for (const store of ["sqlite:state.db", "memory"]) {
  Deno.test(`debug mode (${store}): paused before each step; runnable, step, continue`, () =>
    withServer({ args: ["--store", store] }, async (s) => {
      const flowId = await storeFlow(s, DIAMOND);
      const created = await s.call("POST", "/api/v1/runs", {
        flowId,
        input: { q: "hi" },
        debug: true,
      });
      assertStrictEquals(created.status, 200);
      const runId = created.body.runId;
      assertEquals(created.body, { runId, status: "paused", debug: true });
      const path = `/api/v1/runs/${runId}`;

      let details = await s.call("GET", path);
      assertStrictEquals(details.body.status, "paused");
      assertStrictEquals(details.body.debugMode, true);
      assertEquals((await s.call("GET", `${path}/debug/runnable`)).body, {
        runnableSteps: ["a", "b"],
      });

      // a step that is not ready, a step the flow does not have
      const early = await s.call("POST", `${path}/debug/step`, { stepIds: ["c"] });
      assertStrictEquals(early.status, 409);
      assertStrictEquals(early.body.code, 409);
      assertStringIncludes(early.body.message, "runnable steps: a, b");
      const unknown = await s.call("POST", `${path}/debug/step`, { stepIds: ["nope"] });
      assertStrictEquals(unknown.status, 400);
      assertStringIncludes(unknown.body.message, "no step 'nope'");

      const a = await s.call("POST", `${path}/debug/step`, { stepIds: ["a"] });
      assertStrictEquals(a.status, 200);
      assertEquals(Object.keys(a.body.results), ["a"]);
      assertStrictEquals(a.body.results.a.outcome, "success");
      assertEquals((await s.call("GET", `${path}/debug/runnable`)).body, { runnableSteps: ["b"] });
      const steps = (await s.call("GET", `${path}/steps`)).body.steps;
      assertEquals([steps.a.status, steps.c.status], ["completed", "blocked"]);
      assertStrictEquals((await s.call("GET", path)).body.status, "paused");
      // stepping a step twice
      const again = await s.call("POST", `${path}/debug/step`, { stepIds: ["a"] });
      assertStrictEquals(again.status, 409);

      const b = await s.call("POST", `${path}/debug/step`, { stepIds: ["b"] });
      assertStrictEquals(b.body.results.b.outcome, "success");
      assertEquals((await s.call("GET", `${path}/debug/runnable`)).body, { runnableSteps: ["c"] });

      const done = await s.call("POST", `${path}/debug/continue`);
      assertStrictEquals(done.status, 200);
      assertEquals(Object.keys(done.body), ["runId", "result", "status", "debug"]);
      assertEquals([done.body.status, done.body.result.outcome, done.body.debug], [
        "completed",
        "success",
        true,
      ]);
      details = await s.call("GET", path);
      assertEquals([details.body.status, details.body.debugMode], ["completed", true]);
      const finished = await s.call("GET", `${path}/debug/runnable`);
      assertStrictEquals(finished.status, 409);
      assertStringIncludes(finished.body.message, "completed");

      // the journal says when the run waited
      const events = await (await fetch(`${s.url}${path}/events`)).text();
      assertStringIncludes(events, "event: run_paused");
      assertStringIncludes(events, "event: run_resumed");
    }));
}

Deno.test("debug mode: continue at once runs everything; cancel ends a paused run", () =>
  withServer({ args: ["--store", "memory"] }, async (s) => {
    const flowId = await storeFlow(s, DIAMOND);
    const one = await s.call("POST", "/api/v1/runs", { flowId, input: { q: "x" }, debug: true });
    const done = await s.call("POST", `/api/v1/runs/${one.body.runId}/debug/continue`);
    assertEquals([done.body.status, done.body.result.outcome], ["completed", "success"]);

    const two = await s.call("POST", "/api/v1/runs", { flowId, input: { q: "y" }, debug: true });
    const id = two.body.runId;
    await s.call("POST", `/api/v1/runs/${id}/debug/step`, { stepIds: ["b"] });
    const cancelled = await s.call("POST", `/api/v1/runs/${id}/cancel`);
    assertStrictEquals(cancelled.status, 200);
    assertStrictEquals(cancelled.body.status, "cancelled");
    assertStrictEquals(cancelled.body.debugMode, true);
    assertStrictEquals((await s.call("POST", `/api/v1/runs/${id}/debug/continue`)).status, 409);
    // the service goes on serving
    const plain = await s.call("POST", "/api/v1/runs", { flowId, input: { q: "z" } });
    assertStrictEquals(plain.body.status, "completed");
  }));

async function waitForStatus(s: RunningServer, runId: string, status: string): Promise<void> {
  for (let i = 0; i < 400; i++) {
    const r = await s.call("GET", `/api/v1/runs/${runId}`);
    if (r.body?.status === status) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  const last = await s.call("GET", `/api/v1/runs/${runId}`);
  throw new Error(
    `run ${runId} did not become ${status}: ${JSON.stringify(last.body)}\n${s.stderr()}`,
  );
}

for (const stop of ["SIGKILL", "SIGTERM"] as const) {
  Deno.test(`debug mode is stored with the run: after ${stop} of the service, the resumed debug run is held again`, () =>
    withTempDir(async (dir) => {
      const args = ["--store", "sqlite:state.db"];
      let s = await startServer(dir, { args });
      let runId: string;
      try {
        const flowId = await storeFlow(s, DIAMOND);
        const created = await s.call("POST", "/api/v1/runs", {
          flowId,
          input: { q: "hi" },
          debug: true,
        });
        runId = created.body.runId;
        const step = await s.call("POST", `/api/v1/runs/${runId}/debug/step`, { stepIds: ["a"] });
        assertStrictEquals(step.body.results.a.outcome, "success");
        await waitForStatus(s, runId, "paused");
      } finally {
        await s.stop(stop);
      }
      // the flag is in the database (0.8's runs.debug_mode column)
      const db = new DatabaseSync(`${dir}/state.db`, { readOnly: true });
      try {
        const row = db.prepare("SELECT debug_mode FROM runs WHERE id = ?").get(runId) as {
          debug_mode: number;
        };
        assertStrictEquals(row.debug_mode, 1);
      } finally {
        db.close();
      }
      // started again on the same database: the run is resumed under a gate, not run freely
      s = await startServer(dir, { config: false, args });
      try {
        for (let i = 0; i < 200 && !s.stderr().includes("resumed 1 interrupted run"); i++) {
          await new Promise((r) => setTimeout(r, 25));
        }
        assertStringIncludes(s.stderr(), `resumed 1 interrupted run(s): ${runId}`);
        const path = `/api/v1/runs/${runId}`;
        await waitForStatus(s, runId, "paused");
        const details = await s.call("GET", path);
        assertEquals([details.body.status, details.body.debugMode], ["paused", true]);
        // a's committed result is kept; b waits at the gate (c waits for b)
        assertEquals((await s.call("GET", `${path}/debug/runnable`)).body, {
          runnableSteps: ["b"],
        });
        await new Promise((r) => setTimeout(r, 100));
        assertStrictEquals((await s.call("GET", path)).body.status, "paused");
        const b = await s.call("POST", `${path}/debug/step`, { stepIds: ["b"] });
        assertStrictEquals(b.body.results.b.outcome, "success");
        assertEquals((await s.call("GET", `${path}/debug/runnable`)).body, {
          runnableSteps: ["c"],
        });
        const done = await s.call("POST", `${path}/debug/continue`);
        assertEquals([done.body.status, done.body.result.outcome, done.body.debug], [
          "completed",
          "success",
          true,
        ]);
      } finally {
        await s.stop();
      }
    }));
}

Deno.test("a run started without debug mode is stored with debugMode false", () =>
  withServer({ args: ["--store", "sqlite:state.db"] }, async (s) => {
    const flowId = await storeFlow(s, DIAMOND);
    const plain = await s.call("POST", "/api/v1/runs", { flowId, input: { q: "z" } });
    assertStrictEquals(plain.body.status, "completed");
    const details = await s.call("GET", `/api/v1/runs/${plain.body.runId}`);
    assertStrictEquals(details.body.debugMode, false);
  }));
