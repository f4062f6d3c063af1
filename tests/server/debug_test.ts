/**
 * Debug mode (stepflow 0.8 §8): a run started with `debug: true` stops before each step;
 * `/debug/runnable` lists the steps ready to run, `/debug/step` runs the named ones and answers
 * their results, `/debug/continue` runs to the end.
 * @module
 */
import { assertEquals, assertStrictEquals, assertStringIncludes } from "../_assert.ts";
import { SCHEMA, storeFlow, withServer } from "./_server.ts";

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
