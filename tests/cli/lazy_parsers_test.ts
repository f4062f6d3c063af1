/**
 * `stepflow run` imports the `yaml`, `jsonc-parser` and `ajv` packages only when a run needs
 * them (issue 17, goal 5: cold start): its static import graph reaches none of them, and the
 * files that need them still load, with every diagnostic's file:line:col.
 * @module
 */
import { assert, assertEquals, assertStrictEquals, REPO_ROOT, runCli } from "../_assert.ts";
import { withTempDir } from "../_assert.ts";
import { parseJson } from "../../src/json/exact_json.ts";
import { staticImports } from "../_static_imports.ts";

Deno.test("stepflow run: no static import reaches yaml, jsonc-parser, ajv or the MCP SDK", async () => {
  // the CLI loads the `run` subcommand's module with a dynamic import: both graphs count
  const loaded = [
    ...new Set([...await staticImports("main.ts"), ...await staticImports("src/cli/run.ts")]),
  ];
  assert(loaded.some((s) => s.endsWith("/src/cli/run.ts")), "src/cli/run.ts is read");
  const heavy = loaded.filter((s) =>
    /npm[:/]+(yaml|jsonc-parser|ajv|@modelcontextprotocol)@/.test(s) ||
    s.endsWith("/src/core/document.ts") || s.endsWith("/src/flow/load.ts")
  );
  assertEquals(heavy, []);
});

const FLOW_HEAD = "schema: https://stepflow.org/schemas/v1/flow.json\nname: lazy\n";

Deno.test("stepflow run: YAML outside the fast subset and .jsonc flows still load", async () => {
  await withTempDir(async (dir) => {
    // anchors and aliases: the fast reader declines them, the `yaml` package reads them
    await Deno.writeTextFile(
      `${dir}/stepflow-config.yml`,
      "plugins:\n  builtin: &b { type: builtin }\n" +
        'routes:\n  "/builtin/{*component}":\n    - plugin: builtin\n',
    );
    await Deno.writeTextFile(
      `${dir}/anchors.yaml`,
      FLOW_HEAD + "steps:\n  - id: m\n    component: /builtin/create_messages\n" +
        "    input: &in { user_prompt: { $from: { workflow: input }, path: who } }\n" +
        'output: { p: { $from: { step: m }, path: "$.messages[0].content" } }\n',
    );
    const a = await runCli([
      "run",
      "--flow",
      `${dir}/anchors.yaml`,
      "--config",
      `${dir}/stepflow-config.yml`,
      "--input-yaml",
      "who: &w Ada\nalso: *w\n",
    ]);
    assertStrictEquals(a.code, 0, a.stderr);
    assertStrictEquals(a.stdout, '{"outcome":"success","result":{"p":"Ada"}}\n');

    await Deno.writeTextFile(
      `${dir}/flow.jsonc`,
      `{
  // comments and trailing commas: read by jsonc-parser
  "schema": "https://stepflow.org/schemas/v1/flow.json",
  "steps": [
    { "id": "m", "component": "/builtin/create_messages",
      "input": { "user_prompt": { "$from": { "workflow": "input" }, "path": "who" } } },
  ],
  "output": { "p": { "$from": { "step": "m" }, "path": "$.messages[0].content" }, "n": 15.0 },
}
`,
    );
    const j = await runCli([
      "run",
      "--flow",
      `${dir}/flow.jsonc`,
      "--config",
      `${dir}/stepflow-config.yml`,
      "--input-json",
      '{"who":"Bo"}',
      "--output",
      `${dir}/out.yaml`,
    ]);
    assertStrictEquals(j.code, 0, j.stderr);
    assertStrictEquals(
      await Deno.readTextFile(`${dir}/out.yaml`),
      "outcome: success\nresult:\n  p: Bo\n  n: 15.0\n",
    );
  });
});

Deno.test("stepflow run: syntax errors keep their file:line:col after the lazy load", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/bad.yaml`, FLOW_HEAD + "steps: [\n  - id: a\n");
    const y = await runCli(["run", "--flow", `${dir}/bad.yaml`]);
    assertStrictEquals(y.code, 2, y.stderr);
    assert(y.stderr.includes(`${dir}/bad.yaml:3:8: YAML syntax error`), y.stderr);

    await Deno.writeTextFile(`${dir}/dup.yaml`, FLOW_HEAD + "name: again\nsteps: []\n");
    const d = await runCli(["run", "--flow", `${dir}/dup.yaml`]);
    assertStrictEquals(d.code, 2, d.stderr);
    assert(
      d.stderr.includes(
        `${dir}/dup.yaml:3:1: Duplicate key 'name' (first defined at line 2, column 1)`,
      ),
      d.stderr,
    );

    await Deno.writeTextFile(`${dir}/bad.json`, '{"schema": "x",\n "steps": [1,]}');
    const j = await runCli(["run", "--flow", `${dir}/bad.json`]);
    assertStrictEquals(j.code, 2, j.stderr);
    assert(j.stderr.includes(`${dir}/bad.json:2:14: JSON syntax error`), j.stderr);

    const i = await runCli([
      "run",
      "--flow",
      `${REPO_ROOT}/tests/fixtures/cli/run/greet.yaml`,
      "--input-json",
      '{"who": {"name": "Ada"},\n "score": }',
    ]);
    assertStrictEquals(i.code, 2, i.stderr);
    assert(i.stderr.includes("--input-json:2:11: JSON syntax error"), i.stderr);
  });
});

Deno.test("stepflow run: --input-json keeps exact numbers on the fast path", async () => {
  const r = await runCli([
    "run",
    "--flow",
    `${REPO_ROOT}/tests/fixtures/cli/run/greet.yaml`,
    "--input-json",
    '{"who":{"name":"Ada"},"score":9007199254740993}',
  ]);
  assertStrictEquals(r.code, 0, r.stderr);
  assertEquals(parseJson(r.stdout), {
    outcome: "success",
    result: { prompt: "Ada", score: parseJson("9007199254740993") },
  });
  assert(r.stdout.includes('"score":9007199254740993'), r.stdout);
});
