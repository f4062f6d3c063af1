/**
 * Safety of `stepflow serve` and its faults: loopback by default, no other address without a
 * token, the token, the Host guard, the body limit, graceful SIGTERM; bad JSON, unknown flow,
 * invalid flow, a crashing step service — each a clear 4xx/5xx body, and the service keeps
 * serving.
 * @module
 */
import {
  assert,
  assertEquals,
  assertMatch,
  assertStrictEquals,
  assertStringIncludes,
  runCli,
  withTempDir,
} from "../_assert.ts";
import {
  type Answer,
  type RunningServer,
  SCHEMA,
  startServer,
  storeFlow,
  THREE_STEPS,
  waitForFile,
  withServer,
} from "./_server.ts";

function isError(r: Answer, status: number, includes: string) {
  assertStrictEquals(r.status, status, JSON.stringify(r.body));
  assertStrictEquals(r.body.code, status);
  assertStringIncludes(r.body.message, includes);
}

async function stillServing(s: RunningServer, flowId: string) {
  const r = await s.call("POST", "/api/v1/runs", { flowId, input: { q: "still here" } });
  assertStrictEquals(r.status, 200);
  assertStrictEquals(r.body.status, "completed");
}

Deno.test("serve refuses a non-loopback --host without a token (exit 2, says why and what to do)", async () => {
  await withTempDir(async (dir) => {
    const r = await runCli(["serve", "--host", "0.0.0.0", "--port", "0", "--store", "memory"], {
      cwd: dir,
    });
    assertStrictEquals(r.code, 2);
    assertStringIncludes(r.stderr, "refusing to listen on 0.0.0.0 without a token");
    assertStringIncludes(r.stderr, "--token");
  });
});

Deno.test("serve with a token: 401 without it or with a wrong one, health open, the right one works", async () => {
  await withTempDir(async (dir) => {
    const s = await startServer(dir, {
      args: ["--store", "memory"],
      env: { STEPFLOW_TOKEN: "s3cret" },
    });
    try {
      const none = await s.call("GET", "/api/v1/runs");
      isError(none, 401, "Authorization: Bearer");
      assertMatch(none.headers.get("www-authenticate") ?? "", /^Bearer/);
      isError(
        await s.call("GET", "/api/v1/runs", undefined, { authorization: "Bearer nope" }),
        401,
        "Wrong token",
      );
      isError(
        await s.call("POST", "/api/v1/flows", { flow: THREE_STEPS }, { authorization: "s3cret" }),
        401,
        "Wrong token",
      );
      assertStrictEquals((await s.call("GET", "/health")).status, 200);
      assertStrictEquals((await s.call("GET", "/api/v1/health")).status, 200);
      const ok = await s.call("GET", "/api/v1/runs", undefined, { authorization: "Bearer s3cret" });
      assertStrictEquals(ok.status, 200);
      isError(await s.call("GET", "/metrics"), 401, "token");
    } finally {
      await s.stop();
    }
  });
});

Deno.test("on loopback without a token, requests naming another host are refused (DNS rebinding guard)", () =>
  withServer({ args: ["--store", "memory"] }, async (s) => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: s.port });
    await conn.write(
      new TextEncoder().encode(
        "GET /api/v1/runs HTTP/1.1\r\nHost: attacker.example:80\r\nConnection: close\r\n\r\n",
      ),
    );
    let text = "";
    const buf = new Uint8Array(4096);
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) break;
      text += new TextDecoder().decode(buf.subarray(0, n));
    }
    conn.close();
    assertMatch(text, /^HTTP\/1\.1 403/);
    assertStringIncludes(text, "attacker.example");
    // by its own names it answers
    assertStrictEquals(await fetch(`${s.url}/api/v1/runs`).then((r) => r.status), 200);
    const local = await fetch(`http://localhost:${s.port}/api/v1/runs`).catch(() => undefined);
    if (local) assertStrictEquals(local.status, 200);
  }));

Deno.test("faults: bad JSON, wrong content type, missing fields, unknown flow, invalid flow, oversized body — clear 4xx, service keeps serving", () =>
  withServer({ args: ["--store", "memory", "--max-body-size", "2KB"] }, async (s) => {
    const flowId = await storeFlow(s, THREE_STEPS);
    isError(await s.call("POST", "/api/v1/runs", '{"flowId": '), 400, "not valid JSON");
    isError(
      await s.call("POST", "/api/v1/runs", "flowId=x", { "content-type": "text/plain" }),
      415,
      "application/json",
    );
    isError(await s.call("POST", "/api/v1/runs", { input: {} }), 400, "$.flowId");
    isError(await s.call("POST", "/api/v1/runs", { flowId }), 400, "$.input");
    isError(await s.call("POST", "/api/v1/runs", ""), 400, "$.flowId");
    isError(
      await s.call("POST", "/api/v1/runs", { flowId: "f".repeat(64), input: {} }),
      404,
      "POST /api/v1/flows",
    );
    isError(await s.call("POST", "/api/v1/runs", { flowId: "nope", input: {} }), 400, "64 hex");
    // invalid flow: diagnostics, no flowId
    const invalid = await s.call("POST", "/api/v1/flows", {
      flow: {
        schema: SCHEMA,
        steps: [{
          id: "a",
          component: "/builtin/create_messages",
          input: { $from: { step: "zz" } },
        }],
      },
    });
    assertStrictEquals(invalid.status, 200);
    assertStrictEquals(invalid.body.flowId, undefined);
    assert(invalid.body.diagnostics.numFatal >= 1);
    const fatal = invalid.body.diagnostics.diagnostics.find((d: { level: string }) =>
      d.level === "fatal"
    );
    assertStringIncludes(fatal.text, "zz");
    assertMatch(fatal.path, /^\$\.steps\[0\]/);
    // every shape problem is listed (as `stepflow validate` does), not only the first
    const shape = await s.call("POST", "/api/v1/flows", { flow: { steps: "no" } });
    assertStrictEquals(shape.body.flowId, undefined);
    assertEquals(
      shape.body.diagnostics.diagnostics.map((d: { path: string }) => d.path),
      ["$.schema", "$.steps"],
    );
    assertStrictEquals(shape.body.diagnostics.numFatal, 2);
    const many = await s.call("POST", "/api/v1/flows", {
      flow: { schema: SCHEMA, steps: [{ component: 5 }, { id: 3, component: "/builtin/eval" }] },
    });
    assertStrictEquals(many.body.flowId, undefined);
    const found = many.body.diagnostics.diagnostics as {
      path: string;
      text: string;
      level: string;
    }[];
    assertEquals(found.map((d) => d.path), [
      "$.steps[0].id",
      "$.steps[0].component",
      "$.steps[1].id",
    ]);
    assert(found.every((d) => d.level === "fatal"));
    assertStringIncludes(found[1].text, "expected a string, got the number 5");
    assertStrictEquals(many.body.diagnostics.numFatal, 3);
    isError(
      await s.call("POST", "/api/v1/flows", { flow: THREE_STEPS, x: "y".repeat(3000) }),
      413,
      "2000 bytes",
    );
    // a body without Content-Length (chunked) over the limit
    const chunks = [new TextEncoder().encode('{"flow": "'), new Uint8Array(5000).fill(97)];
    const stream = new ReadableStream<Uint8Array>({
      pull(c) {
        const next = chunks.shift();
        if (next) c.enqueue(next);
        else c.close();
      },
    });
    const res = await fetch(`${s.url}/api/v1/flows`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: stream,
    });
    assertStrictEquals(res.status, 413);
    assertStringIncludes((await res.json()).message, "--max-body-size");
    await stillServing(s, flowId);
  }));

Deno.test("compressed bodies: gzip, deflate and br are read (limit after decompression); other encodings 415, bad data 400", () =>
  withServer({ args: ["--store", "memory", "--max-body-size", "2KB"] }, async (s) => {
    const flowId = await storeFlow(s, THREE_STEPS);
    const body = JSON.stringify({ flowId, input: { q: "zipped" } });
    const post = async (bytes: BodyInit, encoding: string) => {
      const res = await fetch(`${s.url}/api/v1/runs`, {
        method: "POST",
        headers: { "content-type": "application/json", "content-encoding": encoding },
        body: bytes,
      });
      return { status: res.status, body: await res.json() } as Answer;
    };
    const compress = (text: string, format: CompressionFormat) =>
      new Response(
        new Blob([text]).stream().pipeThrough(new CompressionStream(format)),
      ).arrayBuffer();
    // before: 'The request body is not UTF-8 text' (the gzip bytes read as the JSON)
    const formats = [["gzip", "gzip"], ["x-gzip", "gzip"], ["deflate", "deflate"], [
      "br",
      "brotli",
    ]] as const;
    for (const [encoding, format] of formats) {
      const r = await post(await compress(body, format as CompressionFormat), encoding);
      assertStrictEquals(r.status, 200, JSON.stringify(r.body));
      assertStrictEquals(r.body.status, "completed");
    }
    // a small gzip bomb stops at the limit, decompressed
    const bomb = await compress(JSON.stringify({ flowId, input: "a".repeat(100_000) }), "gzip");
    assert(bomb.byteLength < 2000);
    isError(await post(bomb, "gzip"), 413, "once decompressed (gzip)");
    // before: a plain body labelled br or zstd was taken as it was
    isError(await post(body, "zstd"), 415, "Content-Encoding 'zstd'");
    isError(await post(body, "gzip, br"), 415, "compressed once");
    isError(await post(body, "gzip"), 400, "not valid gzip data");
    // identity is no encoding
    assertStrictEquals((await post(body, "identity")).status, 200);
    await stillServing(s, flowId);
  }));

Deno.test("faults: a step service that crashes fails its step with a clear message; the service keeps serving", () =>
  withServer({ args: ["--store", "memory"] }, async (s, dir) => {
    const ok = await storeFlow(s, THREE_STEPS);
    const crashy = await storeFlow(s, {
      schema: SCHEMA,
      name: "crashy",
      steps: [{ id: "c", component: "/py/crashy", input: { dir, crashes: 100, failures: 0 } }],
      output: { $from: { step: "c" } },
    });
    const r = await s.call("POST", "/api/v1/runs", { flowId: crashy, input: {} });
    assertStrictEquals(r.status, 200);
    assertStrictEquals(r.body.status, "failed");
    assertStrictEquals(r.body.result.outcome, "failed");
    assertMatch(JSON.stringify(r.body.result.error), /crash|exit/i);
    await stillServing(s, ok);
    assertStrictEquals((await s.call("GET", "/health")).status, 200);
  }));

Deno.test("SIGTERM: no new runs, the run in progress finishes and is answered, step services closed, exit 0", async () => {
  await withTempDir(async (dir) => {
    const s = await startServer(dir, { args: ["--store", "sqlite:state.db"] });
    const ready = `${dir}/ready`;
    const flowId = await storeFlow(s, {
      schema: SCHEMA,
      name: "nap",
      steps: [{ id: "nap", component: "/py/sleep", input: { ms: 800, ready_file: ready } }],
      output: { $from: { step: "nap" } },
    });
    const waiting = s.call("POST", "/api/v1/runs", { flowId, input: {} });
    await waitForFile(ready);
    s.child.kill("SIGTERM");
    const answer = await waiting;
    assertStrictEquals(answer.status, 200);
    assertStrictEquals(answer.body.status, "completed");
    const code = await s.stop(null);
    assertStrictEquals(code, 0);
    assertStringIncludes(s.stderr(), "SIGTERM: stopping");
    assertStringIncludes(s.stderr(), "stopped: 1 run(s) finished, 0 cancelled");
    // nothing listens any more
    const after = await fetch(`${s.url}/health`).then(() => "answered", () => "refused");
    assertStrictEquals(after, "refused");
  });
});

Deno.test("SIGTERM: a run longer than --shutdown-timeout is cancelled and stored cancelled; exit 0", async () => {
  await withTempDir(async (dir) => {
    const s = await startServer(dir, {
      args: ["--store", "sqlite:state.db", "--shutdown-timeout", "200ms"],
    });
    const ready = `${dir}/ready`;
    const flowId = await storeFlow(s, {
      schema: SCHEMA,
      name: "nap",
      steps: [{ id: "nap", component: "/py/sleep", input: { ms: 60_000, ready_file: ready } }],
      output: { $from: { step: "nap" } },
    });
    const started = await s.call("POST", "/api/v1/runs", { flowId, input: {}, wait: false });
    await waitForFile(ready);
    const workerPid = Number(await Deno.readTextFile(ready));
    assertStrictEquals(await s.stop("SIGTERM"), 0);
    assertStringIncludes(s.stderr(), "0 run(s) finished, 1 cancelled");
    // the step service was closed
    let alive = true;
    try {
      const stat = await Deno.readTextFile(`/proc/${workerPid}/stat`);
      alive = !/\) [ZX] /.test(stat);
    } catch {
      alive = false;
    }
    assert(!alive, "the worker process was stopped");
    // the run is stored cancelled
    const again = await startServer(dir, { args: ["--store", "sqlite:state.db"] });
    try {
      const r = await again.call("GET", `/api/v1/runs/${started.body.runId}`);
      assertStrictEquals(r.body.status, "cancelled");
    } finally {
      await again.stop();
    }
  });
});
