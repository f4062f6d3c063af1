/**
 * `/eval` (stepflow 0.8 §4): `{flow_id, input}` → `{result: FlowResult, run_id}`. Runs a stored
 * flow blob as a nested run; a nested failure is inside `result` (the step succeeds). `run_id`
 * is the parent run's id, as in 0.8.
 * @module
 */
import { success } from "../../core/flow_result.ts";
import { describeError, PluginError } from "../../errors.ts";
import type { JsonValue } from "../../json/exact_json.ts";
import type { BuiltinComponent } from "./component.ts";
import { objectInput, requireField, requireString } from "./_input.ts";

const NAME = "/eval";

/** The `/eval` component. */
export const evalComponent: BuiltinComponent = {
  info: {
    component: NAME,
    description: "Run a stored flow (by flow_id) on an input as a nested run",
    input_schema: {
      type: "object",
      properties: { flow_id: { type: "string" }, input: {} },
      required: ["flow_id", "input"],
    },
    output_schema: {
      type: "object",
      properties: { result: {}, run_id: { type: "string" } },
      required: ["result", "run_id"],
    },
  },
  async execute(input, ctx) {
    const o = objectInput(NAME, input);
    const flowId = requireString(NAME, o, "flow_id");
    const nestedInput = requireField(NAME, o, "input");
    let result;
    try {
      result = await ctx.engine.evaluateFlow(flowId, nestedInput, {
        signal: ctx.signal,
        stepId: ctx.stepId,
      });
    } catch (e) {
      throw new PluginError("Failed to evaluate flow", [describeError(e)], { cause: e });
    }
    return success({ result: result as unknown as JsonValue, run_id: ctx.runId });
  },
};
