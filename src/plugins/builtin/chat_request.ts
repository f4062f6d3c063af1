/**
 * `/chat`'s request (src/plugins/builtin/chat.ts): the step's input checked and turned into an
 * OpenAI chat completion request — messages (content that is not text or content parts sent as
 * JSON text; `/chat`'s own tool calls in OpenAI's shape), tools (the `{name, parameters}` short
 * form), the fields passed through with their JSON types, `response_format` (a `json_schema`
 * compiled to check the answer) and `extra_body`. Bad input throws `INVALID_INPUT`.
 * @module
 */
import {
  isJsonObject,
  isNumber,
  type JsonObject,
  type JsonValue,
  stringifyJson,
  toNumber,
} from "../../json/exact_json.ts";
import type { SchemaCheck } from "../mcp/schema_check.ts";
import { invalidInput, optionalString, typeName } from "./_input.ts";

/** The component's name. */
export const NAME = "/chat";

/** Request fields passed to the API as given, with the JSON type each must have. */
export const PASSTHROUGH: Record<
  string,
  "number" | "integer" | "string" | "boolean" | "object" | "any"
> = {
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

/** A request ready to send, and what the answer is checked against. */
export interface Request {
  body: JsonObject;
  /** `json_object` / `json_schema` response formats: the answer must be JSON. */
  wantsJson: boolean;
  /** `json_schema`: the schema check and its name. */
  schema?: { name: string; check: SchemaCheck };
}

export function buildRequest(o: JsonObject, defaultModel: string | undefined): Request {
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

/** Loads the JSON Schema checker (before {@linkcode buildRequest} with a `json_schema` format). */
export async function loadSchemaChecks(): Promise<void> {
  schemaChecks ??= await import("../mcp/schema_check.ts");
}

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
