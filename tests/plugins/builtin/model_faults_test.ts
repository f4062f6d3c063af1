/**
 * `/chat` and `/openai` against OpenAI-compatible servers that misbehave (found by the wave-6
 * fault hunt): a body without end (bounded by the output size limit, not the engine's memory), a
 * whole JSON completion given to a streamed request, a tool call without a function or arguments,
 * an answer that breaks off after the server was reached.
 */
import { assert, assertEquals, assertStringIncludes } from "../../_assert.ts";
import type { JsonObject } from "../../../src/json/exact_json.ts";
import { BuiltinPlugin } from "../../../src/plugins/builtin/plugin.ts";
import { logger } from "../../../src/log.ts";
import { FakeEngine } from "../stepflow/_helpers.ts";
import { startFakeOpenAI } from "./_openai_server.ts";
import { ctx } from "./_model_helpers.ts";

const messages = [{ role: "user", content: "x" }];

/** A builtin plugin pointed at `baseUrl`, with this output size limit. */
async function builtin(baseUrl: string, maxOutputBytes?: number): Promise<BuiltinPlugin> {
  const p = new BuiltinPlugin("builtin", { baseUrl, model: "m" });
  await p.init({
    name: "builtin",
    workingDirectory: Deno.cwd(),
    engine: new FakeEngine(),
    log: logger("builtin"),
    ...(maxOutputBytes === undefined ? {} : { maxOutputBytes }),
  });
  return p;
}

/** A server on 127.0.0.1 answering every POST with `respond()`; closed after `fn`. */
async function withServer(
  respond: (stream: boolean) => Response,
  fn: (baseUrl: string, sent: () => number) => Promise<void>,
): Promise<void> {
  let sentBytes = 0;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const body = await req.json();
    const res = respond(body.stream === true);
    if (!res.body) return res;
    // count what the server managed to send (the client stops reading at its limit)
    const counted = res.body.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, c) {
          sentBytes += chunk.length;
          c.enqueue(chunk);
        },
      }),
    );
    return new Response(counted, { status: res.status, headers: res.headers });
  });
  try {
    await fn(`http://127.0.0.1:${(server.addr as Deno.NetAddr).port}/v1`, () => sentBytes);
  } finally {
    await server.shutdown();
  }
}

/** A body that never ends: `piece` again and again until the client goes away. */
function endless(piece: string, prefix = ""): ReadableStream<Uint8Array> {
  const bytes = new TextEncoder().encode(piece);
  let first = true;
  return new ReadableStream<Uint8Array>({
    pull(c) {
      if (first) {
        first = false;
        c.enqueue(new TextEncoder().encode(prefix));
      }
      c.enqueue(bytes);
    },
  });
}

Deno.test("/chat and /openai: an answer body without end fails the step with 413 at the output size limit", async () => {
  // before: the body was read with response.text(): a server sending without end filled the
  // engine's memory (an 80 MB answer took 680 MB of RSS before the output check refused it)
  const limit = 256 * 1024;
  await withServer(
    () =>
      new Response(endless("x".repeat(16 * 1024), '{"choices":[{"message":{"content":"'), {
        headers: { "content-type": "application/json" },
      }),
    async (baseUrl, sent) => {
      const p = await builtin(baseUrl, limit);
      for (const component of ["/chat", "/openai"]) {
        const r = await p.execute(component, { messages, stream: false }, ctx());
        assert(r.outcome === "failed", component);
        assertEquals(r.error.code, 413);
        const data = r.error.data as JsonObject;
        assertEquals([data.kind, data.limitBytes, data.step], ["OUTPUT_TOO_LARGE", limit, "ask"]);
        assertStringIncludes(r.error.message, "not read to its end");
        assertStringIncludes(r.error.message, "raise maxOutputSize");
      }
      // the server could not send much past the limit (+ 64 KiB, pipes and buffers)
      assert(sent() < 64 * 1024 * 1024, `server sent ${sent()} bytes`);
    },
  );
});

Deno.test("/chat: a stream of small events without end fails with 413 at the output size limit", async () => {
  const limit = 256 * 1024;
  const event = `data: ${
    JSON.stringify({ model: "m", choices: [{ index: 0, delta: { content: "y".repeat(1000) } }] })
  }\n\n`;
  await withServer(
    () => new Response(endless(event), { headers: { "content-type": "text/event-stream" } }),
    async (baseUrl) => {
      const p = await builtin(baseUrl, limit);
      const r = await p.execute("/chat", { messages, stream: true }, ctx());
      assert(r.outcome === "failed");
      assertEquals([r.error.code, (r.error.data as JsonObject).kind], [413, "OUTPUT_TOO_LARGE"]);
    },
  );
});

Deno.test("/chat: a server that answers a streamed request with a whole JSON completion is read as that answer", async () => {
  // before: "cannot reach http://...: the answer stream ended before the answer was complete"
  const server = startFakeOpenAI();
  try {
    const p = await builtin(server.baseUrl);
    const completion = (message: unknown) =>
      JSON.stringify({
        model: "m-served",
        choices: [{ index: 0, message, finish_reason: "stop" }],
        usage: { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 },
      });
    server.replies.push(
      { kind: "raw", text: completion({ role: "assistant", content: "whole" }) },
      {
        kind: "raw",
        text: completion({
          role: "assistant",
          content: null,
          tool_calls: [{
            id: "c1",
            type: "function",
            function: { name: "f", arguments: '{"a":1}' },
          }],
        }),
      },
      { kind: "raw", text: JSON.stringify({ error: { message: "streaming is disabled" } }) },
    );
    const progress: JsonObject[] = [];
    const r = await p.execute("/chat", { messages, stream: true }, ctx({ progress }));
    assert(r.outcome === "success");
    const out = r.result as JsonObject;
    assertEquals([out.content, out.model, out.finish_reason], ["whole", "m-served", "stop"]);
    assertEquals(out.usage, { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 });
    assertEquals(progress[0], { type: "chat.delta", text: "whole" });
    const tools = await p.execute("/chat", { messages, stream: true }, ctx());
    assert(tools.outcome === "success");
    assertEquals((tools.result as JsonObject).tool_calls, [
      { id: "c1", name: "f", arguments: { a: 1 } },
    ]);
    const err = await p.execute("/chat", { messages, stream: true }, ctx());
    assert(err.outcome === "failed");
    assertEquals(err.error.code, 502);
    assertStringIncludes(err.error.message, "streaming is disabled");
  } finally {
    await server.close();
  }
});

Deno.test("/chat: a tool call without a function fails with INVALID_TOOL_CALL; one without arguments has {}", async () => {
  // before: "the arguments of tool call '' are not JSON: Cannot read properties of undefined
  // (reading 'trim')"
  const server = startFakeOpenAI();
  try {
    const p = await builtin(server.baseUrl);
    const answer = (calls: unknown[]) =>
      JSON.stringify({
        model: "m",
        choices: [{
          index: 0,
          message: { role: "assistant", content: null, tool_calls: calls },
          finish_reason: "tool_calls",
        }],
      });
    server.replies.push(
      { kind: "raw", text: answer([{ id: "c9", type: "function", function: null }]) },
      { kind: "raw", text: answer([{ id: "c1", type: "function", function: { name: "now" } }]) },
    );
    const bad = await p.execute("/chat", { messages, stream: false }, ctx());
    assert(bad.outcome === "failed");
    assertEquals([bad.error.code, (bad.error.data as JsonObject).kind], [502, "INVALID_TOOL_CALL"]);
    assertStringIncludes(bad.error.message, "tool call 0 ('c9') names no function");
    const noArgs = await p.execute("/chat", { messages, stream: false }, ctx());
    assert(noArgs.outcome === "success");
    assertEquals((noArgs.result as JsonObject).tool_calls, [
      { id: "c1", name: "now", arguments: {} },
    ]);
  } finally {
    await server.close();
  }
});

Deno.test("/chat: an answer that breaks off after the server was reached says so (not 'cannot reach')", async () => {
  // a raw server: Content-Length 1000, then a few bytes and the connection closes
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const served = (async () => {
    for await (const conn of listener) {
      const buf = new Uint8Array(64 * 1024);
      await conn.read(buf);
      await conn.write(
        new TextEncoder().encode(
          'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{"id":',
        ),
      );
      conn.close();
    }
  })();
  try {
    const p = await builtin(`http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}/v1`);
    const r = await p.execute("/chat", { messages, stream: false }, ctx());
    assert(r.outcome === "failed");
    assertEquals((r.error.data as JsonObject).kind, "TRANSPORT_FAILED");
    assertStringIncludes(r.error.message, "the answer broke off");
    assert(!r.error.message.includes("cannot reach"), r.error.message);
  } finally {
    listener.close();
    await served.catch(() => {});
  }
});

Deno.test("/chat: a content that is a list of parts, or not a string, is kept as text (was dropped to null)", async () => {
  const server = startFakeOpenAI();
  try {
    const p = await builtin(server.baseUrl);
    const answer = (content: unknown) =>
      JSON.stringify({
        model: "m",
        choices: [{ index: 0, message: { role: "assistant", content }, finish_reason: "stop" }],
      });
    server.replies.push(
      { kind: "raw", text: answer([{ type: "text", text: "Hel" }, { type: "text", text: "lo" }]) },
      { kind: "raw", text: answer(5) },
      { kind: "raw", text: answer(null) },
    );
    const contents = [];
    for (let i = 0; i < 3; i++) {
      const r = await p.execute("/chat", { messages, stream: false }, ctx());
      assert(r.outcome === "success");
      contents.push((r.result as JsonObject).content);
    }
    assertEquals(contents, ["Hello", "5", null]);
  } finally {
    await server.close();
  }
});
