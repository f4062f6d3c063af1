/**
 * Beyond 0.8: `wait: false` / `timeoutSecs` (202 with the run id and status), the
 * `Idempotency-Key` header, the limit on concurrent runs with its queue (`queued`, 429).
 * @module
 */
import { assert, assertStrictEquals, assertStringIncludes, withTempDir } from "../_assert.ts";
import {
  type RunningServer,
  SCHEMA,
  startServer,
  storeFlow,
  THREE_STEPS,
  waitForFile,
  withServer,
} from "./_server.ts";

function sleepFlow(readyFile?: string) {
  return {
    schema: SCHEMA,
    name: "sleep",
    steps: [{
      id: "nap",
      component: "/py/sleep",
      input: { ms: { $from: { workflow: "input" }, path: "$.ms" }, ready_file: readyFile ?? "" },
    }],
    output: { $from: { step: "nap" } },
  };
}

/** Polls GET /runs/{id} (bounded) until the run is no longer queued/running. */
async function finished(s: RunningServer, runId: string) {
  for (let i = 0; i < 2000; i++) {
    const r = await s.call("GET", `/api/v1/runs/${runId}`);
    if (r.body.status !== "running" && r.body.status !== "queued") return r.body;
    await new Promise((res) => setTimeout(res, 10));
  }
  throw new Error(`run ${runId} did not finish`);
}

Deno.test("POST /runs with wait: false answers 202 {runId, status} at once; the run goes on", () =>
  withServer({ args: ["--store", "memory"] }, async (s) => {
    const flowId = await storeFlow(s, sleepFlow());
    const r = await s.call("POST", "/api/v1/runs", { flowId, input: { ms: 300 }, wait: false });
    assertStrictEquals(r.status, 202);
    assertStrictEquals(r.body.status, "running");
    assertStrictEquals(r.body.result, undefined);
    assertStrictEquals(r.body.debug, false);
    const done = await finished(s, r.body.runId);
    assertStrictEquals(done.status, "completed");
    assertStrictEquals(done.result.result.slept, 300);
  }));

Deno.test("POST /runs with timeoutSecs answers 202 when the run takes longer, 200 when it does not", () =>
  withServer({ args: ["--store", "memory"] }, async (s) => {
    const flowId = await storeFlow(s, sleepFlow());
    const slow = await s.call("POST", "/api/v1/runs", {
      flowId,
      input: { ms: 1500 },
      timeoutSecs: 0.1,
    });
    assertStrictEquals(slow.status, 202);
    assertStrictEquals(slow.body.status, "running");
    const fast = await s.call("POST", "/api/v1/runs", {
      flowId,
      input: { ms: 1 },
      timeoutSecs: 30,
    });
    assertStrictEquals(fast.status, 200);
    assertStrictEquals(fast.body.status, "completed");
    assertStrictEquals((await finished(s, slow.body.runId)).status, "completed");
    const bad = await s.call("POST", "/api/v1/runs", { flowId, input: {}, timeoutSecs: -1 });
    assertStrictEquals(bad.status, 400);
    assertStringIncludes(bad.body.message, "timeoutSecs");
  }));

Deno.test("timeoutSecs: 5.0 and maxConcurrency: 2.0 (a float as Python writes it) are their values, not 'received object'", () =>
  withServer({ args: ["--store", "memory"] }, async (s) => {
    const flowId = await storeFlow(s, sleepFlow());
    for (const t of ["5.0", "1e1", "30.000"]) {
      const r = await s.call(
        "POST",
        "/api/v1/runs",
        `{"flowId":"${flowId}","input":{"ms":1,"n":15.0},"timeoutSecs":${t}}`,
      );
      assertStrictEquals(r.status, 200, `${t}: ${JSON.stringify(r.body)}`);
      assertStrictEquals(r.body.status, "completed");
    }
    const zero = await s.call(
      "POST",
      "/api/v1/runs",
      `{"flowId":"${flowId}","input":{},"timeoutSecs":0.0}`,
    );
    assertStrictEquals(zero.status, 400);
    assertStringIncludes(zero.body.message, "$.timeoutSecs: Too small");
    const batch = await s.call(
      "POST",
      "/api/v1/batches",
      `{"flowId":"${flowId}","inputs":[{"ms":1}],"maxConcurrency":2.0}`,
    );
    assertStrictEquals(batch.status, 200, JSON.stringify(batch.body));
    const half = await s.call(
      "POST",
      "/api/v1/batches",
      `{"flowId":"${flowId}","inputs":[{"ms":1}],"maxConcurrency":2.5}`,
    );
    assertStrictEquals(half.status, 400);
    assertStringIncludes(half.body.message, "$.maxConcurrency: Invalid input: expected int");
  }));

Deno.test("Idempotency-Key: the same key and request give the same run; another request with it is refused (422)", () =>
  withServer({ args: ["--store", "memory"] }, async (s) => {
    const flowId = await storeFlow(s, THREE_STEPS);
    const body = { flowId, input: { q: "once" } };
    const key = { "Idempotency-Key": "order-42" };
    // concurrent first requests: one run
    const [a, b] = await Promise.all([
      s.call("POST", "/api/v1/runs", body, key),
      s.call("POST", "/api/v1/runs", body, key),
    ]);
    assertStrictEquals(a.status, 200);
    assertStrictEquals(a.body.runId, b.body.runId);
    // replayed after it finished: the stored result
    const c = await s.call("POST", "/api/v1/runs", body, key);
    assertStrictEquals(c.body.runId, a.body.runId);
    assertStrictEquals(c.body.status, "completed");
    assertStrictEquals(c.headers.get("idempotent-replayed"), "true");
    assertStrictEquals(c.body.result.result.messages[0].content, "once");
    assertStrictEquals((await s.call("GET", "/api/v1/runs")).body.runs.length, 1);
    // another key: another run
    const d = await s.call("POST", "/api/v1/runs", body, { "Idempotency-Key": "order-43" });
    assert(d.body.runId !== a.body.runId);
    // the key with another request
    const e = await s.call("POST", "/api/v1/runs", { flowId, input: { q: "twice" } }, key);
    assertStrictEquals(e.status, 422);
    assertStrictEquals(e.body.code, 422);
    assertStringIncludes(e.body.message, "order-42");
    // a key of 256 characters: 400 naming the header, no run
    const long = await s.call("POST", "/api/v1/runs", body, { "Idempotency-Key": "k".repeat(256) });
    assertStrictEquals(long.status, 400);
    assertStringIncludes(long.body.message, "Idempotency-Key");
    assertStrictEquals(
      (await s.call("POST", "/api/v1/runs", body, { "Idempotency-Key": "k".repeat(255) })).status,
      200,
    );
    // the document still has the header (read by the handler, not by a validator)
    const doc = await s.call("GET", "/api/v1/openapi.json");
    const params = doc.body.paths["/api/v1/runs"].post.parameters as { name: string; in: string }[];
    assert(params.some((p) => p.name === "Idempotency-Key" && p.in === "header"));
  }));

Deno.test("--max-concurrent-runs: runs beyond it are queued (status queued), 429 with Retry-After when the queue is full", async () => {
  await withTempDir(async (dir) => {
    const s = await startServer(dir, {
      args: ["--store", "memory", "--max-concurrent-runs", "1", "--max-queued-runs", "1"],
    });
    try {
      const ready = `${dir}/ready`;
      const flowId = await storeFlow(s, sleepFlow(ready));
      const first = await s.call("POST", "/api/v1/runs", {
        flowId,
        input: { ms: 60_000 },
        wait: false,
      });
      assertStrictEquals(first.body.status, "running");
      await waitForFile(ready);
      const second = await s.call("POST", "/api/v1/runs", {
        flowId,
        input: { ms: 1 },
        wait: false,
      });
      assertStrictEquals(second.status, 202);
      assertStrictEquals(second.body.status, "queued");
      const listed = await s.call("GET", "/api/v1/runs?status=queued");
      assertStrictEquals(listed.body.runs[0].runId, second.body.runId);
      const third = await s.call("POST", "/api/v1/runs", { flowId, input: { ms: 1 } });
      assertStrictEquals(third.status, 429);
      assertStrictEquals(third.body.code, 429);
      assertStringIncludes(third.body.message, "--max-queued-runs");
      assertStrictEquals(third.headers.get("retry-after"), "1");
      // cancelling the running run lets the queued one start and finish
      assertStrictEquals(
        (await s.call("POST", `/api/v1/runs/${first.body.runId}/cancel`)).body.status,
        "cancelled",
      );
      assertStrictEquals((await finished(s, second.body.runId)).status, "completed");
      // a queued run can be cancelled before it starts
      await Deno.remove(ready);
      const a = await s.call("POST", "/api/v1/runs", {
        flowId,
        input: { ms: 60_000 },
        wait: false,
      });
      await waitForFile(ready);
      const q = await s.call("POST", "/api/v1/runs", { flowId, input: { ms: 1 }, wait: false });
      assertStrictEquals(q.body.status, "queued");
      const qc = await s.call("POST", `/api/v1/runs/${q.body.runId}/cancel`);
      assertStrictEquals(qc.body.status, "cancelled");
      await s.call("POST", `/api/v1/runs/${a.body.runId}/cancel`);
      const metrics = await (await fetch(`${s.url}/metrics`)).text();
      assertStringIncludes(metrics, 'stepflow_runs_rejected_total{reason="queue_full"} 1');
      assertStringIncludes(metrics, 'stepflow_runs_finished_total{status="cancelled"} 3');
    } finally {
      await s.stop();
    }
  });
});

Deno.test("POST /runs/{id}/cancel racing DELETE /runs/{id}: the cancel answers the cancelled run, not 404", () =>
  withServer({ args: ["--store", "runs.db"] }, async (s) => {
    await withTempDir(async (dir) => {
      for (let i = 0; i < 3; i++) {
        const ready = `${dir}/ready-${i}`;
        const flowId = await storeFlow(s, sleepFlow(ready));
        const run = await s.call("POST", "/api/v1/runs", {
          flowId,
          input: { ms: 60000 },
          wait: false,
        });
        const runId = run.body.runId;
        await waitForFile(ready);
        const cancel = s.call("POST", `/api/v1/runs/${runId}/cancel`);
        // deletes as soon as the run has ended (409 while it runs)
        let deleted = 0;
        for (let n = 0; n < 500 && deleted !== 200; n++) {
          const wave = await Promise.all(
            Array.from({ length: 8 }, () => s.call("DELETE", `/api/v1/runs/${runId}`)),
          );
          for (const d of wave) {
            if (d.status === 200) deleted = 200;
            else assert([404, 409].includes(d.status), `${d.status} ${JSON.stringify(d.body)}`);
          }
        }
        assertStrictEquals(deleted, 200);
        const c = await cancel;
        assertStrictEquals(c.status, 200, JSON.stringify(c.body));
        assertStrictEquals(c.body.status, "cancelled");
        assertStrictEquals(c.body.runId, runId);
      }
    });
  }));

Deno.test("DELETE of a nested run while its top-level run is not finished: 409 naming it (a resume would run the item again); once it finished: 200", () =>
  withServer({ args: ["--store", "runs.db"] }, async (s) => {
    const item = {
      schema: SCHEMA,
      steps: [{ id: "m", component: "/builtin/create_messages", input: { user_prompt: "x" } }],
      output: { $from: { step: "m" } },
    };
    const flowId = await storeFlow(s, {
      schema: SCHEMA,
      name: "map-then-wait",
      steps: [
        {
          id: "each",
          component: "/builtin/map",
          input: { workflow: { $literal: item }, items: [1, 2] },
        },
        {
          id: "hold",
          component: "/builtin/wait_for",
          input: { name: "go", after: { $from: { step: "each" }, path: "successful" } },
        },
      ],
      output: { $from: { step: "hold" } },
    });
    const run = await s.call("POST", "/api/v1/runs", { flowId, input: {}, wait: false });
    const rootId = run.body.runId;
    // the map's items are done once the run waits at `hold`
    const end = Date.now() + 30_000;
    while ((await s.call("GET", `/api/v1/runs/${rootId}`)).body.status !== "paused") {
      assert(Date.now() < end, "the run did not pause");
      await new Promise((r) => setTimeout(r, 50));
    }
    const listed = await s.call("GET", "/api/v1/runs?limit=100");
    const nested: string[] = [];
    for (const r of listed.body.runs as { runId: string }[]) {
      const one = await s.call("GET", `/api/v1/runs/${r.runId}`);
      if (one.body.parentRunId === rootId) nested.push(r.runId);
    }
    assertStrictEquals(nested.length, 2);
    // before: 200, and the paused run lost an item a resume would run again
    const refused = await s.call("DELETE", `/api/v1/runs/${nested[0]}`);
    assertStrictEquals(refused.status, 409, JSON.stringify(refused.body));
    assertStringIncludes(
      refused.body.message,
      `is a nested run of run '${rootId}', which is paused`,
    );
    assertStringIncludes(refused.body.message, "once it has finished");
    assertStrictEquals((await s.call("GET", `/api/v1/runs/${nested[0]}`)).status, 200);
    await s.call("POST", `/api/v1/runs/${rootId}/signals/go`, { ok: true });
    while ((await s.call("GET", `/api/v1/runs/${rootId}`)).body.status !== "completed") {
      assert(Date.now() < end + 30_000, "the run did not complete");
      await new Promise((r) => setTimeout(r, 50));
    }
    assertStrictEquals((await s.call("DELETE", `/api/v1/runs/${nested[0]}`)).status, 200);
    assertStrictEquals((await s.call("DELETE", `/api/v1/runs/${rootId}`)).status, 200);
  }));
