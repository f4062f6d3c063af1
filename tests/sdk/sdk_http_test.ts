import { assertEquals, assertStringIncludes } from "../_assert.ts";
import { execCtx, FakeEngine, spawnHttpWorker, startHttp } from "../plugins/stepflow/_helpers.ts";
import type { FlowFailed, FlowSuccess } from "../../src/core/flow_result.ts";

Deno.test("SDK over HTTP: health, JSON replies, SSE-streamed engine calls, validation", async () => {
  const w = await spawnHttpWorker("sdk_worker.ts");
  const engine = new FakeEngine();
  const p = await startHttp(w.url, { engine });
  try {
    const health = await (await fetch(w.url + "health")).json();
    assertEquals(health.status, "healthy");
    assertEquals(health.service, "sdk-test-worker");
    assertEquals(typeof health.instanceId, "string");

    // SSE only for a component that uses its context; JSON otherwise
    const post = async (component: string, input: unknown) => {
      const r = await fetch(w.url, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "accept": "application/json, text/event-stream",
        },
        body: JSON.stringify({
          jsonrpc: "2.0",
          id: 1,
          method: "components/execute",
          params: { component, input, attempt: 1, observability: {} },
        }),
      });
      await r.body?.cancel();
      return r.headers.get("content-type");
    };
    assertEquals(await post("/add", { a: 1, b: 2 }), "application/json");
    assertEquals(await post("/context", { x: 1 }), "text/event-stream");

    const list = await p.listComponents();
    assertEquals(list.length, 13);
    assertEquals(await p.execute("/add", { a: 1, b: 2 }, execCtx(engine)), {
      outcome: "success",
      result: { sum: 3 },
    });
    // a component that uses its context answers with SSE: its requests come first
    const r = await p.execute("/context", { x: 5 }, execCtx(engine, "s")) as FlowSuccess;
    const out = r.result as Record<string, unknown>;
    assertEquals(out.got, { x: 5 });
    assertEquals(out.evaluated, { outcome: "success", result: { doubled: 10 } });
    assertEquals(engine.calls, ["putBlob data", "getBlob", "putBlob flow", "evaluateFlow"]);

    const bad = await p.execute("/add", { a: 1 }, execCtx(engine)) as FlowFailed;
    assertEquals(bad.error.code, -32602);
    assertStringIncludes(bad.error.message, "input.b");

    const rs = await Promise.all(
      Array.from(
        { length: 50 },
        (_, i) => p.execute("/context", { x: i }, execCtx(engine, `s${i}`)),
      ),
    );
    assertEquals(rs.every((x) => x.outcome === "success"), true);
  } finally {
    await p.close();
    await w.stop();
  }
});
