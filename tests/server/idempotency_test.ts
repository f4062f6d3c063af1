/**
 * `Idempotency-Key` is kept with the run in the store: a restarted service (or another one on the
 * same database) answers a repeated request with the run the first one started, and refuses the
 * key for a different request.
 * @module
 */
import { assert, assertStrictEquals, assertStringIncludes, withTempDir } from "../_assert.ts";
import {
  GATED_FLOW,
  journalConfig,
  mkfifo,
  startServer,
  storeFlow,
  THREE_STEPS,
} from "./_server.ts";

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

/** Connections of the server on `port` that their client closed and the server did not. */
async function closeWaits(port: number): Promise<number> {
  const hexPort = port.toString(16).toUpperCase().padStart(4, "0");
  let n = 0;
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text = "";
    try {
      text = await Deno.readTextFile(file);
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const cols = line.trim().split(/\s+/);
      // local address, state 08 = CLOSE_WAIT
      if (cols[1]?.endsWith(`:${hexPort}`) && cols[3] === "08") n++;
    }
  }
  return n;
}

Deno.test({
  name:
    "clients that give up on a waiting POST /runs (one Idempotency-Key, retried) leave no connection behind",
  ignore: Deno.build.os !== "linux",
  fn: () =>
    withTempDir(async (dir) => {
      // was: each request waited for the run whatever became of its client: 200 retries of a
      // run that never ends, each given up after 0.5 s, left 200 sockets in CLOSE_WAIT (and as
      // many waiters) until the run ended — without bound for a client retrying long enough
      const s = await startServer(dir, {
        args: ["--store", "memory"],
        config: journalConfig(`${dir}/journal.txt`),
      });
      try {
        const flowId = await storeFlow(s, GATED_FLOW);
        const ready = `${dir}/ready`;
        const release = `${dir}/release`;
        await mkfifo(ready, release);
        const body = JSON.stringify({ flowId, input: { v: 1, ready, release, pad: 0 } });
        const key = "held-run";
        const first = await s.call("POST", "/api/v1/runs", { ...JSON.parse(body), wait: false }, {
          "Idempotency-Key": key,
        });
        assertStrictEquals(first.status, 202, JSON.stringify(first.body));
        await Deno.readTextFile(ready); // the run's step is held
        const request = `POST /api/v1/runs HTTP/1.1\r\nHost: 127.0.0.1\r\n` +
          `Content-Type: application/json\r\nIdempotency-Key: ${key}\r\n` +
          `Content-Length: ${new TextEncoder().encode(body).length}\r\n\r\n${body}`;
        for (let i = 0; i < 30; i++) {
          const conn = await Deno.connect({ hostname: "127.0.0.1", port: s.port });
          await conn.write(new TextEncoder().encode(request));
          conn.close(); // the client gives up
        }
        const deadline = Date.now() + 20_000;
        let left = await closeWaits(s.port);
        while (left > 0 && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 100));
          left = await closeWaits(s.port);
        }
        assertStrictEquals(left, 0, "connections closed by their clients still open");
        // the run itself goes on and answers a client that stays
        await Deno.writeTextFile(release, "go\n");
        const done = await s.call("POST", "/api/v1/runs", JSON.parse(body), {
          "Idempotency-Key": key,
        });
        assertStrictEquals(done.body.status, "completed", JSON.stringify(done.body));
        assertStrictEquals(done.body.runId, first.body.runId);
      } finally {
        assertStrictEquals(await s.stop(), 0, s.stderr());
      }
      // watching request.signal under Deno's legacy abort printed a warning on the first answer
      // sent (deno.json's `unstable: ["no-legacy-abort"]`, the launcher's and executables' flag)
      assert(!s.stderr().includes("Deno.serve:"), s.stderr());
    }),
});
