import { FlowLoadError } from "../../src/errors.ts";
import {
  isFlowDocument,
  loadFlowFile,
  loadFlowText,
  parseFlowValue,
  serializeFlow,
  ShapeError,
} from "../../src/flow/load.ts";
import { FLOW_SCHEMA_URL } from "../../src/flow/model.ts";
import { stringifyJson } from "../../src/json/exact_json.ts";
import {
  assert,
  assertEquals,
  assertRejects,
  assertStrictEquals,
  assertStringIncludes,
  assertThrows,
} from "../_assert.ts";
import { conformanceFlows, conformanceTest } from "../_conformance.ts";
import { ownFlows } from "../_own_flows.ts";

const FIXTURES = new URL("../fixtures/flows/", import.meta.url);

async function loadsEvery(files: string[]) {
  for (const f of files) {
    const loaded = await loadFlowFile(f);
    assertStrictEquals(loaded.flow.schema, FLOW_SCHEMA_URL);
    assertStrictEquals(loaded.file, f);
    assert(loaded.source, "has a source map");
  }
}

conformanceTest("loadFlowFile() loads every conformance flow", async () => {
  const files = await conformanceFlows();
  assert(files.length >= 10, `found ${files.length} conformance flows`);
  await loadsEvery(files);
});

Deno.test("loadFlowFile() loads every flow of the project's suite, examples and README", async () => {
  const files = await ownFlows();
  assert(files.length >= 15, `found ${files.length} flows`);
  await loadsEvery(files);
});

Deno.test("loadFlowFile() keeps exact numbers in .yaml, .json and .jsonc flows", async () => {
  for (const ext of ["yaml", "json", "jsonc"]) {
    const { flow } = await loadFlowFile(new URL(`exact_numbers.${ext}`, FIXTURES).pathname);
    const out = stringifyJson(flow.output);
    assertStringIncludes(out, '"big":9007199254740993', ext);
    assertStringIncludes(out, '"float":15.0', ext);
    assertStringIncludes(out, '"huge":1e400', ext);
  }
});

Deno.test("loadFlowFile() expands anchors into steps", async () => {
  const { flow } = await loadFlowFile(new URL("anchors.yaml", FIXTURES).pathname);
  assertEquals(flow.steps[1].input, flow.steps[0].input);
});

Deno.test("loadFlowFile() names a missing file", async () => {
  await assertRejects(
    () => loadFlowFile("/nonexistent/flow.yaml"),
    FlowLoadError,
    "Cannot read flow file '/nonexistent/flow.yaml': no such file",
  );
});

Deno.test("loadFlowText() reports shape errors with JSON path and position", () => {
  const cases: [string, string][] = [
    ["name: x\n", "f.yaml:1:1: Invalid flow: $.schema: missing required key 'schema'"],
    [
      `schema: ${FLOW_SCHEMA_URL}\nsteps: {a: 1}\n`,
      "f.yaml:2:8: Invalid flow: $.steps: expected a list, got a mapping",
    ],
    [
      `schema: ${FLOW_SCHEMA_URL}\nsteps:\n  - component: /x\n`,
      "f.yaml:3:5: Invalid flow: $.steps[0].id: missing required key 'id'",
    ],
    [
      `schema: ${FLOW_SCHEMA_URL}\nsteps:\n  - id: a\n    component: /x\n    onError: {action: stop}\n`,
      `f.yaml:5:23: Invalid flow: $.steps[0].onError.action: unknown action "stop"`,
    ],
    ["schema: v2\n", 'Invalid flow: $.schema: must be "https://stepflow.org/schemas/v1/flow.json"'],
    ["- a\n", "f.yaml:1:1: A flow must be a mapping"],
  ];
  for (const [text, expected] of cases) {
    const e = assertThrows(() => loadFlowText(text, { file: "f.yaml" }), FlowLoadError);
    assertStringIncludes(e.message, expected);
    assert(!e.message.includes("\n"), `one line: ${e.message}`);
  }
});

Deno.test("parseFlowValue() accepts the whole 0.8 step model", () => {
  const { flow } = loadFlowText(
    Deno.readTextFileSync(new URL("valid.yaml", FIXTURES)),
    { file: "valid.yaml" },
  );
  assertStrictEquals(flow.steps.length, 3);
  assertEquals(flow.steps[1].onError, { action: "useDefault", defaultValue: { messages: [] } });
  assertEquals(flow.steps[2].onError, { action: "retry", maxRetries: 2 });
  assertStrictEquals(flow.steps[2].mustExecute, true);
  assertEquals(flow.steps[1].skipIf, { $from: { workflow: "input" }, path: "skip" });
  const noSource = parseFlowValue({ schema: FLOW_SCHEMA_URL, steps: [] });
  assertStrictEquals(noSource.source, undefined);
});

Deno.test("isFlowDocument() checks the top-level schema", () => {
  assert(isFlowDocument({ schema: FLOW_SCHEMA_URL }));
  assert(!isFlowDocument({ plugins: {} }));
  assert(!isFlowDocument([FLOW_SCHEMA_URL]));
  assert(!isFlowDocument(null));
});

Deno.test("serializeFlow() writes 0.8 key order and $-syntax paths", () => {
  const { flow } = loadFlowText(
    `metadata: {}
output: {x: {$from: {step: a}, path: name}, y: {$literal: {$from: {step: a}, path: name}}}
steps:
  - input: {v: {path: "a.b", extra: 1, $from: {workflow: input}}}
    onError: {action: fail}
    component: /x
    id: a
    mustExecute: false
name: n
schema: ${FLOW_SCHEMA_URL}
`,
  );
  const out = serializeFlow(flow);
  assertStrictEquals(
    stringifyJson(out),
    `{"schema":"${FLOW_SCHEMA_URL}","name":"n","steps":[{"id":"a","component":"/x",` +
      `"inputSchema":null,"outputSchema":null,"onError":{"action":"fail"},` +
      `"input":{"v":{"$from":{"workflow":"input"},"path":"$[\\"a.b\\"]"}},"mustExecute":false}],` +
      `"output":{"x":{"$from":{"step":"a"},"path":"$.name"},"y":{"$literal":{"$from":{"step":"a"},"path":"name"}}}}`,
  );
  const empty = serializeFlow(loadFlowText(`schema: ${FLOW_SCHEMA_URL}\nsteps: []\n`).flow);
  assertEquals(empty, { schema: FLOW_SCHEMA_URL });
});

Deno.test("loadFlowText(): numeric settings written 2.0, 1.50 or 1e3 are numbers; 1e400 is out of range", async () => {
  const flowWith = (onError: string, ext = "") =>
    `schema: ${FLOW_SCHEMA_URL}
steps:
  - id: a
    component: /builtin/create_messages
    onError: { action: retry, ${onError} }${ext}
    input: { user_prompt: x }
`;
  const loaded = loadFlowText(
    flowWith(
      "maxRetries: 2.0, backoffFactor: 1.50, initialDelay: 1e3, retryOn: [429.0]",
      "\n    timeout: 1.5e3",
    ),
  );
  const e = loaded.flow.steps[0].onError as Record<string, unknown>;
  assertEquals([e.maxRetries, e.backoffFactor, e.initialDelay, e.retryOn], [2, 1.5, 1000, [429]]);
  assertStrictEquals(loaded.flow.steps[0].timeout, 1500);
  const message = (text: string) => {
    try {
      loadFlowText(text, { file: "f.yaml" });
    } catch (err) {
      assert(err instanceof FlowLoadError);
      return err.message;
    }
    return "loaded";
  };
  assertStringIncludes(
    message(flowWith("maxRetries: 1e400")),
    "$.steps[0].onError.maxRetries: the number 1e400 is out of range: give a finite number",
  );
  assertStringIncludes(
    message(flowWith("maxRetries: 2.5")),
    "maxRetries: expected a whole number, got the number 2.5",
  );
  assertStringIncludes(
    message(flowWith("maxRetries: -1")),
    "$.steps[0].onError.maxRetries: must be at least 0, got the number -1",
  );
  assertStringIncludes(
    message(flowWith("backoffFactor: 101")),
    "$.steps[0].onError.backoffFactor: must be at most 100, got the number 101",
  );
  // `fallback` cannot retry: the message does not offer retry.
  assertStringIncludes(
    message(flowWith("fallback: { action: retry }")),
    'fallback.action: unknown action "retry" (expected one of fail, skip, useDefault)',
  );
  await Promise.resolve();
});

Deno.test("loadFlowText(): null reads as absent wherever stepflow 0.8's schema allows it; same flow id", async () => {
  const { flowBlob } = await import("../../src/execution/flow_id.ts");
  const text = await Deno.readTextFile(
    new URL("../fixtures/cli/bad_files/pydantic_nulls.json", import.meta.url),
  );
  const loaded = loadFlowText(text, { format: "json", file: "p.json" });
  const f = loaded.flow;
  for (const k of ["name", "description", "version", "inputSchema", "variables"] as const) {
    assertStrictEquals(f[k], undefined, k);
  }
  const s = f.steps[0];
  for (const k of ["skipIf", "onError", "mustExecute", "timeout", "inputSchema"] as const) {
    assertStrictEquals(s[k], undefined, k);
  }
  assertStrictEquals(f.test?.cases[0].description, undefined);
  assertStrictEquals(f.examples?.[0].description, undefined);
  // without the nulls: the same normalised flow, so the same flow id (0.8 skips None fields)
  // (the `$literal` nested flow is data: its nulls stay, as in 0.8)
  const stripped = JSON.parse(text);
  const dropNulls = (o: Record<string, unknown>) => {
    for (const k of Object.keys(o)) if (o[k] === null) delete o[k];
  };
  dropNulls(stripped);
  dropNulls(stripped.steps[0]);
  dropNulls(stripped.test.cases[0]);
  dropNulls(stripped.examples[0]);
  const plain = loadFlowText(JSON.stringify(stripped), { format: "json" }).flow;
  assertStrictEquals(flowBlob(f).id, flowBlob(plain).id);
  // a value of the wrong type is still an error
  const bad = text.replace('"version": null', '"version": 3');
  const e = assertThrows(() => loadFlowText(bad, { format: "json", file: "p.json" }));
  assertStringIncludes(e.message, "$.version: expected a string, got the number 3");
});

Deno.test("loadFlowText(): a ShapeError has every problem, and the flow without its wrong optional keys", () => {
  const text = `schema: ${FLOW_SCHEMA_URL}
steps:
  - id: a
    component: /x
    timeout: banana
    onError: { action: explode }
  - id: b
    component: /y
    timeout: [1]
`;
  const e = assertThrows(() => loadFlowText(text, { file: "f.yaml" }), ShapeError) as ShapeError;
  assertStringIncludes(e.message, "(and 2 more problem(s): stepflow validate lists them all)");
  assertEquals(e.problems.map((d) => [d.path, d.position?.line, d.code]).sort(), [
    ["$.steps[0].onError.action", 6, "invalid_flow"],
    ["$.steps[0].timeout", 5, "invalid_flow"],
    ["$.steps[1].timeout", 9, "invalid_flow"],
  ]);
  assertEquals(e.repaired?.removed.slice().sort(), [
    "$.steps[0].onError",
    "$.steps[0].onError.action",
    "$.steps[0].timeout",
    "$.steps[1].timeout",
  ]);
  assertEquals(e.repaired?.loaded.flow.steps.map((s) => s.id), ["a", "b"]);
  // a wrong id or a list item: the other checks would only see its consequences
  const id = assertThrows(
    () => loadFlowText(text.replace("id: b", "id: [b]"), { file: "f.yaml" }),
    ShapeError,
  ) as ShapeError;
  assertStrictEquals(id.repaired, undefined);
  assertStrictEquals(id.problems.length, 4);
});
