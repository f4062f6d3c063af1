/**
 * `/chat` against a local OpenAI-compatible server on 127.0.0.1: completions whole and
 * streamed (progress reports), tool calls, structured output checked against its schema, usage,
 * HTTP failures with `retryable`/`retryAfterMs`, retries through the step's policy honouring
 * Retry-After, timeouts and cancellation aborting the HTTP request, and keys kept out of
 * results, logs and the store.
 */
import { assert, assertEquals, assertStringIncludes } from "../../_assert.ts";
import type { JsonObject } from "../../../src/json/exact_json.ts";
import { setLogLevel, setLogSink } from "../../../src/log.ts";
import { flow } from "../../execution/_engine_helpers.ts";
import { type FakeOpenAI, startFakeOpenAI } from "./_openai_server.ts";
import { ctx, modelEngine, startBuiltin } from "./_model_helpers.ts";

const USAGE = { prompt_tokens: 11, completion_tokens: 7, total_tokens: 18 };

async function withServer(fn: (s: FakeOpenAI) => Promise<void>): Promise<void> {
  const s = startFakeOpenAI();
  try {
    await fn(s);
  } finally {
    await s.close();
  }
}

Deno.test("/chat returns the whole message with model, finish_reason and usage; sends model, messages and options", async () => {
  await withServer(async (server) => {
    const p = await startBuiltin({ baseUrl: server.baseUrl, model: "default-model" });
    server.replies.push({ kind: "completion", content: "Paris." });
    const r = await p.execute("/chat", {
      model: "small",
      messages: [{ role: "user", content: "Capital of France?" }],
      temperature: 0,
      max_tokens: 20,
      seed: 7,
      extra_body: { top_k: 5 },
    }, ctx());
    assertEquals(r, {
      outcome: "success",
      result: {
        content: "Paris.",
        finish_reason: "stop",
        model: "small-served",
        usage: USAGE,
        message: { role: "assistant", content: "Paris." },
      },
    });
    assertEquals(server.requests[0].body, {
      model: "small",
      messages: [{ role: "user", content: "Capital of France?" }],
      temperature: 0,
      max_tokens: 20,
      seed: 7,
      top_k: 5,
    });
  });
});

Deno.test("/chat sends a content that is data (a step's output) as its JSON text; content parts as they are", async () => {
  await withServer(async (server) => {
    const p = await startBuiltin({ baseUrl: server.baseUrl, model: "m" });
    const parts = [{ type: "text", text: "look" }];
    await p.execute("/chat", {
      messages: [
        { role: "system", content: "Summarise." },
        { role: "user", content: { results: [{ a: 1 }, "b"] } },
        { role: "user", content: parts },
      ],
    }, ctx());
    const sent = server.requests[0].body.messages;
    assertEquals(sent[1].content, '{"results":[{"a":1},"b"]}');
    assertEquals(sent[2].content, parts);
  });
});

Deno.test("/chat streams when asked: text reported as progress, the output is the whole message, usage included", async () => {
  await withServer(async (server) => {
    const p = await startBuiltin({ baseUrl: server.baseUrl, model: "m" });
    server.replies.push({ kind: "stream", pieces: ["Hel", "lo, ", "world"] });
    const progress: JsonObject[] = [];
    const r = await p.execute("/chat", {
      messages: [{ role: "user", content: "hi" }],
      stream: true,
    }, ctx({ progress }));
    assertEquals(r, {
      outcome: "success",
      result: {
        content: "Hello, world",
        finish_reason: "stop",
        model: "m-served",
        usage: USAGE,
        message: { role: "assistant", content: "Hello, world" },
      },
    });
    assertEquals(progress, [
      { type: "chat.delta", text: "Hel" },
      { type: "chat.delta", text: "lo, " },
      { type: "chat.delta", text: "world" },
      { type: "chat.done", finish_reason: "stop", usage: USAGE },
    ]);
    assertEquals(server.requests[0].body.stream, true);
    assertEquals(server.requests[0].body.stream_options, { include_usage: true });
  });
});

Deno.test("/chat streams by default only when the run reports progress", async () => {
  await withServer(async (server) => {
    const p = await startBuiltin({ baseUrl: server.baseUrl, model: "m" });
    const messages = [{ role: "user", content: "hi" }];
    const a = await p.execute("/chat", { messages }, ctx());
    const b = await p.execute("/chat", { messages }, ctx({ progress: [] }));
    const c = await p.execute("/chat", { messages, stream: false }, ctx({ progress: [] }));
    assertEquals(server.requests.map((r) => r.body.stream ?? false), [false, true, false]);
    // same output either way
    assertEquals(a, b);
    assertEquals(b, c);
  });
});

const WEATHER_TOOL = {
  name: "get_weather",
  description: "Weather of a city",
  parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
};

Deno.test("/chat tool calls come back as data (arguments parsed), whole or streamed; short tool form is expanded", async () => {
  await withServer(async (server) => {
    const p = await startBuiltin({ baseUrl: server.baseUrl, model: "m" });
    const calls = [
      { id: "call_1", name: "get_weather", arguments: '{"city":"Paris"}' },
      { id: "call_2", name: "get_weather", arguments: '{"city":"Oslo"}' },
    ];
    server.replies.push({ kind: "completion", content: null, toolCalls: calls });
    server.replies.push({ kind: "stream", pieces: [], toolCalls: calls });
    const input = {
      messages: [{ role: "user", content: "Weather in Paris and Oslo?" }],
      tools: [WEATHER_TOOL],
      tool_choice: "auto",
    };
    const whole = await p.execute("/chat", input, ctx());
    const streamed = await p.execute("/chat", { ...input, stream: true }, ctx());
    const expected = {
      outcome: "success",
      result: {
        content: null,
        tool_calls: [
          { id: "call_1", name: "get_weather", arguments: { city: "Paris" } },
          { id: "call_2", name: "get_weather", arguments: { city: "Oslo" } },
        ],
        finish_reason: "tool_calls",
        model: "m-served",
        usage: USAGE,
        message: {
          role: "assistant",
          content: null,
          tool_calls: calls.map((c) => ({
            id: c.id,
            type: "function",
            function: { name: c.name, arguments: c.arguments },
          })),
        },
      },
    };
    assertEquals(whole, expected);
    assertEquals(streamed, expected);
    assertEquals(server.requests[0].body.tools, [{ type: "function", function: WEATHER_TOOL }]);
    assertEquals(server.requests[0].body.tool_choice, "auto");
  });
});

Deno.test("/chat: the assistant message and tool results go back as the next turn (arguments as JSON text)", async () => {
  await withServer(async (server) => {
    const p = await startBuiltin({ baseUrl: server.baseUrl, model: "m" });
    server.replies.push({
      kind: "completion",
      content: null,
      toolCalls: [{ id: "call_1", name: "get_weather", arguments: '{"city":"Paris"}' }],
    });
    const first = await p.execute("/chat", {
      messages: [{ role: "user", content: "Weather in Paris?" }],
      tools: [WEATHER_TOOL],
    }, ctx());
    assert(first.outcome === "success");
    const out = first.result as JsonObject;
    server.replies.push({ kind: "completion", content: "Sunny, 21 °C." });
    const second = await p.execute("/chat", {
      messages: [
        { role: "user", content: "Weather in Paris?" },
        out.message,
        { role: "tool", tool_call_id: "call_1", content: { temp_c: 21, sky: "sunny" } },
      ],
      tools: [WEATHER_TOOL],
    }, ctx());
    assert(second.outcome === "success");
    assertEquals((second.result as JsonObject).content, "Sunny, 21 °C.");
    const sent = server.requests[1].body.messages;
    assertEquals(sent[1].tool_calls[0].function.arguments, '{"city":"Paris"}');
    assertEquals(sent[2], {
      role: "tool",
      tool_call_id: "call_1",
      content: '{"temp_c":21,"sky":"sunny"}',
    });
    // the short form {id, name, arguments: {...}} is accepted too
    await p.execute("/chat", {
      messages: [
        { role: "assistant", content: null, tool_calls: out.tool_calls as JsonObject[] },
        { role: "tool", tool_call_id: "call_1", content: "21" },
      ],
    }, ctx());
    assertEquals(server.requests[2].body.messages[0].tool_calls, [{
      id: "call_1",
      type: "function",
      function: { name: "get_weather", arguments: '{"city":"Paris"}' },
    }]);
  });
});

const ANSWER_FORMAT = {
  type: "json_schema",
  json_schema: {
    name: "answer",
    strict: true,
    schema: {
      type: "object",
      properties: {
        city: { type: "string" },
        population: { type: "integer", minimum: 0 },
      },
      required: ["city", "population"],
      additionalProperties: false,
    },
  },
};

Deno.test("/chat structured output: the answer is parsed and checked against the response_format schema", async () => {
  await withServer(async (server) => {
    const p = await startBuiltin({ baseUrl: server.baseUrl, model: "m" });
    const input = {
      messages: [{ role: "user", content: "Largest city of Norway?" }],
      response_format: ANSWER_FORMAT,
    };
    server.replies.push({ kind: "completion", content: '{"city":"Oslo","population":709037}' });
    const ok = await p.execute("/chat", input, ctx());
    assert(ok.outcome === "success");
    assertEquals((ok.result as JsonObject).parsed, { city: "Oslo", population: 709037 });
    assertEquals(server.requests[0].body.response_format, ANSWER_FORMAT);

    // streamed, too
    server.replies.push({ kind: "stream", pieces: ['{"city":', '"Bergen","population":291940}'] });
    const s = await p.execute("/chat", { ...input, stream: true }, ctx());
    assert(s.outcome === "success");
    assertEquals((s.result as JsonObject).parsed, { city: "Bergen", population: 291940 });

    // an answer that does not match: a retryable failure naming the field
    server.replies.push({ kind: "completion", content: '{"city":"Oslo","population":"many"}' });
    const bad = await p.execute("/chat", input, ctx());
    assert(bad.outcome === "failed");
    assertEquals(bad.error.code, 502);
    assertStringIncludes(bad.error.message, "does not match the response_format schema 'answer'");
    assertStringIncludes(bad.error.message, "population");
    const data = bad.error.data as JsonObject;
    assertEquals(data.kind, "SCHEMA_MISMATCH");
    assertEquals(data.retryable, true);
    assertEquals(data.content, '{"city":"Oslo","population":"many"}');

    // not JSON at all; cut off by max_tokens is said
    server.replies.push({ kind: "completion", content: '{"city":"Os', finishReason: "length" });
    const cut = await p.execute("/chat", input, ctx());
    assert(cut.outcome === "failed");
    assertEquals((cut.error.data as JsonObject).kind, "INVALID_JSON");
    assertStringIncludes(cut.error.message, "raise max_tokens");

    // a refusal is not retryable
    server.replies.push({ kind: "completion", content: null, refusal: "I can't help with that." });
    const refused = await p.execute("/chat", input, ctx());
    assert(refused.outcome === "failed");
    assertEquals(refused.error.code, 422);
    assertEquals((refused.error.data as JsonObject).retryable, false);

    // json_object: any JSON; a fenced answer from a small local model is accepted
    server.replies.push({ kind: "completion", content: '```json\n{"ok": true}\n```' });
    const obj = await p.execute("/chat", {
      messages: [{ role: "user", content: "JSON please" }],
      response_format: { type: "json_object" },
    }, ctx());
    assert(obj.outcome === "success");
    assertEquals((obj.result as JsonObject).parsed, { ok: true });
  });
});

Deno.test("/chat rejects bad input before calling: unknown field, no model, bad schema, bad tools", async () => {
  const p = await startBuiltin({ baseUrl: "http://127.0.0.1:9/v1" });
  const messages = [{ role: "user", content: "x" }];
  const bad: [unknown, string][] = [
    [{ model: "m", messages, maxTokens: 5 }, "unknown field `maxTokens`"],
    [{ messages }, "no `model`"],
    [{ model: "m", messages: [] }, "`messages` is empty"],
    [{ model: "m", messages: [{ content: "x" }] }, "messages[0].role must be a string"],
    [{ model: "m", messages, temperature: "warm" }, "`temperature` must be a number"],
    [{ model: "m", messages, tools: [{ description: "x" }] }, "tools[0] needs a `name`"],
    [
      { model: "m", messages, response_format: { type: "json_schema", json_schema: {} } },
      "json_schema.schema` must be a JSON Schema object",
    ],
    [
      {
        model: "m",
        messages,
        response_format: { type: "json_schema", json_schema: { schema: { type: "nope" } } },
      },
      "is not usable",
    ],
  ];
  for (const [input, text] of bad) {
    // a failed step that onError handles (stepflow 0.8 aborts the run on bad builtin input)
    const r = await p.execute("/chat", input as never, ctx());
    assert(r.outcome === "failed", JSON.stringify(r));
    assertEquals(r.error.code, -32602);
    assertEquals(r.error.data, { kind: "INVALID_INPUT", component: "/chat" });
    assertStringIncludes(r.error.message, text);
  }
});

Deno.test("/chat HTTP failures: status as code, retryable, retryAfterMs from Retry-After; unreachable server is a transport failure", async () => {
  await withServer(async (server) => {
    const p = await startBuiltin({ baseUrl: server.baseUrl, model: "m" });
    const messages = [{ role: "user", content: "x" }];
    server.replies.push({
      kind: "status",
      status: 429,
      body: {
        error: { message: "Rate limit reached", type: "tokens", code: "rate_limit_exceeded" },
      },
      headers: { "retry-after": "2", "x-request-id": "req_1" },
    });
    server.replies.push({
      kind: "status",
      status: 503,
      body: { error: { message: "overloaded" } },
    });
    server.replies.push({ kind: "status", status: 400, body: { error: { message: "bad param" } } });
    server.replies.push({
      kind: "status",
      status: 400,
      body: { error: { message: "retry me" } },
      headers: { "x-should-retry": "true", "retry-after-ms": "250" },
    });
    const results = [];
    for (let i = 0; i < 4; i++) results.push(await p.execute("/chat", { messages }, ctx()));
    const errors = results.map((r) => {
      assert(r.outcome === "failed");
      return r.error;
    });
    assertEquals(errors[0].code, 429);
    assertStringIncludes(errors[0].message, "answered HTTP 429: Rate limit reached");
    assertEquals(errors[0].data, {
      kind: "HTTP_ERROR",
      status: 429,
      retryable: true,
      retryAfterMs: 2000,
      type: "tokens",
      code: "rate_limit_exceeded",
      request_id: "req_1",
    });
    assertEquals([errors[1].code, (errors[1].data as JsonObject).retryable], [503, true]);
    assertEquals([errors[2].code, (errors[2].data as JsonObject).retryable], [400, false]);
    assertEquals((errors[3].data as JsonObject).retryable, true);
    assertEquals((errors[3].data as JsonObject).retryAfterMs, 250);
  });
  // a port nothing listens on
  const closed = startFakeOpenAI();
  const url = closed.baseUrl;
  await closed.close();
  const p = await startBuiltin({ baseUrl: url, model: "m" });
  const r = await p.execute("/chat", { messages: [{ role: "user", content: "x" }] }, ctx());
  assert(r.outcome === "failed");
  assertEquals((r.error.data as JsonObject).kind, "TRANSPORT_FAILED");
  assertStringIncludes(r.error.message, `/chat: cannot reach ${url}`);
});

Deno.test("/chat 429 with Retry-After is retried by the step's retry policy after the server's delay; a 400 is not retried", async () => {
  await withServer(async (server) => {
    const engine = await modelEngine({ baseUrl: server.baseUrl, model: "m" });
    const lines: string[] = [];
    const prev = setLogSink((l) => lines.push(l));
    setLogLevel("info");
    try {
      server.replies.push({
        kind: "status",
        status: 429,
        body: { error: { message: "Rate limit reached" } },
        headers: { "retry-after-ms": "300" },
      });
      server.replies.push({ kind: "completion", content: "done" });
      const f = flow(`
steps:
  - id: ask
    component: /builtin/chat
    input: { messages: [{ role: user, content: hi }] }
    onError: { action: retry, maxRetries: 2, initialDelay: 10ms, maxDelay: 5s }
output: { $from: { step: ask }, path: content }
`);
      const t0 = performance.now();
      assertEquals(await engine.run(f, {}), { outcome: "success", result: "done" });
      assert(performance.now() - t0 >= 300, "waited for Retry-After");
      assertEquals(server.requests.length, 2);
      assert(
        lines.some((l) => l.includes("attempt 1 failed") && l.includes("retrying in 300 ms")),
        lines.join("\n"),
      );

      server.replies.push({ kind: "status", status: 400, body: { error: { message: "bad" } } });
      const r = await engine.run(f, {});
      assert(r.outcome === "failed");
      assertEquals(r.error.code, 400);
      assertEquals(server.requests.length, 3, "a 400 is not retried");
    } finally {
      setLogSink(prev);
      setLogLevel("warn");
      await engine.close();
    }
  });
});

Deno.test("/chat: a step timeout aborts the HTTP request of a server that hangs", async () => {
  await withServer(async (server) => {
    const engine = await modelEngine({ baseUrl: server.baseUrl, model: "m" });
    try {
      server.replies.push({ kind: "hang" });
      const f = flow(`
steps:
  - id: ask
    component: /builtin/chat
    timeout: 200ms
    input: { messages: [{ role: user, content: hi }] }
output: { $from: { step: ask }, path: content }
`);
      const [r] = await Promise.all([engine.run(f, {}), server.hangAborted()]);
      assert(r.outcome === "failed");
      assertEquals(r.error.code, 504);
      assertStringIncludes(r.error.message, "timed out");
    } finally {
      await engine.close();
    }
  });
});

Deno.test("/chat: cancelling the run aborts the HTTP request (streamed or not)", async () => {
  await withServer(async (server) => {
    const engine = await modelEngine({ baseUrl: server.baseUrl, model: "m" });
    try {
      for (const stream of [false, true]) {
        server.replies.push({ kind: "hang" });
        const f = flow(`
steps:
  - id: ask
    component: /builtin/chat
    input: { messages: [{ role: user, content: hi }], stream: ${stream} }
output: { $from: { step: ask }, path: content }
`);
        const ac = new AbortController();
        const run = engine.run(f, {}, { signal: ac.signal });
        await server.hanging();
        ac.abort(new Error("Ctrl-C"));
        const [r] = await Promise.all([run, server.hangAborted()]);
        assert(r.outcome === "failed");
        assertEquals(r.error.code, 410);
      }
    } finally {
      await engine.close();
    }
  });
});

Deno.test("/chat: the API key is not in results, stored step results or debug logs", async () => {
  await withServer(async (server) => {
    const key = "sk-live-abcdef0123456789";
    const keyVar = "TEST_CHAT_KEY_" + crypto.randomUUID().slice(0, 8).toUpperCase();
    Deno.env.set(keyVar, key);
    const engine = await modelEngine({ baseUrl: server.baseUrl, model: "m", apiKeyEnv: keyVar });
    const lines: string[] = [];
    const prev = setLogSink((l) => lines.push(l));
    setLogLevel("trace");
    try {
      server.replies.push({ kind: "completion", content: "fine" });
      server.replies.push({
        kind: "status",
        status: 403,
        body: { error: { message: `key ${key} is not allowed`, param: key } },
      });
      const f = flow(`
steps:
  - id: ask
    component: /builtin/chat
    input: { messages: [{ role: user, content: hi }] }
output: { $from: { step: ask } }
`);
      const runId = crypto.randomUUID();
      const ok = await engine.run(f, {}, { runId });
      const bad = await engine.run(f, {}, { runId: crypto.randomUUID() });
      assertEquals(server.requests[0].headers.authorization, `Bearer ${key}`);
      assert(bad.outcome === "failed");
      assertStringIncludes(bad.error.message, "key [REDACTED] is not allowed");
      const stored = await engine.store.getStepResults(runId);
      const everything = JSON.stringify([ok, bad, stored]) + lines.join("\n");
      assert(!everything.includes(key), "the key leaked");
      assert(lines.length > 0, "debug logs were written");
    } finally {
      setLogSink(prev);
      setLogLevel("warn");
      Deno.env.delete(keyVar);
      await engine.close();
    }
  });
});

Deno.test("/chat reads the error shapes of OpenAI-compatible servers (Ollama, vLLM, llama.cpp, plain text)", async () => {
  await withServer(async (server) => {
    const p = await startBuiltin({ baseUrl: server.baseUrl + "/", model: "m" }); // trailing slash
    const messages = [{ role: "user", content: "x" }];
    server.replies.push(
      {
        kind: "status",
        status: 404,
        body: { error: 'model "llama9" not found, try pulling it first' },
      },
      {
        kind: "status",
        status: 400,
        body: { object: "error", message: "bad sampling", type: "BadRequestError", code: 400 },
      },
      {
        kind: "status",
        status: 503,
        body: { error: { code: 503, message: "Loading model", type: "unavailable_error" } },
      },
      { kind: "raw", status: 502, text: "<html>Bad Gateway</html>", contentType: "text/html" },
    );
    const msgs: string[] = [];
    const datas: JsonObject[] = [];
    for (let i = 0; i < 4; i++) {
      const r = await p.execute("/chat", { messages }, ctx());
      assert(r.outcome === "failed");
      msgs.push(r.error.message);
      datas.push(r.error.data as JsonObject);
    }
    assertStringIncludes(msgs[0], 'HTTP 404: model "llama9" not found');
    assertStringIncludes(msgs[1], "HTTP 400: bad sampling");
    assertEquals([datas[1].type, datas[1].code, datas[1].retryable], [
      "BadRequestError",
      400,
      false,
    ]);
    assertStringIncludes(msgs[2], "HTTP 503: Loading model");
    assertEquals(datas[2].retryable, true);
    assertStringIncludes(msgs[3], "HTTP 502: <html>Bad Gateway</html>");
    assertEquals(server.requests[0].path, "/v1/chat/completions");
  });
});

Deno.test("/chat: answers that are not a chat completion fail retryably (502); a stream cut short is a transport failure", async () => {
  await withServer(async (server) => {
    const p = await startBuiltin({ baseUrl: server.baseUrl, model: "m" });
    const messages = [{ role: "user", content: "x" }];
    const chunk = (delta: unknown, finish: string | null = null) =>
      `data: ${
        JSON.stringify({ model: "m", choices: [{ index: 0, delta, finish_reason: finish }] })
      }\n\n`;
    server.replies.push(
      { kind: "raw", text: "not json" },
      { kind: "raw", text: chunk({ content: "Hel" }), contentType: "text/event-stream" },
      {
        kind: "raw",
        text: chunk({ content: "Hel" }) + `data: {"error":{"message":"overloaded mid-stream"}}\n\n`,
        contentType: "text/event-stream",
      },
      // no [DONE] but a finish_reason: accepted (some servers end so)
      { kind: "raw", text: chunk({ content: "Hi" }, "stop"), contentType: "text/event-stream" },
    );
    const notJson = await p.execute("/chat", { messages }, ctx());
    assert(notJson.outcome === "failed");
    assertEquals([notJson.error.code, (notJson.error.data as JsonObject).retryable], [502, true]);
    const cut = await p.execute("/chat", { messages, stream: true }, ctx());
    assert(cut.outcome === "failed");
    assertEquals((cut.error.data as JsonObject).kind, "TRANSPORT_FAILED");
    assertStringIncludes(cut.error.message, "ended before the answer was complete");
    const errorEvent = await p.execute("/chat", { messages, stream: true }, ctx());
    assert(errorEvent.outcome === "failed");
    assertStringIncludes(errorEvent.error.message, "overloaded mid-stream");
    assertEquals(errorEvent.error.code, 502);
    const ok = await p.execute("/chat", { messages, stream: true }, ctx());
    assert(ok.outcome === "success");
    assertEquals((ok.result as JsonObject).content, "Hi");
  });
});

Deno.test("/chat and /openai: an answer that is not UTF-8 fails the step naming the byte offset (was decoded with U+FFFD)", async () => {
  await withServer(async (server) => {
    const p = await startBuiltin({ baseUrl: server.baseUrl, model: "m" });
    const messages = [{ role: "user", content: "x" }];
    const enc = new TextEncoder();
    /** `text` as UTF-8 with each `@` as the byte 0xE9 (a Latin-1 "é"), or as "é" in UTF-8. */
    const bytes = (text: string, utf8 = false) => {
      if (utf8) return enc.encode(text.replaceAll("@", "\u00e9"));
      const parts = text.split("@").map((t) => [...enc.encode(t)]);
      return new Uint8Array(parts.flatMap((b, k) => k === 0 ? b : [0xe9, ...b]));
    };
    const whole = JSON.stringify({
      model: "m",
      choices: [{
        index: 0,
        message: { role: "assistant", content: "caf@" },
        finish_reason: "stop",
      }],
    });
    const at = enc.encode(whole).indexOf(64); // the "@"
    const chunk = (content: string, finish: string | null = null) =>
      `data: ${
        JSON.stringify({
          model: "m",
          choices: [{ index: 0, delta: { content }, finish_reason: finish }],
        })
      }\n\n`;
    // a valid "é" (2 bytes) before the bad byte: the offset counts bytes, not characters
    const events = chunk("h\u00e9") + chunk("caf@", "stop") + "data: [DONE]\n\n";
    const streamAt = enc.encode(events).indexOf(64);
    server.replies.push(
      { kind: "raw", text: bytes(whole) }, // with Content-Length
      { kind: "raw", text: bytes(whole), pieces: 7 }, // chunked
      { kind: "raw", text: bytes(events), contentType: "text/event-stream" },
      { kind: "raw", text: bytes(events), contentType: "text/event-stream", pieces: 13 },
      { kind: "raw", text: bytes(whole) }, // /openai
    );
    const results = [
      await p.execute("/chat", { messages }, ctx()),
      await p.execute("/chat", { messages }, ctx()),
      await p.execute("/chat", { messages, stream: true }, ctx()),
      await p.execute("/chat", { messages, stream: true }, ctx()),
      await p.execute("/openai", { messages }, ctx()),
    ];
    const expected = [
      `the answer is not UTF-8 text (an invalid byte at offset ${at})`,
      `the answer is not UTF-8 text (an invalid byte at offset ${at})`,
      `the answer stream is not UTF-8 text (an invalid byte at offset ${streamAt})`,
      `the answer stream is not UTF-8 text (an invalid byte at offset ${streamAt})`,
      `the answer is not UTF-8 text (an invalid byte at offset ${at})`,
    ];
    results.forEach((r, i) => {
      assert(r.outcome === "failed", `${i}: ${JSON.stringify(r)}`);
      assertStringIncludes(r.error.message, expected[i]);
      assertEquals([r.error.code, (r.error.data as JsonObject).kind], [502, "INVALID_ANSWER"]);
    });
    // the same answers in UTF-8 (also cut inside a character) are read as they are
    server.replies.push(
      { kind: "raw", text: bytes(whole, true), pieces: 7 },
      { kind: "raw", text: bytes(events, true), contentType: "text/event-stream", pieces: 13 },
    );
    const ok = await p.execute("/chat", { messages }, ctx());
    assert(ok.outcome === "success", JSON.stringify(ok));
    assertEquals((ok.result as JsonObject).content, "caf\u00e9");
    const okStream = await p.execute("/chat", { messages, stream: true }, ctx());
    assert(okStream.outcome === "success", JSON.stringify(okStream));
    assertEquals((okStream.result as JsonObject).content, "h\u00e9caf\u00e9");
  });
});

Deno.test("/chat: the config's request timeout and headers apply (headers may replace Authorization)", async () => {
  await withServer(async (server) => {
    const p = await startBuiltin({
      baseUrl: server.baseUrl,
      model: "m",
      timeout: "150ms",
      headers: { "X-Team": "research", Authorization: "Token gateway-secret" },
    });
    server.replies.push({ kind: "hang" });
    const [r] = await Promise.all([
      p.execute(
        "/chat",
        { messages: [{ role: "user", content: "x" }], api_key: "sk-ignored" },
        ctx(),
      ),
      server.hangAborted(),
    ]);
    assert(r.outcome === "failed");
    assertEquals(r.error.code, 504);
    assertEquals((r.error.data as JsonObject).kind, "TIMEOUT");
    assertStringIncludes(r.error.message, "no answer from");
    assertEquals(server.requests[0].headers["x-team"], "research");
    assertEquals(server.requests[0].headers.authorization, "Token gateway-secret");
    assert(!JSON.stringify(r).includes("gateway-secret"));
  });
});

Deno.test("chatUrl() appends the path before a base URL's query (Azure's api-version)", async () => {
  const { chatUrl } = await import("../../../src/plugins/builtin/model_http.ts");
  assertEquals(chatUrl("http://h:1/v1"), "http://h:1/v1/chat/completions");
  assertEquals(chatUrl("http://h:1/v1/"), "http://h:1/v1/chat/completions");
  assertEquals(
    chatUrl("https://r.openai.azure.com/openai/deployments/d?api-version=2024-10-21"),
    "https://r.openai.azure.com/openai/deployments/d/chat/completions?api-version=2024-10-21",
  );
});
