/**
 * `Idempotency-Key` is kept with the run in the store: a restarted service (or another one on the
 * same database) answers a repeated request with the run the first one started, and refuses the
 * key for a different request.
 * @module
 */
import { assert, assertStrictEquals, assertStringIncludes, withTempDir } from "../_assert.ts";
import { startServer, storeFlow, THREE_STEPS } from "./_server.ts";

Deno.test("Idempotency-Key survives a restart: same key → same run; another request with it → 422", () =>
  withTempDir(async (dir) => {
    const args = ["--store", "sqlite:state.db"];
    const key = { "Idempotency-Key": "invoice-2026-0001" };
    let first = await startServer(dir, { args });
    let runId: string;
    let flowId: string;
    try {
      flowId = await storeFlow(first, THREE_STEPS);
      const a = await first.call("POST", "/api/v1/runs", { flowId, input: { q: "once" } }, key);
      assertStrictEquals(a.status, 200);
      runId = a.body.runId;
      // a key whose run has not started: queued by wait: false, same answer
      const queued = await first.call(
        "POST",
        "/api/v1/runs",
        { flowId, input: { q: "later" }, variables: { v: 1 }, wait: false },
        { "Idempotency-Key": "k2" },
      );
      assertStrictEquals(queued.status, 202);
    } finally {
      assertStrictEquals(await first.stop(), 0);
    }

    first = await startServer(dir, { args });
    try {
      const again = await first.call("POST", "/api/v1/runs", { flowId, input: { q: "once" } }, key);
      assertStrictEquals(again.status, 200);
      assertStrictEquals(again.body.runId, runId);
      assertStrictEquals(again.headers.get("idempotent-replayed"), "true");
      assertStrictEquals(again.body.result.result.messages[0].content, "once");
      // same body, other key order: still the same request (canonical JSON)
      const reordered = await first.call(
        "POST",
        "/api/v1/runs",
        { input: { q: "once" }, flowId },
        key,
      );
      assertStrictEquals(reordered.body.runId, runId);

      const other = await first.call("POST", "/api/v1/runs", { flowId, input: { q: "two" } }, key);
      assertStrictEquals(other.status, 422);
      assertStrictEquals(other.body.code, 422);
      assertStringIncludes(other.body.message, "invoice-2026-0001");
      assertStringIncludes(other.body.message, runId);
      assertStringIncludes(other.body.message, "use a new key");

      // the run with variables, after the restart: the same request is recognised
      const k2 = await first.call(
        "POST",
        "/api/v1/runs",
        { flowId, input: { q: "later" }, variables: { v: 1 } },
        { "Idempotency-Key": "k2" },
      );
      assertStrictEquals(k2.headers.get("idempotent-replayed"), "true");
      const k2other = await first.call(
        "POST",
        "/api/v1/runs",
        { flowId, input: { q: "later" }, variables: { v: 2 } },
        { "Idempotency-Key": "k2" },
      );
      assertStrictEquals(k2other.status, 422);

      // one run per key in the store
      const runs = (await first.call("GET", "/api/v1/runs")).body.runs;
      assertStrictEquals(runs.length, 2);

      // a deleted run frees its key
      assertStrictEquals((await first.call("DELETE", `/api/v1/runs/${runId}`)).status, 200);
      const fresh = await first.call("POST", "/api/v1/runs", { flowId, input: { q: "two" } }, key);
      assertStrictEquals(fresh.status, 200);
      assert(fresh.body.runId !== runId);
      assertStrictEquals(fresh.headers.get("idempotent-replayed"), null);
    } finally {
      await first.stop();
    }
  }));
