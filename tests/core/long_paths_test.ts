/**
 * Very long paths in messages: a JSON path over 200 characters is shown with its middle elided,
 * once, in human text (its full text stays in machine-readable fields: a diagnostic's `path`, a
 * ShapeError's `problems`); a file path is named once, not once per layer of the error. Before:
 * a flow nested 300 levels deep gave lines of several KB (`stepflow validate`), a ShapeError whose
 * message repeated the whole path of its first problem, and a `/builtin/load_file` of a long
 * missing path named it three times in its message, which `stepflow run` printed twice.
 */
import {
  assert,
  assertStrictEquals,
  assertStringIncludes,
  runCli,
  withTempDir,
} from "../_assert.ts";
import { elideMiddle, MAX_SHOWN_PATH } from "../../src/core/elide.ts";
import { formatDiagnostic } from "../../src/core/diagnostics.ts";
import { ShapeError } from "../../src/flow/load.ts";
import { parseConfigValue } from "../../src/config/load.ts";
import { Engine } from "../../src/execution/engine.ts";
import { flow, testConfig } from "../execution/_engine_helpers.ts";
import type { JsonValue } from "../../src/json/exact_json.ts";

const DEPTH = 300;

/** A value nested `DEPTH` levels deep (`{k299: {k298: ... {k0: inner}}}`). */
function deep(inner: JsonValue): JsonValue {
  let v = inner;
  for (let i = 0; i < DEPTH; i++) v = { [`k${i}`]: v };
  return v;
}

/** The JSON path of {@linkcode deep}'s inner value under `prefix`. */
function deepPath(prefix: string): string {
  let p = prefix;
  for (let i = DEPTH - 1; i >= 0; i--) p += `.k${i}`;
  return p;
}

function count(text: string, part: string): number {
  return text.split(part).length - 1;
}

/** A flow whose output nests a `$from` with a wrong key (`stepp`) 300 levels deep. */
const DEEP_FLOW = {
  schema: "https://stepflow.org/schemas/v1/flow.json",
  name: "deep",
  steps: [{ id: "a", component: "/builtin/create_messages", input: { user_prompt: "x" } }],
  output: deep({ $from: { step: 5 } }),
};

Deno.test("elideMiddle keeps short text, and the start and end of long text with what was cut", () => {
  assertStrictEquals(elideMiddle("$.a.b"), "$.a.b");
  const long = deepPath("$.output");
  const shown = elideMiddle(long);
  assert(shown.length <= MAX_SHOWN_PATH + 30, `${shown.length}: ${shown}`);
  assert(shown.startsWith("$.output.k299.k298"), shown);
  assert(shown.endsWith(".k2.k1.k0"), shown);
  assertStringIncludes(shown, ` chars elided)`);
});

Deno.test("a diagnostic at a 300-level-deep JSON path is one short line; its `path` stays whole", () => {
  const long = deepPath("$.output");
  const line = formatDiagnostic({ level: "fatal", message: "bad", path: long });
  assert(line.length < 300, `${line.length}: ${line}`);
  assertStringIncludes(line, "fatal: bad [$.output.k299.k298");
  assert(line.endsWith(".k1.k0]"), line);
});

Deno.test("a ShapeError at a 400-character path names it once, elided; its problems keep it whole", () => {
  const name = "p".repeat(400);
  let error: unknown;
  try {
    parseConfigValue({ plugins: { [name]: { type: 5 } } }, { workingDirectory: Deno.cwd() });
  } catch (e) {
    error = e;
  }
  assert(error instanceof ShapeError, String(error));
  assertStrictEquals(error.problems[0].path, `$.plugins.${name}.type`);
  // before: "Invalid config: $.plugins.ppp...(400 p).type: ..."
  assert(error.message.length < 350, `${error.message.length}: ${error.message}`);
  assertStringIncludes(error.message, "Invalid config: $.plugins.ppp");
  assertStringIncludes(error.message, "chars elided)");
});

Deno.test("stepflow validate of a 300-level-deep flow: each line short, the path whole in --format json", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/deep.json`, JSON.stringify(DEEP_FLOW));
    const text = await runCli(["validate", "--flow", `${dir}/deep.json`]);
    assertStrictEquals(text.code, 1, text.stdout + text.stderr);
    const out = text.stdout + text.stderr;
    for (const line of out.split("\n")) assert(line.length < 600, `${line.length}: ${line}`);
    assertStringIncludes(out, "[$.output.k299.k298");
    const json = await runCli(["validate", "--flow", `${dir}/deep.json`, "--format", "json"]);
    assertStringIncludes(json.stdout, `${deepPath("$.output")}.$from.step`);
  });
});

Deno.test("/builtin/load_file of a long missing path names it once; stepflow run does not print the message twice", async () => {
  await withTempDir(async (dir) => {
    const missing = `${dir}/${
      Array.from({ length: 40 }, (_, i) => `directory_level_${i}`).join("/")
    }/missing.json`;
    const f = flow(`steps:
  - id: a
    component: /builtin/load_file
    input: { path: ${JSON.stringify(missing)} }
output: { $from: { step: a } }
`);
    const engine = await Engine.create(testConfig());
    try {
      const r = await engine.run(f, null);
      assert(r.outcome === "failed", JSON.stringify(r));
      // before: "Cannot read '<path>' (path '<path>'): No such file ... stat '<path>'"
      assertStrictEquals(count(r.error.message, missing), 1, r.error.message);
      assertStringIncludes(r.error.message, "No such file or directory");
    } finally {
      await engine.close();
    }
    await Deno.writeTextFile(
      `${dir}/flow.yaml`,
      `schema: https://stepflow.org/schemas/v1/flow.json
steps:
  - id: a
    component: /builtin/load_file
    input: { path: ${JSON.stringify(missing)} }
output: { $from: { step: a } }
`,
    );
    await Deno.writeTextFile(
      `${dir}/stepflow-config.yml`,
      `plugins: { builtin: { type: builtin } }
routes: { "/builtin/{*component}": [{ plugin: builtin }] }
`,
    );
    const cli = await runCli(["run", "--flow", `${dir}/flow.yaml`, "--input-json", "null"]);
    assertStrictEquals(cli.code, 1, cli.stderr);
    assertStrictEquals(count(cli.stderr, missing), 1, cli.stderr);
    assertStringIncludes(cli.stderr, "  failed step 'a' (");
    assertStringIncludes(cli.stderr, "): the error above\n");
  });
});
