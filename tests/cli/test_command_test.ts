import { assert, assertStrictEquals, assertStringIncludes, withTempDir } from "../_assert.ts";
import { REPO_ROOT, runCli } from "../_assert.ts";

const MIXED = `${REPO_ROOT}/tests/fixtures/cli/test_command/mixed`;

Deno.test("stepflow test reports a broken flow with its location and skips a manifest with a notice", async () => {
  const r = await runCli(["test", MIXED]);
  assertStrictEquals(r.code, 1);
  assertStringIncludes(r.stdout, "broken_flow.yaml:4:5");
  assertStringIncludes(r.stdout, "missing required key 'component'");
  assertStringIncludes(r.stdout, "deployment.yaml: skipped, not a flow");
  assertStringIncludes(r.stdout, "stepflow-config.yml: skipped, not a flow");
  assertStringIncludes(r.stdout, "Running Test Case passes");
  assertStringIncludes(
    r.stdout,
    "Test Case fails failed. New Output:\noutcome: success\nresult: ho\n",
  );
  assertStringIncludes(r.stdout, "good.yaml: 1/2 passed");
  assertStringIncludes(r.stdout, "Execution errors: 1\n");
  const lines = r.stdout.trimEnd().split("\n");
  assertStrictEquals(lines.at(-1), "1 passed, 2 failed");
});

Deno.test("stepflow test --case selects cases and --diff prints a line diff", async () => {
  const r = await runCli(["test", `${MIXED}/good.yaml`, "--case", "fails", "--diff"]);
  assertStrictEquals(r.code, 1);
  assertStringIncludes(
    r.stdout,
    "--- Expected\n+++ Actual\n outcome: success\n-result: 15.0\n+result: ho\n",
  );
  assertStrictEquals(r.stdout.trimEnd().split("\n").at(-1), "0 passed, 1 failed");
  const ok = await runCli(["test", `${MIXED}/good.yaml`, "--case", "passes"]);
  assertStrictEquals(ok.code, 0);
  assertStrictEquals(ok.stdout.trimEnd().split("\n").at(-1), "1 passed, 0 failed");
});

Deno.test("stepflow test --update writes actual outputs into the flow file", async () => {
  await withTempDir(async (dir) => {
    await Deno.copyFile(`${MIXED}/good.yaml`, `${dir}/good.yaml`);
    await Deno.copyFile(`${MIXED}/stepflow-config.yml`, `${dir}/stepflow-config.yml`);
    const r = await runCli(["test", `${dir}/good.yaml`, "--update"]);
    assertStrictEquals(r.code, 1);
    const again = await runCli(["test", `${dir}/good.yaml`]);
    assertStrictEquals(again.code, 0, again.stdout);
    assertStrictEquals(again.stdout.trimEnd().split("\n").at(-1), "2 passed, 0 failed");
  });
});

Deno.test("stepflow test reports a flow without cases as skipped", async () => {
  const r = await runCli(["test", `${REPO_ROOT}/tests/fixtures/suite/no_cases.yaml`]);
  assertStrictEquals(r.code, 0);
  assertStringIncludes(r.stdout, "no_cases.yaml: Skipped (no test cases)");
  assertStrictEquals(r.stdout.trimEnd().split("\n").at(-1), "0 passed, 0 failed, 1 skipped");
});

Deno.test("stepflow test starts test.servers, fills {name.url} into test.config, and stops them", async () => {
  // The fixtures start `deno` from PATH: make it this Deno (CI runs Deno through npx).
  const PATH = `${Deno.execPath().replace(/\/[^/]*$/, "")}:${Deno.env.get("PATH") ?? ""}`;
  const r = await runCli(["test", `${REPO_ROOT}/tests/fixtures/cli/test_command/servers`], {
    env: { PATH },
  });
  assertStrictEquals(r.code, 1);
  assertStringIncludes(r.stdout, "doubled.yaml: 1/1 passed");
  // where the server is in the file, how it ended, the end of its stderr
  assertStringIncludes(
    r.stdout,
    "early_exit.yaml: error: a test server could not be started:\n" +
      `  ${REPO_ROOT}/tests/fixtures/cli/test_command/servers/early_exit.yaml:11:5: error: ` +
      "test server 'worker' exited with code 3 before it was ready",
  );
  assertStringIncludes(r.stdout, "[$.test.servers.worker]\n 11 |     worker:\n    |     ^\n");
  assertStringIncludes(
    r.stdout,
    "  its stderr ended with (last 1 line):\n    boom: cannot bind\n",
  );
  assertStrictEquals(r.stdout.trimEnd().split("\n").at(-1), "1 passed, 1 failed");
});

Deno.test("stepflow test prefers stepflow-config.test.yml, and --config over it", async () => {
  const dir = `${REPO_ROOT}/tests/fixtures/cli/test_command/precedence`;
  const r = await runCli(["test", `${dir}/uses_test_config.yaml`]);
  assertStrictEquals(r.code, 0, r.stdout);
  const r2 = await runCli([
    "test",
    `${dir}/uses_test_config.yaml`,
    "--config",
    `${dir}/stepflow-config.yml`,
  ]);
  assertStrictEquals(r2.code, 1);
  assertStringIncludes(r2.stdout, "No matching rule found for component: /builtin/create_messages");
});

Deno.test("stepflow test: a file name as test.config says where a config file goes instead", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(
      `${dir}/flow.yaml`,
      `schema: https://stepflow.org/schemas/v1/flow.json
name: x
steps: []
output: 1
test:
  config: cfg.yml
  cases: [{ name: a, input: {}, output: { outcome: success, result: 1 } }]
`,
    );
    const r = await runCli(["test", "flow.yaml"], { cwd: dir });
    assertStrictEquals(r.code, 1, r.stdout + r.stderr);
    assertStringIncludes(
      r.stdout,
      `flow.yaml:6:11: A config (inline config) must be a mapping with 'plugins' and 'routes', got the string "cfg.yml" (an inline config is not a file name: write the config here, or put it in stepflow-config.test.yml next to the flow, or pass --config)`,
    );
  });
});

Deno.test("stepflow test whose stdout reader went away (| head) still finishes: its own exit code, no 'Broken pipe'", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(
      `${dir}/flow.yaml`,
      `schema: https://stepflow.org/schemas/v1/flow.json
name: x
steps: []
output: 2
test:
  cases: [{ name: a, input: {}, output: { outcome: success, result: 1 } }]
`,
    );
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--quiet", `${REPO_ROOT}/main.ts`, "test", "flow.yaml"],
      cwd: dir,
      env: { NO_COLOR: "1" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    await child.stdout.cancel(); // the reader is gone before the first line is written
    const [status, stderr] = await Promise.all([
      child.status,
      new Response(child.stderr).text(),
    ]);
    assertStrictEquals(status.code, 1, stderr);
    assertStrictEquals(stderr, "");
  });
});

Deno.test("stepflow test --case with a name no file has is an error (exit 2), not a silent pass", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(
      `${dir}/flow.yaml`,
      `schema: https://stepflow.org/schemas/v1/flow.json
name: x
steps: []
output: 1
test:
  cases: [{ name: one, input: {}, output: { outcome: success, result: 1 } }]
`,
    );
    const r = await runCli(["test", "flow.yaml", "--case", "onee"], { cwd: dir });
    assertStrictEquals(r.code, 2, r.stdout + r.stderr);
    assertStringIncludes(r.stdout, "flow.yaml: Skipped (no case named 'onee')");
    assertStrictEquals(
      r.stderr,
      "error: --case 'onee' matched no test case (the cases are: 'one')\n",
    );
    const ok = await runCli(["test", "flow.yaml", "--case", "one"], { cwd: dir });
    assertStrictEquals(ok.code, 0, ok.stdout + ok.stderr);
  });
});

Deno.test("stepflow test: test.servers numbers as written (1.5e3) work; wrong ones are errors, not the default", async () => {
  await withTempDir(async (dir) => {
    const flow = (server: string) =>
      `schema: https://stepflow.org/schemas/v1/flow.json
name: x
steps: []
output: 1
test:
  servers:
    a: { command: ${
        JSON.stringify(Deno.execPath())
      }, args: [eval, "setTimeout(() => {}, 60000)"], ${server} }
  cases: [{ name: c, input: {}, output: { outcome: success, result: 1 } }]
`;
    // [the server's extra keys, the wrong value (its column is in the error), the error]
    const cases: [string, string, string][] = [
      [
        'startupTimeoutMs: "soon"',
        '"soon"',
        `error: test server 'a': startupTimeoutMs must be a number of milliseconds (or a count) >= 0, got "soon" [$.test.servers.a.startupTimeoutMs]`,
      ],
      [
        "portRange: [5, 1]",
        "[5, 1]",
        "error: test server 'a': portRange must be [low, high], whole numbers with 1 <= low <= high <= 65535, got [5,1] [$.test.servers.a.portRange]",
      ],
      [
        "startupTimeoutMs: 5e2, shutdownTimeoutMs: 1e2",
        "a: {",
        "error: test server 'a' was not ready on port",
      ],
    ];
    for (const [server, value, expected] of cases) {
      const text = flow(server);
      await Deno.writeTextFile(`${dir}/flow.yaml`, text);
      const r = await runCli(["test", "flow.yaml"], { cwd: dir });
      assertStrictEquals(r.code, 1, r.stdout + r.stderr);
      // at the value's (the server's) line and column, as config errors are
      const col = text.split("\n")[6].indexOf(value) + 1;
      assertStringIncludes(r.stdout, `  flow.yaml:7:${col}: ${expected}`);
    }
    const late = await runCli(["test", "flow.yaml"], { cwd: dir });
    assertStringIncludes(late.stdout, "within 500 ms");
  });
});

Deno.test("stepflow test: a test server that dies at start is reported at its file:line:col with its exit code and the last lines of its stderr", async () => {
  // Before: "flow.yaml: error: test server 'w' exited before it was ready; its stderr ended with:"
  // and the last 2000 characters: no place in the file, no exit code.
  await withTempDir(async (dir) => {
    const script = "for (let i = 0; i < 30; i++) console.error('line ' + i); Deno.exit(7)";
    await Deno.writeTextFile(
      `${dir}/flow.yaml`,
      `schema: https://stepflow.org/schemas/v1/flow.json
name: t
steps: []
output: 1
test:
  servers:
    w:
      command: ${JSON.stringify(Deno.execPath())}
      args: [eval, ${JSON.stringify(script)}]
  cases:
    - { name: one, input: {}, output: { outcome: success, result: 1 } }
`,
    );
    const r = await runCli(["test", "flow.yaml"], { cwd: dir });
    assertStrictEquals(r.code, 1, r.stdout + r.stderr);
    assertStringIncludes(
      r.stdout,
      "flow.yaml: error: a test server could not be started:\n  flow.yaml:7:5: error: test server 'w' exited with code 7 before it was ready (command: ",
    );
    assertStringIncludes(
      r.stdout,
      ` eval ${JSON.stringify(script)}) [$.test.servers.w]\n 7 |     w:\n   |     ^\n`,
    );
    const tail = Array.from({ length: 20 }, (_, i) => `    line ${i + 10}\n`).join("");
    assertStringIncludes(r.stdout, `  its stderr ended with (last 20 lines):\n${tail}\n`);
    assert(!r.stdout.includes("    line 9\n"), r.stdout);
  });
});

Deno.test("stepflow test: a test server whose command is not installed says 'command not found' and where it looked", async () => {
  // found by hand: `stepflow test examples` without deno on PATH said
  // "test server 'llm': cannot start 'deno': Failed to spawn 'deno': entity not found"
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(
      `${dir}/flow.yaml`,
      `schema: https://stepflow.org/schemas/v1/flow.json
name: t
description: a test server that is not installed
steps: []
output: 1
test:
  servers:
    llm: { command: no-such-command-for-stepflow, args: ["{port}"] }
  cases:
    - { name: one, input: {}, output: { outcome: success, result: 1 } }
`,
    );
    const r = await runCli(["test", `${dir}/flow.yaml`], {
      env: { PATH: "/nowhere:/also-nowhere" },
    });
    assertStrictEquals(r.code, 1, r.stderr);
    assertStringIncludes(
      r.stdout,
      "test server 'llm': cannot start 'no-such-command-for-stepflow': command not found: " +
        "no-such-command-for-stepflow (searched PATH: ",
    );
    assertStringIncludes(r.stdout, "/nowhere:/also-nowhere)");
  });
});

Deno.test("stepflow test: a config that cannot be used is reported with its file:line:col and line, as run does", async () => {
  // Before: `a.yaml: error: plugins.mock.components["/one"]: a behavior result must be a
  // FlowResult ...`, with no file or line (run and validate named stepflow-config.yml:9:13).
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(
      `${dir}/stepflow-config.yml`,
      `plugins:
  mock:
    type: mock
    components:
      /one:
        input_schema: { type: object }
        behaviors:
          ? { x: 1 }
          : { result: { output: one } }
routes:
  "/mock/{*component}": [{ plugin: mock }]
`,
    );
    await Deno.writeTextFile(
      `${dir}/a.yaml`,
      `schema: https://stepflow.org/schemas/v1/flow.json
name: a
steps:
  - { id: m, component: /mock/one, input: { $from: { workflow: input } } }
output: { $from: { step: m } }
test:
  cases:
    - { name: one, input: { x: 1 }, output: { outcome: success, result: { output: one } } }
`,
    );
    const r = await runCli(["test", `${dir}/a.yaml`]);
    assertStrictEquals(r.code, 1);
    assertStringIncludes(r.stdout, `${dir}/a.yaml: error: its config is not valid:`);
    assertStringIncludes(r.stdout, `${dir}/stepflow-config.yml:9:13: error:`);
    assertStringIncludes(r.stdout, " 9 |           : { result: { output: one } }");
    assertStrictEquals(r.stdout.trimEnd().split("\n").at(-1), "0 passed, 1 failed");
  });
});
