import { FlowLoadError } from "../../src/errors.ts";
import type { Diagnostic } from "../../src/core/diagnostics.ts";
import { hasErrors } from "../../src/core/diagnostics.ts";
import { loadFlowFile, loadFlowText } from "../../src/flow/load.ts";
import { FLOW_SCHEMA_URL } from "../../src/flow/model.ts";
import { validateConfig, validateFlow } from "../../src/config/preflight.ts";
import { suggestKey } from "../../src/flow/keys.ts";
import { editDistance } from "../../src/core/suggest.ts";
import { loadConfigFile, loadConfigForFlow, parseConfigValue } from "../../src/config/load.ts";
import {
  assert,
  assertEquals,
  assertRejects,
  assertStrictEquals,
  assertThrows,
  withTempDir,
} from "../_assert.ts";
import { conformanceFlows, conformanceTest } from "../_conformance.ts";
import { ownFlows } from "../_own_flows.ts";

const FIXTURES = new URL("../fixtures/flows/", import.meta.url);
const CONFIGS = new URL("../fixtures/configs/", import.meta.url);

function fixture(name: string): string {
  return new URL(name, FIXTURES).pathname;
}

function flow(body: string, file = "t.yaml") {
  return loadFlowText(`schema: ${FLOW_SCHEMA_URL}\nname: t\ndescription: d\n${body}`, { file });
}

function find(ds: Diagnostic[], code: string): Diagnostic {
  const d = ds.find((x) => x.code === code);
  if (!d) throw new Error(`no ${code} in ${JSON.stringify(ds, null, 1)}`);
  return d;
}

Deno.test("validateFlow() finds a duplicate step id (fatal, with position)", async () => {
  const ds = validateFlow(await loadFlowFile(fixture("duplicate_step_id.yaml")));
  const d = find(ds, "duplicate_step_id");
  assertStrictEquals(d.level, "fatal");
  assertStrictEquals(d.message, "Duplicate step ID: 'a'");
  assertStrictEquals(d.path, "$.steps[1].id");
  assertEquals(d.position, { file: fixture("duplicate_step_id.yaml"), line: 8, col: 9 });
  assert(d.hint?.includes("line 5"), d.hint);
});

Deno.test("loadFlowFile() rejects a duplicate YAML key naming both lines", async () => {
  const e = await assertRejects(
    () => loadFlowFile(fixture("duplicate_yaml_key.yaml")),
    FlowLoadError,
  ) as FlowLoadError;
  assertEquals(e.position, { file: fixture("duplicate_yaml_key.yaml"), line: 8, col: 5 });
  assert(e.message.includes("Duplicate key 'input' (first defined at line 7"), e.message);
});

Deno.test("validateFlow() finds a reference to an undefined step", async () => {
  const ds = validateFlow(await loadFlowFile(fixture("undefined_step.yaml")));
  const d = find(ds, "undefined_step");
  assertStrictEquals(d.level, "fatal");
  assertStrictEquals(d.message, "Step 'a' references undefined step 'nowhere'");
  assertStrictEquals(d.path, "$.steps[0].input.user_prompt");
  assertEquals(d.position?.line, 8);
});

Deno.test("validateFlow() finds a reference to a later step and says so", async () => {
  const ds = validateFlow(await loadFlowFile(fixture("later_step.yaml")));
  const d = find(ds, "undefined_step");
  assertStrictEquals(d.message, "Step 'first' references undefined step 'second'");
  assert(d.hint?.includes("defined later"), d.hint);
});

Deno.test("validateFlow() warns about a misspelt key with a suggestion", async () => {
  const ds = validateFlow(await loadFlowFile(fixture("typo_key.yaml")));
  const d = find(ds, "unknown_key");
  assertStrictEquals(d.level, "warning");
  assertStrictEquals(d.path, "$.stpes");
  assertStrictEquals(d.hint, "did you mean 'steps'?");
  assertEquals(d.position, { file: fixture("typo_key.yaml"), line: 4, col: 1 });
  // The output then references a step that does not exist: a fatal error.
  const undef = find(ds, "undefined_step");
  assertStrictEquals(undef.message, "Reference to undefined step 'a'");
  assertStrictEquals(undef.hint, "the flow has no 'steps': is 'stpes' a misspelling of 'steps'?");
});

Deno.test("loadFlowFile() points an unterminated flow mapping at its '{'", async () => {
  const e = await assertRejects(
    () => loadFlowFile(fixture("unterminated_flow_map.yaml")),
    FlowLoadError,
  ) as FlowLoadError;
  assertEquals(e.position, { file: fixture("unterminated_flow_map.yaml"), line: 8, col: 20 });
});

Deno.test("validateFlow() finds nothing wrong in a valid flow", async () => {
  const ds = validateFlow(await loadFlowFile(fixture("valid.yaml")));
  assert(!hasErrors(ds), JSON.stringify(ds));
  assert(!ds.some((d) => d.code === "unknown_key"), JSON.stringify(ds));
});

async function validatesEvery(files: string[]) {
  for (const f of files) {
    const loaded = await loadFlowFile(f);
    const config = await loadConfigForFlow({ flowPath: f });
    const ds = [...validateConfig(config), ...validateFlow(loaded, config)];
    const bad = ds.filter((d) => d.level !== "warning");
    assertEquals(bad, [], f);
    for (const d of ds) assert(d.position, `${f}: ${d.message} has a position`);
  }
}

conformanceTest("validateFlow() reports every conformance flow without errors", async () => {
  await validatesEvery(await conformanceFlows());
});

Deno.test("validateFlow() reports every flow of the project's suite and examples without errors", async () => {
  await validatesEvery(await ownFlows());
});

Deno.test("validateFlow() checks ids, components, self references and the output", () => {
  const ds = validateFlow(flow(`steps:
  - id: ""
    component: /x
  - id: a
    component: builtin/eval
  - id: b
    component: ""
    input: {$from: {step: b}}
output: {$from: {step: zz}}
`));
  assertStrictEquals(find(ds, "empty_step_id").message, "Step ID cannot be empty");
  assertStrictEquals(
    find(ds, "invalid_component").message,
    "Invalid component 'builtin/eval' in step 'a': Component path must start with '/'",
  );
  assertStrictEquals(find(ds, "invalid_component").level, "error");
  assertStrictEquals(find(ds, "empty_component").level, "error");
  assertStrictEquals(find(ds, "self_reference").message, "Step 'b' cannot reference itself");
  const out = find(ds, "undefined_step");
  assertStrictEquals(out.message, "Reference to undefined step 'zz'");
  assertStrictEquals(out.path, "$.output");
});

Deno.test("validateFlow() makes invalid references fatal at their path", () => {
  const ds = validateFlow(flow(`steps:
  - id: a
    component: /x
    input: {x: {$from: "a"}, y: {$from: {step: a}, path: "$.b["}}
output: {$from: {step: a}}
`));
  const bad = ds.filter((d) => d.code === "invalid_reference");
  // every bad reference of the template (this used to stop at the first)
  assertStrictEquals(bad.length, 2);
  assertStrictEquals(bad[0].level, "fatal");
  assertStrictEquals(bad[0].path, "$.steps[0].input.x.$from");
  assertStrictEquals(bad[0].position?.line, 7);
  assertStrictEquals(bad[1].path, "$.steps[0].input.y.path");
});

Deno.test("validateFlow() checks skipIf and onError.defaultValue references", () => {
  const ds = validateFlow(flow(`steps:
  - id: a
    component: /x
    skipIf: {$from: {step: later}}
    onError: {action: useDefault, defaultValue: {$from: {step: later}}}
  - id: later
    component: /x
    input: {$from: {step: a}}
output: {$from: {step: later}}
`));
  const refs = ds.filter((d) => d.code === "undefined_step");
  assertEquals(refs.map((d) => [d.level, d.path]), [
    ["fatal", "$.steps[0].skipIf"],
    ["error", "$.steps[0].onError.defaultValue"],
  ]);
});

Deno.test("validateFlow() warns about unknown keys with suggestions everywhere", () => {
  const ds = validateFlow(flow(`steps:
  - id: a
    component: /x
    skip: true
    on_error: {action: skip}
    depends_on: [b]
    onError: {action: fail, defaultValue: 1}
    input: {v: {$from: {step_id: a}, pth: x}, w: {$from: {workflow: input}, onSkip: {action: skip, x: 1}}, l: {$literal: 1, note: 2}}
output: {$from: {step: a}}
test:
  cases:
    - name: c
      input: {}
      outputs: {}
`));
  const unknown = ds.filter((d) => d.code === "unknown_key").map((d) => [d.path, d.hint]);
  assertEquals(unknown, [
    ["$.steps[0].skip", "did you mean 'skipIf'?"],
    ["$.steps[0].on_error", "did you mean 'onError'?"],
    [
      "$.steps[0].depends_on",
      "there is no explicit dependency list: a step runs after every step its input or skipIf references with {$from: {step: <id>}}",
    ],
    ["$.steps[0].input.v.pth", "did you mean 'path'?"],
    ["$.steps[0].input.v.$from.step_id", "did you mean 'step'?"],
    ["$.steps[0].input.w.onSkip.x", undefined],
    ["$.steps[0].input.l.note", undefined], // {$literal: 1, note: 2} is 1
    ["$.steps[0].onError.defaultValue", undefined],
    ["$.test.cases[0].outputs", "did you mean 'output'?"],
  ]);
  assert(ds.filter((d) => d.code === "unknown_key").every((d) => d.level === "warning"));
  const invalid = ds.find((d) => d.code === "invalid_reference");
  assert(invalid, "a $from without workflow/step/variable is invalid");
});

Deno.test("validateFlow() reports 0.8 warnings", () => {
  const ds = validateFlow(loadFlowText(`schema: ${FLOW_SCHEMA_URL}
steps:
  - id: a
    component: /x
  - id: unused
    component: /x
  - id: forced
    component: /x
    mustExecute: true
output: {$from: {step: a}, path: "$.x"}
`));
  const texts = ds.map((d) => `${d.level}: ${d.message}`);
  assertEquals(texts, [
    "warning: Workflow has no name defined",
    "warning: Workflow has no description defined",
    "warning: Step 'unused' is not referenced by any other step or workflow output",
  ]);
});

Deno.test("validateFlow() checks variables against the variables schema", () => {
  const ds = validateFlow(flow(`variables:
  type: object
  properties: {known: {type: string}}
steps: []
output: {a: {$from: {variable: known}}, b: {$from: {variable: unknown}}, c: {$from: {variable: other, default: 1}}}
`));
  const d = find(ds, "undefined_variable");
  assertStrictEquals(d.level, "error");
  assertStrictEquals(d.message, "Undefined variable 'unknown'");
  assertStrictEquals(d.path, "$.output.b");
  assertStrictEquals(ds.filter((x) => x.code === "undefined_variable").length, 1);
  const noSchema = validateFlow(flow(`output: {$from: {variable: v}}\n`));
  assertStrictEquals(find(noSchema, "missing_variable_schema").level, "warning");
});

Deno.test("validateFlow() validates literal sub-flows recursively", () => {
  const ds = validateFlow(flow(`steps:
  - id: a
    component: /builtin/put_blob
    input:
      data:
        $literal:
          schema: ${FLOW_SCHEMA_URL}
          steps:
            - id: x
              component: nope
          output: {$from: {step: y}}
output: {$from: {step: a}}
`));
  const sub = ds.filter((d) => d.code === "invalid_subflow");
  assertEquals(sub.map((d) => d.path), [
    "$.steps[0].input.data.$literal.steps[0].component",
    "$.steps[0].input.data.$literal.output",
  ]);
  assert(sub.every((d) => d.level === "error" && d.position?.line !== undefined));
});

Deno.test("validateFlow() with a config warns about components no route matches", async () => {
  const config = await loadConfigFile(
    new URL("../fixtures/flows/stepflow-config.yml", import.meta.url).pathname,
  );
  const ds = validateFlow(
    flow(`steps:
  - id: a
    component: /builtin/eval
  - id: b
    component: /python/udf
output: [{$from: {step: a}}, {$from: {step: b}}]
`),
    config,
  );
  const d = find(ds, "no_matching_route");
  assertStrictEquals(d.level, "warning");
  assertStrictEquals(d.message, "No route matches component '/python/udf' of step 'b'");
  assertStrictEquals(ds.filter((x) => x.code === "no_matching_route").length, 1);
});

Deno.test("validateConfig() reports unknown plugins, unused plugins and unknown keys", async () => {
  const config = await loadConfigFile(new URL("unknown_plugin.yml", CONFIGS).pathname);
  const ds = validateConfig(config);
  const unknown = find(ds, "unknown_plugin");
  assertStrictEquals(unknown.level, "error");
  assertStrictEquals(
    unknown.message,
    "Routing rule 0 for path '/builtin/{*component}' references unknown plugin 'builtn'",
  );
  assertStrictEquals(unknown.hint, "did you mean 'builtin'?");
  assertStrictEquals(unknown.position?.line, 6);
  assertStrictEquals(
    find(ds, "unused_plugin").message,
    "Plugin 'builtin' is not referenced by any routing rule",
  );
  assertStrictEquals(find(ds, "unknown_key").hint, "did you mean 'stateStore'?");
});

Deno.test("validateConfig() reports empty configs and conflicting routes", () => {
  const empty = validateConfig(parseConfigValue({ plugins: {} }, { workingDirectory: "/" }));
  assertEquals(empty.map((d) => d.message), [
    "No plugins configured",
    "No routing rules configured",
  ]);
  const conflict = validateConfig(parseConfigValue({
    plugins: { b: { type: "builtin" } },
    routes: { "/a/{x}": [{ plugin: "b" }], "/a/{y}": [{ plugin: "b" }] },
  }, { workingDirectory: "/" }));
  assertStrictEquals(find(conflict, "invalid_route").level, "error");
  const stdio = validateConfig(parseConfigValue({
    plugins: { p: { type: "stepflow" } },
    routes: { "/p/{component}": [{ plugin: "p" }] },
  }, { workingDirectory: "/" }));
  assertStrictEquals(
    find(stdio, "missing_command").message,
    "Plugin 'p' (stdio) needs a 'command'",
  );
});

Deno.test("suggestKey() uses aliases, case/underscore folding and edit distance", () => {
  const step = ["id", "component", "input", "skipIf", "onError", "mustExecute", "inputSchema"];
  assertStrictEquals(suggestKey("skip", step), "did you mean 'skipIf'?");
  assertStrictEquals(suggestKey("on_error", step), "did you mean 'onError'?");
  assertStrictEquals(suggestKey("input_schema", step), "did you mean 'inputSchema'?");
  assertStrictEquals(suggestKey("must_execute", step), "did you mean 'mustExecute'?");
  assertStrictEquals(suggestKey("compnent", step), "did you mean 'component'?");
  assertStrictEquals(suggestKey("Input", step), "did you mean 'input'?");
  assertStrictEquals(suggestKey("banana", step), undefined);
  assertStrictEquals(editDistance("stpes", "steps"), 1);
  assertStrictEquals(editDistance("", "abc"), 3);
});

Deno.test("parseConfigValue() errors carry the JSON path", () => {
  assertThrows(
    () => parseConfigValue({ plugins: { p: { type: "nope" } } }, { workingDirectory: "/" }),
    FlowLoadError,
    `Invalid config: $.plugins.p.type: unknown type "nope"`,
  );
});

Deno.test("validateFlow() checks the test section's servers and inline config", () => {
  const ds = validateFlow(flow(`steps: []
test:
  servers:
    worker:
      command: python
      port_range: [9000, 9100]
      healthCheck: {path: /health, timeout_ms: 100}
  config:
    plugins:
      builtin: {type: builtin}
      bad: null
    routes:
      "/x/{component}": [{plugin: nope}]
  cases: []
`));
  const hints = ds.filter((d) => d.code === "unknown_key").map((d) => [d.path, d.hint]);
  assertEquals(hints, [
    ["$.test.servers.worker.port_range", "did you mean 'portRange'?"],
    ["$.test.servers.worker.healthCheck.timeout_ms", "did you mean 'timeoutMs'?"],
  ]);
  const plugin = find(ds, "unknown_plugin");
  assertStrictEquals(plugin.path, '$.test.config.routes["/x/{component}"][0].plugin');
  assertStrictEquals(plugin.position?.line, 16);
});

Deno.test("validateFlow() with a config warns about components the target plugin lacks", () => {
  const config = parseConfigValue({
    plugins: {
      builtin: { type: "builtin" },
      mock: { type: "mock", components: { "/one": { behaviors: {} } } },
      ai: { type: "builtin" },
    },
    routes: {
      "/builtin/{*component}": [{ plugin: "builtin" }],
      "/mock/{component}": [{ plugin: "mock" }],
      "/ai/{component}": [{ plugin: "ai", conditions: [{ path: "$.m", value: 1 }] }],
    },
  }, { workingDirectory: "/" });
  const ds = validateFlow(
    flow(`steps:
  - {id: a, component: /builtin/evl}
  - {id: b, component: /mock/one}
  - {id: c, component: /mock/two}
  - {id: d, component: /ai/anything}
  - {id: e, component: /builtin/eval}
output: [{$from: {step: a}}, {$from: {step: b}}, {$from: {step: c}}, {$from: {step: d}}, {$from: {step: e}}]
`),
    config,
  );
  const unknown = ds.filter((d) => d.code === "unknown_component");
  assertEquals(unknown.map((d) => [d.path, d.level, d.hint]), [
    ["$.steps[0].component", "warning", "did you mean '/eval'?"],
    ["$.steps[2].component", "warning", "it offers: /one"],
  ]);
  assertStrictEquals(
    unknown[0].message,
    "Component '/builtin/evl' of step 'a' is routed to builtin plugin 'builtin' as '/evl', which it does not offer",
  );
  const custom = validateFlow(
    flow(`steps: [{id: a, component: /builtin/extra}]
output: {$from: {step: a}}
`),
    config,
    { componentsOfType: (t) => t === "builtin" ? ["/extra"] : undefined },
  );
  assert(!custom.some((d) => d.code === "unknown_component"), JSON.stringify(custom));
});

Deno.test("validateFlow() checks paths against declared schemas", () => {
  const ds = validateFlow(flow(`inputSchema:
  type: object
  properties: {message: {type: string}, items: {type: array, items: {type: object, properties: {id: {}}}}}
steps:
  - id: a
    component: /x
    outputSchema: {type: object, properties: {result: {}}, additionalProperties: false}
    input:
      m: {$from: {workflow: input}, path: mesage}
      ok: {$from: {workflow: input}, path: "$.items[0].id"}
      bad: {$from: {workflow: input}, path: "$.items[0].idd"}
  - id: b
    component: /x
    outputSchema: {type: object, properties: {result: {}}, additionalProperties: true}
    input: {x: {$from: {step: a}, path: reslt}}
output: [{$from: {step: b}, path: anything}, {$from: {step: a}, path: result}]
`));
  const fields = ds.filter((d) => d.code === "unknown_field");
  assertEquals(fields.map((d) => [d.path, d.message, d.hint]), [
    [
      "$.steps[0].input.m",
      "Field 'mesage' of path '$.mesage' is not a property in the flow's inputSchema",
      "did you mean 'message'?",
    ],
    [
      "$.steps[0].input.bad",
      "Field 'idd' of path '$.items[0].idd' is not a property in the flow's inputSchema",
      "did you mean 'id'?",
    ],
    [
      "$.steps[1].input.x",
      "Field 'reslt' of path '$.reslt' is not a property in the outputSchema of step 'a'",
      "did you mean 'result'?",
    ],
  ]);
  assert(fields.every((d) => d.level === "warning"));
  assert(
    !ds.some((d) => d.code === "unvalidated_field_access"),
    "every referenced step has a schema",
  );
});

Deno.test("validateConfig(): a SQLite stateStore that cannot open is an error at databaseUrl", async () => {
  await withTempDir((dir) => {
    const store = (databaseUrl: string) =>
      validateConfig(parseConfigValue({
        plugins: { builtin: { type: "builtin" } },
        routes: { "/builtin/{*component}": [{ plugin: "builtin" }] },
        stateStore: { type: "sqlite", databaseUrl },
      }, { workingDirectory: dir })).filter((d) => d.code === "invalid_state_store");
    let ds = store("sqlite:no/such/dir/runs.db?mode=rwc");
    assertStrictEquals(ds.length, 1);
    assertStrictEquals(ds[0].level, "error");
    assertStrictEquals(ds[0].path, "$.stateStore.databaseUrl");
    assertStrictEquals(
      ds[0].message,
      `SQLite database '${dir}/no/such/dir/runs.db' cannot be created: directory '${dir}/no/such/dir' does not exist`,
    );
    ds = store("sqlite:missing.db?mode=rw");
    assertStrictEquals(
      ds[0]?.message,
      `SQLite database '${dir}/missing.db' does not exist (mode=rw does not create it)`,
    );
    assertStrictEquals(
      store(`sqlite:${dir}`)[0]?.message,
      `SQLite database '${dir}' is a directory`,
    );
    assertStrictEquals(store("postgres://x")[0]?.level, "error");
    assertEquals(store("sqlite:runs.db"), []);
    assertEquals(store("sqlite::memory:"), []);
  });
});

Deno.test("validateConfig(): a PostgreSQL stateStore url that is not one is an error at url, without its password", () => {
  const store = (value: Record<string, unknown>) =>
    validateConfig(parseConfigValue({
      plugins: { builtin: { type: "builtin" } },
      routes: { "/builtin/{*component}": [{ plugin: "builtin" }] },
      stateStore: { type: "postgres", ...value },
    }, { workingDirectory: "/tmp" })).filter((d) =>
      d.code === "invalid_state_store" || d.code === "unknown_key"
    );
  const ds = store({ url: "postgres://ada:secret@[::1/db" });
  assertStrictEquals(ds.length, 1);
  assertStrictEquals(ds[0].level, "error");
  assertStrictEquals(ds[0].path, "$.stateStore.url");
  assert(ds[0].message.startsWith("Invalid PostgreSQL URL"), ds[0].message);
  assert(!ds[0].message.includes("secret"), ds[0].message);
  assertEquals(store({ url: "postgres://ada:secret@db:5432/runs", leaseTtl: "10s" }), []);
  assertEquals(store({ url: "postgres://db/runs", leaseTTL: "10s" }).map((d) => d.code), [
    "unknown_key",
  ]);
});

Deno.test("validateConfig(): a mock behavior result that is not a FlowResult is an error at it", async () => {
  await withTempDir(async (dir) => {
    const file = `${dir}/stepflow-config.yml`;
    await Deno.writeTextFile(
      file,
      `plugins:
  mock:
    type: mock
    components:
      /one:
        behaviors:
          ? { k: 1 }
          : { output: { x: 1 } }
          ? { k: 2 }
          : { outcome: success, result: 2 }
routes:
  "/mock/{*component}": [{ plugin: mock }]
`,
    );
    const ds = validateConfig(await loadConfigFile(file)).filter((d) =>
      d.code === "invalid_mock_behavior"
    );
    assertStrictEquals(ds.length, 1);
    assertStrictEquals(ds[0].level, "error");
    assertStrictEquals(ds[0].position?.line, 8);
    assert(ds[0].message.includes('got {"output":{"x":1}}'), ds[0].message);
    const list = validateConfig(parseConfigValue({
      plugins: {
        m: { type: "mock", components: { "/a": { behaviors: [{ input: 1, result: 5 }] } } },
      },
      routes: { "/m/{*component}": [{ plugin: "m" }] },
    }, { workingDirectory: "/" })).filter((d) => d.code === "invalid_mock_behavior");
    assertStrictEquals(list[0]?.path, '$.plugins.m.components["/a"].behaviors[0].result');
  });
});

Deno.test("validateConfig(): a plugin url that is not an http(s) URL is an error at it", () => {
  const ds = (url: string) =>
    validateConfig(parseConfigValue({
      plugins: { s: { type: "stepflow", transport: "http", url }, m: { type: "mcp", url } },
      routes: { "/s/{*c}": [{ plugin: "s" }], "/m/{*c}": [{ plugin: "m" }] },
    }, { workingDirectory: "/" })).filter((d) => d.code === "invalid_plugin");
  assertEquals(ds("not a url").map((d) => d.path), ["$.plugins.s.url", "$.plugins.m.url"]);
  assertStrictEquals(ds("ftp://h/")[0].message, `Plugin 's': url "ftp://h/" is not an http(s) URL`);
  assertEquals(ds("http://127.0.0.1:8080/"), []);
  assertEquals(ds("{svc.url}"), []); // test servers fill it in later
});

Deno.test("validateConfig(): ${VAR} in args/env: unset is a warning, malformed an error, at the entry", () => {
  const ds = validateConfig(parseConfigValue({
    plugins: {
      s: {
        type: "stepflow",
        command: "w",
        args: ["${STEPFLOW_TEST_SURELY_UNSET_1}", "${STEPFLOW_TEST_SURELY_UNSET_2:-ok}"],
        env: { K: "${BROKEN" },
      },
      m: { type: "mcp", command: "m", env: { T: "x${STEPFLOW_TEST_SURELY_UNSET_3}" } },
    },
    routes: { "/s/{*c}": [{ plugin: "s" }], "/m/{*c}": [{ plugin: "m" }] },
  }, { workingDirectory: "/" })).filter((d) =>
    d.code === "unset_env" || d.code === "invalid_env_ref"
  );
  assertEquals(ds.map((d) => [d.level, d.path]), [
    ["warning", "$.plugins.s.args[0]"],
    ["error", "$.plugins.s.env.K"],
    ["warning", "$.plugins.m.env.T"],
  ]);
  assertStrictEquals(
    ds[0].hint,
    "set it before the run, or give a default: ${STEPFLOW_TEST_SURELY_UNSET_1:-default}",
  );
});

Deno.test("BUILTIN_COMPONENT_NAMES lists exactly the builtin plugin's components", async () => {
  const { BUILTIN_COMPONENT_NAMES } = await import("../../src/config/preflight.ts");
  const { BUILTIN_COMPONENTS } = await import("../../src/plugins/builtin/plugin.ts");
  assertEquals([...BUILTIN_COMPONENT_NAMES].sort(), [...BUILTIN_COMPONENTS.keys()].sort());
});

Deno.test("validateFlow() warns when onError.defaultValue reads a step the step does not depend on", () => {
  const ds = validateFlow(flow(`steps:
  - id: other
    component: /x
  - id: dep
    component: /x
  - id: a
    component: /x
    input: {v: {$from: {step: dep}}}
    onError: {action: useDefault, defaultValue: {u: {$from: {step: other}}, w: {$from: {step: dep}}}}
output: {$from: {step: a}}
`));
  const w = ds.filter((d) => d.code === "untracked_default_reference");
  assertEquals(w.map((d) => [d.level, d.path]), [[
    "warning",
    "$.steps[2].onError.defaultValue.u",
  ]]);
});

Deno.test("validateFlow(): a $from naming two sources (step and workflow) is fatal, not a warning", () => {
  const ds = validateFlow(flow(`steps:
  - id: a
    component: /builtin/eval
    input: { expr: 1 }
output: { $from: { step: a, workflow: input } }
`));
  const d = find(ds, "invalid_reference");
  assertStrictEquals(d.level, "fatal");
  assertStrictEquals(
    d.message,
    "Invalid reference expression: $from has both 'step' and 'workflow': a reference reads one " +
      "source; keep one of them (e.g. {$from: {step: ...}})",
  );
  assertStrictEquals(d.path, "$.output.$from");
  assertEquals(d.position, { file: "t.yaml", line: 8, col: 18 });
  // no "Unknown key 'workflow' in $from is ignored" beside it
  assertStrictEquals(ds.filter((x) => x.code === "unknown_key").length, 0);
  const v = validateFlow(flow(`output: { $from: { variable: v, workflow: input } }\n`));
  assertStrictEquals(find(v, "invalid_reference").level, "fatal");
});

Deno.test("validateFlow(): 'user_prompt: {{ name }}' is an error at its position with a quoting hint", () => {
  const ds = validateFlow(flow(`steps:
  - id: a
    component: /builtin/create_messages
    input:
      system_instructions: {system}
      user_prompt: {{ name }}
      data: { [1, 2]: 3 }
output: { $from: { step: a } }
test:
  config:
    plugins:
      m:
        type: mock
        components:
          /x:
            behaviors:
              { input: "a" }: { outcome: success, result: 1 }
`));
  const brace = ds.filter((d) => d.code === "brace_template");
  assertStrictEquals(brace.length, 2);
  const [warn, err] = brace;
  assertStrictEquals(err.level, "error");
  assertStrictEquals(
    err.message,
    "'{{ name }}' is not text: YAML reads it as a mapping (with the mapping {name: null} as its key)",
  );
  assertStrictEquals(err.path, "$.steps[0].input.user_prompt");
  assertEquals(err.position, { file: "t.yaml", line: 9, col: 20 });
  assertStrictEquals(
    err.hint,
    'quote it to pass the text ("{{ name }}"; stepflow does not fill in templates in text); ' +
      "to pass a value write {$from: {workflow: input}, path: name}",
  );
  assertStrictEquals(warn.level, "warning");
  assertStrictEquals(
    warn.message,
    "'{system}' is not text: YAML reads it as the mapping {system: null}",
  );
  const key = find(ds, "complex_key");
  assertStrictEquals(key.level, "error");
  assertEquals(key.position, { file: "t.yaml", line: 10, col: 15 });
  // the mock behaviors' complex keys in the inline test config are not flagged
  assertStrictEquals(ds.filter((d) => d.code === "complex_key").length, 1);
  // a quoted template and a real mapping are fine
  const ok = validateFlow(flow(`output: { a: "{{ name }}", b: { name: null } }\n`));
  assertStrictEquals(ok.filter((d) => d.code === "brace_template").length, 0);
});

Deno.test("loadFlowText(): a brace template where the model wants text says how YAML read it", () => {
  const e = assertThrows(
    () => flow("steps:\n  - id: a\n    component: {{ comp }}\n"),
    FlowLoadError,
  );
  assertStrictEquals(
    e.message,
    "t.yaml:6:16: Invalid flow: $.steps[0].component: expected a string, got a mapping " +
      '(YAML reads {{ comp }} as a mapping: quote it, "{{ comp }}", to write text)',
  );
});

Deno.test("validateFlow(): a step read only through an invalid reference is not also 'not referenced'", () => {
  // the failing input found by hand: step b's reference has a bad onSkip, and the fatal error
  // used to come with a false "Step 'a' is not referenced" warning (the same for a bad path, and
  // for the other references of the template the bad one is in)
  const ds = validateFlow(flow(`steps:
  - id: a
    component: /builtin/create_messages
    input: {user_prompt: {$from: {workflow: input}, path: x}}
  - id: c
    component: /builtin/create_messages
    input: {user_prompt: {$from: {workflow: input}, path: x}}
  - id: b
    component: /builtin/create_messages
    input:
      user_prompt: {$from: {step: a}, path: "$.messages[0].content", onSkip: 3}
      system_instructions: {$from: {step: c}, path: "$.nope["}
    skipIf: {$literal: {$from: {step: never_read}}}
output: {$from: {step: b}}
`));
  find(ds, "invalid_reference");
  assertEquals(ds.filter((d) => d.code === "unreferenced_step").map((d) => d.message), []);
});

Deno.test("validateFlow(): onError maxAttempts (other engines' name) points to maxRetries, counting retries", () => {
  // found by hand: 'maxAttempts' in a retry onError was "ignored" with no hint at all
  const ds = validateFlow(flow(`steps:
  - id: a
    component: /builtin/create_messages
    onError: { action: retry, maxAttempts: 3 }
    input: { user_prompt: hi }
output: { $from: { step: a } }
`));
  const d = find(ds, "unknown_key");
  assertStrictEquals(d.path, "$.steps[0].onError.maxAttempts");
  assertStrictEquals(
    d.hint,
    "did you mean 'maxRetries'? It counts retries after the first attempt: maxAttempts: N is maxRetries: N-1",
  );
  // where there is no maxRetries, the key gets no such hint
  assertStrictEquals(suggestKey("maxAttempts", ["steps", "output"]), undefined);
});
