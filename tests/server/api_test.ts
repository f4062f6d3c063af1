/**
 * `stepflow serve`: every route of the REST API driven with fetch against the real server
 * (127.0.0.1, port 0), with 0.8's shapes and the error body `{code, message, stack?}`.
 * @module
 */
import {
  assert,
  assertEquals,
  assertMatch,
  assertStrictEquals,
  assertStringIncludes,
  withTempDir,
} from "../_assert.ts";
import { DatabaseSync } from "node:sqlite";
import { type Answer, SCHEMA, startServer, storeFlow, THREE_STEPS } from "./_server.ts";

function isError(r: Answer, status: number, includes?: string) {
  assertStrictEquals(r.status, status, JSON.stringify(r.body));
  assertStrictEquals(r.body.code, status);
  assertStrictEquals(typeof r.body.message, "string");
  if (includes) assertStringIncludes(r.body.message, includes);
}

Deno.test("every route of the REST API answers with stepflow 0.8's shapes", async (t) => {
  await withTempDir(async (dir) => {
    const s = await startServer(dir, { args: ["--store", "sqlite:state.db"] });
    try {
      await t.step("the listening line is one JSON line on stderr", () => {
        const lines = s.stderr().split("\n").filter((l) => l.startsWith("{"));
        assertStrictEquals(lines.length, 1);
        const a = JSON.parse(lines[0]);
        assertStrictEquals(a.event, "listening");
        assertStrictEquals(a.host, "127.0.0.1");
        assert(a.port > 0);
        assertStrictEquals(a.store, "sqlite:state.db");
      });

      await t.step("GET /health and /api/v1/health", async () => {
        for (const path of ["/health", "/api/v1/health"]) {
          const r = await s.call("GET", path);
          assertStrictEquals(r.status, 200);
          assertStrictEquals(r.body.status, "healthy");
          assertStrictEquals(typeof r.body.timestamp, "string");
          assertStrictEquals(typeof r.body.version, "string");
        }
        isError(await s.call("GET", "/api/v1/health?error=bad_request"), 400);
        isError(await s.call("GET", "/api/v1/health?error=not_found"), 404);
        const stack = await s.call("GET", "/api/v1/health?error=stack");
        isError(stack, 500);
        assert(Array.isArray(stack.body.stack) && stack.body.stack.length === 3);
        assertStrictEquals(typeof stack.body.stack[0].error, "string");
      });

      await t.step("GET /components (sorted, schemas unless includeSchemas=false)", async () => {
        const r = await s.call("GET", "/api/v1/components");
        assertStrictEquals(r.status, 200);
        const names = r.body.components.map((c: { component: string }) => c.component);
        assertEquals(names, [...names].sort());
        for (const n of ["/create_messages", "/add"]) assert(names.includes(n), n);
        // the Python worker does not answer components/list: named, the others still listed
        assertEquals(r.body.errors.length, 1);
        assertStringIncludes(r.body.errors[0], "plugin 'py'");
        const add = r.body.components.find((c: { component: string }) => c.component === "/add");
        assert(add.input_schema, "schemas by default");
        const bare = await s.call("GET", "/api/v1/components?includeSchemas=false");
        const add2 = bare.body.components.find((c: { component: string }) =>
          c.component === "/add"
        );
        assertStrictEquals(add2.input_schema, undefined);
      });

      let flowId = "";
      await t.step("POST /flows stores a flow: flowId, analysis, diagnostics", async () => {
        const r = await s.call("POST", "/api/v1/flows", { flow: THREE_STEPS });
        assertStrictEquals(r.status, 200);
        assertMatch(r.body.flowId, /^[0-9a-f]{64}$/);
        flowId = r.body.flowId;
        const d = r.body.diagnostics;
        assertStrictEquals(d.numFatal, 0);
        assertStrictEquals(d.numError, 0);
        assertStrictEquals(typeof d.numWarning, "number");
        assertStrictEquals(r.body.analysis.flowId, flowId);
        assertEquals(r.body.analysis.steps.put.inputDepends, {
          object: {
            data: [{ stepOutput: { stepId: "msgs", field: null, optional: false } }],
            blob_type: [],
          },
        });
        assertEquals(r.body.analysis.steps.msgs.inputDepends, {
          object: { user_prompt: [{ flowInput: { field: "$.q" } }] },
        });
        // same flow, same id
        assertStrictEquals(await storeFlow(s, THREE_STEPS), flowId);
      });

      await t.step("GET /flows/{id}: flow, flowId, allExamples, analysis", async () => {
        const withExamples = {
          ...THREE_STEPS,
          name: "with-examples",
          examples: [{ name: "one", input: { q: "1" } }],
          test: { cases: [{ name: "one", input: { q: "x" } }, { name: "two", input: { q: "2" } }] },
        };
        const id = await storeFlow(s, withExamples);
        const r = await s.call("GET", `/api/v1/flows/${id}`);
        assertStrictEquals(r.status, 200);
        assertStrictEquals(r.body.flowId, id);
        assertStrictEquals(r.body.flow.name, "with-examples");
        assertEquals(r.body.allExamples.map((e: { name: string }) => e.name), ["one", "two"]);
        assertStrictEquals(r.body.analysis.flowId, id);
        const plain = await s.call("GET", `/api/v1/flows/${flowId}`);
        assertStrictEquals(plain.body.allExamples, undefined);
        isError(await s.call("GET", `/api/v1/flows/${"0".repeat(64)}`), 404, "not found");
      });

      await t.step("DELETE /flows/{id}: 200 for a stored flow, 404 for another id", async () => {
        const r = await s.call("DELETE", `/api/v1/flows/${flowId}`);
        assertStrictEquals(r.status, 200);
        isError(await s.call("DELETE", `/api/v1/flows/${"1".repeat(64)}`), 404);
        // still runnable: runs refer to it
        assertStrictEquals((await s.call("GET", `/api/v1/flows/${flowId}`)).status, 200);
      });

      let runId = "";
      await t.step("POST /runs waits and answers {runId, result, status, debug}", async () => {
        const r = await s.call(
          "POST",
          "/api/v1/runs",
          `{"flowId":"${flowId}","input":{"q":"hello","big":9007199254740993}}`,
        );
        assertStrictEquals(r.status, 200);
        assertEquals(Object.keys(r.body), ["runId", "result", "status", "debug"]);
        assertStrictEquals(r.body.status, "completed");
        assertStrictEquals(r.body.debug, false);
        assertEquals(r.body.result, {
          outcome: "success",
          result: { messages: [{ role: "user", content: "hello" }] },
        });
        runId = r.body.runId;
        assertMatch(runId, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
        // answered only once stored: another connection to the database sees the finished run
        const db = new DatabaseSync(`${dir}/state.db`, { readOnly: true });
        try {
          const row = db.prepare("SELECT status, result_json FROM runs WHERE id = ?").get(runId) as
            | { status: string; result_json: string }
            | undefined;
          assertStrictEquals(row?.status, "completed");
          assertStrictEquals(JSON.parse(row!.result_json).outcome, "success");
        } finally {
          db.close();
        }
      });

      await t.step("GET /runs/{id}: details with exact numbers; 32-hex ids accepted", async () => {
        const res = await fetch(`${s.url}/api/v1/runs/${runId}`);
        const text = await res.text();
        assertStringIncludes(text, '"big":9007199254740993');
        const r = JSON.parse(text);
        assertStrictEquals(r.runId, runId);
        assertStrictEquals(r.flowId, flowId);
        assertStrictEquals(r.flowName, "three");
        assertStrictEquals(r.flowLabel, null);
        assertStrictEquals(r.status, "completed");
        assertStrictEquals(r.debugMode, false);
        assert(r.createdAt <= r.completedAt);
        assertStrictEquals(r.result.outcome, "success");
        const hex = await s.call("GET", `/api/v1/runs/${runId.replaceAll("-", "")}`);
        assertStrictEquals(hex.body.runId, runId);
        isError(await s.call("GET", "/api/v1/runs/not-a-uuid"), 400, "Invalid run ID");
        isError(await s.call("GET", `/api/v1/runs/${crypto.randomUUID()}`), 404, "not found");
      });

      await t.step("GET /runs/{id}/flow", async () => {
        const r = await s.call("GET", `/api/v1/runs/${runId}/flow`);
        assertStrictEquals(r.status, 200);
        assertStrictEquals(r.body.flowId, flowId);
        assertStrictEquals(r.body.flow.steps.length, 3);
      });

      await t.step("GET /runs/{id}/steps: every step with status and result", async () => {
        const r = await s.call("GET", `/api/v1/runs/${runId}/steps`);
        assertStrictEquals(r.status, 200);
        assertEquals(Object.keys(r.body.steps), ["msgs", "put", "get"]);
        const put = r.body.steps.put;
        assertStrictEquals(put.stepIndex, 1);
        assertStrictEquals(put.stepId, "put");
        assertStrictEquals(put.component, "/builtin/put_blob");
        assertStrictEquals(put.status, "completed");
        assertStrictEquals(put.result.outcome, "success");
      });

      await t.step("GET /runs lists newest first and filters", async () => {
        const second = await s.call("POST", "/api/v1/runs", { flowId, input: { q: "2" } });
        const failing = await storeFlow(s, {
          schema: SCHEMA,
          name: "failing",
          steps: [{ id: "x", component: "/builtin/nope", input: {} }],
          output: { $from: { step: "x" } },
        });
        const failed = await s.call("POST", "/api/v1/runs", { flowId: failing, input: {} });
        assertStrictEquals(failed.body.status, "failed");
        const all = await s.call("GET", "/api/v1/runs");
        const ids = all.body.runs.map((r: { runId: string }) => r.runId);
        assertEquals(ids.slice(0, 3), [failed.body.runId, second.body.runId, runId]);
        const summary = all.body.runs[0];
        assertEquals(Object.keys(summary).sort(), [
          "completedAt",
          "createdAt",
          "debugMode",
          "flowId",
          "flowLabel",
          "flowName",
          "runId",
          "status",
        ]);
        const byStatus = await s.call("GET", "/api/v1/runs?status=failed");
        assertEquals(byStatus.body.runs.map((r: { runId: string }) => r.runId), [
          failed.body.runId,
        ]);
        const byName = await s.call("GET", "/api/v1/runs?flowName=three");
        assertEquals(byName.body.runs.map((r: { runId: string }) => r.runId), [
          second.body.runId,
          runId,
        ]);
        const paged = await s.call("GET", "/api/v1/runs?limit=1&offset=1");
        assertEquals(paged.body.runs.map((r: { runId: string }) => r.runId), [second.body.runId]);
        const future = await s.call("GET", "/api/v1/runs?since=2999-01-01T00:00:00Z");
        assertEquals(future.body.runs, []);
        const past = await s.call("GET", "/api/v1/runs?since=2000-01-01T00:00:00Z&rootOnly=true");
        assertStrictEquals(past.body.runs.length, 3);
        isError(await s.call("GET", "/api/v1/runs?since=yesterday"), 400, "RFC 3339");
        // a year past 9999 used to list every run (it compared as '+099999-...'), '0' read as
        // the year 2000, and Feb 30 rolled over to March
        for (const since of ["99999-01-01", "0", "2026-02-30", "May%201%202024"]) {
          isError(await s.call("GET", `/api/v1/runs?since=${since}`), 400, "RFC 3339");
        }
        isError(await s.call("GET", "/api/v1/runs?status=sleeping"), 400, "status");
        isError(await s.call("GET", "/api/v1/runs?limit=-1"), 400, "limit");
      });

      await t.step("POST /runs/{id}/cancel of a finished run: 409", async () => {
        isError(await s.call("POST", `/api/v1/runs/${runId}/cancel`), 409, "already completed");
        isError(await s.call("POST", `/api/v1/runs/${crypto.randomUUID()}/cancel`), 404);
      });

      await t.step("DELETE /runs/{id} deletes; then 404", async () => {
        const r = await s.call("DELETE", `/api/v1/runs/${runId}`);
        assertStrictEquals(r.status, 200);
        isError(await s.call("GET", `/api/v1/runs/${runId}`), 404);
        isError(await s.call("DELETE", `/api/v1/runs/${runId}`), 404);
      });

      await t.step("debug routes: 0.8's shapes (more in debug_test.ts)", async () => {
        const run = await s.call("POST", "/api/v1/runs", {
          flowId,
          input: { q: "d" },
          debug: true,
        });
        assertStrictEquals(run.status, 200);
        assertEquals(run.body, { runId: run.body.runId, status: "paused", debug: true });
        const id = run.body.runId;
        const ready = await s.call("GET", `/api/v1/runs/${id}/debug/runnable`);
        assertEquals(ready.body, { runnableSteps: ["msgs"] });
        const step = await s.call("POST", `/api/v1/runs/${id}/debug/step`, { stepIds: ["msgs"] });
        assertEquals(Object.keys(step.body), ["results"]);
        assertStrictEquals(step.body.results.msgs.outcome, "success");
        const done = await s.call("POST", `/api/v1/runs/${id}/debug/continue`);
        assertEquals(Object.keys(done.body), ["runId", "result", "status", "debug"]);
        assertStrictEquals(done.body.status, "completed");
        assertStrictEquals(done.body.debug, true);
        const plain = await s.call("POST", "/api/v1/runs", { flowId, input: { q: "d" } });
        isError(
          await s.call("GET", `/api/v1/runs/${plain.body.runId}/debug/runnable`),
          409,
          "not in debug mode",
        );
        isError(await s.call("GET", `/api/v1/runs/${crypto.randomUUID()}/debug/runnable`), 404);
      });

      let batchId = "";
      await t.step("POST /batches, GET /batches/{id}, /runs, /outputs, GET /batches", async () => {
        const r = await s.call("POST", "/api/v1/batches", {
          flowId,
          inputs: [{ q: "a" }, { q: "b" }, { q: "c" }],
          maxConcurrency: 2,
        });
        assertStrictEquals(r.status, 200);
        assertEquals(Object.keys(r.body), ["batchId", "totalInputs", "status"]);
        assertStrictEquals(r.body.totalInputs, 3);
        assertStrictEquals(r.body.status, "running");
        batchId = r.body.batchId;
        let d: Answer;
        do d = await s.call("GET", `/api/v1/batches/${batchId}`); while (
          d.body.completedAt === null
        );
        assertEquals(d.body, {
          batchId,
          flowId,
          flowName: "three",
          totalInputs: 3,
          createdAt: d.body.createdAt,
          status: "running",
          completedRuns: 3,
          runningRuns: 0,
          failedRuns: 0,
          cancelledRuns: 0,
          pausedRuns: 0,
          completedAt: d.body.completedAt,
        });
        const runs = await s.call("GET", `/api/v1/batches/${batchId}/runs`);
        assertEquals(runs.body.runs.map((x: { batchInputIndex: number }) => x.batchInputIndex), [
          0,
          1,
          2,
        ]);
        assertStrictEquals(runs.body.runs[0].status, "completed");
        const outs = await s.call("GET", `/api/v1/batches/${batchId}/outputs`);
        assertEquals(
          outs.body.outputs.map((o: { result: { result: { messages: { content: string }[] } } }) =>
            o.result.result.messages[0].content
          ),
          ["a", "b", "c"],
        );
        assertStrictEquals(outs.body.outputs[1].status, "completed");
        const list = await s.call("GET", "/api/v1/batches?flowName=three&limit=5");
        assertStrictEquals(list.body.batches[0].batchId, batchId);
        assertEquals(Object.keys(list.body.batches[0]), [
          "batchId",
          "flowId",
          "flowName",
          "totalInputs",
          "createdAt",
          "status",
        ]);
        assertEquals((await s.call("GET", "/api/v1/batches?status=cancelled")).body.batches, []);
        isError(await s.call("GET", `/api/v1/batches/${crypto.randomUUID()}`), 404);
        isError(await s.call("GET", `/api/v1/batches/${crypto.randomUUID()}/outputs`), 404);
        isError(await s.call("GET", `/api/v1/batches/${crypto.randomUUID()}/runs`), 404);
      });

      await t.step("POST /batches/{id}/cancel: 409 once every run finished", async () => {
        isError(await s.call("POST", `/api/v1/batches/${batchId}/cancel`), 409, "finished");
        isError(await s.call("POST", `/api/v1/batches/${crypto.randomUUID()}/cancel`), 404);
      });

      await t.step("GET /api/v1/openapi.json: OpenAPI 3.1 with every operation", async () => {
        const r = await s.call("GET", "/api/v1/openapi.json");
        assertStrictEquals(r.status, 200);
        assertStrictEquals(r.body.openapi, "3.1.0");
        const ops: string[] = [];
        for (const [path, item] of Object.entries(r.body.paths as Record<string, object>)) {
          for (const m of Object.keys(item)) ops.push(`${m.toUpperCase()} ${path}`);
        }
        const expected = [
          "GET /api/v1/health",
          "GET /api/v1/components",
          "POST /api/v1/flows",
          "GET /api/v1/flows/{flowId}",
          "DELETE /api/v1/flows/{flowId}",
          "POST /api/v1/runs",
          "GET /api/v1/runs",
          "GET /api/v1/runs/{runId}",
          "GET /api/v1/runs/{runId}/flow",
          "GET /api/v1/runs/{runId}/steps",
          "POST /api/v1/runs/{runId}/cancel",
          "DELETE /api/v1/runs/{runId}",
          "POST /api/v1/runs/{runId}/debug/step",
          "POST /api/v1/runs/{runId}/debug/continue",
          "GET /api/v1/runs/{runId}/debug/runnable",
          "POST /api/v1/batches",
          "GET /api/v1/batches",
          "GET /api/v1/batches/{batchId}",
          "GET /api/v1/batches/{batchId}/runs",
          "GET /api/v1/batches/{batchId}/outputs",
          "POST /api/v1/batches/{batchId}/cancel",
          "GET /api/v1/runs/{runId}/events",
          "POST /api/v1/runs/{runId}/signals/{name}",
          "POST /api/v1/runs/{runId}/resume",
        ];
        for (const op of expected) assert(ops.includes(op), `missing ${op}`);
        const req = r.body.components.schemas.CreateRunRequest;
        assertEquals(req.required.sort(), ["flowId", "input"]);
        assert(req.properties.wait && req.properties.timeoutSecs);
        // no operation lists 501 "Not available yet": every operation is implemented (POST /runs
        // listed it long after runs were)
        for (const [path, item] of Object.entries(r.body.paths as Record<string, object>)) {
          for (const [m, op] of Object.entries(item as Record<string, { responses: object }>)) {
            assert(!("501" in op.responses), `${m.toUpperCase()} ${path} lists 501`);
          }
        }
      });

      await t.step("GET /swagger-ui: a self-contained reference page", async () => {
        const res = await fetch(`${s.url}/swagger-ui`);
        assertStrictEquals(res.status, 200);
        assertStringIncludes(res.headers.get("content-type") ?? "", "text/html");
        const html = await res.text();
        assertStringIncludes(html, "/api/v1/runs/{runId}/cancel");
        // nothing loaded from elsewhere
        assert(!/<script[^>]+src=|<link[^>]+href=|https?:\/\/(?!stepflow\.org)/.test(html));
      });

      await t.step("GET /metrics: Prometheus text", async () => {
        const res = await fetch(`${s.url}/metrics`);
        assertStrictEquals(res.status, 200);
        assertStringIncludes(res.headers.get("content-type") ?? "", "text/plain");
        const text = await res.text();
        assertMatch(text, /^stepflow_runs_finished_total\{status="completed"\} \d+$/m);
        assertMatch(text, /^stepflow_runs_active 0$/m);
        assertMatch(
          text,
          /^stepflow_http_requests_total\{method="POST",route="\/api\/v1\/runs",status="200"\} \d+$/m,
        );
        assertMatch(text, /^stepflow_run_duration_seconds_count \d+$/m);
      });

      await t.step("an unknown route: 404 naming the API's place", async () => {
        isError(await s.call("GET", "/api/v2/runs"), 404, "/api/v1");
      });
    } finally {
      assertStrictEquals(await s.stop(), 0);
    }
  });
});
