import { assert, assertEquals, assertStrictEquals } from "../_assert.ts";
import { flow, mockComponent, runOnce, testConfig } from "./_engine_helpers.ts";
import { Redactor, runRedactor } from "../../src/execution/secrets.ts";
import { Engine } from "../../src/execution/engine.ts";
import { setLogLevel, setLogSink } from "../../src/log.ts";

Deno.test("Redactor finds secrets through properties, items, anyOf, additionalProperties and defaults", () => {
  const f = flow(`
variables:
  type: object
  properties:
    api_key: { type: string, is_secret: true }
    db: { type: object, properties: { password: { type: string, is_secret: true, default: dflt-pass } } }
    fallback: { type: string, is_secret: true, default: default-secret }
inputSchema:
  type: object
  properties:
    creds:
      type: array
      items: { anyOf: [{ type: object, properties: { pin: { is_secret: true } } }] }
    headers: { type: object, additionalProperties: { type: string, is_secret: true } }
    plain: { type: string }
    short: { type: string, is_secret: true }
`).flow;
  const r = runRedactor(
    f,
    {
      creds: [{ pin: 987654 }],
      headers: { auth: "Bearer xyz-123" },
      plain: "visible",
      short: "abc",
    },
    Object.entries({ api_key: 'sk-"quoted"', db: { password: "pg-pass-1" } }),
  )!;
  assertStrictEquals(
    r.redact(
      'sk-"quoted" sk-\\"quoted\\" pg-pass-1 dflt-pass default-secret 987654 Bearer xyz-123 visible abc',
    ),
    "[REDACTED] [REDACTED] [REDACTED] [REDACTED] [REDACTED] [REDACTED] [REDACTED] visible abc",
  );
  assertEquals(r.redactValue({ "k-pg-pass-1": ["pg-pass-1", 1] }), {
    "k-[REDACTED]": ["[REDACTED]", 1],
  });
  // a flow without is_secret has no redactor; a nested run keeps its parent's
  const plain = flow("output: 1\n").flow;
  assertStrictEquals(runRedactor(plain, {}, []), undefined);
  assertStrictEquals(runRedactor(plain, {}, [], r), r);
  const child = new Redactor(r);
  assertStrictEquals(child.redact("pg-pass-1"), "[REDACTED]");
});

Deno.test("Engine.run(): a mock's 'No behavior defined' names the input with the secret [REDACTED]; logs too", async () => {
  const lines: string[] = [];
  const prev = setLogSink((l) => lines.push(l));
  setLogLevel("debug");
  try {
    const f = flow(`
variables:
  type: object
  properties: { api_key: { type: string, is_secret: true } }
steps:
  - id: each
    component: /builtin/map
    input:
      workflow:
        $literal:
          schema: https://stepflow.org/schemas/v1/flow.json
          steps: [{ id: inner, component: /mock/llm, input: { key: { $from: { workflow: input } } } }]
          output: { $from: { step: inner } }
      items: [{ $from: { variable: api_key } }]
    mustExecute: true
  - id: call
    component: /mock/llm
    input: { input: { $from: { variable: api_key } } }
    # after the map (its "skipped" count is 0: not skipped), so the map's item has run when this
    # step fails the run, whatever the order of the two steps' microtasks
    skipIf: { $from: { step: each }, path: skipped }
output: { $from: { step: call } }
`);
    const engine = await Engine.create(
      testConfig({ "/llm": mockComponent([[{ input: "x" }, { outcome: "success", result: 1 }]]) }),
    );
    try {
      const r = await engine.run(f, {}, {
        variables: { api_key: "sk-live-abcdef" },
        runId: crypto.randomUUID(),
      });
      const text = JSON.stringify(r);
      assert(!text.includes("sk-live-abcdef"), text);
      assert(text.includes('No behavior defined for /llm on {\\"input\\":\\"[REDACTED]\\"}'), text);
      // what is stored of the failures (results of runs, nested ones included, and steps) is
      // redacted; only the stored inputs and variables hold the secret (docs: not covered)
      for (const run of await engine.store.listRuns()) {
        assert(!JSON.stringify(run.result ?? null).includes("sk-live-abcdef"), run.runId);
        for (const step of await engine.store.getStepResults(run.runId)) {
          assert(!JSON.stringify(step.result).includes("sk-live-abcdef"), step.stepId);
        }
      }
      assert((await engine.store.listRuns()).length >= 2); // the map item ran as a nested run
    } finally {
      await engine.close();
    }
  } finally {
    setLogSink(prev);
    setLogLevel("warn");
  }
  assert(!lines.join("\n").includes("sk-live-abcdef"), lines.join("\n"));
});

Deno.test("Engine.run(): a secret in a successful output is kept (only failures and logs are redacted)", async () => {
  const f = flow(`
variables:
  type: object
  properties: { api_key: { type: string, is_secret: true } }
output: { key: { $from: { variable: api_key } } }
`);
  const r = await runOnce(f, {}, {}, { variables: { api_key: "sk-live-abcdef" } });
  assertEquals(r, { outcome: "success", result: { key: "sk-live-abcdef" } });
});
