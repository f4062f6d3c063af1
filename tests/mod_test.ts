/**
 * Uses the library the way an embedding program would: only `mod.ts`.
 * @module
 */
import { assertStrictEquals, assertStringIncludes, REPO_ROOT } from "./_assert.ts";
import {
  buildFlowGraph,
  configFromValue,
  Engine,
  loadFlow,
  renderFlow,
  renderSvg,
  runFlow,
  statusClass,
  stepClass,
  stringifyJson,
} from "../mod.ts";

const FLOW = `
schema: https://stepflow.org/schemas/v1/flow.json
name: embed
steps:
  - id: m
    component: /builtin/create_messages
    input: { user_prompt: { $from: { workflow: input }, path: topic } }
output: { $from: { step: m }, path: "$.messages[0].content" }
`;

Deno.test("mod.ts: load a flow from text, build an engine from a config, run it", async () => {
  const flow = await loadFlow(FLOW, { text: true });
  const config = configFromValue({
    plugins: { builtin: { type: "builtin" } },
    routes: { "/builtin/{*component}": [{ plugin: "builtin" }] },
  });
  const engine = await Engine.create(config);
  try {
    const r1 = await engine.run(flow, { topic: "one" });
    const r2 = await engine.run(flow, { topic: "two" });
    assertStrictEquals(stringifyJson(r1), '{"outcome":"success","result":"one"}');
    assertStrictEquals(stringifyJson(r2), '{"outcome":"success","result":"two"}');
  } finally {
    await engine.close();
  }
  // One call, with 0.8's default config (no routes): the step cannot be routed.
  const r = await runFlow(flow, { topic: "x" });
  assertStrictEquals(r.outcome, "failed");
});

Deno.test("mod.ts: runFlow(path) finds the config next to the flow, as stepflow run does", async () => {
  const r = await runFlow(`${REPO_ROOT}/examples/greet/flow.yaml`, { who: "Ada", skip: false });
  assertStrictEquals(
    stringifyJson(r),
    '{"outcome":"success","result":{"messages":[{"role":"user","content":"Ada"}],"extra":"Hello, Ada!"}}',
  );
  // a loaded flow from a file finds it too; a config path is read
  const loaded = await loadFlow(`${REPO_ROOT}/examples/greet/flow.yaml`);
  const r2 = await runFlow(loaded, { who: "Bob", skip: false });
  assertStringIncludes(stringifyJson(r2), '"extra":"fallback"');
  const r3 = await runFlow(loaded, { who: "Ada", skip: true }, {
    config: `${REPO_ROOT}/examples/greet/stepflow-config.yml`,
  });
  assertStringIncludes(stringifyJson(r3), '"extra":"none"');
  // a config path without the mock plugin: the step cannot be routed
  const r4 = await runFlow(loaded, { who: "Ada", skip: false }, {
    config: `${REPO_ROOT}/examples/hello/stepflow-config.yml`,
  });
  assertStrictEquals(r4.outcome, "failed");
});

Deno.test("mod.ts: draw a flow as Mermaid, DOT or SVG, with a status class per step for a UI", async () => {
  const flow = await loadFlow(FLOW, { text: true });
  assertStrictEquals(
    renderFlow(flow, { format: "mermaid" }).split("\n").slice(4, 7).join("\n"),
    '  n_input(["input"])\n  n_step_m["m<br>/builtin/create_messages"]\n  n_output(["output"])',
  );
  const svg = renderSvg(buildFlowGraph(flow), { stepStatus: { m: "completed" } });
  assertStrictEquals(
    svg.includes(`class="node step ${stepClass("m")} ${statusClass("completed")}"`),
    true,
  );
});
