/**
 * `/chat` (extension, issue 16): one chat completion from any OpenAI-compatible server, with
 * tools, structured output, streaming and token usage. docs/ai.md is the user's guide.
 *
 * ```yaml
 * input:
 *   model: gpt-4o-mini            # else the config's openai.model (required from one of them)
 *   messages:                     # OpenAI's shape; a content that is neither a string, null nor
 *     - {role: system, content: You are terse.}     #   a list of content parts is sent as its
 *     - {role: user, content: {$from: {step: s}}}   #   compact JSON text
 *   tools:                        # optional; {name, description?, parameters?} is short for
 *     - {name: get_weather, parameters: {type: object, properties: {city: {type: string}}}}
 *   tool_choice: auto             # optional, passed through
 *   response_format:              # optional: text | json_object | json_schema
 *     type: json_schema
 *     json_schema: {name: answer, schema: {type: object, ...}, strict: true}
 *   stream: true                  # optional; default: stream when the run reports progress
 *   temperature: 0.2              # optional, as OpenAI's: top_p, max_tokens,
 *                                 #   max_completion_tokens, stop, seed, presence_penalty,
 *                                 #   frequency_penalty, user, reasoning_effort, ...
 *   extra_body: {top_k: 20}       # optional: anything else the server understands
 *   api_key / base_url            # optional, as /openai (docs/ai.md: where the key comes from)
 * output:
 *   content: "..."                # the answer text (null when the model only called tools)
 *   parsed: {...}                 # with a json response_format: the answer parsed (and valid)
 *   tool_calls: [{id, name, arguments: {...}}]   # when the model called tools (arguments parsed)
 *   refusal: "..."                # only when the model refused
 *   finish_reason: stop           # stop | length | tool_calls | content_filter
 *   model: gpt-4o-mini-2024-07-18 # the model that answered
 *   usage: {prompt_tokens, completion_tokens, total_tokens, ...}   # null if the server gave none
 *   message: {role: assistant, content, tool_calls?}   # OpenAI's shape, to append to messages
 * ```
 *
 * Failures are failed results (`onError`, retries): HTTP errors keep their status as code with
 * `data.retryable` and `data.retryAfterMs` (src/plugins/builtin/openai_client.ts); an answer
 * that is not the JSON asked for, does not match the schema, or has tool arguments that are not
 * JSON is code 502 (retryable: the model may do better); a refusal of a structured answer is code
 * 422 (not retryable). Bad input is a failed step, -32602 `INVALID_INPUT` (as every built-in here;
 * 0.8 aborts the run).
 *
 * Streaming reports `ctx.progress({type: "chat.delta", text})` for each piece of text and, for
 * every call, `ctx.progress({type: "chat.done", finish_reason, usage})` at the end; the step's
 * output is the whole message either way.
 * @module
 */
import { failed, type FlowFailed, success } from "../../core/flow_result.ts";
import {
  isJsonObject,
  isNumber,
  type JsonObject,
  type JsonValue,
  parseJson,
  stringifyJson,
  toNumber,
} from "../../json/exact_json.ts";
import { logger } from "../../log.ts";
import type { ExecuteContext } from "../plugin.ts";
import type { SchemaCheck } from "../mcp/schema_check.ts";
import type { BuiltinComponent } from "./component.ts";
import { invalidInput, objectInput, optionalString, typeName } from "./_input.ts";
import { type Endpoint, failureFromError, resolveEndpoint } from "./openai_client.ts";
import { postChat, streamChat } from "./model_http.ts";

const NAME = "/chat";
const log = logger("chat");

/** Request fields passed to the API as given, with the JSON type each must have. */
const PASSTHROUGH: Record<string, "number" | "integer" | "string" | "boolean" | "object" | "any"> =
  {
    temperature: "number",
    top_p: "number",
    max_tokens: "integer",
    max_completion_tokens: "integer",
    stop: "any",
    seed: "integer",
    presence_penalty: "number",
    frequency_penalty: "number",
    logit_bias: "object",
    logprobs: "boolean",
    top_logprobs: "integer",
    user: "string",
    reasoning_effort: "string",
    verbosity: "string",
    parallel_tool_calls: "boolean",
    tool_choice: "any",
    metadata: "object",
    service_tier: "string",
    store: "boolean",
    prediction: "object",
  };
const OWN = [
  "model",
  "messages",
  "tools",
  "response_format",
  "stream",
  "extra_body",
  "api_key",
  "base_url",
];
const KNOWN = new Set([...OWN, ...Object.keys(PASSTHROUGH)]);

/** The `/chat` component. */
export const chatComponent: BuiltinComponent = {
  info: {
    component: NAME,
    description:
      "One chat completion from an OpenAI-compatible server: tools, structured output, streaming, token usage",
    input_schema: {
      type: "object",
      properties: {
        model: { type: "string" },
        messages: {
          type: "array",
          items: {
            type: "object",
            properties: { role: { type: "string" } },
            required: ["role"],
          },
          minItems: 1,
        },
        tools: { type: "array", items: { type: "object" } },
        tool_choice: {},
        response_format: { type: "object" },
        stream: { type: "boolean" },
        extra_body: { type: "object" },
        api_key: { type: "string" },
        base_url: { type: "string" },
        ...Object.fromEntries(
          Object.entries(PASSTHROUGH).filter(([k]) => k !== "tool_choice").map((
            [k, t],
          ) => [k, t === "any" ? {} : { type: t }]),
        ),
      },
      required: ["messages"],
    },
    output_schema: {
      type: "object",
      properties: {
        content: { type: ["string", "null"] },
        parsed: {},
        tool_calls: {
          type: "array",
          items: {
            type: "object",
            properties: { id: { type: "string" }, name: { type: "string" }, arguments: {} },
          },
        },
        refusal: { type: "string" },
        finish_reason: { type: ["string", "null"] },
        model: { type: "string" },
        usage: { type: ["object", "null"] },
        message: { type: "object" },
      },
      required: ["content", "finish_reason", "model", "usage", "message"],
    },
  },
  async execute(input, ctx, env) {
    const o = objectInput(NAME, input);
    const rf = o.response_format;
    if (isJsonObject(rf) && rf.type === "json_schema") {
      // ajv loads only for a schema to check (cold start of every other command, issue 17)
      schemaChecks ??= await import("../mcp/schema_check.ts");
    }
    const request = buildRequest(o, env.openai.model);
    const endpoint = resolveEndpoint(NAME, {
      api_key: optionalString(NAME, o, "api_key"),
      base_url: optionalString(NAME, o, "base_url"),
    }, env.openai);
    const stream = o.stream === undefined || o.stream === null ? ctx.progress !== undefined : (
      o.stream === true
    );
    const started = performance.now();
    let answer: Answer;
    try {
      answer = stream
        ? await streamed(endpoint, request.body, ctx)
        : fromCompletion(await postChat(endpoint, request.body, ctx.signal));
    } catch (e) {
      return failureFromError(NAME, e, endpoint);
    }
    if (log.enabled("info")) {
      const u = answer.usage;
      log.info(
        `step '${ctx.stepId}': ${answer.model}${
          isJsonObject(u) ? `, ${u.prompt_tokens} + ${u.completion_tokens} tokens` : ""
        }, ${Math.round(performance.now() - started)} ms${stream ? " (streamed)" : ""}`,
      );
    }
    ctx.progress?.({ type: "chat.done", finish_reason: answer.finishReason, usage: answer.usage });
    return toOutput(answer, request);
  },
};

/** A request ready to send, and what the answer is checked against. */
interface Request {
  body: JsonObject;
  /** `json_object` / `json_schema` response formats: the answer must be JSON. */
  wantsJson: boolean;
  /** `json_schema`: the schema check and its name. */
  schema?: { name: string; check: SchemaCheck };
}

function buildRequest(o: JsonObject, defaultModel: string | undefined): Request {
  for (const k of Object.keys(o)) {
    if (!KNOWN.has(k)) {
      throw invalidInput(
        NAME,
        `unknown field \`${k}\`; put parameters only your server knows in \`extra_body\``,
      );
    }
  }
  const model = optionalString(NAME, o, "model") ?? defaultModel;
  if (model === undefined || model === "") {
    throw invalidInput(
      NAME,
      "no `model`: give the step a model, or set `openai: {model: ...}` on the builtin plugin in the config",
    );
  }
  const body: JsonObject = { model, messages: checkMessages(o.messages) };
  if (o.tools !== undefined && o.tools !== null) body.tools = checkTools(o.tools);
  for (const [k, type] of Object.entries(PASSTHROUGH)) {
    const v = o[k];
    if (v === undefined || v === null) continue;
    if (!hasType(v, type)) {
      throw invalidInput(NAME, `\`${k}\` must be ${article(type)}, got ${typeName(v)}`);
    }
    body[k] = v;
  }
  if (o.stream !== undefined && o.stream !== null && typeof o.stream !== "boolean") {
    throw invalidInput(NAME, `\`stream\` must be a boolean, got ${typeName(o.stream)}`);
  }
  const request: Request = { body, wantsJson: false };
  if (o.response_format !== undefined && o.response_format !== null) {
    Object.assign(request, checkResponseFormat(o.response_format, body));
  }
  if (o.extra_body !== undefined && o.extra_body !== null) {
    if (!isJsonObject(o.extra_body)) {
      throw invalidInput(NAME, `\`extra_body\` must be an object, got ${typeName(o.extra_body)}`);
    }
    Object.assign(body, o.extra_body);
  }
  return request;
}

function checkMessages(v: JsonValue | undefined): JsonValue[] {
  if (v === undefined) throw invalidInput(NAME, "missing field `messages`");
  if (!Array.isArray(v)) {
    throw invalidInput(NAME, `\`messages\` must be an array, got ${typeName(v)}`);
  }
  if (v.length === 0) throw invalidInput(NAME, "`messages` is empty: give at least one message");
  return v.map((m, i) => {
    if (!isJsonObject(m)) {
      throw invalidInput(NAME, `messages[${i}] must be an object, got ${typeName(m)}`);
    }
    if (typeof m.role !== "string") {
      throw invalidInput(NAME, `messages[${i}].role must be a string, got ${typeName(m.role)}`);
    }
    const out: JsonObject = { ...m };
    const c = m.content;
    if (c !== undefined && c !== null && typeof c !== "string" && !isContentParts(c)) {
      out.content = stringifyJson(c); // data from a step, as JSON text
    }
    if (Array.isArray(m.tool_calls)) {
      // tool calls as /chat returns them at top level ({id, name, arguments: {...}}) or OpenAI's
      out.tool_calls = m.tool_calls.map((tc) => toWireToolCall(tc));
    }
    return out;
  });
}

/** OpenAI content parts: a list of objects with a string `type` (`text`, `image_url`, ...). */
function isContentParts(v: JsonValue): boolean {
  return Array.isArray(v) && v.length > 0 &&
    v.every((p) => isJsonObject(p) && typeof p.type === "string");
}

function toWireToolCall(tc: JsonValue): JsonValue {
  if (!isJsonObject(tc)) return tc;
  if (isJsonObject(tc.function)) {
    const args = tc.function.arguments;
    if (args === undefined || typeof args === "string") return tc;
    return { ...tc, function: { ...tc.function, arguments: stringifyJson(args) } };
  }
  if (typeof tc.name === "string") {
    const args = tc.arguments ?? {};
    return {
      id: tc.id ?? null,
      type: "function",
      function: {
        name: tc.name,
        arguments: typeof args === "string" ? args : stringifyJson(args),
      },
    };
  }
  return tc;
}

function checkTools(v: JsonValue): JsonValue[] {
  if (!Array.isArray(v)) throw invalidInput(NAME, `\`tools\` must be an array, got ${typeName(v)}`);
  return v.map((t, i) => {
    if (!isJsonObject(t)) throw invalidInput(NAME, `tools[${i}] must be an object`);
    if (typeof t.type === "string") return t; // OpenAI's own shape
    if (typeof t.name !== "string") {
      throw invalidInput(
        NAME,
        `tools[${i}] needs a \`name\` (short form) or \`type: function\` with \`function: {name, parameters}\``,
      );
    }
    const fn: JsonObject = { name: t.name };
    for (const k of ["description", "parameters", "strict"]) if (t[k] !== undefined) fn[k] = t[k];
    return { type: "function", function: fn };
  });
}

/** src/plugins/mcp/schema_check.ts, loaded by the first `json_schema` response format. */
let schemaChecks: typeof import("../mcp/schema_check.ts") | undefined;

function checkResponseFormat(v: JsonValue, body: JsonObject): Partial<Request> {
  if (!isJsonObject(v) || typeof v.type !== "string") {
    throw invalidInput(
      NAME,
      "`response_format` must be {type: text}, {type: json_object} or " +
        "{type: json_schema, json_schema: {name, schema}}",
    );
  }
  if (v.type === "text") {
    body.response_format = v;
    return {};
  }
  if (v.type === "json_object") {
    body.response_format = v;
    return { wantsJson: true };
  }
  if (v.type !== "json_schema") {
    body.response_format = v; // a server's own kind: passed through, not checked
    return {};
  }
  const js = v.json_schema;
  if (!isJsonObject(js) || (!isJsonObject(js.schema) && typeof js.schema !== "boolean")) {
    throw invalidInput(NAME, "`response_format.json_schema.schema` must be a JSON Schema object");
  }
  const name = typeof js.name === "string" && js.name !== "" ? js.name : "output";
  const { check, compileError } = schemaChecks!.compileSchemaCheck(js.schema);
  if (compileError !== undefined) {
    throw invalidInput(NAME, `response_format.json_schema.schema is not usable: ${compileError}`);
  }
  body.response_format = { ...v, json_schema: { ...js, name } };
  return { wantsJson: true, schema: { name, check } };
}

function hasType(v: JsonValue, type: string): boolean {
  switch (type) {
    case "number":
      return isNumber(v);
    case "integer":
      return isNumber(v) && Number.isInteger(toNumber(v));
    case "string":
      return typeof v === "string";
    case "boolean":
      return typeof v === "boolean";
    case "object":
      return isJsonObject(v);
    default:
      return true;
  }
}

function article(type: string): string {
  return type === "integer" || type === "object" ? `an ${type}` : `a ${type}`;
}

// ---------------------------------------------------------------------------------------------
// Answers

/** One answer, however it arrived (whole or streamed). */
interface Answer {
  content: string | null;
  refusal: string | null;
  toolCalls: { id: string; type: string; function: { name: string; arguments: string } }[];
  finishReason: string | null;
  model: string;
  usage: JsonValue;
}

function fromCompletion(completion: unknown): Answer {
  const c = completion as Record<string, unknown>;
  const choices = Array.isArray(c?.choices) ? c.choices : [];
  const choice = (choices[0] ?? {}) as Record<string, unknown>;
  const message = (choice.message ?? {}) as Record<string, unknown>;
  const calls = Array.isArray(message.tool_calls) ? message.tool_calls : [];
  return {
    content: typeof message.content === "string" ? message.content : null,
    refusal: typeof message.refusal === "string" && message.refusal !== "" ? message.refusal : null,
    toolCalls: calls.map((tc: Record<string, unknown>) => {
      const fn = (tc.function ?? {}) as Record<string, unknown>;
      return {
        id: String(tc.id ?? ""),
        type: typeof tc.type === "string" ? tc.type : "function",
        function: {
          name: String(fn.name ?? ""),
          arguments: typeof fn.arguments === "string" ? fn.arguments : stringifyJson(fn.arguments),
        },
      };
    }),
    finishReason: choices.length === 0
      ? "no_choices"
      : (typeof choice.finish_reason === "string" ? choice.finish_reason : null),
    model: typeof c?.model === "string" ? c.model : "",
    usage: isJsonObject(c?.usage) ? c.usage as JsonObject : null,
  };
}

/** Sends the request with `stream: true`, reporting text as progress; returns the whole answer. */
async function streamed(
  endpoint: Endpoint,
  body: JsonObject,
  ctx: ExecuteContext,
): Promise<Answer> {
  const s = streamChat(
    endpoint,
    { ...body, stream: true, stream_options: { include_usage: true } },
    ctx.signal,
  );
  let content = "";
  let refusal = "";
  let sawChoice = false;
  const calls: Answer["toolCalls"] = [];
  let finishReason: string | null = null;
  let model = "";
  let usage: JsonValue = null;
  for await (const chunk of s) {
    if (typeof chunk.model === "string" && chunk.model !== "") model = chunk.model;
    if (isJsonObject(chunk.usage)) usage = chunk.usage as JsonObject;
    const choices = Array.isArray(chunk.choices) ? chunk.choices : [];
    const choice = choices[0] as Record<string, unknown> | undefined;
    if (!choice) continue;
    sawChoice = true;
    const d = (choice.delta ?? {}) as Record<string, unknown>;
    if (typeof d.content === "string" && d.content !== "") {
      content += d.content;
      ctx.progress?.({ type: "chat.delta", text: d.content });
    }
    if (typeof d.refusal === "string") refusal += d.refusal;
    if (Array.isArray(d.tool_calls)) {
      for (const tc of d.tool_calls as Record<string, unknown>[]) {
        const i = typeof tc.index === "number" ? tc.index : calls.length;
        const cur = calls[i] ??= {
          id: "",
          type: "function",
          function: { name: "", arguments: "" },
        };
        if (typeof tc.id === "string") cur.id = tc.id;
        if (typeof tc.type === "string") cur.type = tc.type;
        const fn = (tc.function ?? {}) as Record<string, unknown>;
        if (typeof fn.name === "string") cur.function.name += fn.name;
        if (typeof fn.arguments === "string") cur.function.arguments += fn.arguments;
      }
    }
    if (typeof choice.finish_reason === "string") finishReason = choice.finish_reason;
  }
  const toolCalls = calls.filter((c) => c !== undefined);
  return {
    content: content === "" && toolCalls.length > 0 ? null : content,
    refusal: refusal === "" ? null : refusal,
    toolCalls,
    finishReason: sawChoice ? finishReason : "no_choices",
    model,
    usage,
  };
}

/** The step's output, or a failure when the answer is not what was asked for. */
function toOutput(a: Answer, request: Request) {
  if (a.finishReason === "no_choices") {
    return answerFailure(502, "ANSWER_WITHOUT_CHOICES", "the answer has no choices", true, a);
  }
  const out: JsonObject = { content: a.content };
  if (a.refusal !== null && request.wantsJson) {
    return answerFailure(422, "REFUSAL", `the model refused: ${a.refusal}`, false, a);
  }
  if (request.wantsJson && a.toolCalls.length === 0) {
    const parsed = parseAnswer(a, request);
    if ("outcome" in parsed) return parsed;
    out.parsed = parsed.value;
  }
  if (a.toolCalls.length > 0) {
    const calls: JsonValue[] = [];
    for (const tc of a.toolCalls) {
      let args: JsonValue;
      try {
        args = tc.function.arguments.trim() === "" ? {} : parseJson(tc.function.arguments);
      } catch (e) {
        return answerFailure(
          502,
          "INVALID_TOOL_ARGUMENTS",
          `the arguments of tool call '${tc.function.name}' are not JSON: ${(e as Error).message}`,
          true,
          a,
        );
      }
      calls.push({ id: tc.id, name: tc.function.name, arguments: args });
    }
    out.tool_calls = calls;
  }
  if (a.refusal !== null) out.refusal = a.refusal;
  out.finish_reason = a.finishReason;
  out.model = a.model;
  out.usage = a.usage;
  const message: JsonObject = { role: "assistant", content: a.content };
  if (a.toolCalls.length > 0) message.tool_calls = a.toolCalls as unknown as JsonValue;
  out.message = message;
  return success(out);
}

function parseAnswer(a: Answer, request: Request): { value: JsonValue } | FlowFailed {
  const text = a.content ?? "";
  const truncated = a.finishReason === "length"
    ? " (finish_reason is length: the answer was cut off; raise max_tokens)"
    : "";
  let value: JsonValue;
  try {
    value = parseJson(stripFence(text));
  } catch (e) {
    return answerFailure(
      502,
      "INVALID_JSON",
      `the answer is not JSON${truncated}: ${(e as Error).message}`,
      true,
      a,
    );
  }
  const problem = request.schema?.check(value);
  if (problem !== undefined) {
    return answerFailure(
      502,
      "SCHEMA_MISMATCH",
      `the answer does not match the response_format schema '${
        request.schema!.name
      }': ${problem}${truncated}`,
      true,
      a,
    );
  }
  return { value };
}

/** Some local models wrap JSON in a Markdown code fence; the JSON inside is what counts. */
function stripFence(text: string): string {
  const m = /^\s*```(?:json)?\s*\n([\s\S]*?)\n?```\s*$/.exec(text);
  return m ? m[1] : text;
}

const MAX_CONTENT_IN_ERROR = 10_000;

function answerFailure(
  code: number,
  kind: string,
  message: string,
  retryable: boolean,
  a: Answer,
): FlowFailed {
  const content = a.content !== null && a.content.length > MAX_CONTENT_IN_ERROR
    ? a.content.slice(0, MAX_CONTENT_IN_ERROR) + "…"
    : a.content;
  return failed(code, `${NAME}: ${message}`, {
    kind,
    retryable,
    model: a.model,
    finish_reason: a.finishReason,
    content,
    usage: a.usage,
  });
}
