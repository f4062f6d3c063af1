import {
  assert,
  assertEquals,
  assertStrictEquals,
  assertStringIncludes,
  withTempDir,
} from "../../_assert.ts";
import { flow, runOnce, testConfig } from "../../execution/_engine_helpers.ts";
import { Engine } from "../../../src/execution/engine.ts";
import { stringifyJson } from "../../../src/json/exact_json.ts";

const success = (result: unknown) => ({ outcome: "success", result });

const NESTED = `
          schema: https://stepflow.org/schemas/v1/flow.json
          steps:
            - id: m
              component: /builtin/create_messages
              input: { user_prompt: { $from: { workflow: input } } }
          output: { $from: { step: m }, path: "$.messages[0].content" }`;

Deno.test("/eval runs a stored flow blob as a nested run; run_id is the parent's", async () => {
  const f = flow(`
steps:
  - id: store
    component: /builtin/put_blob
    input:
      blob_type: flow
      data:
        $literal:${NESTED}
  - id: ev
    component: /builtin/eval
    input: { flow_id: { $from: { step: store }, path: blob_id }, input: hello }
output: { $from: { step: ev } }
`);
  const runId = crypto.randomUUID();
  assertEquals(
    await runOnce(f, {}, {}, { runId }),
    success({ result: success("hello"), run_id: runId }),
  );
});

Deno.test("/map runs every item in order with max_concurrency; failures become synthetic 500s", async () => {
  const f = flow(`
steps:
  - id: map
    component: /builtin/map
    input:
      workflow:
        $literal:${NESTED}
      items: { $from: { workflow: input } }
      max_concurrency: 2
output: { $from: { step: map } }
`);
  assertEquals(
    await runOnce(f, ["a", "b", "c"]),
    success({
      results: [success("a"), success("b"), success("c")],
      successful: 3,
      failed: 0,
      skipped: 0,
    }),
  );
  const r = await runOnce(f, ["a", 5]);
  assertEquals(
    r,
    success({
      results: [success("a"), {
        outcome: "failed",
        error: { code: 500, message: "Run at index 1 has no result (status: Failed)" },
      }],
      successful: 1,
      failed: 1,
      skipped: 0,
    }),
  );
});

Deno.test("/iterate feeds next back until result, and stops at max_iterations", async () => {
  // The nested flow ends when the input is "stop"; it turns any other input into "stop".
  const f = (max: number) =>
    flow(`
steps:
  - id: it
    component: /builtin/iterate
    input:
      initial_input: go
      max_iterations: ${max}
      flow:
        $literal:
          schema: https://stepflow.org/schemas/v1/flow.json
          steps:
            - id: check
              component: /builtin/create_messages
              input: { user_prompt: { $from: { workflow: input } } }
          output:
            next: stop
            seen: { $from: { step: check }, path: "$.messages[0].content" }
output: { $from: { step: it } }
`);
  assertEquals(
    await runOnce(f(3), {}),
    success({ result: "stop", iterations: 3, terminated: true }),
  );
  const g = flow(`
steps:
  - id: it
    component: /builtin/iterate
    input:
      initial_input: 1
      flow:
        $literal:
          schema: https://stepflow.org/schemas/v1/flow.json
          output: { result: { $from: { workflow: input } } }
output: { $from: { step: it } }
`);
  assertEquals(await runOnce(g, {}), success({ result: 1, iterations: 1, terminated: false }));
});

Deno.test("/load_file resolves relative paths against the config working directory", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/data.json`, '{"a": 15.0}');
    await Deno.writeTextFile(`${dir}/data.yaml`, "b: [1, 2]\n");
    const f = flow(`
steps:
  - id: j
    component: /builtin/load_file
    input: { path: data.json }
  - id: y
    component: /builtin/load_file
    input: { path: data.yaml }
output: { j: { $from: { step: j } }, y: { $from: { step: y }, path: data } }
`);
    const cwd = Deno.cwd();
    Deno.chdir(dir);
    let r;
    try {
      r = await runOnce(f, {});
    } finally {
      Deno.chdir(cwd);
    }
    const real = await Deno.realPath(dir);
    assertStrictEquals(
      stringifyJson(r).replace(real, dir),
      `{"outcome":"success","result":{"j":{"data":{"a":15.0},"metadata":{"resolved_path":"${dir}/data.json","size_bytes":11,"format":"json"}},"y":{"b":[1,2]}}}`,
    );
  });
});

Deno.test("builtins reject invalid input with a 500 naming the component and the field", async () => {
  const f = flow(`
steps:
  - id: m
    component: /builtin/create_messages
    input: { user_prompt: 5 }
output: { $from: { step: m } }
`);
  const r = await runOnce(f, {});
  assert(r.outcome === "failed");
  assertStrictEquals(r.error.message, 'step "m" failed');
  assertStringIncludes(
    stringifyJson(r.error.data),
    "Invalid input for /create_messages: `user_prompt` must be a string, got a number",
  );
  const g = flow(`
steps:
  - id: g
    component: /builtin/get_blob
    input: { blob_id: "${"0".repeat(64)}" }
output: { $from: { step: g } }
`);
  const r2 = await runOnce(g, {});
  assert(r2.outcome === "failed");
  assertStringIncludes(stringifyJson(r2.error.data), `Blob not found: ${"0".repeat(64)}`);
});

Deno.test("/eval of a flow that evaluates itself stops at the nesting limit instead of recursing", async () => {
  // The flow evaluates the flow whose id it is given, passing its own input on.
  const f = flow(`
steps:
  - id: again
    component: /builtin/eval
    input: { flow_id: { $from: { workflow: input }, path: id }, input: { $from: { workflow: input } } }
output: { $from: { step: again }, path: result }
`);
  const engine = await Engine.create(testConfig());
  try {
    const id = engine.storeFlow(f.flow);
    let r = await engine.run(f, { id });
    let depth = 0;
    while (r.outcome === "success" && depth < 100) {
      r = (r.result as unknown as { outcome: string }) as typeof r;
      depth++;
    }
    assert(r.outcome === "failed", JSON.stringify(r).slice(0, 300));
    assertStringIncludes(r.error.message, "Nested flows are more than 64 deep");
    assertStrictEquals(depth, 65);
  } finally {
    await engine.close();
  }
});

Deno.test("/map: a max_concurrency of 0 computed at run time is invalid input, not 'no limit'", async () => {
  const f = flow(`
steps:
  - id: m
    component: /builtin/map
    input:
      workflow: { $literal: { schema: https://stepflow.org/schemas/v1/flow.json, output: 1 } }
      items: [1, 2]
      max_concurrency: { $from: { workflow: input }, path: n }
output: { $from: { step: m } }
`);
  const r = await runOnce(f, { n: 0 });
  assert(r.outcome === "failed", JSON.stringify(r));
  assertStringIncludes(JSON.stringify(r.error), "max_concurrency` must be at least 1");
});
