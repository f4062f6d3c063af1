/**
 * stepflow 0.8's server quirks, each shown gone against the real server: one run id per run,
 * cancel that stops the run, delete that deletes, batch overrides applied, batch cancel that
 * cancels the runs, `GET /runs` filters (in api_test.ts), `submit --variables` (cli_test.ts).
 * @module
 */
import { assert, assertEquals, assertStrictEquals } from "../_assert.ts";
import { SCHEMA, storeFlow, THREE_STEPS, waitForFile, withServer } from "./_server.ts";

/** nap (a long /py/sleep) → count (a /py/count call after it). */
function napThenCount(readyFile: string, ms = 60_000) {
  return {
    schema: SCHEMA,
    name: "nap",
    steps: [
      { id: "nap", component: "/py/sleep", input: { ms, ready_file: readyFile } },
      {
        id: "count",
        component: "/py/count",
        input: { limit: 100, after: { $from: { step: "nap" } } },
      },
    ],
    output: { $from: { step: "count" } },
  };
}

const PEAK = {
  schema: SCHEMA,
  name: "peak",
  steps: [{ id: "p", component: "/py/peak", input: {} }],
  output: { $from: { step: "p" } },
};

Deno.test("0.8 quirk gone: the run id returned is the one the steps ran under", () =>
  withServer({ args: ["--store", "memory"] }, async (s) => {
    const flowId = await storeFlow(s, THREE_STEPS);
    const run = await s.call("POST", "/api/v1/runs", { flowId, input: { q: "x" } });
    assertStrictEquals(run.body.status, "completed");
    const steps = await s.call("GET", `/api/v1/runs/${run.body.runId}/steps`);
    for (const id of ["msgs", "put", "get"]) {
      assertStrictEquals(steps.body.steps[id].status, "completed", id);
      assertStrictEquals(steps.body.steps[id].result.outcome, "success", id);
    }
    // exactly one run recorded for the request (0.8 recorded two)
    assertStrictEquals((await s.call("GET", "/api/v1/runs")).body.runs.length, 1);
  }));

Deno.test("0.8 quirk gone: cancel stops the run — running step cancelled, nothing after it starts, status cancelled", () =>
  withServer({ args: ["--store", "memory"] }, async (s, dir) => {
    const ready = `${dir}/ready`;
    const flowId = await storeFlow(s, napThenCount(ready));
    const peakId = await storeFlow(s, PEAK);
    // a client waiting for the run (wait: true, 0.8's default)
    const waiting = s.call("POST", "/api/v1/runs", { flowId, input: {} });
    await waitForFile(ready);
    const list = await s.call("GET", "/api/v1/runs?status=running");
    assertStrictEquals(list.body.runs.length, 1);
    const runId = list.body.runs[0].runId;
    const steps = await s.call("GET", `/api/v1/runs/${runId}/steps`);
    assertStrictEquals(steps.body.steps.nap.status, "running");
    assertStrictEquals(steps.body.steps.count.status, "blocked");

    const t0 = performance.now();
    const cancel = await s.call("POST", `/api/v1/runs/${runId}/cancel`);
    assertStrictEquals(cancel.status, 200);
    assertStrictEquals(cancel.body.runId, runId);
    assertStrictEquals(cancel.body.status, "cancelled");
    assert(
      performance.now() - t0 < 10_000,
      "the cancel answered while the 60 s step was running",
    );

    // the waiting client gets the cancelled run at once (not after 60 s)
    const answer = await waiting;
    assertStrictEquals(answer.body.runId, runId);
    assertStrictEquals(answer.body.status, "cancelled");
    assertStrictEquals(answer.body.result.outcome, "failed");
    assertStrictEquals(answer.body.result.error.code, 410);

    const details = await s.call("GET", `/api/v1/runs/${runId}`);
    assertStrictEquals(details.body.status, "cancelled");
    assertStrictEquals(details.body.result.error.code, 410);
    // the step after the cancelled one never called its step service
    const after = await s.call("GET", `/api/v1/runs/${runId}/steps`);
    assertStrictEquals(after.body.steps.count.result, undefined);
    const peak = await s.call("POST", "/api/v1/runs", { flowId: peakId, input: {} });
    assertStrictEquals(peak.body.result.result.calls, 0);
    // a second cancel: it is over
    const again = await s.call("POST", `/api/v1/runs/${runId}/cancel`);
    assertStrictEquals(again.status, 409);
  }));

Deno.test("0.8 quirk gone: DELETE removes the run, its steps and its nested runs", () =>
  withServer({ args: ["--store", "sqlite:state.db"] }, async (s) => {
    // a flow whose step runs nested runs (/map): they go too
    const inner = {
      schema: SCHEMA,
      steps: [{ id: "i", component: "/builtin/create_messages", input: { user_prompt: "in" } }],
      output: { $from: { step: "i" } },
    };
    const outer = {
      schema: SCHEMA,
      name: "outer",
      steps: [{
        id: "e",
        component: "/builtin/map",
        input: { workflow: { $literal: inner }, items: [1, 2] },
      }],
      output: { $from: { step: "e" } },
    };
    const flowId = await storeFlow(s, outer);
    const run = await s.call("POST", "/api/v1/runs", { flowId, input: {} });
    assertStrictEquals(run.body.status, "completed", JSON.stringify(run.body));
    const runId = run.body.runId;
    const before = (await s.call("GET", "/api/v1/runs")).body.runs.length;
    assertStrictEquals(before, 3, "the run and its two nested runs");
    assertStrictEquals((await s.call("DELETE", `/api/v1/runs/${runId}`)).status, 200);
    assertStrictEquals((await s.call("GET", `/api/v1/runs/${runId}`)).status, 404);
    assertStrictEquals((await s.call("GET", `/api/v1/runs/${runId}/steps`)).status, 404);
    assertEquals((await s.call("GET", "/api/v1/runs")).body.runs, []);
  }));

Deno.test("0.8 quirk gone: DELETE of a running run is refused (409) instead of answering 200 and keeping it", () =>
  withServer({ args: ["--store", "memory"] }, async (s, dir) => {
    const ready = `${dir}/ready`;
    const flowId = await storeFlow(s, napThenCount(ready));
    const started = await s.call("POST", "/api/v1/runs", { flowId, input: {}, wait: false });
    assertStrictEquals(started.status, 202);
    await waitForFile(ready);
    const del = await s.call("DELETE", `/api/v1/runs/${started.body.runId}`);
    assertStrictEquals(del.status, 409);
    assertStrictEquals(del.body.code, 409);
    await s.call("POST", `/api/v1/runs/${started.body.runId}/cancel`);
    assertStrictEquals(
      (await s.call("DELETE", `/api/v1/runs/${started.body.runId}`)).status,
      200,
    );
  }));

Deno.test("0.8 quirks gone: batch overrides are applied; cancelling a batch cancels its runs", () =>
  withServer({ args: ["--store", "memory"] }, async (s, dir) => {
    const flowId = await storeFlow(s, THREE_STEPS);
    const b = await s.call("POST", "/api/v1/batches", {
      flowId,
      inputs: [{ q: "a" }, { q: "b" }],
      overrides: { msgs: { value: { input: { user_prompt: "overridden" } } } },
    });
    let d;
    do d = await s.call("GET", `/api/v1/batches/${b.body.batchId}`); while (
      d.body.completedAt === null
    );
    const outs = await s.call("GET", `/api/v1/batches/${b.body.batchId}/outputs`);
    for (const o of outs.body.outputs) {
      assertStrictEquals(o.result.result.messages[0].content, "overridden");
    }

    const ready = `${dir}/ready`;
    const napId = await storeFlow(s, napThenCount(ready));
    const nb = await s.call("POST", "/api/v1/batches", {
      flowId: napId,
      inputs: [{}, {}, {}],
      maxConcurrency: 1,
    });
    await waitForFile(ready);
    const c = await s.call("POST", `/api/v1/batches/${nb.body.batchId}/cancel`);
    assertStrictEquals(c.status, 200);
    assertEquals(c.body, { batchId: nb.body.batchId, status: "cancelled" });
    const after = await s.call("GET", `/api/v1/batches/${nb.body.batchId}`);
    assertStrictEquals(after.body.status, "cancelled");
    assertStrictEquals(after.body.cancelledRuns, 3);
    assertStrictEquals(after.body.runningRuns, 0);
    const runs = await s.call("GET", `/api/v1/batches/${nb.body.batchId}/runs`);
    assertEquals(runs.body.runs.map((r: { status: string }) => r.status), [
      "cancelled",
      "cancelled",
      "cancelled",
    ]);
    assertStrictEquals((await s.call("GET", "/api/v1/runs?status=running")).body.runs.length, 0);
    assertStrictEquals(
      (await s.call("POST", `/api/v1/batches/${nb.body.batchId}/cancel`)).status,
      409,
    );
  }));
