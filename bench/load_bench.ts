/**
 * Loading, validating and routing: `deno bench -A bench/load_bench.ts`.
 * A 1000-step YAML flow (~60 KB) parsed with positions, the same as JSON, its validation, and
 * Router.resolve per step (cached unconditional routes vs. conditional routes).
 * @module
 */
import { loadFlowText } from "../src/flow/load.ts";
import { validateFlow } from "../src/config/preflight.ts";
import { Router } from "../src/config/router.ts";
import type { Config } from "../src/config/model.ts";
import { FLOW_SCHEMA_URL } from "../src/flow/model.ts";

const N = 1000;
let yaml = `schema: ${FLOW_SCHEMA_URL}\nname: big\ndescription: ${N} steps\nsteps:\n`;
const steps = [];
for (let i = 0; i < N; i++) {
  const prev = i === 0
    ? "{ $from: { workflow: input }, path: prompt }"
    : `{ $from: { step: s${i - 1} }, path: "$.messages[0].content" }`;
  yaml += `  - id: s${i}\n    component: /builtin/create_messages\n    input:\n` +
    `      user_prompt: ${prev}\n      n: ${i}.0\n`;
  steps.push({
    id: `s${i}`,
    component: "/builtin/create_messages",
    input: {
      user_prompt: i === 0
        ? { $from: { workflow: "input" }, path: "prompt" }
        : { $from: { step: `s${i - 1}` }, path: "$.messages[0].content" },
    },
  });
}
yaml += `output: { $from: { step: s${N - 1} } }\n`;
const json = JSON.stringify({
  schema: FLOW_SCHEMA_URL,
  name: "big",
  description: "d",
  steps,
  output: { $from: { step: `s${N - 1}` } },
});
const loaded = loadFlowText(yaml, { file: "big.yaml" });

const plugins = { builtin: { type: "builtin" }, ai: { type: "builtin" } } as Config["plugins"];
const plain = new Router({ plugins, routes: { "/builtin/{*component}": [{ plugin: "builtin" }] } });
const conditional = new Router({
  plugins,
  routes: {
    "/ai/{component}": [
      { plugin: "ai", conditions: [{ path: "$.model", value: "gpt-4" }] },
      { plugin: "builtin" },
    ],
  },
});

Deno.bench(`loadFlowText() YAML, ${N} steps`, () => {
  loadFlowText(yaml, { file: "big.yaml" });
});

Deno.bench(`loadFlowText() JSON, ${N} steps`, () => {
  loadFlowText(json, { file: "big.json" });
});

Deno.bench(`validateFlow(), ${N} steps`, () => {
  validateFlow(loaded);
});

Deno.bench("Router.resolve() unconditional (cached)", () => {
  plain.resolve("/builtin/create_messages", {});
});

Deno.bench("Router.resolve() conditional", () => {
  conditional.resolve("/ai/chat", { model: "x" });
});
