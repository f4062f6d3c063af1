/**
 * The in-memory `stepflow serve` bounds the flows it keeps (`stateStore.maxFlows`): before, every
 * flow posted to `POST /flows` was kept for the life of the process. Flows of the runs it holds
 * stay; an evicted flow is a 404 saying it was evicted and how to keep flows.
 */
import { assert, assertStrictEquals, assertStringIncludes } from "../_assert.ts";
import { Engine } from "../../src/execution/engine.ts";
import { createServer } from "../../src/server/server.ts";
import { testConfig } from "../execution/_engine_helpers.ts";
import { SCHEMA } from "./_server.ts";

function flowNamed(name: string) {
  return {
    schema: SCHEMA,
    name,
    steps: [{
      id: "m",
      component: "/builtin/create_messages",
      input: { user_prompt: { $from: { workflow: "input" }, path: "$.q" } },
    }],
    output: { $from: { step: "m" }, path: "$.messages[0].content" },
  };
}

Deno.test("serve (in memory): flows beyond stateStore.maxFlows are evicted, except those of held runs; an evicted one is a clear 404", async () => {
  const engine = await Engine.create(
    testConfig({}, { stateStore: { type: "inMemory", maxFlows: 3 } }),
  );
  const server = createServer(engine);
  const call = async (method: string, path: string, body?: unknown) => {
    const res = await server.fetch(
      new Request(`http://127.0.0.1${path}`, {
        method,
        headers: { "content-type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
      }),
    );
    return { status: res.status, body: await res.json().catch(() => null) };
  };
  try {
    const post = async (name: string): Promise<string> => {
      const r = await call("POST", "/api/v1/flows", { flow: flowNamed(name) });
      assertStrictEquals(r.status, 200, JSON.stringify(r.body));
      return r.body.flowId;
    };
    const ran = await post("ran");
    const run = await call("POST", "/api/v1/runs", { flowId: ran, input: { q: "hi" } });
    assertStrictEquals(run.body.status, "completed", JSON.stringify(run.body));
    // the failing input: many distinct flows posted (before: all kept)
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) ids.push(await post(`f${i}`));
    // the flow of the retained run stays, and so do the last ones
    assertStrictEquals((await call("GET", `/api/v1/flows/${ran}`)).status, 200);
    assertStrictEquals((await call("GET", `/api/v1/runs/${run.body.runId}/flow`)).status, 200);
    assertStrictEquals((await call("GET", `/api/v1/flows/${ids[9]}`)).status, 200);
    assertStrictEquals((await call("GET", `/api/v1/flows/${ids[8]}`)).status, 200);
    // an old one is gone, and the answer says why and what to do
    for (
      const [method, path] of [["GET", `/api/v1/flows/${ids[0]}`], [
        "DELETE",
        `/api/v1/flows/${ids[0]}`,
      ]]
    ) {
      const gone = await call(method, path);
      assertStrictEquals(gone.status, 404);
      assertStringIncludes(
        gone.body.message,
        `Flow '${ids[0]}' was evicted from this service's in-memory store`,
      );
      assertStringIncludes(
        gone.body.message,
        "keeps the 3 flows stored or used last (stateStore.maxFlows",
      );
      assertStringIncludes(gone.body.message, "store it again with POST /api/v1/flows");
      assertStringIncludes(gone.body.message, "stepflow serve --store stepflow.db");
    }
    const r = await call("POST", "/api/v1/runs", { flowId: ids[0], input: { q: "x" } });
    assertStrictEquals(r.status, 404);
    assertStringIncludes(r.body.message, "was evicted");
    // a flow never stored is still the plain 404
    const unknown = await call("GET", `/api/v1/flows/${"0".repeat(64)}`);
    assertStrictEquals(unknown.status, 404);
    assert(!unknown.body.message.includes("evicted"), unknown.body.message);
    // posted again, it is back and runs
    assertStrictEquals(await post("f0"), ids[0]);
    const again = await call("POST", "/api/v1/runs", { flowId: ids[0], input: { q: "x" } });
    assertStrictEquals(again.body.status, "completed", JSON.stringify(again.body));
  } finally {
    await server.shutdown(1_000);
    await engine.close();
  }
});

Deno.test("engine.getFlow of a flow the in-memory store evicted says so; running the same flow object stores it again", async () => {
  const engine = await Engine.create(
    testConfig({}, { stateStore: { type: "inMemory", maxFlows: 1, maxFinishedRuns: 1 } }),
  );
  try {
    const { parseFlowValue } = await import("../../src/flow/load.ts");
    const a = parseFlowValue(flowNamed("a")).flow;
    const b = parseFlowValue(flowNamed("b")).flow;
    const ra = await engine.start(a, { q: "1" }).result;
    assertStrictEquals(ra.outcome, "success");
    const idA = engine.storeFlow(a);
    await engine.run(b, { q: "2" }); // a's run is evicted (maxFinishedRuns 1), then a itself
    let message = "";
    try {
      await engine.getFlow(idA);
    } catch (e) {
      message = (e as Error).message;
    }
    assertStringIncludes(
      message,
      `Not found: flow with ID '${idA}': it was evicted from the in-memory state store`,
    );
    // the engine remembered the flow object: it is stored again when run again
    const h = engine.start(a, { q: "3" });
    const r = await h.result;
    assertStrictEquals(r.outcome, "success", JSON.stringify(r));
    assertStrictEquals((await engine.getFlow(idA)).name, "a");
  } finally {
    await engine.close();
  }
});
