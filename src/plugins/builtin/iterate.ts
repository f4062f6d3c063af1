/**
 * `/iterate` (stepflow 0.8 §4): `{flow: Flow, initial_input, max_iterations? = 1000}`. Runs the
 * flow, feeding `next` back as input, until its result has `result`
 * (→ `{result, iterations, terminated: false}`) or the limit is reached
 * (→ `{result: <last input>, iterations, terminated: true}`). A nested failure is returned as
 * is; a skipped run or a result with neither key is `failed` with code 400.
 * @module
 */
import { failed, success } from "../../core/flow_result.ts";
import { describeError, PluginError } from "../../errors.ts";
import { isJsonObject, type JsonValue } from "../../json/exact_json.ts";
import type { BuiltinComponent } from "./component.ts";
import { invalidInput, objectInput, optionalUint, requireField } from "./_input.ts";

const NAME = "/iterate";

/** Default `max_iterations` (0.8). */
export const DEFAULT_MAX_ITERATIONS = 1000;

/** The `/iterate` component. */
export const iterateComponent: BuiltinComponent = {
  info: {
    component: NAME,
    description:
      "Run a flow repeatedly: its `next` output feeds the next run until it returns `result`",
    input_schema: {
      type: "object",
      properties: {
        flow: { type: "object" },
        initial_input: {},
        max_iterations: { type: ["integer", "null"], minimum: 0 },
      },
      required: ["flow", "initial_input"],
    },
    output_schema: {
      type: "object",
      properties: { result: {}, iterations: { type: "integer" }, terminated: { type: "boolean" } },
    },
  },
  async execute(input, ctx) {
    const o = objectInput(NAME, input);
    const flow = requireField(NAME, o, "flow");
    let current: JsonValue = requireField(NAME, o, "initial_input");
    const max = optionalUint(NAME, o, "max_iterations") ?? DEFAULT_MAX_ITERATIONS;
    let flowId: string;
    try {
      flowId = await ctx.engine.putBlob(flow, "flow");
    } catch (e) {
      throw invalidInput(NAME, `\`flow\` is not a valid flow: ${describeError(e)}`);
    }
    let iterations = 0;
    while (iterations < max) {
      let r;
      try {
        r = await ctx.engine.evaluateFlow(flowId, current, {
          signal: ctx.signal,
          stepId: ctx.stepId,
          item: iterations,
        });
      } catch (e) {
        throw new PluginError("Failed to evaluate flow", [describeError(e)], { cause: e });
      }
      iterations++;
      if (r.outcome === "failed") return r;
      if (r.outcome === "skipped") {
        return failed(400, "Workflow cannot be skipped during iteration");
      }
      const v = r.result;
      if (isJsonObject(v) && Object.hasOwn(v, "result")) {
        return success({ result: v.result, iterations, terminated: false });
      }
      if (isJsonObject(v) && Object.hasOwn(v, "next")) {
        current = v.next;
        continue;
      }
      return failed(400, "Workflow result must contain either 'result' or 'next' field");
    }
    return success({ result: current, iterations, terminated: true });
  },
};
