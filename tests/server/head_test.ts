/**
 * HEAD answers carry the GET's headers, `content-length` included, and no body (fault: every
 * HEAD said `content-length: 0`: Hono answered it with a null body, and `Deno.serve` counts
 * that). Against the real server.
 * @module
 */
import { assert, assertStrictEquals } from "../_assert.ts";
import { storeFlow, THREE_STEPS, withServer } from "./_server.ts";

async function head(url: string): Promise<{ status: number; headers: Headers; body: string }> {
  const res = await fetch(url, { method: "HEAD" });
  return { status: res.status, headers: res.headers, body: await res.text() };
}

async function getLength(url: string): Promise<{ bytes: number; type: string | null }> {
  const res = await fetch(url);
  const bytes = (await res.arrayBuffer()).byteLength;
  return { bytes, type: res.headers.get("content-type") };
}

Deno.test("HEAD: the GET's content-length and content-type, no body (was content-length: 0)", () =>
  withServer({ args: ["--store", "memory"] }, async (s) => {
    const flowId = await storeFlow(s, THREE_STEPS);
    const run = await s.call("POST", "/api/v1/runs", { flowId, input: { q: "x" } });
    const runId = run.body.runId;
    for (
      const path of [
        "/api/v1/openapi.json",
        "/api/v1/runs",
        `/api/v1/runs/${runId}`,
        `/api/v1/runs/${runId}/steps`,
        `/api/v1/flows/${flowId}`,
        "/ui/",
        "/swagger-ui",
      ]
    ) {
      const g = await getLength(`${s.url}${path}`);
      assert(g.bytes > 0, path);
      const h = await head(`${s.url}${path}`);
      assertStrictEquals(h.status, 200, path);
      assertStrictEquals(h.headers.get("content-length"), String(g.bytes), path);
      assertStrictEquals(h.headers.get("content-type"), g.type, path);
      assertStrictEquals(h.body, "", path);
    }
    // an error answer too: its length is the GET's error body's
    const missing = `/api/v1/runs/${crypto.randomUUID()}`;
    const g = await getLength(`${s.url}${missing}`);
    const h = await head(`${s.url}${missing}`);
    assertStrictEquals(h.status, 404);
    assertStrictEquals(h.headers.get("content-length"), String(g.bytes));

    // a POST-only path: 405 naming HEAD, with Allow
    const post = await fetch(`${s.url}/api/v1/runs/${runId}/cancel`, { method: "HEAD" });
    await post.body?.cancel();
    assertStrictEquals(post.status, 405);
    assertStrictEquals(post.headers.get("allow"), "POST");

    // an event stream (no end): answered at once, without a length, as its GET (chunked)
    const ev = await fetch(`${s.url}/api/v1/runs/${runId}/events`, { method: "HEAD" });
    assertStrictEquals(ev.status, 200);
    assertStrictEquals(ev.headers.get("content-type")?.startsWith("text/event-stream"), true);
    assertStrictEquals(ev.headers.get("content-length"), null);
    assertStrictEquals(await ev.text(), "");

    // counted as HEAD in the metrics
    const metrics = await (await fetch(`${s.url}/metrics`)).text();
    assert(
      /^stepflow_http_requests_total\{method="HEAD",route="\/api\/v1\/runs\/:runId",status="200"\} 1$/m
        .test(metrics),
      metrics.split("\n").filter((l) => l.includes('method="HEAD"')).join("\n"),
    );
  }));
