/**
 * Faults found by testing the real `stepflow serve`, each kept as the failing input: request
 * bodies nested deeper than the engine's limit, a batch with no inputs, a wrong method on a real
 * route. Each answers a clear 4xx `{code, message}` and the service keeps serving.
 * @module
 */
import { assertStrictEquals, assertStringIncludes, withTempDir } from "../_assert.ts";
import { type Answer, type RunningServer, storeFlow, THREE_STEPS, withServer } from "./_server.ts";

function isError(r: Answer, status: number, ...includes: string[]) {
  assertStrictEquals(r.status, status, JSON.stringify(r.body));
  assertStrictEquals(r.body.code, status);
  for (const text of includes) assertStringIncludes(r.body.message, text);
}

async function stillServing(s: RunningServer, flowId: string) {
  const r = await s.call("POST", "/api/v1/runs", { flowId, input: { q: "still here" } });
  assertStrictEquals(r.status, 200, JSON.stringify(r.body));
  assertStrictEquals(r.body.status, "completed");
}

/** JSON text of `levels` nested arrays around `inner` (`[[1]]` is 2 levels). */
function nested(levels: number, inner = "1"): string {
  return "[".repeat(levels) + inner + "]".repeat(levels);
}

Deno.test("a body nested 20,000 levels deep is refused with 400 naming the field, on every body-reading route", () =>
  withServer({ args: ["--store", "memory"] }, async (s) => {
    const flowId = await storeFlow(s, THREE_STEPS);
    const deep = nested(20_000);
    // was: 200 with a failed run, 507 "cannot store run state ...: Maximum call stack size exceeded"
    isError(
      await s.call("POST", "/api/v1/runs", `{"flowId":"${flowId}","input":${deep}}`),
      400,
      "$.input is nested more than 512 levels deep",
    );
    // an inexact number takes the exact-number parser, which recursed out of stack
    isError(
      await s.call(
        "POST",
        "/api/v1/runs",
        `{"flowId":"${flowId}","input":${nested(20_000, "1.0")}}`,
      ),
      400,
      "nested more than 512 levels deep",
    );
    // was: 500 Internal error: Maximum call stack size exceeded
    isError(
      await s.call("POST", "/api/v1/flows", `{"flow":{"schema":"x","steps":${deep}}}`),
      400,
      "$.flow is nested more than 512 levels deep",
    );
    isError(
      await s.call(
        "POST",
        "/api/v1/batches",
        `{"flowId":"${flowId}","inputs":[{"q":"a"},${deep}]}`,
      ),
      400,
      "$.inputs[1] is nested more than 512 levels deep",
    );
    const run = await s.call("POST", "/api/v1/runs", {
      flowId,
      input: { q: "x" },
      wait: false,
    });
    const runId = run.body.runId;
    isError(
      await s.call("POST", `/api/v1/runs/${runId}/signals/go`, `{"data":${deep}}`),
      400,
      "$.data is nested more than 512 levels deep",
    );
    isError(await s.call("POST", "/api/v1/runs", deep), 400, "$[0] is nested");
    // a batch input is held to the limit as a run input is: 512 levels pass
    const ok = await s.call(
      "POST",
      "/api/v1/batches",
      `{"flowId":"${flowId}","inputs":[{"q":"a","d":${nested(511)}}]}`,
    );
    assertStrictEquals(ok.status, 200, JSON.stringify(ok.body));
    await stillServing(s, flowId);
  }));

Deno.test("a lone surrogate in a request body is a 400 naming its JSON path, not a flow name stored as U+FFFD", () =>
  withTempDir((dir) =>
    withServer({ args: ["--store", `${dir}/runs.db`] }, async (s) => {
      // was: 200; the run's flow name read back from the runs table as "bad \ufffd" (SQLite and
      // PostgreSQL write UTF-8, which has no lone surrogates); stepflow 0.8 refuses the body
      const flow = JSON.stringify({ ...THREE_STEPS, name: "bad NAME" });
      isError(
        await s.call("POST", "/api/v1/flows", `{"flow":${flow.replace("NAME", "\\ud800")}}`),
        400,
        "Invalid request body: $.flow.name holds a lone UTF-16 surrogate",
        "write the character itself, or both halves of its surrogate pair",
      );
      isError(
        await s.call(
          "POST",
          "/api/v1/flows",
          `{"flow":${flow.replace('"steps"', '"\\udc00x":1,"steps"')}}`,
        ),
        400,
        "Invalid request body: a key of $.flow holds a lone UTF-16 surrogate",
      );
      // a whole surrogate pair is a character: stored and read back as sent
      const stored = await s.call(
        "POST",
        "/api/v1/flows",
        `{"flow":${flow.replace("NAME", "\\ud83d\\ude00")}}`,
      );
      assertStrictEquals(stored.status, 200, JSON.stringify(stored.body));
      const flowId = stored.body.flowId;
      isError(
        await s.call("POST", "/api/v1/runs", `{"flowId":"${flowId}","input":{"q":"\\udfff"}}`),
        400,
        "Invalid request body: $.input.q holds a lone UTF-16 surrogate",
      );
      const run = await s.call("POST", "/api/v1/runs", { flowId, input: { q: "x" } });
      assertStrictEquals(run.status, 200, JSON.stringify(run.body));
      const got = await s.call("GET", `/api/v1/runs/${run.body.runId}`);
      assertStrictEquals(got.body.flowName ?? got.body.summary?.flowName, "bad \u{1F600}");
    })
  ));

Deno.test("an input nested exactly 512 levels deep is accepted, as by stepflow run", () =>
  withServer({ args: ["--store", "memory"] }, async (s) => {
    const flowId = await storeFlow(s, THREE_STEPS);
    // {q, deep: <511 levels>} is 512 levels; the body around it is 513
    const body = `{"flowId":"${flowId}","input":{"q":"x","deep":${nested(511)}}}`;
    const r = await s.call("POST", "/api/v1/runs", body);
    assertStrictEquals(r.status, 200, JSON.stringify(r.body));
    assertStrictEquals(r.body.status, "completed");
    isError(
      await s.call(
        "POST",
        "/api/v1/runs",
        `{"flowId":"${flowId}","input":{"q":"x","deep":${nested(512)}}}`,
      ),
      400,
      "$.input is nested more than 512 levels deep",
    );
  }));

Deno.test("a batch with no inputs is a 400 saying so, not a batch running forever", () =>
  withServer({ args: ["--store", "memory"] }, async (s) => {
    const flowId = await storeFlow(s, THREE_STEPS);
    // was: 200 with a batch 'running' forever (cancel: 409 every run has finished)
    isError(
      await s.call("POST", "/api/v1/batches", { flowId, inputs: [] }),
      400,
      "$.inputs",
      "at least one input",
    );
    const listed = await s.call("GET", "/api/v1/batches");
    assertStrictEquals(listed.status, 200);
    assertStrictEquals(JSON.stringify(listed.body).includes('"running"'), false);
    await stillServing(s, flowId);
  }));

Deno.test("a wrong method on a real route is a 405 with an Allow header and a {code, message} body; an unknown path stays 404", () =>
  withServer({ args: ["--store", "memory"] }, async (s) => {
    const flowId = await storeFlow(s, THREE_STEPS);
    const run = await s.call("POST", "/api/v1/runs", { flowId, input: { q: "x" } });
    const runId = run.body.runId;
    // was: 404 "No route ...: the API is under /api/v1"
    const patch = await s.call("PATCH", "/api/v1/flows", { flow: THREE_STEPS });
    isError(patch, 405, "PATCH", "/api/v1/flows", "use POST");
    assertStrictEquals(patch.headers.get("allow"), "POST");
    assertStrictEquals(Object.keys(patch.body).sort().join(), "code,message");
    const cancel = await s.call("DELETE", `/api/v1/runs/${runId}/cancel`);
    isError(cancel, 405, "use POST");
    assertStrictEquals(cancel.headers.get("allow"), "POST");
    const flow = await s.call("PUT", `/api/v1/flows/${flowId}`);
    isError(flow, 405, "use GET or DELETE");
    assertStrictEquals(flow.headers.get("allow"), "GET, HEAD, DELETE");
    assertStrictEquals((await s.call("POST", "/health")).headers.get("allow"), "GET, HEAD");
    isError(await s.call("GET", "/api/v1/nothing"), 404, "the API is under /api/v1");
    isError(await s.call("GET", "/api/v2/runs"), 404, "the API is under /api/v1");
    await stillServing(s, flowId);
  }));

Deno.test("a key given twice in a request body is a 400 naming it, not the last one taken silently", () =>
  withServer({ args: ["--store", "memory"] }, async (s) => {
    // was: 200, the flow stored with the second `name` ("f") and the first dropped; the same
    // text as a flow file or as `stepflow run --input-json` is refused ("Duplicate key ...")
    const flow = JSON.stringify(THREE_STEPS);
    const twice = flow.replace(/^\{/, '{"name":"e",');
    isError(
      await s.call("POST", "/api/v1/flows", `{"flow":${twice}}`),
      400,
      "$.flow.name is given twice (line 1, column ",
      "remove one of them",
    );
    isError(
      await s.call("POST", "/api/v1/flows", `{"flow":{"name":"x"},\n"flow":${flow}}`),
      400,
      "$.flow is given twice (line 2, column 1; first at line 1, column 2)",
    );
    const flowId = await storeFlow(s, THREE_STEPS);
    // in an input, also spelt with an escape, deep in a list
    isError(
      await s.call(
        "POST",
        "/api/v1/runs",
        `{"flowId":"${flowId}","input":{"q":"a","list":[1,{"k":1,"\\u006b":2}]}}`,
      ),
      400,
      "$.input.list[1].k is given twice",
    );
    isError(
      await s.call(
        "POST",
        "/api/v1/batches",
        `{"flowId":"${flowId}","inputs":[{"q":"a"},{"q":"b","q":"c"}]}`,
      ),
      400,
      "$.inputs[1].q is given twice",
    );
    // keys that only look alike are different keys; a value equal to a key is no key
    const ok = await s.call(
      "POST",
      "/api/v1/runs",
      `{"flowId":"${flowId}","input":{"q":"q","Q":"q","q ":["q","q"],"\\"q":{"q":"q"}}}`,
    );
    assertStrictEquals(ok.status, 200, JSON.stringify(ok.body));
    await stillServing(s, flowId);
  }));
