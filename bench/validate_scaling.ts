/**
 * How validating a flow scales with its steps (issue: a 50,000-step flow, bounded by the
 * service's 10 MiB body limit, blocked the service for ~2 s): `deno run -A
 * bench/validate_scaling.ts [N...]`. For each size, the phases of `POST /api/v1/flows`
 * (src/server/flows.ts): JSON.parse of the body, parseFlowValue (shape), validateFlow
 * (diagnostics: references, ids, routes), and the flow id (serializing for the hash). Each
 * figure is the best of 3 runs, ms. Shapes: `chain` (each step reads the one before), `fan`
 * (each step reads the input and step 0), `wide` (the output reads every step), `default` (a
 * chain whose steps' `onError.defaultValue` reads step 0). `SHAPES=chain,fan` picks.
 * @module
 */
import { parseFlowValue } from "../src/flow/load.ts";
import { validateFlow } from "../src/config/preflight.ts";
import type { Config } from "../src/config/model.ts";
import { FLOW_SCHEMA_URL } from "../src/flow/model.ts";
import { flowBlob } from "../src/execution/flow_id.ts";
import { parseJson } from "../src/json/exact_json.ts";

const config = {
  plugins: { builtin: { type: "builtin" } },
  routes: { "/builtin/{*component}": [{ plugin: "builtin" }] },
} as unknown as Config;

function flowText(n: number, shape: string): string {
  const steps = [];
  for (let i = 0; i < n; i++) {
    const from = (shape === "chain" || shape === "default") && i > 0
      ? { $from: { step: `s${i - 1}` }, path: "$.messages[0].content" }
      : shape === "fan" && i > 0
      ? { $from: { step: "s0" }, path: "$.messages[0].content" }
      : { $from: { workflow: "input" }, path: "prompt" };
    const step: Record<string, unknown> = {
      id: `s${i}`,
      component: "/builtin/create_messages",
      input: { user_prompt: from, system_instructions: { $from: { workflow: "input" } } },
    };
    // a default that reads the first step (checked for being ordered: found at the end of the chain)
    if (shape === "default" && i > 1) {
      step.onError = { action: "useDefault", defaultValue: { $from: { step: "s0" } } };
    }
    steps.push(step);
  }
  const output = shape === "wide"
    ? Object.fromEntries(steps.map((s) => [s.id, { $from: { step: s.id } }]))
    : { $from: { step: `s${n - 1}` } };
  return JSON.stringify({ schema: FLOW_SCHEMA_URL, name: "big", steps, output });
}

function best(fn: () => void): number {
  let min = Infinity;
  for (let i = 0; i < 3; i++) {
    const t = performance.now();
    fn();
    min = Math.min(min, performance.now() - t);
  }
  return min;
}

const sizes = Deno.args.length > 0 ? Deno.args.map(Number) : [5_000, 10_000, 20_000, 50_000];
console.log("shape  steps   MB  parse  shape  validate  flowId   (ms, best of 3)");
const shapes = (Deno.env.get("SHAPES") ?? "chain,fan,wide,default").split(",");
for (const shape of shapes) {
  for (const n of sizes) {
    const text = flowText(n, shape);
    const value = parseJson(text);
    const loaded = parseFlowValue(value);
    const parse = best(() => parseJson(text));
    const shapeMs = best(() => parseFlowValue(value));
    const validate = best(() => validateFlow(loaded, config));
    const id = best(() => flowBlob({ ...loaded.flow }));
    console.log(
      `${shape.padEnd(6)} ${String(n).padStart(6)} ${(text.length / 1e6).toFixed(1).padStart(4)} ` +
        `${parse.toFixed(0).padStart(6)} ${shapeMs.toFixed(0).padStart(6)} ${
          validate.toFixed(0).padStart(9)
        } ${id.toFixed(0).padStart(7)}`,
    );
  }
}
