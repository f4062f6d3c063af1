import { assert, assertEquals, assertStrictEquals, assertStringIncludes } from "../_assert.ts";
import { flow, mockComponent, runOnce, testConfig } from "./_engine_helpers.ts";
import { Engine } from "../../src/execution/engine.ts";
import { runStep } from "../../src/execution/run_step.ts";
import { type FlowResult, success } from "../../src/flow/flow_result.ts";
import { parseJson, stringifyJson } from "../../src/json/exact_json.ts";
import { blobId } from "../../src/state/blob_id.ts";

const failing = mockComponent([[{ x: 1 }, {
  outcome: "failed",
  error: { code: 8, message: "bad" },
}]]);
const echo = mockComponent([
  [{ v: "a" }, { outcome: "success", result: { out: "A" } }],
  [{ v: null }, { outcome: "success", result: { out: "null" } }],
]);

Deno.test("Engine.run() runs a chain of builtin steps and resolves the output", async () => {
  const f = flow(`
steps:
  - id: m
    component: /builtin/create_messages
    input: { user_prompt: { $from: { workflow: input }, path: q }, system_instructions: sys }
  - id: b
    component: /builtin/put_blob
    input: { data: { $from: { step: m }, path: messages }, blob_type: data }
output:
  first: { $from: { step: m }, path: "$.messages[1].content" }
  blob: { $from: { step: b }, path: blob_id }
`);
  const r = await runOnce(f, { q: "hi" });
  assertEquals(r, {
    outcome: "success",
    result: {
      first: "hi",
      blob: blobId([{ role: "system", content: "sys" }, { role: "user", content: "hi" }]),
    },
  });
});

Deno.test("Engine.run() never runs steps outside the required set", async () => {
  // `unused` would fail (no behavior for its input) if it ran.
  const f = flow(`
steps:
  - id: unused
    component: /mock/echo
    input: { v: never }
  - id: used
    component: /mock/echo
    input: { v: a }
output: { $from: { step: used }, path: out }
`);
  assertEquals(await runOnce(f, {}, { "/echo": echo }), success("A"));
});

Deno.test("Engine.run() returns the failure of a mustExecute step before resolving output", async () => {
  const f = flow(`
steps:
  - id: side
    component: /mock/failing
    mustExecute: true
    input: { x: 1 }
output: done
`);
  assertEquals(await runOnce(f, {}, { "/failing": failing }), {
    outcome: "failed",
    error: { code: 8, message: "bad" },
  });
});

Deno.test("Engine.run() skips on a truthy skipIf (null is truthy) and propagates the skip", async () => {
  const f = flow(`
steps:
  - id: s
    component: /mock/echo
    skipIf: { $from: { workflow: input }, path: skip }
    input: { v: a }
  - id: t
    component: /mock/echo
    input: { v: { $from: { step: s }, path: out } }
output:
  t: { $from: { step: t }, path: out }
`);
  const comps = { "/echo": echo };
  assertEquals(await runOnce(f, { skip: null }, comps), { outcome: "skipped" });
  // skip: 0 is falsy: s runs and t has no behavior for {v: "A"}, which aborts the run.
  assertStrictEquals((await runOnce(f, { skip: 0 }, comps)).outcome, "failed");
  const g = flow(`
steps:
  - id: s
    component: /mock/echo
    skipIf: { $from: { workflow: input }, path: skip }
    input: { v: a }
output:
  s: { $from: { step: s }, path: out, onSkip: { action: useDefault, defaultValue: dflt } }
`);
  assertEquals(await runOnce(g, { skip: true }, comps), success({ s: "dflt" }));
  assertEquals(await runOnce(g, { skip: "" }, comps), success({ s: "A" }));
});

Deno.test("Engine.run() aborts with 500 naming the dependent step when its input references a failed step", async () => {
  const f = flow(`
steps:
  - id: a
    component: /mock/failing
    input: { x: 1 }
  - id: b
    component: /builtin/create_messages
    input: { user_prompt: { $from: { step: a } } }
output: { $from: { step: b } }
`);
  assertEquals(await runOnce(f, {}, { "/failing": failing }), {
    outcome: "failed",
    error: {
      code: 500,
      message: 'step "b" failed',
      data: {
        stack: [{
          error: 'step "b" failed',
          attachments: ["Error code: 8", "Input resolution failed: bad"],
        }],
      },
    },
  });
});

Deno.test("Engine.run() applies onError skip, useDefault (template) and fail", async () => {
  const f = (onError: string) =>
    flow(`
steps:
  - id: a
    component: /mock/failing
    onError: ${onError}
    input: { x: 1 }
output: { $from: { step: a }, onSkip: { action: useDefault, defaultValue: was-skipped } }
`);
  const comps = { "/failing": failing };
  assertEquals(await runOnce(f("{ action: skip }"), {}, comps), success("was-skipped"));
  assertEquals(await runOnce(f("{ action: useDefault }"), {}, comps), success(null));
  assertEquals(
    await runOnce(
      f("{ action: useDefault, defaultValue: { v: { $from: { workflow: input } } } }"),
      7,
      comps,
    ),
    success({ v: 7 }),
  );
  assertEquals(await runOnce(f("{ action: fail }"), {}, comps), {
    outcome: "failed",
    error: { code: 8, message: "bad" },
  });
});

Deno.test("Engine.run() reports a missing path naming the step, the path and where the reference is", async () => {
  const f = flow(`
steps:
  - id: greet
    component: /builtin/create_messages
    input: { user_prompt: { $from: { workflow: input }, path: "$.user.name" } }
output: { $from: { step: greet } }
`);
  const r = await runOnce(f, { user: {} });
  assertEquals(r, {
    outcome: "failed",
    error: {
      code: 500,
      message: "failed to resolve input for step 'greet'",
      data: {
        stack: [
          {
            error: "failed to resolve input for step 'greet'",
            attachments: ["Reference at $.steps[0].input.user_prompt"],
          },
          { error: "Undefined field '$.user.name' in value" },
        ],
      },
    },
  });
});

Deno.test("Engine.run() keeps numbers exact through steps, blobs and output", async () => {
  const f = flow(`
steps:
  - id: put
    component: /builtin/put_blob
    input: { data: { $from: { workflow: input } }, blob_type: data }
  - id: get
    component: /builtin/get_blob
    input: { blob_id: { $from: { step: put }, path: blob_id } }
output:
  id: { $from: { step: put }, path: blob_id }
  back: { $from: { step: get }, path: data }
`);
  const text = '{"big":9007199254740993,"f":15.0,"e":1.50}';
  const r = await runOnce(f, parseJson(text));
  assertStrictEquals(
    stringifyJson(r),
    `{"outcome":"success","result":{"id":"${blobId(parseJson(text))}","back":${text}}}`,
  );
});

Deno.test("Engine.run() starts every ready step at once and joins them", async () => {
  const engine = await Engine.create(testConfig(), {
    stepRunner: async (step, run) => {
      if (step.id === "join") return await runStep(step, run);
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      await gate;
      inFlight--;
      return success(step.id);
    },
  });
  let inFlight = 0;
  let maxInFlight = 0;
  let open!: () => void;
  const gate = new Promise<void>((r) => open = r);
  const f = flow(`
steps:
  - { id: a, component: /x }
  - { id: b, component: /x }
  - { id: c, component: /x }
  - id: join
    component: /builtin/create_messages
    input: { user_prompt: { $from: { step: c } }, system_instructions: { $from: { step: a } } }
output: { $from: { step: join }, path: messages }
`);
  try {
    const p = engine.run(f, {});
    await new Promise((r) => setTimeout(r, 0));
    open();
    const r = await p;
    // b is not required (nothing references it), so only a and c ran.
    assertStrictEquals(maxInFlight, 2);
    assertEquals(r, success([{ role: "system", content: "a" }, { role: "user", content: "c" }]));
  } finally {
    await engine.close();
  }
});

Deno.test("Engine.run() applies merge-patch overrides and rejects unknown steps with 400", async () => {
  const f = flow(`
steps:
  - id: m
    component: /builtin/create_messages
    input: { user_prompt: original }
output: { $from: { step: m }, path: "$.messages[0].content" }
`);
  assertEquals(
    await runOnce(f, {}, {}, {
      overrides: { m: { value: { input: { user_prompt: "patched" } } } },
    }),
    success("patched"),
  );
  const r = await runOnce(f, {}, {}, { overrides: { nope: { value: {} } } });
  assert(r.outcome === "failed");
  assertStrictEquals(r.error.code, 400);
  assertStrictEquals(r.error.message, "Failed to apply overrides");
});

Deno.test("Engine.run() reads variables, inline defaults and schema defaults", async () => {
  const f = flow(`
variables:
  type: object
  properties:
    a: { type: string }
    b: { type: string, default: from-schema }
    n: { type: integer }
steps: []
output:
  a: { $from: { variable: a } }
  b: { $from: { variable: b } }
  c: { $from: { variable: c, default: inline } }
  n: { $from: { variable: n } }
`);
  assertEquals(
    await runOnce(f, {}, {}, { variables: { a: "given" } }),
    success({ a: "given", b: "from-schema", c: "inline", n: 0 }),
  );
});

Deno.test("Engine.run() turns a routing failure into a 500 naming the step", async () => {
  const f = flow(`
steps:
  - { id: s, component: /nowhere/x }
output: { $from: { step: s } }
`);
  const r: FlowResult = await runOnce(f, {});
  assert(r.outcome === "failed");
  assertStrictEquals(r.error.code, 500);
  assertStringIncludes(
    stringifyJson(r.error.data),
    "No matching rule found for component: /nowhere/x",
  );
  assertStringIncludes(stringifyJson(r.error.data), "Step: s");
});

Deno.test("Engine.run() records runs and step results in an SQLite store", async () => {
  const engine = await Engine.create(
    testConfig({}, { stateStore: { type: "sqlite", databaseUrl: "sqlite::memory:" } }),
  );
  try {
    const f = flow(`
steps:
  - id: m
    component: /builtin/create_messages
    input: { user_prompt: hi }
output: { $from: { step: m }, path: "$.messages[0].content" }
`);
    const runId = crypto.randomUUID();
    assertEquals(await engine.run(f, { n: 15.5 }, { runId }), success("hi"));
    const run = await engine.store.getRun(runId);
    assertStrictEquals(run?.status, "completed");
    assertEquals(run?.result, success("hi"));
    const steps = await engine.store.getStepResults(runId);
    assertStrictEquals(steps.length, 1);
    assertStrictEquals(steps[0].stepId, "m");
  } finally {
    await engine.close();
  }
});

Deno.test("Engine.run() stores the flow as a blob, so its metadata can be read by flow id", async () => {
  const engine = await Engine.create(testConfig());
  try {
    const f = flow(`
metadata: { owner: team-a }
steps:
  - id: m
    component: /builtin/create_messages
    metadata: { purpose: greet }
    input: { user_prompt: hi }
output: { $from: { step: m } }
`);
    const runId = crypto.randomUUID();
    await engine.run(f, {}, { runId });
    const flowId = (await engine.store.getRun(runId))!.flowId;
    assertEquals(await engine.services.getMetadata(flowId, "m"), {
      flow_metadata: { owner: "team-a" },
      step_metadata: { purpose: "greet" },
    });
    const blob = await engine.services.getBlob(flowId);
    assertStrictEquals(blob.blobType, "flow");
    assertStrictEquals(blobId(blob.data), flowId);
  } finally {
    await engine.close();
  }
});

Deno.test("Engine.run() refuses a $from naming both a step and the workflow (was: read the input)", async () => {
  const r = await runOnce(
    flow(`steps:
  - id: a
    component: /builtin/eval
    input: { expr: 1 }
output: { $from: { step: a, workflow: input } }
`),
    { in: 1 },
  );
  assertStrictEquals(r.outcome, "failed");
  assertStringIncludes(JSON.stringify(r), "$from has both 'step' and 'workflow'");
});
