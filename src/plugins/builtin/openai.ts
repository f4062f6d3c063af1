/**
 * `/openai` (stepflow 0.8 §4): one chat completion, answer text only.
 *
 * ```yaml
 * input:
 *   messages: [{role: system|user|assistant, content: "..."}]   # required
 *   max_tokens: 200        # optional, 0-65535 (0.8 accepted it but did not send it; sent here)
 *   temperature: 0.2       # optional (0.8 accepted it but did not send it; sent here)
 *   api_key: "..."         # optional; else the config's apiKeyEnv, else OPENAI_API_KEY
 *   model: gpt-4o-mini     # extension; else the config's openai.model, else gpt-3.5-turbo (0.8)
 *   base_url: http://127.0.0.1:11434/v1   # extension; else config openai.baseUrl, OPENAI_BASE_URL
 * output: {response: "<the first choice's text, empty when it has none>"}
 * ```
 *
 * Bad input (-32602 `INVALID_INPUT`) and a missing key (500, 0.8's text `missing value
 * ("api_key") or environment variable ("OPENAI_API_KEY")`) are failed steps, as every built-in
 * error is here (0.8 aborts the run; docs/compatibility.md). Better than 0.8 too: an API failure
 * (HTTP 429, 5xx, refused connection) is a failed step that `onError` and retries handle (see
 * src/plugins/builtin/openai_client.ts), not an aborted run. `/chat` is the richer component.
 * @module
 */
import { success } from "../../core/flow_result.ts";
import { isJsonObject, isNumber, type JsonValue, toNumber } from "../../json/exact_json.ts";
import type { BuiltinComponent } from "./component.ts";
import { invalidInput, objectInput, optionalString, typeName } from "./_input.ts";
import { boundAnswers, failureFromError, resolveEndpoint } from "./openai_client.ts";
import { postChat } from "./model_http.ts";

const NAME = "/openai";
/** stepflow 0.8's fixed model. */
export const OPENAI_DEFAULT_MODEL = "gpt-3.5-turbo";
const ROLES = ["system", "user", "assistant"];

/** The `/openai` component. */
export const openaiComponent: BuiltinComponent = {
  info: {
    component: NAME,
    description: "Send messages to OpenAI's chat completion API and get a response",
    input_schema: {
      type: "object",
      properties: {
        messages: {
          type: "array",
          items: {
            type: "object",
            properties: {
              role: { type: "string", enum: ROLES },
              content: { type: "string" },
            },
            required: ["role", "content"],
          },
        },
        max_tokens: { type: ["integer", "null"], minimum: 0, maximum: 65535 },
        temperature: { type: ["number", "null"] },
        api_key: { type: ["string", "null"] },
        model: { type: ["string", "null"] },
        base_url: { type: ["string", "null"] },
      },
      required: ["messages"],
    },
    output_schema: {
      type: "object",
      properties: { response: { type: "string" } },
      required: ["response"],
    },
  },
  async execute(input, ctx, env) {
    const o = objectInput(NAME, input);
    const messages = checkMessages(o.messages);
    const body: Record<string, JsonValue> = {
      model: optionalString(NAME, o, "model") ?? env.openai.model ?? OPENAI_DEFAULT_MODEL,
      messages,
    };
    const maxTokens = o.max_tokens;
    if (maxTokens !== undefined && maxTokens !== null) {
      const n = isNumber(maxTokens) ? toNumber(maxTokens) : NaN;
      if (!Number.isInteger(n) || n < 0 || n > 65535) {
        throw invalidInput(NAME, `\`max_tokens\` must be an integer from 0 to 65535`);
      }
      body.max_tokens = maxTokens;
    }
    const temperature = o.temperature;
    if (temperature !== undefined && temperature !== null) {
      if (!isNumber(temperature)) {
        throw invalidInput(NAME, `\`temperature\` must be a number, got ${typeName(temperature)}`);
      }
      body.temperature = temperature;
    }
    const endpoint = boundAnswers(
      resolveEndpoint(NAME, {
        api_key: optionalString(NAME, o, "api_key"),
        base_url: optionalString(NAME, o, "base_url"),
      }, env.openai),
      env.maxOutputBytes,
    );
    try {
      const answer = await postChat(endpoint, body, ctx.signal);
      const choices = Array.isArray(answer.choices) ? answer.choices : [];
      const content = choices[0]?.message?.content;
      return success({ response: typeof content === "string" ? content : "" });
    } catch (e) {
      return failureFromError(NAME, e, endpoint, ctx.stepId);
    }
  },
};

/** 0.8's `Vec<ChatMessage>`: role system/user/assistant, content a string; other keys ignored. */
function checkMessages(v: JsonValue | undefined): JsonValue[] {
  if (v === undefined) throw invalidInput(NAME, "missing field `messages`");
  if (!Array.isArray(v)) {
    throw invalidInput(NAME, `\`messages\` must be an array, got ${typeName(v)}`);
  }
  return v.map((m, i) => {
    if (!isJsonObject(m)) throw invalidInput(NAME, `messages[${i}] must be an object`);
    if (typeof m.role !== "string" || !ROLES.includes(m.role)) {
      throw invalidInput(
        NAME,
        `messages[${i}].role must be one of system, user, assistant, got ${JSON.stringify(m.role)}`,
      );
    }
    if (typeof m.content !== "string") {
      throw invalidInput(
        NAME,
        `messages[${i}].content must be a string, got ${typeName(m.content)}`,
      );
    }
    return { role: m.role, content: m.content };
  });
}
