/**
 * The MCP plugin over Streamable HTTP reads answers within the output size limit, as over stdio:
 * a tool result past it (a JSON body or an SSE event) fails the step with 413 and is not read to
 * its end (the failing input: a 30 MB tool result with a 100 kB limit was read and parsed whole).
 * Against a small MCP server of the test's own on 127.0.0.1.
 * @module
 */
import { assert, assertEquals, assertRejects, assertStringIncludes } from "../../_assert.ts";
import { McpPlugin } from "../../../src/plugins/mcp/plugin.ts";
import { McpPluginConfigSchema } from "../../../src/config/model.ts";
import { boundedFetch } from "../../../src/plugins/mcp/http_fetch.ts";
import { REPO_ROOT } from "../../_assert.ts";
import { noEngine, recordingLogger, stepCtx } from "./_helpers.ts";
import type { FlowResult } from "../../../src/core/flow_result.ts";

/**
 * A Streamable HTTP MCP server with two tools, `big` (answers JSON) and `big_sse` (answers one
 * SSE event), whose result is a text of `n` "x"; the body is made as it is read, and `sent()`
 * says how many bytes were.
 */
function startServer(): { url: string; sent: () => number } & AsyncDisposable {
  let sent = 0;
  const enc = new TextEncoder();
  /** `head`, `n` "x", `tail`, as a stream made while it is read (64 KiB pieces). */
  const lazy = (head: string, n: number, tail: string) => {
    const piece = enc.encode("x".repeat(64 * 1024));
    let left = n;
    let stage = 0;
    return new ReadableStream<Uint8Array>({
      pull(c) {
        let chunk: Uint8Array;
        if (stage === 0) {
          chunk = enc.encode(head);
          stage = 1;
        } else if (left > 0) {
          chunk = left >= piece.length ? piece : piece.subarray(0, left);
          left -= chunk.length;
        } else if (stage === 1) {
          chunk = enc.encode(tail);
          stage = 2;
        } else {
          c.close();
          return;
        }
        sent += chunk.length;
        c.enqueue(chunk);
      },
    });
  };
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    if (req.method === "DELETE") return new Response(null, { status: 200 });
    if (req.method !== "POST") return new Response(null, { status: 405 });
    const msg = await req.json();
    if (msg.id === undefined) return new Response(null, { status: 202 });
    const answer = (result: unknown) =>
      Response.json({ jsonrpc: "2.0", id: msg.id, result }, {
        headers: { "mcp-session-id": "s1" },
      });
    switch (msg.method) {
      case "initialize":
        return answer({
          protocolVersion: msg.params.protocolVersion,
          capabilities: { tools: {} },
          serverInfo: { name: "big", version: "1.0.0" },
        });
      case "tools/list":
        return answer({
          tools: ["big", "big_sse"].map((name) => ({
            name,
            inputSchema: { type: "object", properties: { n: { type: "integer" } } },
          })),
        });
      case "tools/call": {
        const head = `{"jsonrpc":"2.0","id":${
          JSON.stringify(msg.id)
        },"result":{"content":[{"type":"text","text":"`;
        const tail = `"}]}}`;
        const n = msg.params.arguments.n;
        if (msg.params.name === "big_sse") {
          return new Response(lazy(`data: ${head}`, n, `${tail}\n\n`), {
            headers: { "content-type": "text/event-stream" },
          });
        }
        return new Response(lazy(head, n, tail), {
          headers: { "content-type": "application/json" },
        });
      }
    }
    return Response.json({ jsonrpc: "2.0", id: msg.id, error: { code: -32601, message: "no" } });
  });
  return {
    url: `http://127.0.0.1:${(server.addr as Deno.NetAddr).port}/mcp`,
    sent: () => sent,
    [Symbol.asyncDispose]: () => server.shutdown(),
  };
}

const textOf = (r: FlowResult) => {
  assert(r.outcome === "success", JSON.stringify(r).slice(0, 500));
  return (r.result as { text: string }[])[0].text;
};

Deno.test("McpPlugin over Streamable HTTP: a tool result over the output size limit (JSON or SSE) fails with 413 and is not read to its end", async () => {
  await using server = startServer();
  const plugin = new McpPlugin(
    "srv",
    McpPluginConfigSchema.parse({ type: "mcp", url: server.url }),
  );
  await using _ = { [Symbol.asyncDispose]: () => plugin.close() };
  await plugin.init({
    name: "srv",
    workingDirectory: REPO_ROOT,
    engine: noEngine,
    log: recordingLogger(),
    maxOutputBytes: 100_000,
  });
  const total = 30_000_000;
  for (const tool of ["big", "big_sse"]) {
    const before = server.sent();
    const r = await plugin.execute(`/${tool}`, { n: total }, stepCtx());
    assert(r.outcome === "failed", JSON.stringify(r).slice(0, 500));
    assertEquals([r.error.code, (r.error.data as { kind: string }).kind], [
      413,
      "OUTPUT_TOO_LARGE",
    ]);
    assertStringIncludes(r.error.message, `tool '${tool}' of MCP plugin 'srv' sent an answer`);
    assertStringIncludes(r.error.message, "not read to its end");
    assertStringIncludes(r.error.message, "over the limit of 100000 bytes");
    // what the connection buffers and the limit, not the 30 MB
    const read = server.sent() - before;
    assert(read < total / 2, `${tool}: ${read} bytes of ${total} read`);
    // answers within the limit are read as before
    assertEquals(
      textOf(await plugin.execute(`/${tool}`, { n: 1000 }, stepCtx())),
      "x".repeat(1000),
    );
  }
});

/** A fetch answering `pieces` (cut anywhere) with `type` and `status`. */
function fakeFetch(pieces: string[], type: string, status = 200): typeof fetch {
  return () => {
    const enc = new TextEncoder();
    let i = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(c) {
        if (i < pieces.length) c.enqueue(enc.encode(pieces[i++]));
        else c.close();
      },
    });
    return Promise.resolve(new Response(body, { status, headers: { "content-type": type } }));
  };
}

const request = (id: number) =>
  ({
    method: "POST",
    body: JSON.stringify({ jsonrpc: "2.0", id, method: "tools/call", params: {} }),
  }) as const;

Deno.test("boundedFetch: SSE events pass whole wherever the chunks are cut; one past the limit answers the request with -32413 and ends the stream", async () => {
  const events = 'data: {"a":1}\r\n\r\n' + "event: message\ndata: 2\n\n";
  const pieces = events.match(/.{1,3}/gs)!;
  const ok = boundedFetch(100, fakeFetch(pieces, "text/event-stream; charset=utf-8"));
  assertEquals(await (await ok("http://x/", request(1))).text(), events);

  const big = `data: ${"y".repeat(200)}\n\n`;
  const over = boundedFetch(
    100,
    fakeFetch(["data: 1\n\n", ...big.match(/.{1,7}/gs)!, "data: 3\n\n"], "text/event-stream"),
  );
  const text = await (await over("http://x/", request(7))).text();
  const [first, second, rest] = text.split("\n\n");
  assertEquals(first, "data: 1");
  const answer = JSON.parse(second.slice(6));
  assertEquals([answer.id, answer.error.code, answer.error.data.limitBytes], [7, -32413, 100]);
  assertStringIncludes(answer.error.message, "not read to its end");
  assertEquals(rest, "");
  // a GET stream answers no request: it ends with an error
  const get = boundedFetch(100, fakeFetch(big.match(/.{1,7}/gs)!, "text/event-stream"));
  await assertRejects(async () => await (await get("http://x/", { method: "GET" })).text());
});

Deno.test("boundedFetch: a JSON answer past the limit becomes -32413 for each request of the POST; an error status's body is cut at 64 KiB", async () => {
  const json = boundedFetch(
    10,
    fakeFetch(['{"jsonrpc":"2.0","id":3,', '"result":{}}'], "application/json"),
  );
  const batch = {
    method: "POST",
    body: JSON.stringify([
      { jsonrpc: "2.0", id: 3, method: "tools/call" },
      { jsonrpc: "2.0", id: "b", method: "tools/list" },
      { jsonrpc: "2.0", method: "notifications/progress" },
    ]),
  };
  const answers = await (await json("http://x/", batch)).json();
  assertEquals(answers.map((a: { id: unknown; error: { code: number } }) => [a.id, a.error.code]), [
    [3, -32413],
    ["b", -32413],
  ]);
  const within = boundedFetch(
    100,
    fakeFetch(['{"jsonrpc":"2.0","id":3,', '"result":{}}'], "application/json"),
  );
  assertEquals(await (await within("http://x/", request(3))).json(), {
    jsonrpc: "2.0",
    id: 3,
    result: {},
  });
  const error = boundedFetch(10, fakeFetch(Array(100).fill("z".repeat(1024)), "text/plain", 500));
  const res = await error("http://x/", request(1));
  assertEquals([res.status, (await res.text()).length], [500, 64 * 1024]);
});
