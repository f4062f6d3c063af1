/**
 * `/create_messages` (stepflow 0.8 §4): `{user_prompt, system_instructions?}` →
 * `{messages: [{role: "system", content}?, {role: "user", content}]}`.
 * @module
 */
import { success } from "../../core/flow_result.ts";
import type { JsonValue } from "../../json/exact_json.ts";
import type { BuiltinComponent } from "./component.ts";
import { objectInput, optionalString, requireString } from "./_input.ts";

const NAME = "/create_messages";

/** The `/create_messages` component. */
export const createMessages: BuiltinComponent = {
  info: {
    component: NAME,
    description: "Create a chat message list from a user prompt and optional system instructions",
    input_schema: {
      type: "object",
      properties: {
        system_instructions: { type: ["string", "null"] },
        user_prompt: { type: "string" },
      },
      required: ["user_prompt"],
    },
    output_schema: {
      type: "object",
      properties: { messages: { type: "array" } },
      required: ["messages"],
    },
  },
  execute(input) {
    const o = objectInput(NAME, input);
    const user = requireString(NAME, o, "user_prompt");
    const system = optionalString(NAME, o, "system_instructions");
    // array literals, not push(): a pushed-to array keeps room for 17 elements (150 bytes a
    // result, most of what a large flow of these steps keeps in memory)
    const messages: JsonValue[] = system !== undefined
      ? [{ role: "system", content: system }, { role: "user", content: user }]
      : [{ role: "user", content: user }];
    return success({ messages });
  },
};
