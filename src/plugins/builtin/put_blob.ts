/**
 * `/put_blob` (stepflow 0.8 §4): `{data, blob_type: "data" | "flow"}` → `{blob_id}`. A `flow` blob
 * must be a valid flow; it is stored normalised.
 * @module
 */
import { success } from "../../core/flow_result.ts";
import { describeError, PluginError } from "../../errors.ts";
import type { BuiltinComponent } from "./component.ts";
import { invalidInput, objectInput, requireField, requireString } from "./_input.ts";

const NAME = "/put_blob";

/** The `/put_blob` component. */
export const putBlob: BuiltinComponent = {
  info: {
    component: NAME,
    description: "Store JSON data (or a flow) as a content-addressed blob",
    input_schema: {
      type: "object",
      properties: { data: {}, blob_type: { type: "string", enum: ["data", "flow"] } },
      required: ["data", "blob_type"],
    },
    output_schema: {
      type: "object",
      properties: { blob_id: { type: "string" } },
      required: ["blob_id"],
    },
  },
  async execute(input, ctx) {
    const o = objectInput(NAME, input);
    const data = requireField(NAME, o, "data");
    const type = requireString(NAME, o, "blob_type");
    if (type !== "data" && type !== "flow") {
      throw invalidInput(
        NAME,
        `\`blob_type\` must be "data" or "flow", got ${JSON.stringify(type)}`,
      );
    }
    let id: string;
    try {
      id = await ctx.engine.putBlob(data, type);
    } catch (e) {
      // the engine rejects flow data that is not a flow: that is this step's input
      if (type === "flow" && /^Invalid flow blob/.test(describeError(e))) {
        throw invalidInput(NAME, `\`data\` is not a valid flow: ${describeError(e)}`);
      }
      throw new PluginError("Failed to put blob", [describeError(e)], { cause: e });
    }
    return success({ blob_id: id });
  },
};
