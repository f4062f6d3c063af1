/**
 * Load on the real service with its default durable store (./stepflow.db): 2,000 runs of a
 * 3-step built-in flow from 50 concurrent clients, and 200 runs over a stdio step service. Every
 * run completes and is stored exactly once; no error response.
 * @module
 */
import { assertEquals, assertStrictEquals, withTempDir } from "../_assert.ts";
import { SCHEMA, startServer, storeFlow, THREE_STEPS } from "./_server.ts";

const ADD = {
  schema: SCHEMA,
  name: "add",
  steps: [{
    id: "add",
    component: "/sdk/add",
    input: { a: { $from: { workflow: "input" }, path: "$.i" }, b: 1 },
  }],
  output: { $from: { step: "add" }, path: "$.sum" },
};

/** Runs `total` POST /runs from `clients` concurrent clients; returns [status, body] per input. */
async function hammer(
  url: string,
  total: number,
  clients: number,
  body: (i: number) => unknown,
): Promise<{ runId: string; status: string; result: { outcome: string; result?: unknown } }[]> {
  const out: { runId: string; status: string; result: { outcome: string } }[] = new Array(total);
  let next = 0;
  const errors: string[] = [];
  await Promise.all(Array.from({ length: clients }, async () => {
    while (next < total) {
      const i = next++;
      const res = await fetch(`${url}/api/v1/runs`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body(i)),
      });
      const b = await res.json();
      if (res.status !== 200) errors.push(`${i}: ${res.status} ${JSON.stringify(b)}`);
      out[i] = b;
    }
  }));
  assertEquals(errors, []);
  return out;
}

Deno.test("load: 2,000 runs from 50 clients and 200 over a stdio step service — all complete, each stored once", async () => {
  await withTempDir(async (dir) => {
    const s = await startServer(dir);
    try {
      assertStrictEquals(JSON.parse(s.stderr().split("\n")[0]).store, "sqlite:stepflow.db");
      const three = await storeFlow(s, THREE_STEPS);
      const add = await storeFlow(s, ADD);
      const [builtin, stdio] = await Promise.all([
        hammer(s.url, 2000, 50, (i) => ({ flowId: three, input: { q: `q${i}` } })),
        hammer(s.url, 200, 10, (i) => ({ flowId: add, input: { i } })),
      ]);
      builtin.forEach((r, i) => {
        assertStrictEquals(r.status, "completed");
        assertStrictEquals(
          (r.result.result as { messages: { content: string }[] }).messages[0].content,
          `q${i}`,
        );
      });
      stdio.forEach((r, i) => {
        assertStrictEquals(r.status, "completed");
        assertStrictEquals(r.result.result, i + 1);
      });
      const ids = new Set([...builtin, ...stdio].map((r) => r.runId));
      assertStrictEquals(ids.size, 2200);
      // stored exactly once each: the list holds 2,200 runs, all distinct, all completed
      const listed = (await s.call("GET", "/api/v1/runs")).body.runs as {
        runId: string;
        status: string;
      }[];
      assertStrictEquals(listed.length, 2200);
      assertStrictEquals(new Set(listed.map((r) => r.runId)).size, 2200);
      for (const r of listed) {
        if (!ids.has(r.runId) || r.status !== "completed") {
          throw new Error(`unexpected stored run ${JSON.stringify(r)}`);
        }
      }
      const metrics = await (await fetch(`${s.url}/metrics`)).text();
      assertStrictEquals(
        /stepflow_runs_finished_total\{status="completed"\} (\d+)/.exec(metrics)?.[1],
        "2200",
      );
    } finally {
      assertStrictEquals(await s.stop(), 0);
    }
    // and still there after the service stopped
    const again = await startServer(dir);
    try {
      const n = (await again.call("GET", "/api/v1/runs?status=completed&limit=5000")).body.runs
        .length;
      assertStrictEquals(n, 2200);
    } finally {
      await again.stop();
    }
  });
});
