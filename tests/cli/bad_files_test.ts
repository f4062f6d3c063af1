/**
 * Files as users' tools write them (issue 10, items 10 and 14): flows and inputs that are not
 * UTF-8 are errors with file:line:col instead of being read with U+FFFD; a byte-order mark is
 * accepted; `stepflow test` keeps stdout for its report.
 */
import { assertStrictEquals, assertStringIncludes, REPO_ROOT, runCli } from "../_assert.ts";

const DIR = `${REPO_ROOT}/tests/fixtures/cli/bad_files`;

Deno.test("stepflow run/validate: a Latin-1 flow is an error at the first bad byte, nothing runs", async () => {
  for (const cmd of ["run", "validate"]) {
    const args = cmd === "run"
      ? ["run", "--flow", `${DIR}/latin1.yaml`, "--input-json", "{}"]
      : ["validate", "--flow", `${DIR}/latin1.yaml`];
    const r = await runCli(args);
    assertStrictEquals(r.code, 2, r.stderr);
    assertStrictEquals(r.stdout, "");
    assertStringIncludes(
      r.stderr,
      "latin1.yaml:7:24: the file is not valid UTF-8 (byte 0xE9 at byte offset 169)",
    );
  }
});

Deno.test("stepflow run: an input file or stdin that is not UTF-8 is a usage error with its position", async () => {
  const file = await runCli([
    "run",
    "--flow",
    `${DIR}/bom.json`,
    "--input",
    `${DIR}/latin1_input.json`,
  ]);
  assertStrictEquals(file.code, 2, file.stderr);
  assertStringIncludes(file.stderr, "latin1_input.json:1:14: the file is not valid UTF-8");
  const cmd = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", `${REPO_ROOT}/main.ts`, "run", "--flow", `${DIR}/bom.json`],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  });
  const child = cmd.spawn();
  const w = child.stdin.getWriter();
  await w.write(new Uint8Array([...new TextEncoder().encode('{"a":"'), 0xff, 0x22, 0x7d]));
  await w.close();
  const out = await child.output();
  assertStrictEquals(out.code, 2);
  assertStringIncludes(
    new TextDecoder().decode(out.stderr),
    "stdin:1:7: the input is not valid UTF-8 (byte 0xFF at byte offset 6)",
  );
});

Deno.test("stepflow run: JSON and YAML flows starting with a byte-order mark run", async () => {
  const json = await runCli(["run", "--flow", `${DIR}/bom.json`, "--input-json", '{"a":1}']);
  assertStrictEquals(json.code, 0, json.stderr);
  assertStrictEquals(json.stdout, '{"outcome":"success","result":{"a":1}}\n');
  const yaml = await runCli(["run", "--flow", `${DIR}/bom.yaml`, "--input-json", '{"name":"é"}']);
  assertStrictEquals(yaml.code, 0, yaml.stderr);
  assertStrictEquals(yaml.stdout, '{"outcome":"success","result":"é"}\n');
});

Deno.test("stepflow test: a missing path is an error on stderr, stdout stays empty", async () => {
  const r = await runCli(["test", "nope"]);
  assertStrictEquals(r.code, 2);
  assertStrictEquals(r.stdout, "");
  assertStrictEquals(r.stderr, "error: cannot read 'nope': no such file or directory\n");
});

Deno.test("stepflow run/test: a flow written by Pydantic with null for every unset optional field runs", async () => {
  const file = `${DIR}/pydantic_nulls.json`;
  const r = await runCli(["run", "--flow", file, "--input-json", '{"x":7}']);
  assertStrictEquals(r.code, 0, r.stderr);
  assertStrictEquals(r.stdout, '{"outcome":"success","result":7}\n');
  const t = await runCli(["test", file]);
  assertStrictEquals(t.code, 0, t.stdout + t.stderr);
  assertStringIncludes(t.stdout, "1/1 passed");
});

Deno.test("stepflow validate/run: 'user_prompt: {{ name }}' is flagged at file:line:col, nothing runs", async () => {
  const v = await runCli(["validate", "--flow", `${DIR}/brace_prompt.yaml`]);
  assertStrictEquals(v.code, 1, v.stdout + v.stderr);
  assertStringIncludes(
    v.stdout + v.stderr,
    "brace_prompt.yaml:9:20: error: '{{ name }}' is not text: YAML reads it as a mapping",
  );
  assertStringIncludes(v.stdout + v.stderr, 'quote it to pass the text ("{{ name }}"');
  const r = await runCli(["run", "--flow", `${DIR}/brace_prompt.yaml`, "--input-json", "{}"]);
  assertStrictEquals(r.code, 2, r.stderr);
  assertStrictEquals(r.stdout, "");
  assertStringIncludes(r.stderr, "brace_prompt.yaml:9:20: error: '{{ name }}' is not text");
});

Deno.test("stepflow validate/run: $from with both a step and the workflow is fatal, nothing runs", async () => {
  const v = await runCli(["validate", "--flow", `${DIR}/two_sources.yaml`]);
  assertStringIncludes(
    v.stdout + v.stderr,
    "two_sources.yaml:8:18: fatal: Invalid reference expression: $from has both 'step' and 'workflow'",
  );
  const r = await runCli(["run", "--flow", `${DIR}/two_sources.yaml`, "--input-json", "{}"]);
  assertStrictEquals(r.code, 2, r.stderr);
  assertStrictEquals(r.stdout, "");
});
