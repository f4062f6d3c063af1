/**
 * `stepflow validate` as a real subprocess: exit codes, text and JSON output, no stack traces.
 * @module
 */
import {
  assert,
  assertEquals,
  assertStrictEquals,
  assertStringIncludes,
  withTempDir,
} from "../_assert.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const FLOWS = "tests/fixtures/flows";

async function validate(
  ...args: string[]
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "main.ts", "validate", ...args],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

function noStack(s: string): void {
  assert(!/\n\s+at /.test(s), `no stack trace in: ${s}`);
  assert(!s.includes("Caused by"), `no cause dump in: ${s}`);
}

Deno.test("stepflow validate: a valid flow exits 0 with no warnings", async () => {
  const r = await validate("--flow", `${FLOWS}/valid.yaml`);
  assertStrictEquals(r.code, 0, r.stderr);
  assertStringIncludes(r.stdout, "✅ Validation passed with no errors");
  assert(!r.stdout.includes("warning"), r.stdout);
});

Deno.test("stepflow validate: warnings carry file:line:col and a suggestion", async () => {
  await withTempDir(async (dir) => {
    const f = `${dir}/flow.yaml`;
    await Deno.writeTextFile(
      f,
      "schema: https://stepflow.org/schemas/v1/flow.json\nname: n\ndescription: d\nsteps:\n" +
        "  - id: a\n    component: /builtin/create_messages\n    skip: true\n" +
        "    input: {user_prompt: hi}\noutput: {$from: {step: a}}\n",
    );
    const r = await validate("--flow", f);
    assertStrictEquals(r.code, 0, r.stderr);
    assertStringIncludes(r.stdout, `${f}:7:5: warning:`);
    assertStringIncludes(r.stdout, "skipIf");
  });
});

Deno.test("stepflow validate: a duplicate step id exits 1 with file:line:col", async () => {
  const r = await validate("--flow", `${FLOWS}/duplicate_step_id.yaml`);
  assertStrictEquals(r.code, 1);
  assertStringIncludes(
    r.stdout,
    `${FLOWS}/duplicate_step_id.yaml:8:9: fatal: Duplicate step ID: 'a' [$.steps[1].id]`,
  );
  assertStringIncludes(r.stdout, "❌ Validation failed: 1 fatal, 0 errors, 0 warnings");
  noStack(r.stdout + r.stderr);
});

Deno.test("stepflow validate: a duplicate YAML key exits 2 naming both lines", async () => {
  const r = await validate("--flow", `${FLOWS}/duplicate_yaml_key.yaml`);
  assertStrictEquals(r.code, 2);
  assertStrictEquals(
    r.stderr,
    `error: ${FLOWS}/duplicate_yaml_key.yaml:8:5: Duplicate key 'input' (first defined at line 7, column 5): remove one of them\n` +
      " 8 |     input: { user_prompt: again }\n" +
      "   |     ^\n",
  );
  assertStrictEquals(r.stdout, "");
});

Deno.test("stepflow validate: a reference to an undefined step exits 1", async () => {
  const r = await validate("--flow", `${FLOWS}/undefined_step.yaml`);
  assertStrictEquals(r.code, 1);
  assertStringIncludes(
    r.stdout,
    `${FLOWS}/undefined_step.yaml:8:20: fatal: Step 'a' references undefined step 'nowhere' [$.steps[0].input.user_prompt]`,
  );
  noStack(r.stdout + r.stderr);
});

Deno.test("stepflow validate: a reference to a later step exits 1 and says why", async () => {
  const r = await validate("--flow", `${FLOWS}/later_step.yaml`);
  assertStrictEquals(r.code, 1);
  assertStringIncludes(r.stdout, "fatal: Step 'first' references undefined step 'second'");
  assertStringIncludes(r.stdout, "'second' is defined later (steps[1])");
});

Deno.test("stepflow validate: a typo'd key 'stpes' is named with a suggestion", async () => {
  const r = await validate("--flow", `${FLOWS}/typo_key.yaml`);
  assertStrictEquals(r.code, 1, "the output then references an undefined step");
  assertStringIncludes(
    r.stdout,
    `${FLOWS}/typo_key.yaml:4:1: warning: Unknown key 'stpes' in the flow is ignored [$.stpes] (did you mean 'steps'?)`,
  );
  assertStringIncludes(
    r.stdout,
    "fatal: Reference to undefined step 'a' [$.output] (the flow has no 'steps': is 'stpes' a misspelling of 'steps'?)",
  );
});

Deno.test("stepflow validate: an unterminated flow mapping exits 2 pointing at its '{'", async () => {
  const r = await validate("--flow", `${FLOWS}/unterminated_flow_map.yaml`);
  assertStrictEquals(r.code, 2);
  assertStringIncludes(
    r.stderr,
    `error: ${FLOWS}/unterminated_flow_map.yaml:8:20: YAML syntax error: this flow mapping is not closed`,
  );
  assertStrictEquals(
    r.stderr.split("\n").slice(1).join("\n"),
    " 8 |       user_prompt: {$from: {step: a}\n   |                    ^\n",
    "the line, with a caret under the '{'",
  );
  noStack(r.stderr);
});

Deno.test("stepflow validate --format json prints diagnostics for editors", async () => {
  const r = await validate("--flow", `${FLOWS}/later_step.yaml`, "--format", "json");
  assertStrictEquals(r.code, 1);
  const report = JSON.parse(r.stdout);
  assertStrictEquals(report.numFatal, 1);
  assertStrictEquals(report.numError, 0);
  const d = report.diagnostics.find((x: { code: string }) => x.code === "undefined_step");
  assertEquals(d.position, { file: `${FLOWS}/later_step.yaml`, line: 8, col: 20 });
  assertStrictEquals(d.path, "$.steps[0].input.user_prompt");
  assertStrictEquals(d.level, "fatal");

  const bad = await validate("--flow", `${FLOWS}/duplicate_yaml_key.yaml`, "--format", "json");
  assertStrictEquals(bad.code, 2);
  const loadErr = JSON.parse(bad.stdout);
  assertStrictEquals(loadErr.numFatal, 1);
  assertEquals(loadErr.diagnostics[0].position, {
    file: `${FLOWS}/duplicate_yaml_key.yaml`,
    line: 8,
    col: 5,
  });
  assertStringIncludes(loadErr.diagnostics[0].message, "Duplicate key 'input'");
});

Deno.test("stepflow validate: config errors and usage errors", async () => {
  const cfg = await validate(
    "--flow",
    `${FLOWS}/valid.yaml`,
    "--config",
    "tests/fixtures/configs/unknown_plugin.yml",
  );
  assertStrictEquals(cfg.code, 1);
  assertStringIncludes(
    cfg.stdout,
    "tests/fixtures/configs/unknown_plugin.yml:6:15: error: Routing rule 0 for path '/builtin/{*component}' references unknown plugin 'builtn'",
  );
  const missing = await validate("--flow", `${FLOWS}/nope.yaml`);
  assertStrictEquals(missing.code, 2);
  assertStringIncludes(missing.stderr, `Cannot read flow file '${FLOWS}/nope.yaml': no such file`);
  const fmt = await validate("--flow", `${FLOWS}/valid.yaml`, "--format", "xml");
  assertStrictEquals(fmt.code, 2);
  const noFlow = await validate();
  assertStrictEquals(noFlow.code, 2);
  assertStringIncludes(noFlow.stderr, "--flow");
});

const SHAPE_AND_MORE = `schema: https://stepflow.org/schemas/v1/flow.json
steps:
  - id: a
    component: /builtin/create_messages
    timeout: banana
    input: { user_prompt: { $from: { step: zz } } }
  - id: b
    component: /builtin/create_messages
    onError: { action: explode }
    input: { user_prompt: { $from: { step: a } } }
  - id: a
    component: /builtin/eval
output: { $from: { step: nope } }
`;

Deno.test("stepflow validate: 'timeout: banana' does not hide the other problems: every diagnostic in one pass (exit 2)", async () => {
  await withTempDir(async (dir) => {
    const file = `${dir}/flow.yaml`;
    await Deno.writeTextFile(file, SHAPE_AND_MORE);
    // was: only "error: ...:5:14: Invalid flow: $.steps[0].timeout: ... (and 1 more problem(s))"
    const r = await validate("--flow", file);
    assertStrictEquals(r.code, 2, r.stderr);
    for (
      const line of [
        `${file}:5:14: fatal: a duration such as 500ms, 30s, 5m or 1h, got the string "banana" [$.steps[0].timeout]`,
        `${file}:6:27: fatal: Step 'a' references undefined step 'zz' [$.steps[0].input.user_prompt]`,
        `${file}:9:24: fatal: unknown action "explode" (expected one of fail, skip, useDefault, retry) [$.steps[1].onError.action]`,
        `${file}:11:9: fatal: Duplicate step ID: 'a' [$.steps[2].id]`,
        `${file}:13:9: fatal: Reference to undefined step 'nope' [$.output]`,
        "❌ Validation failed: 5 fatal, 0 errors,",
      ]
    ) assertStringIncludes(r.stdout, line);
    // in source order, each once
    const at = (s: string) => r.stdout.indexOf(s);
    assert(
      at(":5:14:") < at(":6:27:") && at(":6:27:") < at(":9:24:") && at(":9:24:") < at(":11:9:"),
    );
    assertStrictEquals(r.stdout.split("[$.steps[1].onError").length, 2, r.stdout);
    noStack(r.stdout + r.stderr);

    const json = await validate("--flow", file, "--format", "json");
    assertStrictEquals(json.code, 2);
    const report = JSON.parse(json.stdout);
    assertStrictEquals(report.numFatal, 5);
    assertStrictEquals(report.shapeError, undefined);
    const shape = report.diagnostics.filter((d: { code?: string }) => d.code === "invalid_flow");
    assertEquals(shape.map((d: { path: string }) => d.path), [
      "$.steps[0].timeout",
      "$.steps[1].onError.action",
    ]);
    assertEquals(shape[0].position, { file, line: 5, col: 14 });

    // a wrong required key: every shape problem, though the other checks cannot run
    await Deno.writeTextFile(
      file,
      SHAPE_AND_MORE.replace("component: /builtin/eval", "component: 42"),
    );
    const req = await validate("--flow", file);
    assertStrictEquals(req.code, 2);
    assertStringIncludes(req.stdout, "[$.steps[0].timeout]");
    assertStringIncludes(req.stdout, "[$.steps[1].onError.action]");
    assertStringIncludes(
      req.stdout,
      `${file}:12:16: fatal: expected a string, got the number 42 [$.steps[2].component]`,
    );
    assertStringIncludes(req.stdout, "❌ Validation failed: 3 fatal");

    // a config of the wrong shape: every problem too, and the flow is still checked
    await Deno.writeTextFile(file, SHAPE_AND_MORE);
    await Deno.writeTextFile(`${dir}/c.yml`, "plugins:\n  x: { type: nope }\nroutes: 5\n");
    const cfg = await validate("--flow", file, "--config", `${dir}/c.yml`);
    assertStrictEquals(cfg.code, 2, cfg.stderr);
    assertStringIncludes(
      cfg.stdout,
      `${dir}/c.yml:2:14: fatal: unknown type "nope" [$.plugins.x.type]`,
    );
    assertStringIncludes(
      cfg.stdout,
      `${dir}/c.yml:3:9: fatal: expected a mapping, got the number 5 [$.routes]`,
    );
    assertStringIncludes(cfg.stdout, "fatal: Duplicate step ID: 'a'");
  });
});
