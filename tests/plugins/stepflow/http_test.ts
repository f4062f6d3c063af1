import { assertEquals, assertStringIncludes } from "../../_assert.ts";
import { execCtx, FakeEngine, memLog, startHttp } from "./_helpers.ts";
import type { FlowFailed, FlowSuccess } from "../../../src/core/flow_result.ts";

/** A hand-written 0.8-style HTTP worker: SSE with Stepflow-Instance-Id, replies must be 202. */
function rawWorker() {
  const replies: { instance: string | null; body: unknown }[] = [];
  const waiting = new Map<string, (v: unknown) => void>();
  let mode = "ok";
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const msg = await req.json();
    if (!("method" in msg)) {
      replies.push({ instance: req.headers.get("stepflow-instance-id"), body: msg });
      waiting.get(msg.id)?.(msg.result);
      return new Response(null, { status: 202 });
    }
    if (msg.method === "initialized") return new Response(null, { status: 202 });
    if (msg.method === "initialize") {
      return Response.json({ jsonrpc: "2.0", id: msg.id, result: { server_protocol_version: 1 } });
    }
    if (mode === "500") return new Response("upstream exploded", { status: 503 });
    if (mode === "rpc500") {
      return Response.json(
        { jsonrpc: "2.0", id: msg.id, error: { code: -32003, message: "bad" } },
        {
          status: 500,
        },
      );
    }
    if (mode === "202") return new Response(null, { status: 202 });
    if (mode === "wrongid") {
      return Response.json({ jsonrpc: "2.0", id: "other", result: { output: 1 } });
    }
    if (mode === "ssewrongid") {
      return new Response(`data: {"jsonrpc":"2.0","id":"zz","result":{"output":1}}\n\n`, {
        headers: { "content-type": "text/event-stream" },
      });
    }
    // components/execute: stream a blobs/put request, wait for the engine's answer, respond
    const enc = new TextEncoder();
    const body = new ReadableStream<Uint8Array>({
      async start(c) {
        const got = new Promise((r) => waiting.set("w1", r));
        c.enqueue(
          enc.encode(`: comment\n\ndata: {"jsonrpc":"2.0","method":"note","params":{}}\n\n`),
        );
        c.enqueue(enc.encode(
          `data: {"jsonrpc":"2.0","id":"w1","method":"blobs/put","params":{"data":${
            JSON.stringify(msg.params.input)
          },"blob_type":"data"}}\n\n`,
        ));
        const result = await got;
        c.enqueue(
          enc.encode(
            `data: ${
              JSON.stringify({ jsonrpc: "2.0", id: msg.id, result: { output: result } })
            }\n\n`,
          ),
        );
        c.close();
      },
    });
    return new Response(body, {
      headers: { "content-type": "text/event-stream", "Stepflow-Instance-Id": "inst-7" },
    });
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}/`,
    replies,
    setMode: (m: string) => mode = m,
    stop: () => server.shutdown(),
  };
}

Deno.test("HTTP plugin: a worker's own requests streamed over SSE are answered with the instance header", async () => {
  const w = rawWorker();
  const engine = new FakeEngine();
  const p = await startHttp(w.url, { engine });
  try {
    const r = await p.execute("/x", { hello: "world" }, execCtx(engine));
    assertEquals(r.outcome, "success");
    assertEquals(w.replies.length, 1);
    assertEquals(w.replies[0].instance, "inst-7");
    assertEquals(((r as FlowSuccess).result as { blob_id: string }).blob_id.length, 64);
    assertEquals(engine.calls, ["putBlob data"]);
  } finally {
    await p.close();
    await w.stop();
  }
});

Deno.test("HTTP plugin: 5xx and JSON-RPC errors become failed results", async () => {
  const w = rawWorker();
  const engine = new FakeEngine();
  const p = await startHttp(w.url, { engine });
  try {
    w.setMode("500");
    const a = await p.execute("/x", {}, execCtx(engine)) as FlowFailed;
    assertEquals(a.error.code, -32603);
    assertStringIncludes(
      a.error.message,
      `at ${w.url} answered 'components/execute' with HTTP 503: upstream exploded`,
    );
    w.setMode("rpc500");
    assertEquals(await p.execute("/x", {}, execCtx(engine)), {
      outcome: "failed",
      error: { code: -32003, message: "bad" },
    });
  } finally {
    await p.close();
    await w.stop();
  }
});

Deno.test("HTTP plugin: an unreachable worker fails steps with the URL in the message", async () => {
  // a port that was free a moment ago
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const url = `http://127.0.0.1:${(l.addr as Deno.NetAddr).port}/`;
  l.close();
  const log = memLog();
  const engine = new FakeEngine();
  const p = await startHttp(url, { engine, log });
  try {
    assertStringIncludes(log.lines.join("\n"), "will try again at the first call");
    const r = await p.execute("/x", {}, execCtx(engine)) as FlowFailed;
    assertEquals(r.error.code, -32603);
    assertStringIncludes(r.error.message, `cannot reach step service 'h' at ${url}`);
  } finally {
    await p.close();
  }
});

Deno.test("HTTP plugin: a response carrying another request's id is not taken as the answer", async () => {
  const w = rawWorker();
  const engine = new FakeEngine();
  const p = await startHttp(w.url, { engine });
  try {
    w.setMode("wrongid");
    const a = await p.execute("/x", {}, execCtx(engine)) as FlowFailed;
    assertEquals(a.outcome, "failed");
    assertEquals(a.error.code, -32603);
    assertStringIncludes(
      a.error.message,
      `at ${w.url} answered 'components/execute' with a response to another request (id "other"`,
    );
    w.setMode("202");
    const e = await p.execute("/x", {}, execCtx(engine)) as FlowFailed;
    assertStringIncludes(
      e.error.message,
      `at ${w.url} answered 'components/execute' with HTTP 202 and an empty body (expected a JSON-RPC response)`,
    );
    w.setMode("ssewrongid");
    const b = await p.execute("/x", {}, execCtx(engine)) as FlowFailed;
    assertEquals(b.outcome, "failed");
    assertStringIncludes(
      b.error.message,
      'ended without a response (it carried a response to another request: id "zz"',
    );
  } finally {
    await p.close();
    await w.stop();
  }
});

Deno.test("HTTP plugin: a 307/308 redirect is followed with the same POST; a 301/302/303 is an error naming its target (was: followed as a GET, the message lost)", async () => {
  // Before: a 302 to /health was followed with a GET, and the call failed with "answered
  // 'components/execute' with something that is not a JSON-RPC response: {"status":"healthy"}".
  let mode = "302";
  const gets: string[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const path = new URL(req.url).pathname;
    if (req.method === "GET") {
      gets.push(path);
      return Response.json({ status: "healthy" });
    }
    const msg = await req.json();
    if (msg.method === "initialized") return new Response(null, { status: 202 });
    if (msg.method === "initialize") {
      return Response.json({ jsonrpc: "2.0", id: msg.id, result: { server_protocol_version: 1 } });
    }
    if (path === "/" && mode !== "ok") {
      const to = mode === "loop" ? "/" : mode === "none" ? undefined : "/health";
      const status = mode === "loop" ? 307 : mode === "none" ? 302 : Number(mode);
      return new Response(null, { status, headers: to ? { location: to } : {} });
    }
    return Response.json({ jsonrpc: "2.0", id: msg.id, result: { output: { at: path } } });
  });
  const url = `http://127.0.0.1:${server.addr.port}/`;
  const engine = new FakeEngine();
  mode = "ok";
  const p = await startHttp(url, { engine });
  try {
    for (const status of ["301", "302", "303"]) {
      mode = status;
      const r = await p.execute("/x", {}, execCtx(engine)) as FlowFailed;
      assertEquals(r.outcome, "failed");
      assertEquals(r.error.code, -32603);
      assertStringIncludes(
        r.error.message,
        `answered 'components/execute' with HTTP ${status}, a redirect to ${url}health: following it would turn the POST into a GET`,
      );
    }
    assertEquals(gets, []); // nothing was sent as a GET
    for (const status of ["307", "308"]) {
      mode = status;
      const r = await p.execute("/x", { a: 1 }, execCtx(engine)) as FlowSuccess;
      assertEquals(r, { outcome: "success", result: { at: "/health" } });
    }
    mode = "loop";
    const loop = await p.execute("/x", {}, execCtx(engine)) as FlowFailed;
    assertStringIncludes(loop.error.message, "with more than 10 redirects in a row");
    mode = "none";
    const none = await p.execute("/x", {}, execCtx(engine)) as FlowFailed;
    assertStringIncludes(none.error.message, "with HTTP 302, a redirect without a Location header");
  } finally {
    await p.close();
    await server.shutdown();
  }
});
