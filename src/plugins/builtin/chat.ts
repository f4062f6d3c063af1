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
 * The request is built in src/plugins/builtin/chat_request.ts, the answer checked and turned into
 * the output in src/plugins/builtin/chat_answer.ts.
 *
 * Streaming reports `ctx.progress({type: "chat.delta", text})` for each piece of text and, for
 * every call, `ctx.progress({type: "chat.done", finish_reason, usage})` at the end; the step's
 * output is the whole message either way.
 * @module
 */
import { isJsonObject } from "../../json/exact_json.ts";
import { logger } from "../../log.ts";
import type { BuiltinComponent } from "./component.ts";
import { objectInput, optionalString } from "./_input.ts";
import { boundAnswers, failureFromError, resolveEndpoint } from "./openai_client.ts";
import { postChat } from "./model_http.ts";
import { type Answer, fromCompletion, streamed, toOutput } from "./chat_answer.ts";
import { buildRequest, loadSchemaChecks, NAME, PASSTHROUGH } from "./chat_request.ts";

const log = logger("chat");

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
      await loadSchemaChecks();
    }
    const request = buildRequest(o, env.openai.model);
    const endpoint = boundAnswers(
      resolveEndpoint(NAME, {
        api_key: optionalString(NAME, o, "api_key"),
        base_url: optionalString(NAME, o, "base_url"),
      }, env.openai),
      env.maxOutputBytes,
    );
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
      return failureFromError(NAME, e, endpoint, ctx.stepId);
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
