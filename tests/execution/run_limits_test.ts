/**
 * Issue 10, item 2: runaway recursion and fan-out. The failing input was a flow that maps its
 * own definition (from the input) over two items: it grew to 3.8 GB and died of V8's
 * out-of-memory (exit 133, no result). A top-level run and all its nested runs now share a
 * budget of nested runs (`maxNestedRuns`) and steps (`maxRunSteps`); going over stops the whole
 * run with RUN_LIMIT (508).
 * @module
 */
import { assert, assertEquals, assertStringIncludes, runCli, withTempDir } from "../_assert.ts";
import { Engine } from "../../src/execution/engine.ts";
import { RUN_LIMIT } from "../../src/core/error_codes.ts";
import { flow, testConfig } from "./_engine_helpers.ts";
import type { JsonValue } from "../../src/json/exact_json.ts";

/** A flow that maps itself (its definition comes in the input) over two items. */
const FORK_BOMB = `name: forkbomb
description: maps its own definition over two items, without end
steps:
  - id: again
    component: /builtin/map
    input:
      workflow: { $from: { workflow: input }, path: flow }
      items:
        - { flow: { $from: { workflow: input }, path: flow } }
        - { flow: { $from: { workflow: input }, path: flow } }
output: { $from: { step: again } }
`;

function forkBombInput(): { flow: JsonValue; input: JsonValue } {
  const f = flow(FORK_BOMB);
  return { flow: f.raw as JsonValue, input: { flow: f.raw as JsonValue } };
}

Deno.test("a flow that maps itself without end stops at maxNestedRuns with RUN_LIMIT (508)", async () => {
  const engine = await Engine.create(testConfig({}, { maxNestedRuns: 300 }));
  try {
    const { input } = forkBombInput();
    const r = await engine.run(flow(FORK_BOMB), input);
    assert(r.outcome === "failed", JSON.stringify(r).slice(0, 300));
    assertEquals(r.error.code, RUN_LIMIT);
    assertEquals(r.error.data, { kind: "RUN_LIMIT", limit: "maxNestedRuns", value: 300 });
    assertStringIncludes(r.error.message, "more than 300 nested runs");
  } finally {
    await engine.close();
  }
});

Deno.test("maxRunSteps counts the steps of nested runs; RunOptions override the config", async () => {
  const engine = await Engine.create(testConfig());
  try {
    const { input } = forkBombInput();
    const r = await engine.run(flow(FORK_BOMB), input, { maxRunSteps: 150 });
    assert(r.outcome === "failed");
    assertEquals(r.error.code, RUN_LIMIT);
    assertEquals(r.error.data, { kind: "RUN_LIMIT", limit: "maxRunSteps", value: 150 });
    // an iterate of 50 rounds (51 steps with its own) fits in 60 steps, not in 40
    const loop = flow(`steps:
  - id: loop
    component: /builtin/iterate
    input:
      initial_input: 0
      max_iterations: 50
      flow:
        $literal:
          schema: https://stepflow.org/schemas/v1/flow.json
          steps:
            - { id: s, component: /builtin/create_messages, input: { user_prompt: x } }
          output: { next: { $from: { step: s } } }
output: { $from: { step: loop }, path: iterations }
`);
    assertEquals(await engine.run(loop, {}, { maxRunSteps: 60 }), {
      outcome: "success",
      result: 50,
    });
    const over = await engine.run(loop, {}, { maxRunSteps: 40 });
    assert(over.outcome === "failed");
    assertEquals(over.error.code, RUN_LIMIT);
  } finally {
    await engine.close();
  }
});

Deno.test("the limits are per top-level run: two runs each get the whole budget", async () => {
  const engine = await Engine.create(testConfig({}, { maxNestedRuns: 3 }));
  try {
    const f = flow(`steps:
  - id: m
    component: /builtin/map
    input:
      items: [1, 2, 3]
      workflow:
        schema: https://stepflow.org/schemas/v1/flow.json
        output: { $from: { workflow: input } }
output: { $from: { step: m }, path: successful }
`);
    for (let i = 0; i < 2; i++) {
      assertEquals(await engine.run(f, {}), { outcome: "success", result: 3 });
    }
  } finally {
    await engine.close();
  }
});

Deno.test("stepflow run on the self-mapping flow ends with RUN_LIMIT and exit 1 (config maxNestedRuns)", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(
      `${dir}/stepflow-config.yml`,
      `plugins:\n  builtin: { type: builtin }\nroutes:\n  "/builtin/{*component}": [{ plugin: builtin }]\nmaxNestedRuns: 500\n`,
    );
    const text = `schema: https://stepflow.org/schemas/v1/flow.json\n${FORK_BOMB}`;
    await Deno.writeTextFile(`${dir}/flow.yaml`, text);
    const { input } = forkBombInput();
    await Deno.writeTextFile(`${dir}/input.json`, JSON.stringify(input));
    const r = await runCli(["run", "--flow", "flow.yaml", "--input", "input.json"], { cwd: dir });
    assertEquals(r.code, 1, r.stderr);
    assertStringIncludes(r.stdout, '"code":508');
    assertStringIncludes(r.stderr, "more than 500 nested runs");
  });
});
