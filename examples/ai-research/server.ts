/**
 * A small OpenAI-compatible server for trying AI flows without a key or a GPU: model `demo`
 * answers deterministically from a few notes (or says it has none), fills a `json_schema`
 * response format with a value of the schema built from the conversation, calls the first tool
 * when tools are given, streams when asked, and reports token usage (about 4 characters a
 * token). Any real endpoint replaces it: see README.md.
 *
 * ```sh
 * deno run --allow-net=127.0.0.1 examples/ai-research/server.ts [--port 8321]
 * ```
 * Endpoints: `POST /v1/chat/completions`, `GET /v1/models`.
 * @module
 */

const NOTES: [RegExp, string][] = [
  [
    /workflow engine/i,
    "A workflow engine runs a graph of steps, passing each step's output to the steps that " +
    "need it. It decides what can run, retries what failed, and records what happened, so " +
    "the steps themselves stay small.",
  ],
  [
    /parallel/i,
    "Independent steps can run at the same time, so a flow takes as long as its longest chain " +
    "rather than the sum of its steps. For model calls, which mostly wait on the network, this " +
    "is the biggest speed-up available.",
  ],
  [
    /rate.?limit|429/i,
    "Retry it after the delay the server asks for in its Retry-After header, with exponential " +
    "backoff when there is none, and cap the number of attempts. Limiting how many calls run " +
    "at once keeps a fan-out from tripping the limit in the first place.",
  ],
  [
    /structured output|json schema/i,
    "Structured output asks the model for JSON that matches a schema, so the next step gets " +
    "fields instead of prose. The answer should still be validated: a model can cut off or " +
    "drift from the schema.",
  ],
];

// deno-lint-ignore no-explicit-any
type Json = any;

function lastUserText(messages: Json[]): string {
  for (let i = messages.length - 1; i >= 0; i--) {
    const m = messages[i];
    if (m?.role !== "user") continue;
    if (typeof m.content === "string") return m.content;
    if (Array.isArray(m.content)) {
      return m.content.map((p: Json) => (typeof p?.text === "string" ? p.text : "")).join(" ");
    }
  }
  return "";
}

function firstSentence(text: string): string {
  const m = /^.*?[.!?](\s|$)/s.exec(text.trim());
  return (m ? m[0] : text).trim();
}

/** Every string under a key named `key`, anywhere in `value`. */
function stringsAt(value: Json, key: string, out: string[] = []): string[] {
  if (Array.isArray(value)) { for (const v of value) stringsAt(v, key, out); }
  else if (value && typeof value === "object") {
    for (const [k, v] of Object.entries(value)) {
      if (k === key && typeof v === "string") out.push(v);
      else stringsAt(v, key, out);
    }
  }
  return out;
}

function answerText(question: string): string {
  const note = NOTES.find(([re]) => re.test(question));
  return note
    ? note[1]
    : `The demo model has no notes about "${question.slice(0, 80)}". Point OPENAI_BASE_URL ` +
      "at a real model for a real answer.";
}

/** A value of `schema`, filled from what the conversation holds. */
function fill(schema: Json, name: string, ctx: { topic: string; answers: string[] }): Json {
  if (!schema || typeof schema !== "object") return null;
  if (Array.isArray(schema.enum)) return schema.enum[0];
  const type = Array.isArray(schema.type) ? schema.type[0] : schema.type;
  switch (type) {
    case "object": {
      const out: Record<string, Json> = {};
      for (const [k, s] of Object.entries(schema.properties ?? {})) out[k] = fill(s, k, ctx);
      return out;
    }
    case "array": {
      const n = Math.max(1, Math.min(ctx.answers.length, schema.maxItems ?? 5));
      return Array.from({ length: n }, (_, i) =>
        fill(schema.items ?? { type: "string" }, name, {
          ...ctx,
          answers: ctx.answers.length ? [ctx.answers[i]] : [],
        }));
    }
    case "integer":
    case "number":
      return name.includes("count") ? ctx.answers.length : 0;
    case "boolean":
      return false;
    case "null":
      return null;
    default: {
      if (/title|name|headline/i.test(name)) return `Brief: ${ctx.topic || "research notes"}`;
      if (/summary|abstract|overview/i.test(name)) {
        return ctx.answers.map(firstSentence).join(" ") || "Nothing to summarise.";
      }
      return ctx.answers.length ? firstSentence(ctx.answers[0]) : "demo";
    }
  }
}

function tokens(text: string): number {
  return Math.max(1, Math.ceil(text.length / 4));
}

/** The answer to one request: content, or tool calls. */
function respond(body: Json): { content: string | null; toolCalls?: Json[] } {
  const messages: Json[] = Array.isArray(body.messages) ? body.messages : [];
  const question = lastUserText(messages);
  const format = body.response_format;
  if (format?.type === "json_schema" || format?.type === "json_object") {
    let data: Json = null;
    try {
      data = JSON.parse(question);
    } catch {
      // plain text: no notes inside
    }
    const ctx = {
      topic: typeof data?.topic === "string" ? data.topic : "",
      answers: data ? stringsAt(data, "answer") : [answerText(question)],
    };
    const schema = format.type === "json_schema" ? format.json_schema?.schema : { type: "object" };
    return { content: JSON.stringify(fill(schema, "", ctx)) };
  }
  const tools: Json[] = Array.isArray(body.tools) ? body.tools : [];
  const answered = messages.some((m) => m?.role === "tool");
  if (tools.length > 0 && !answered && body.tool_choice !== "none") {
    const fn = tools[0].function ?? {};
    const args = fill(fn.parameters ?? { type: "object" }, "", {
      topic: "",
      answers: [question],
    });
    return {
      content: null,
      toolCalls: [{
        id: "call_demo_1",
        type: "function",
        function: { name: fn.name, arguments: JSON.stringify(args) },
      }],
    };
  }
  return { content: answerText(question) };
}

function handle(body: Json): Response {
  const { content, toolCalls } = respond(body);
  const promptText = JSON.stringify(body.messages ?? []);
  const usage = {
    prompt_tokens: tokens(promptText),
    completion_tokens: tokens(content ?? JSON.stringify(toolCalls)),
    total_tokens: 0,
  };
  usage.total_tokens = usage.prompt_tokens + usage.completion_tokens;
  const finish = toolCalls ? "tool_calls" : "stop";
  const base = { id: "chatcmpl-demo", created: 0, model: "demo" };
  if (!body.stream) {
    return Response.json({
      ...base,
      object: "chat.completion",
      choices: [{
        index: 0,
        message: {
          role: "assistant",
          content,
          refusal: null,
          ...(toolCalls ? { tool_calls: toolCalls } : {}),
        },
        finish_reason: finish,
      }],
      usage,
    });
  }
  const chunk = (delta: Json, finish_reason: string | null = null) => ({
    ...base,
    object: "chat.completion.chunk",
    choices: [{ index: 0, delta, finish_reason }],
  });
  const events: Json[] = [chunk({ role: "assistant", content: "" })];
  for (const piece of (content ?? "").match(/\S+\s*/g) ?? []) {
    events.push(chunk({ content: piece }));
  }
  toolCalls?.forEach((tc, index) => events.push(chunk({ tool_calls: [{ index, ...tc }] })));
  events.push(chunk({}, finish));
  if (body.stream_options?.include_usage) {
    events.push({ ...base, object: "chat.completion.chunk", choices: [], usage });
  }
  const text = events.map((e) => `data: ${JSON.stringify(e)}\n\n`).join("") + "data: [DONE]\n\n";
  return new Response(text, { headers: { "content-type": "text/event-stream" } });
}

const args = Deno.args;
const at = args.indexOf("--port");
const port = at >= 0 ? Number(args[at + 1]) : 8321;

Deno.serve({
  hostname: "127.0.0.1",
  port,
  onListen: ({ port }) => console.error(`demo model listening on http://127.0.0.1:${port}/v1`),
}, async (req) => {
  const { pathname } = new URL(req.url);
  if (req.method === "GET" && pathname === "/v1/models") {
    return Response.json({
      object: "list",
      data: [{ id: "demo", object: "model", owned_by: "stepflow" }],
    });
  }
  if (req.method !== "POST" || pathname !== "/v1/chat/completions") {
    return Response.json({ error: { message: `no route ${req.method} ${pathname}` } }, {
      status: 404,
    });
  }
  let body: Json;
  try {
    body = await req.json();
  } catch {
    return Response.json({ error: { message: "the body is not JSON" } }, { status: 400 });
  }
  if (!Array.isArray(body?.messages) || body.messages.length === 0) {
    return Response.json({ error: { message: "messages is required" } }, { status: 400 });
  }
  return handle(body);
});
