/**
 * `/openai` (stepflow 0.8 §4) against a local OpenAI-compatible server on 127.0.0.1: what it
 * sends (model, messages, max_tokens, temperature, headers), what it returns, 0.8's errors, and
 * where the endpoint and key come from.
 */
import { assert, assertEquals, assertStringIncludes } from "../../_assert.ts";
import { flow } from "../../execution/_engine_helpers.ts";
import { startFakeOpenAI } from "./_openai_server.ts";
import { ctx, modelEngine, startBuiltin, uniqueVar } from "./_model_helpers.ts";

const MESSAGES = [
  { role: "system", content: "You are terse." },
  { role: "user", content: "Say hello" },
];

Deno.test("/openai sends 0.8's request (gpt-3.5-turbo, messages, max_tokens, temperature) with the key from the environment and returns {response}", async () => {
  const server = startFakeOpenAI();
  const keyVar = uniqueVar("TEST_OPENAI_KEY");
  Deno.env.set(keyVar, "sk-test-from-env");
  try {
    const p = await startBuiltin({ baseUrl: server.baseUrl, apiKeyEnv: keyVar });
    server.replies.push({ kind: "completion", content: "Hello!" });
    const r = await p.execute(
      "/openai",
      { messages: MESSAGES, max_tokens: 100, temperature: 0.7 },
      ctx(),
    );
    assertEquals(r, { outcome: "success", result: { response: "Hello!" } });
    assertEquals(server.requests.length, 1);
    const req = server.requests[0];
    assertEquals(req.method, "POST");
    assertEquals(req.path, "/v1/chat/completions");
    assertEquals(req.body, {
      model: "gpt-3.5-turbo",
      messages: MESSAGES,
      max_tokens: 100,
      temperature: 0.7,
    });
    assertEquals(req.headers.authorization, "Bearer sk-test-from-env");
    assertEquals(req.headers["content-type"], "application/json");
    assertStringIncludes(req.headers["user-agent"], "stepflow");
  } finally {
    Deno.env.delete(keyVar);
    await server.close();
  }
});

Deno.test("/openai: model and base_url from the step win over the config; api_key from the input", async () => {
  const server = startFakeOpenAI();
  const other = startFakeOpenAI();
  try {
    const p = await startBuiltin({ baseUrl: other.baseUrl, model: "config-model" });
    const r = await p.execute("/openai", {
      messages: MESSAGES,
      model: "llama3.2",
      base_url: server.baseUrl,
      api_key: "sk-input",
    }, ctx());
    assertEquals(r.outcome, "success");
    assertEquals(other.requests.length, 0);
    assertEquals(server.requests[0].body.model, "llama3.2");
    assertEquals(server.requests[0].headers.authorization, "Bearer sk-input");
    // without a step model, the config's
    await p.execute("/openai", { messages: MESSAGES }, ctx());
    assertEquals(other.requests[0].body.model, "config-model");
  } finally {
    await server.close();
    await other.close();
  }
});

Deno.test("/openai against a server that is not OpenAI's needs no key: no Authorization header", async () => {
  const server = startFakeOpenAI();
  try {
    const p = await startBuiltin({ baseUrl: server.baseUrl, apiKeyEnv: uniqueVar("UNSET") });
    const r = await p.execute("/openai", { messages: MESSAGES }, ctx());
    assertEquals(r, { outcome: "success", result: { response: "echo: Say hello" } });
    assertEquals(server.requests[0].headers.authorization, undefined);
  } finally {
    await server.close();
  }
});

Deno.test("/openai: OPENAI_BASE_URL is used when neither step nor config gives a base URL", async () => {
  const server = startFakeOpenAI();
  const before = Deno.env.get("OPENAI_BASE_URL");
  Deno.env.set("OPENAI_BASE_URL", server.baseUrl);
  try {
    const p = await startBuiltin({ apiKeyEnv: uniqueVar("UNSET") });
    const r = await p.execute("/openai", { messages: MESSAGES }, ctx());
    assertEquals(r.outcome, "success");
    assertEquals(server.requests.length, 1);
  } finally {
    if (before === undefined) Deno.env.delete("OPENAI_BASE_URL");
    else Deno.env.set("OPENAI_BASE_URL", before);
    await server.close();
  }
});

Deno.test("/openai without a key for OpenAI's API fails the run with 0.8's message", async () => {
  const keyVar = uniqueVar("UNSET_KEY");
  const engine = await modelEngine({ baseUrl: "https://api.openai.com/v1", apiKeyEnv: keyVar });
  try {
    const f = flow(`
steps:
  - id: ask
    component: /builtin/openai
    input: { messages: [{ role: user, content: hi }] }
output: { $from: { step: ask }, path: response }
`);
    const r = await engine.run(f, {});
    assert(r.outcome === "failed");
    assertEquals(r.error.code, 500);
    assertStringIncludes(
      JSON.stringify(r.error),
      `missing value (\\"api_key\\") or environment variable (\\"${keyVar}\\")`,
    );
  } finally {
    await engine.close();
  }
  // with the default variable name, exactly 0.8's text
  const p = await startBuiltin({ baseUrl: "https://api.openai.com/v1" });
  const saved = Deno.env.get("OPENAI_API_KEY");
  Deno.env.delete("OPENAI_API_KEY");
  try {
    const r = await p.execute("/openai", { messages: MESSAGES }, ctx());
    assert(r.outcome === "failed", JSON.stringify(r));
    assertEquals(r.error.code, 500);
    assertStringIncludes(
      r.error.message,
      'missing value ("api_key") or environment variable ("OPENAI_API_KEY")',
    );
  } finally {
    if (saved !== undefined) Deno.env.set("OPENAI_API_KEY", saved);
  }
});

Deno.test("/openai rejects input 0.8 would not parse: role, content, max_tokens range", async () => {
  const p = await startBuiltin({ baseUrl: "http://127.0.0.1:9/v1" });
  const bad: [unknown, string][] = [
    [{}, "missing field `messages`"],
    [{ messages: "hi" }, "`messages` must be an array"],
    [{ messages: [{ role: "robot", content: "x" }] }, "messages[0].role must be one of"],
    [{ messages: [{ role: "user", content: 5 }] }, "messages[0].content must be a string"],
    [{ messages: MESSAGES, max_tokens: 70000 }, "`max_tokens` must be an integer from 0 to 65535"],
    [{ messages: MESSAGES, temperature: "hot" }, "`temperature` must be a number"],
  ];
  for (const [input, text] of bad) {
    // a failed step that onError handles (stepflow 0.8 aborts the run on bad builtin input)
    const r = await p.execute("/openai", input as never, ctx());
    assert(r.outcome === "failed", JSON.stringify(r));
    assertEquals(r.error.code, -32602);
    assertEquals(r.error.data, { kind: "INVALID_INPUT", component: "/openai" });
    assertStringIncludes(r.error.message, text);
  }
});

Deno.test("/openai: an HTTP error is a failed step (onError applies), with the key redacted", async () => {
  const server = startFakeOpenAI();
  try {
    server.replies.push({
      kind: "status",
      status: 401,
      body: {
        error: {
          message: "Incorrect API key provided: sk-secret-123456. Check it.",
          type: "invalid_request_error",
          code: "invalid_api_key",
        },
      },
    });
    const engine = await modelEngine({ baseUrl: server.baseUrl });
    try {
      const f = flow(`
steps:
  - id: ask
    component: /builtin/openai
    input: { messages: [{ role: user, content: hi }], api_key: sk-secret-123456 }
    onError: { action: useDefault, defaultValue: { response: fallback } }
output: { $from: { step: ask }, path: response }
`);
      assertEquals(await engine.run(f, {}), { outcome: "success", result: "fallback" });
      server.replies.push({
        kind: "status",
        status: 401,
        body: { error: { message: "Incorrect API key provided: sk-secret-123456." } },
      });
      const g = flow(`
steps:
  - id: ask
    component: /builtin/openai
    input: { messages: [{ role: user, content: hi }], api_key: sk-secret-123456 }
output: { $from: { step: ask }, path: response }
`);
      const r = await engine.run(g, {});
      assert(r.outcome === "failed");
      assertEquals(r.error.code, 401);
      assertStringIncludes(
        r.error.message,
        "answered HTTP 401: Incorrect API key provided: [REDACTED]",
      );
      assert(!JSON.stringify(r).includes("sk-secret"), JSON.stringify(r));
    } finally {
      await engine.close();
    }
  } finally {
    await server.close();
  }
});
