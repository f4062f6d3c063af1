import {
  assert,
  assertEquals,
  assertStrictEquals,
  assertStringIncludes,
  REPO_ROOT,
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

Deno.test("builtin errors are failed step results naming the component, field and code", async () => {
  // extension: stepflow 0.8 aborts the run (500 with a stack); here the step fails and the run
  // reports the step's error, as for a step service's error
  const f = flow(`
steps:
  - id: m
    component: /builtin/create_messages
    input: { user_prompt: 5 }
output: { $from: { step: m } }
`);
  assertEquals(await runOnce(f, {}), {
    outcome: "failed",
    error: {
      code: -32602,
      message: "Invalid input for /create_messages: `user_prompt` must be a string, got a number",
      data: { kind: "INVALID_INPUT", component: "/create_messages" },
    },
  });
  const g = flow(`
steps:
  - id: g
    component: /builtin/get_blob
    input: { blob_id: "${"0".repeat(64)}" }
output: { $from: { step: g } }
`);
  assertEquals(await runOnce(g, {}), {
    outcome: "failed",
    error: {
      code: -32011,
      message: `Failed to get blob: Blob not found: ${"0".repeat(64)}`,
      data: { kind: "NOT_FOUND", component: "/get_blob" },
    },
  });
});

Deno.test("onError handles builtin errors: unknown blob, bad blob_id, bad input, missing file, unknown flow", async () => {
  const f = flow(`
steps:
  - id: unknown_blob
    component: /builtin/get_blob
    onError: { action: useDefault, defaultValue: { data: none } }
    input: { blob_id: "${"0".repeat(64)}" }
  - id: bad_blob_id
    component: /builtin/get_blob
    onError: { action: useDefault, defaultValue: { data: bad id } }
    input: { blob_id: not-a-blob-id }
  - id: bad_input
    component: /builtin/put_blob
    onError: { action: skip }
    input: { data: 1, blob_type: text }
  - id: bad_flow
    component: /builtin/put_blob
    onError: { action: useDefault }
    input: { data: { steps: [] }, blob_type: flow }
  - id: missing_file
    component: /builtin/load_file
    onError: { action: useDefault, defaultValue: { data: no file } }
    input: { path: /nonexistent/stepflow-test-file.json }
  - id: unknown_flow
    component: /builtin/eval
    onError: { action: useDefault, defaultValue: { result: no flow } }
    input: { flow_id: "${"1".repeat(64)}", input: {} }
output:
  unknown_blob: { $from: { step: unknown_blob }, path: data }
  bad_blob_id: { $from: { step: bad_blob_id }, path: data }
  bad_input: { $from: { step: bad_input }, onSkip: { action: useDefault, defaultValue: skipped } }
  bad_flow: { $from: { step: bad_flow } }
  missing_file: { $from: { step: missing_file }, path: data }
  unknown_flow: { $from: { step: unknown_flow }, path: result }
`);
  assertEquals(
    await runOnce(f, {}),
    success({
      unknown_blob: "none",
      bad_blob_id: "bad id",
      bad_input: "skipped",
      bad_flow: null,
      missing_file: "no file",
      unknown_flow: "no flow",
    }),
  );
});

Deno.test("each builtin error has its code and kind", async () => {
  const cases: [string, string, number, string, string][] = [
    ["/get_blob", "{ blob_id: abc }", -32602, "INVALID_INPUT", "`blob_id` must be 64 hex digits"],
    ["/put_blob", "{ data: 1 }", -32602, "INVALID_INPUT", "missing field `blob_type`"],
    [
      "/put_blob",
      "{ data: { steps: [] }, blob_type: flow }",
      -32602,
      "INVALID_INPUT",
      "`data` is not a valid flow",
    ],
    ["/load_file", "{ path: /nonexistent/x.json }", -32011, "NOT_FOUND", "Cannot read"],
    ["/eval", `{ flow_id: "${"2".repeat(64)}", input: 1 }`, -32011, "NOT_FOUND", "Not found"],
    [
      "/map",
      "{ workflow: { steps: [] }, items: [1] }",
      -32602,
      "INVALID_INPUT",
      "not a valid flow",
    ],
    ["/nope", "{}", -32001, "COMPONENT_NOT_FOUND", "Unknown builtin component '/nope'"],
  ];
  for (const [component, input, code, kind, text] of cases) {
    const r = await runOnce(
      flow(`
steps:
  - id: s
    component: /builtin${component}
    input: ${input}
output: { $from: { step: s } }
`),
      {},
    );
    assert(r.outcome === "failed", `${component}: ${JSON.stringify(r)}`);
    assertStrictEquals(r.error.code, code, `${component}: ${JSON.stringify(r)}`);
    assertEquals(r.error.data, { kind, component }, component);
    assertStringIncludes(r.error.message, text, component);
  }
});

Deno.test("/load_file: a file that does not parse is a 500 COMPONENT_FAILED step failure", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/bad.json`, "{ not json");
    const r = await runOnce(
      flow(`
steps:
  - id: s
    component: /builtin/load_file
    onError: { action: useDefault, defaultValue: fallback }
    input: { path: ${dir}/bad.json }
  - id: t
    component: /builtin/load_file
    input: { path: ${dir}/bad.json }
output: { handled: { $from: { step: s } }, raw: { $from: { step: t } } }
`),
      {},
    );
    // `raw` reads a failed step in the output: the run fails with that step's error
    assert(r.outcome === "failed", JSON.stringify(r));
    assertStrictEquals(r.error.code, 500);
    assertEquals(r.error.data, { kind: "COMPONENT_FAILED", component: "/load_file" });
    assertStringIncludes(r.error.message, `Failed to load file: Cannot parse '${dir}/bad.json'`);
  });
});

Deno.test("onError retry with retryOn naming the code and a fallback handles a builtin failure", async () => {
  // INVALID_INPUT is category `invalid` (not retried by default); a retry that lists its code runs
  // the step again and then falls back
  const f = flow(`
steps:
  - id: s
    component: /builtin/get_blob
    onError:
      action: retry
      maxRetries: 2
      initialDelay: 0
      retryOn: [-32602]
      fallback: { action: useDefault, defaultValue: fell back }
    input: { blob_id: abc }
output: { $from: { step: s } }
`);
  assertEquals(await runOnce(f, {}), success("fell back"));
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
  assertStringIncludes(
    JSON.stringify(r.error),
    "max_concurrency` must be a positive integer (leave it out for no limit), got 0",
  );
});

Deno.test("/load_file without read permission still stops the run with the flag to add (exit 3), not a step failure", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/secret.json`, "{}");
    await Deno.writeTextFile(
      `${dir}/flow.yaml`,
      `schema: https://stepflow.org/schemas/v1/flow.json
steps:
  - id: s
    component: /builtin/load_file
    onError: { action: useDefault, defaultValue: handled }
    input: { path: secret.json }
output: { $from: { step: s } }
`,
    );
    await Deno.writeTextFile(
      `${dir}/stepflow-config.yml`,
      `plugins: { builtin: { type: builtin } }\nroutes: { "/builtin/{*component}": [{ plugin: builtin }] }\n`,
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--no-prompt",
        `--allow-read=${dir}/flow.yaml,${dir}/stepflow-config.yml`,
        "--allow-env",
        `${REPO_ROOT}/main.ts`,
        "run",
        "--flow",
        `${dir}/flow.yaml`,
        "--input-json",
        "{}",
      ],
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assertStrictEquals(out.code, 3, stderr);
    assertStringIncludes(stderr, "missing permission: add --allow-read");
  });
});

Deno.test("/iterate and /map: a max_iterations or max_concurrency that is not a whole number >= 0 is shown as written", async () => {
  // found by hand: max_iterations -1 and 1.5 both said "must be a non-negative integer, got a number"
  const f = flow(`
steps:
  - id: it
    component: /builtin/iterate
    input:
      flow: { $literal: { schema: https://stepflow.org/schemas/v1/flow.json, output: { result: 1 } } }
      initial_input: {}
      max_iterations: { $from: { workflow: input }, path: n }
output: { $from: { step: it } }
`);
  for (const [n, shown] of [[-1, "-1"], [1.5, "1.5"], ["x", "a string"]] as const) {
    const r = await runOnce(f, { n });
    assert(r.outcome === "failed", JSON.stringify(r));
    assertStringIncludes(
      r.error.message,
      `\`max_iterations\` must be a non-negative integer, got ${shown}`,
    );
  }
  const m = flow(`
steps:
  - id: m
    component: /builtin/map
    input:
      workflow: { $literal: { schema: https://stepflow.org/schemas/v1/flow.json, output: 1 } }
      items: [1]
      max_concurrency: 2.5
output: { $from: { step: m } }
`);
  const r = await runOnce(m, {});
  assert(r.outcome === "failed", JSON.stringify(r));
  assertStringIncludes(
    r.error.message,
    "must be a positive integer (leave it out for no limit), got 2.5",
  );
});
