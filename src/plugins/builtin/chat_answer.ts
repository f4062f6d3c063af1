/**
 * `/chat`'s answer (src/plugins/builtin/chat.ts): one answer however it arrived (a completion,
 * or a stream whose text is reported as `chat.delta` progress), turned into the step's output —
 * JSON answers parsed (a Markdown fence around them dropped) and checked against the
 * `json_schema`, tool arguments parsed — or into a failed result: 502 when the answer is not what
 * was asked for (retryable), 422 for a refused structured answer.
 * @module
 */
import { failed, type FlowFailed, success } from "../../core/flow_result.ts";
import {
  isJsonObject,
  type JsonObject,
  type JsonValue,
  parseJson,
  stringifyJson,
} from "../../json/exact_json.ts";
import type { ExecuteContext } from "../plugin.ts";
import { NAME, type Request } from "./chat_request.ts";
import type { Endpoint } from "./openai_client.ts";
import { streamChat } from "./model_http.ts";

/** One answer, however it arrived (whole or streamed). */
export interface Answer {
  content: string | null;
  refusal: string | null;
  toolCalls: { id: string; type: string; function: { name: string; arguments: string } }[];
  finishReason: string | null;
  model: string;
  usage: JsonValue;
}

export function fromCompletion(completion: unknown): Answer {
  const c = completion as Record<string, unknown>;
  const choices = Array.isArray(c?.choices) ? c.choices : [];
  const choice = (choices[0] ?? {}) as Record<string, unknown>;
  const message = (choice.message ?? {}) as Record<string, unknown>;
  const calls = Array.isArray(message.tool_calls) ? message.tool_calls : [];
  return {
    content: contentText(message.content),
    refusal: typeof message.refusal === "string" && message.refusal !== "" ? message.refusal : null,
    toolCalls: calls.map((tc: Record<string, unknown>) => {
      const fn = (tc.function ?? {}) as Record<string, unknown>;
      return {
        id: String(tc.id ?? ""),
        type: typeof tc.type === "string" ? tc.type : "function",
        function: {
          name: String(fn.name ?? ""),
          // absent (a server's call without arguments) reads as no arguments, as in a stream
          arguments: typeof fn.arguments === "string"
            ? fn.arguments
            : fn.arguments === undefined || fn.arguments === null
            ? ""
            : stringifyJson(fn.arguments),
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

/**
 * The text of a message's `content`: a string as it is; a list of content parts (some servers
 * answer so) as the concatenation of their `text`; absent or null as null; anything else as its
 * JSON text (an odd server's answer is kept, not dropped).
 */
function contentText(content: unknown): string | null {
  if (typeof content === "string") return content;
  if (content === undefined || content === null) return null;
  if (Array.isArray(content) && content.every((p) => isJsonObject(p as JsonValue))) {
    return content.map((p) => typeof p.text === "string" ? p.text : "").join("");
  }
  return stringifyJson(content as JsonValue);
}

/** Sends the request with `stream: true`, reporting text as progress; returns the whole answer. */
export async function streamed(
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
export function toOutput(a: Answer, request: Request) {
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
    for (const [i, tc] of a.toolCalls.entries()) {
      if (tc.function.name === "") {
        return answerFailure(
          502,
          "INVALID_TOOL_CALL",
          `tool call ${i}${tc.id ? ` ('${tc.id}')` : ""} names no function`,
          true,
          a,
        );
      }
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
