/**
 * `/map` (stepflow 0.8 §4): `{workflow: Flow, items: [..], max_concurrency?}` →
 * `{results: [FlowResult], successful, failed, skipped}` in item order, run as a batch. As in
 * 0.8, a failed or skipped item appears as `{outcome: failed, error: {code: 500, message: "Run at
 * index N has no result (status: Failed)"}}` and counts as failed; `skipped` is always 0.
 * @module
 */
import { failed, type FlowResult, success } from "../../core/flow_result.ts";
import { describeError, PluginError } from "../../errors.ts";
import type { JsonValue } from "../../json/exact_json.ts";
import type { BuiltinComponent } from "./component.ts";
import { invalidInput, objectInput, optionalUint, requireField } from "./_input.ts";

const NAME = "/map";

/** The `/map` component. */
export const mapComponent: BuiltinComponent = {
  info: {
    component: NAME,
    description: "Run a flow on every item of a list (in parallel, up to max_concurrency)",
    input_schema: {
      type: "object",
      properties: {
        workflow: { type: "object" },
        items: { type: "array" },
        max_concurrency: { type: ["integer", "null"], minimum: 1 },
      },
      required: ["workflow", "items"],
    },
    output_schema: {
      type: "object",
      properties: {
        results: { type: "array" },
        successful: { type: "integer" },
        failed: { type: "integer" },
        skipped: { type: "integer" },
      },
    },
  },
  async execute(input, ctx) {
    const o = objectInput(NAME, input);
    const workflow = requireField(NAME, o, "workflow");
    const items = requireField(NAME, o, "items");
    if (!Array.isArray(items)) throw invalidInput(NAME, "`items` must be an array");
    // as validation says of a literal (src/flow/policy_diagnostics.ts); one computed at run
    // time is checked here
    const maxConcurrency = optionalUint(NAME, o, "max_concurrency", 1);
    let flowId: string;
    try {
      flowId = await ctx.engine.putBlob(workflow, "flow");
    } catch (e) {
      throw invalidInput(NAME, `\`workflow\` is not a valid flow: ${describeError(e)}`);
    }
    let outputs;
    try {
      const { batch_id } = await ctx.engine.submitBatch(flowId, items, {
        maxConcurrency,
        stepId: ctx.stepId,
      });
      outputs =
        (await ctx.engine.getBatch(batch_id, { wait: true, includeResults: true })).outputs ??
          [];
    } catch (e) {
      throw new PluginError("Failed to run batch", [describeError(e)], { cause: e });
    }
    const results: FlowResult[] = [];
    let ok = 0;
    let bad = 0;
    for (let i = 0; i < items.length; i++) {
      const out = outputs[i];
      if (out?.result !== undefined && out.status === "completed") {
        results.push(out.result);
        ok++;
      } else {
        results.push(
          failed(500, `Run at index ${i} has no result (status: ${statusName(out?.status)})`),
        );
        bad++;
      }
    }
    return success({
      results: results as unknown as JsonValue,
      successful: ok,
      failed: bad,
      skipped: 0,
    });
  },
};

function statusName(s: string | undefined): string {
  if (!s) return "Failed";
  return s[0].toUpperCase() + s.slice(1);
}
