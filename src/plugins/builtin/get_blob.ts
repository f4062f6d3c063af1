/**
 * `/get_blob` (stepflow 0.8 §4): `{blob_id}` (64 hex) → `{data}`; an unknown id is an error.
 * @module
 */
import { success } from "../../core/flow_result.ts";
import { describeError, PluginError } from "../../errors.ts";
import { isBlobId } from "../../state/blob_id.ts";
import type { BuiltinComponent } from "./component.ts";
import { invalidInput, objectInput, requireString } from "./_input.ts";

const NAME = "/get_blob";

/** The `/get_blob` component. */
export const getBlob: BuiltinComponent = {
  info: {
    component: NAME,
    description: "Read a blob by its id",
    input_schema: {
      type: "object",
      properties: { blob_id: { type: "string" } },
      required: ["blob_id"],
    },
    output_schema: { type: "object", properties: { data: {} }, required: ["data"] },
  },
  async execute(input, ctx) {
    const o = objectInput(NAME, input);
    const id = requireString(NAME, o, "blob_id");
    if (!isBlobId(id)) {
      throw invalidInput(NAME, `\`blob_id\` must be 64 hex digits, got ${JSON.stringify(id)}`);
    }
    try {
      const blob = await ctx.engine.getBlob(id);
      return success({ data: blob.data });
    } catch (e) {
      throw new PluginError("Failed to get blob", [describeError(e)], { cause: e });
    }
  },
};
