/**
 * Flow fields whose value the engine ignores or cannot use as written, found by the wave-6 fault
 * hunt: a schema field that is not a JSON Schema (`variables: 7`: before, only "the flow has no
 * variables schema"), and a constant `skipIf` (`skipIf: "$.skip"` is a truthy string, so the
 * step was always skipped without a word). Both are warnings with where and what to write.
 * @module
 */
import { assertEquals, assertStringIncludes } from "../_assert.ts";
import { loadFlowText } from "../../src/flow/load.ts";
import { FLOW_SCHEMA_URL } from "../../src/flow/model.ts";
import { validateFlow } from "../../src/config/preflight.ts";

function diagnostics(body: string, code: string) {
  const loaded = loadFlowText(`schema: ${FLOW_SCHEMA_URL}\nname: t\ndescription: d\n${body}`, {
    file: "t.yaml",
  });
  return validateFlow(loaded).filter((d) => d.code === code);
}

Deno.test("validate: schema fields that are not a JSON Schema are warnings at their key", () => {
  const found = diagnostics(
    `inputSchema: "nope"
outputSchema: 3
variables: [a]
steps:
  - id: a
    component: /builtin/create_messages
    inputSchema: 1
    outputSchema: { type: object }
    input: { user_prompt: hi }
output: { $from: { step: a } }
`,
    "invalid_schema",
  );
  assertEquals(found.map((d) => [d.level, d.path, d.position?.line]), [
    ["warning", "$.inputSchema", 4],
    ["warning", "$.outputSchema", 5],
    ["warning", "$.variables", 6],
    ["warning", "$.steps[0].inputSchema", 10],
  ]);
  assertStringIncludes(found[2].message, "'variables' must be a JSON Schema");
  assertStringIncludes(found[2].message, "got a list; it is ignored");
});

Deno.test("validate: a constant skipIf is a warning saying whether the step always or never skips", () => {
  const found = diagnostics(
    `steps:
  - id: a
    component: /builtin/create_messages
    skipIf: "$.skip"
    input: { user_prompt: hi }
  - id: b
    component: /builtin/create_messages
    skipIf: 0
    input: { user_prompt: hi }
  - id: c
    component: /builtin/create_messages
    skipIf: { $from: { workflow: input }, path: skip }
    input: { user_prompt: hi }
output: [{ $from: { step: a } }, { $from: { step: b } }, { $from: { step: c } }]
`,
    "constant_skip_if",
  );
  assertEquals(found.map((d) => d.path), ["$.steps[0].skipIf", "$.steps[1].skipIf"]);
  assertStringIncludes(found[0].message, "the step is always skipped");
  assertStringIncludes(found[0].hint ?? "", 'skipIf: {$from: {workflow: input}, path: "$.skip"}');
  assertStringIncludes(found[1].message, "the step is never skipped");
});

Deno.test("validate: '..' in a reference path is a warning (no recursive descent; 0.8 reads '$.a')", () => {
  const found = diagnostics(
    `steps: []
output:
  a: { $from: { workflow: input }, path: "$..name" }
  b: { $from: { workflow: input }, path: "$['a..b']" }
`,
    "path_dots",
  );
  assertEquals(found.map((d) => [d.path, d.position?.line]), [["$.output.a.path", 6]]);
  assertStringIncludes(found[0].message, "there is no recursive descent here");
  assertStringIncludes(found[0].hint ?? "", "'$.name'");
});

Deno.test("validate: every invalid reference of a template is reported, not only the first", () => {
  // before: one fatal per template (`output` here), so each fix showed the next one
  const found = diagnostics(
    `steps: []
output:
  a: { $from: { workflow: input }, path: "$.arr[-1]" }
  ok: { $from: { workflow: input }, path: "$.a" }
  b: { $from: { workflow: input }, path: 5 }
  c: { $from: "input" }
`,
    "invalid_reference",
  );
  assertEquals(found.map((d) => d.path), [
    "$.output.a.path",
    "$.output.b.path",
    "$.output.c.$from",
  ]);
});
