/**
 * The flow graph model: nodes, edges (data, skipIf, onSkip, onError defaults), nested flows,
 * the required set, and what an invalid flow still draws.
 * @module
 */
import { assert, assertEquals, assertStrictEquals } from "../_assert.ts";
import { loadFlowText } from "../../src/flow/load.ts";
import { buildFlowGraph, type FlowGraph } from "../../src/visualize/graph.ts";

const HEAD = "schema: https://stepflow.org/schemas/v1/flow.json\n";

function graphOf(yaml: string, expandNested = false): FlowGraph {
  return buildFlowGraph(loadFlowText(HEAD + yaml), { expandNested });
}

function edgesOf(g: FlowGraph): string[] {
  return g.edges.map((e) =>
    `${e.from} -> ${e.to} ${e.kind}${e.conditional ? " conditional" : ""} [${e.paths.join(", ")}]`
  );
}

Deno.test("buildFlowGraph: input, steps in file order, output; one edge per source with every path read", () => {
  const g = graphOf(`name: two
steps:
  - id: a
    component: /builtin/create_messages
    input:
      user_prompt: { $from: { workflow: input }, path: topic }
      system_instructions: { $from: { workflow: input }, path: "$.sys[0]" }
  - id: b
    component: /mock/b
    input: { whole: { $from: { step: a } }, m: { $from: { step: a }, path: messages } }
output: { $from: { step: b }, path: out }
`);
  assertEquals(g.name, "two");
  assertEquals(g.nodes.map((n) => `${n.id}:${n.kind}`), [
    "input:input",
    "step:a:step",
    "step:b:step",
    "output:output",
  ]);
  assertEquals(g.nodes[1].component, "/builtin/create_messages");
  assertEquals(edgesOf(g), [
    "input -> step:a data [$.topic, $.sys[0]]",
    "step:a -> step:b data [$, $.messages]",
    "step:b -> output data [$.out]",
  ]);
  assertEquals(g.clusters, []);
  assertEquals(g.warnings, []);
});

Deno.test("buildFlowGraph: skipIf and onSkip useDefault are conditional; onError defaults are their own edges", () => {
  const g = graphOf(`steps:
  - id: a
    component: /x
    skipIf: { $from: { workflow: input }, path: skip }
    input: { $from: { workflow: input }, path: value }
  - id: b
    component: /x
    input: { v: { $from: { step: a }, path: out, onSkip: { action: useDefault, defaultValue: 1 } } }
    onError: { action: useDefault, defaultValue: { $from: { step: a }, path: fallback } }
  - id: c
    component: /x
    input: { $from: { step: a }, onSkip: { action: skip } }
    onError: { action: retry }
output: [{ $from: { step: b } }, { $from: { step: c } }]
`);
  assertEquals(edgesOf(g), [
    "input -> step:a data [$.value]",
    "input -> step:a skip_if conditional [$.skip]",
    "step:a -> step:b data conditional [$.out]",
    "step:a -> step:b error_default [$.fallback]",
    "step:a -> step:c data [$]",
    "step:b -> output data [$]",
    "step:c -> output data [$]",
  ]);
  const [, a, b, c] = g.nodes;
  assertStrictEquals(a.skipIf, true);
  assertStrictEquals(b.onError, "useDefault");
  assertStrictEquals(c.onError, "retry");
});

Deno.test("buildFlowGraph: variables are one node, read as $.<name>", () => {
  const g = graphOf(`variables: { type: object, properties: { model: { type: string } } }
steps:
  - id: a
    component: /x
    input: { m: { $from: { variable: model } }, t: { $from: { variable: cfg, default: {} }, path: t } }
output: { $from: { step: a } }
`);
  assertEquals(g.nodes.map((n) => n.id), ["input", "variables", "step:a", "output"]);
  assertEquals(edgesOf(g)[0], "variables -> step:a data [$.model, $.cfg.t]");
});

Deno.test("buildFlowGraph: the required set; mustExecute steps run, unread steps never do", () => {
  const g = graphOf(`steps:
  - { id: a, component: /x }
  - { id: b, component: /x, input: { $from: { step: a } } }
  - { id: side, component: /x, mustExecute: true, input: { $from: { step: a } } }
  - { id: unused, component: /x, input: { $from: { step: b } } }
output: { $from: { step: b } }
`);
  const by = Object.fromEntries(g.nodes.map((n) => [n.id, n]));
  assertStrictEquals(by["step:a"].required, true);
  assertStrictEquals(by["step:b"].required, true);
  assertStrictEquals(by["step:side"].required, true);
  assertStrictEquals(by["step:side"].mustExecute, true);
  assertStrictEquals(by["step:unused"].required, false);
});

Deno.test("buildFlowGraph: a $literal nested flow of /map is one node with its name, linked to its step", () => {
  const g = graphOf(`steps:
  - id: many
    component: /builtin/map
    input:
      items: { $from: { workflow: input } }
      workflow:
        $literal:
          schema: https://stepflow.org/schemas/v1/flow.json
          name: inner
          steps:
            - { id: x, component: /y, input: { $from: { workflow: input } } }
            - { id: z, component: /y, input: { $from: { step: x } } }
          output: { $from: { step: z } }
output: { $from: { step: many } }
`);
  assertEquals(g.nodes.map((n) => `${n.id}:${n.kind}`), [
    "input:input",
    "step:many:step",
    "nested:many:$.workflow:nested_flow",
    "output:output",
  ]);
  const nested = g.nodes[2];
  assertEquals([nested.label, nested.stepCount, nested.valid], ["inner", 2, true]);
  assert(edgesOf(g).includes("nested:many:$.workflow -> step:many nested_flow [$.workflow]"));
  // the inner flow's references are not edges of the outer flow
  assert(!g.edges.some((e) => e.from.includes("step:x") || e.to.includes("step:x")));
});

Deno.test("buildFlowGraph: expandNested draws nested flows (and theirs) as clusters with prefixed ids", () => {
  const inner2 = `
                  $literal:
                    schema: https://stepflow.org/schemas/v1/flow.json
                    steps: [{ id: deep, component: /d }]
                    output: { $from: { step: deep } }`;
  const g = graphOf(
    `steps:
  - id: it
    component: /builtin/iterate
    input:
      initial_input: 1
      flow:
        $literal:
          schema: https://stepflow.org/schemas/v1/flow.json
          name: loop
          steps:
            - id: body
              component: /builtin/eval
              input:
                flow:${inner2}
          output: { $from: { step: body } }
output: { $from: { step: it } }
`,
    true,
  );
  const c1 = "nested:it:$.flow";
  const c2 = `${c1}/nested:body:$.flow`;
  assertEquals(g.clusters, [
    { id: c1, label: "loop", step: "step:it" },
    { id: c2, label: "nested flow", step: `${c1}/step:body`, parent: c1 },
  ]);
  assertEquals(g.nodes.map((n) => `${n.id}@${n.cluster ?? ""}`), [
    "input@",
    "step:it@",
    `${c1}/input@${c1}`,
    `${c1}/step:body@${c1}`,
    `${c2}/input@${c2}`,
    `${c2}/step:deep@${c2}`,
    `${c2}/output@${c2}`,
    `${c1}/output@${c1}`,
    "output@",
  ]);
  assert(edgesOf(g).includes(`${c2} -> ${c1}/step:body nested_flow [$.flow]`));
  assert(edgesOf(g).includes(`${c2}/step:deep -> ${c2}/output data [$]`));
});

Deno.test("buildFlowGraph: an invalid flow still draws: undefined steps, bad references, repeated ids, self-reference", () => {
  const g = graphOf(`steps:
  - id: a
    component: /x
    input: { ok: { $from: { workflow: input } }, bad: { $from: { nowhere: 1 } }, ghost: { $from: { step: gone } } }
  - id: a
    component: /y
    input: { $from: { step: a } }
  - id: self
    component: /z
    input: { $from: { step: self } }
  - id: bad_nested
    component: /builtin/map
    input: { workflow: { $literal: { schema: https://stepflow.org/schemas/v1/flow.json, steps: 3 } } }
output: { $from: { step: self } }
`);
  assertEquals(g.nodes.map((n) => `${n.id}:${n.kind}`), [
    "input:input",
    "step:a:step",
    "step:a#1:step",
    "step:self:step",
    "step:bad_nested:step",
    "nested:bad_nested:$.workflow:nested_flow",
    "missing:gone:missing_step",
    "output:output",
  ]);
  assertStrictEquals(g.nodes[5].valid, false);
  const edges = edgesOf(g);
  assert(edges.includes("input -> step:a data [$]"), edges.join("\n"));
  assert(edges.includes("missing:gone -> step:a data [$]"));
  assert(edges.includes("step:a -> step:a#1 data [$]"));
  assert(edges.includes("step:self -> step:self data [$]"));
  assertEquals(g.warnings, [
    "$.steps[0].input.bad.$from: invalid reference left out: $from must have one of 'workflow', 'step' or 'variable' (e.g. {$from: {step: my_step}})",
    "$.steps[0].input.ghost: step 'a' references undefined step 'gone'",
    "$.steps[2].input: step 'self' references itself: a step may only read earlier steps, and the run refuses this flow",
    "$.steps[3].input.workflow: the nested flow of step 'bad_nested' is not a valid flow",
  ]);
});

Deno.test("buildFlowGraph: a reference to a later step is a warning (before, the cycle was drawn without a word)", () => {
  const g = graphOf(`steps:
  - { id: a, component: /x, input: { $from: { step: b } } }
  - { id: b, component: /x, input: { $from: { step: a } } }
output: { $from: { step: b } }
`);
  assert(edgesOf(g).includes("step:b -> step:a data [$]"));
  assertEquals(g.warnings, [
    "$.steps[0].input: step 'a' references step 'b', defined later (steps[1]): a step may only read earlier steps, and the run refuses this flow",
  ]);
});

Deno.test("buildFlowGraph: the same flow always gives the same graph", () => {
  const yaml = `steps:
  - { id: a, component: /x, input: { $from: { workflow: input } } }
  - { id: b, component: /x, input: [{ $from: { step: a } }, { $from: { workflow: input } }] }
output: { $from: { step: b } }
`;
  assertStrictEquals(JSON.stringify(graphOf(yaml)), JSON.stringify(graphOf(yaml)));
});
