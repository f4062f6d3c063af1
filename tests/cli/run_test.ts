import { assertEquals, assertStrictEquals, assertStringIncludes, withTempDir } from "../_assert.ts";
import { REPO_ROOT, runCli } from "../_assert.ts";
import { parseJson } from "../../src/json/exact_json.ts";

const DIR = `${REPO_ROOT}/tests/fixtures/cli/run`;

Deno.test("stepflow run prints the FlowResult as one JSON line and exits 0", async () => {
  const r = await runCli([
    "run",
    "--flow",
    `${DIR}/greet.yaml`,
    "--input-json",
    '{"who":{"name":"Ada"},"score":15.0}',
  ]);
  assertStrictEquals(r.code, 0, r.stderr);
  assertStrictEquals(
    r.stdout,
    '{"outcome":"success","result":{"prompt":"Ada","score":15.0}}\n',
  );
});

Deno.test("stepflow run reads YAML input from stdin and a YAML --input file", async () => {
  const r = await runCli(
    ["run", "--flow", `${DIR}/greet.yaml`, "--stdin-format", "yaml"],
    { stdin: "who: {name: Bo}\nscore: 9007199254740993\n" },
  );
  assertStrictEquals(r.code, 0, r.stderr);
  assertStrictEquals(
    r.stdout,
    '{"outcome":"success","result":{"prompt":"Bo","score":9007199254740993}}\n',
  );
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/in.yaml`, "who: {name: Cy}\nscore: 1\n");
    const r2 = await runCli([
      "run",
      "--flow",
      `${DIR}/greet.yaml`,
      "--input",
      `${dir}/in.yaml`,
      "--output",
      `${dir}/out.json`,
    ]);
    assertStrictEquals(r2.code, 0, r2.stderr);
    assertStrictEquals(r2.stdout, "");
    assertEquals(parseJson(await Deno.readTextFile(`${dir}/out.json`)), {
      outcome: "success",
      result: { prompt: "Cy", score: 1 },
    });
  });
});

Deno.test("stepflow run: a missing path fails with exit 1 and names the step and the path", async () => {
  const r = await runCli([
    "run",
    "--flow",
    `${DIR}/greet.yaml`,
    "--input-json",
    '{"who":{},"score":1}',
  ]);
  assertStrictEquals(r.code, 1);
  const result = parseJson(r.stdout) as { outcome: string; error: { message: string } };
  assertStrictEquals(result.outcome, "failed");
  assertStrictEquals(result.error.message, "failed to resolve input for step 'messages'");
  assertStringIncludes(r.stderr, "failed to resolve input for step 'messages'");
  assertStringIncludes(r.stderr, "Undefined field '$.who.name' in value");
  assertStringIncludes(r.stderr, "$.steps[0].input.user_prompt");
  // ... and where it is in the file
  assertStringIncludes(r.stderr, `Reference at $.steps[0].input.user_prompt (${DIR}/greet.yaml:`);
});

Deno.test("stepflow run: an unparsable flow exits 2 with file:line:col and runs nothing", async () => {
  // Written here, not kept as a fixture: `deno fmt --check` would reject the broken YAML.
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(
      `${dir}/broken.yaml`,
      "schema: https://stepflow.org/schemas/v1/flow.json\nsteps:\n  - id: a\n" +
        "    component: /builtin/create_messages\n    input: { user_prompt: [unclosed\n",
    );
    const r = await runCli(["run", "--flow", `${dir}/broken.yaml`, "--input-json", "{}"]);
    assertStrictEquals(r.code, 2);
    assertStrictEquals(r.stdout, "");
    assertStringIncludes(r.stderr, "broken.yaml:5:27");
    assertStringIncludes(r.stderr, " 5 |     input: { user_prompt: [unclosed\n");
  });
});

Deno.test("stepflow run: conflicting input flags and bad JSON are usage errors (exit 2)", async () => {
  const r = await runCli([
    "run",
    "--flow",
    `${DIR}/greet.yaml`,
    "--input-json",
    "{}",
    "--input-yaml",
    "{}",
  ]);
  assertStrictEquals(r.code, 2);
  assertStringIncludes(r.stderr, "use only one of --input, --input-json and --input-yaml");
  const r2 = await runCli(["run", "--flow", `${DIR}/greet.yaml`, "--input-json", "{nope"]);
  assertStrictEquals(r2.code, 2);
  assertStringIncludes(r2.stderr, "--input-json");
});

Deno.test("stepflow run applies --overrides-json", async () => {
  const r = await runCli([
    "run",
    "--flow",
    `${DIR}/greet.yaml`,
    "--input-json",
    '{"who":{"name":"Ada"},"score":2}',
    "--overrides-json",
    '{"messages":{"value":{"input":{"user_prompt":"patched"}}}}',
  ]);
  assertStrictEquals(r.code, 0, r.stderr);
  assertStrictEquals(r.stdout, '{"outcome":"success","result":{"prompt":"patched","score":2}}\n');
});

Deno.test("stepflow run passes --variables-json and STEPFLOW_VAR_* (--env-variables) to the run", async () => {
  const r = await runCli(
    ["run", "--flow", `${DIR}/vars.yaml`, "--input-json", "{}", "--env-variables"],
    { env: { STEPFLOW_VAR_APIBASE: "http://x", STEPFLOW_VAR_GREETING: '"hi"' } },
  );
  assertStrictEquals(r.code, 0, r.stderr);
  assertStrictEquals(
    r.stdout,
    '{"outcome":"success","result":{"greeting":"hi","apiBase":"http://x"}}\n',
  );
  const r2 = await runCli([
    "run",
    "--flow",
    `${DIR}/vars.yaml`,
    "--input-json",
    "{}",
    "--variables-json",
    '{"apiBase":"http://y"}',
  ]);
  assertStrictEquals(r2.code, 0, r2.stderr);
  assertStrictEquals(
    r2.stdout,
    '{"outcome":"success","result":{"greeting":"hello","apiBase":"http://y"}}\n',
  );
});

Deno.test("stepflow run writes YAML with exact numbers to --output x.yaml; empty stdin is a usage error", async () => {
  await withTempDir(async (dir) => {
    const r = await runCli([
      "run",
      "--flow",
      `${DIR}/greet.yaml`,
      "--input-json",
      '{"who":{"name":"Ada"},"score":15.0}',
      "--output",
      `${dir}/out.yaml`,
    ]);
    assertStrictEquals(r.code, 0, r.stderr);
    assertStrictEquals(
      await Deno.readTextFile(`${dir}/out.yaml`),
      "outcome: success\nresult:\n  prompt: Ada\n  score: 15.0\n",
    );
  });
  const empty = await runCli(["run", "--flow", `${DIR}/greet.yaml`], { stdin: "" });
  assertStrictEquals(empty.code, 2);
  assertStringIncludes(empty.stderr, "no input: give --input FILE");
});

Deno.test("stepflow run: a directory as --flow/--config is named as a directory, whatever its name", async () => {
  await withTempDir(async (dir) => {
    for (const [flag, what] of [["--flow", "flow"], ["--config", "config"]]) {
      const args = flag === "--flow"
        ? ["run", "--flow", dir, "--input-json", "{}"]
        : ["run", "--flow", `${DIR}/greet.yaml`, "--config", dir, "--input-json", "{}"];
      const r = await runCli(args);
      assertStrictEquals(r.code, 2, r.stderr);
      assertStrictEquals(
        r.stderr,
        `error: Cannot read ${what} file '${dir}': it is a directory; give the ${what} file inside it\n`,
      );
    }
    const r = await runCli(["run", "--flow", `${dir}/none.txt`, "--input-json", "{}"]);
    assertStrictEquals(r.stderr, `error: Cannot read flow file '${dir}/none.txt': no such file\n`);
  });
});

Deno.test("stepflow run: an --output that cannot be written is a usage error before anything runs", async () => {
  await withTempDir(async (dir) => {
    const input = '{"who":{"name":"Ada"},"score":1}';
    const missing = `${dir}/no/such/dir/out.json`;
    let r = await runCli([
      "run",
      "--flow",
      `${DIR}/greet.yaml`,
      "--input-json",
      input,
      "--output",
      missing,
    ]);
    assertStrictEquals(r.code, 2, r.stderr);
    assertStrictEquals(r.stdout, "");
    assertStringIncludes(r.stderr, `directory '${dir}/no/such/dir' does not exist: create it`);
    r = await runCli([
      "run",
      "--flow",
      `${DIR}/greet.yaml`,
      "--input-json",
      input,
      "--output",
      dir,
    ]);
    assertStrictEquals(r.code, 2, r.stderr);
    assertStrictEquals(r.stderr, `error: --output '${dir}' is a directory: give a file name\n`);
  });
});

Deno.test("stepflow run: bad input flags give one plain line (no doubled names, no OS error text)", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/empty.json`, "\n");
    const cases: [string[], string][] = [
      [["--input-json", "{bad"], "error: --input-json:1:2: JSON syntax error"],
      [
        ["--input", `${dir}/none.json`],
        `error: cannot read input file '${dir}/none.json': no such file\n`,
      ],
      [
        ["--input", dir],
        `error: cannot read input file '${dir}': it is a directory; give a file\n`,
      ],
      [["--input", `${dir}/empty.json`], `error: input file '${dir}/empty.json' is empty\n`],
    ];
    for (const [flags, expected] of cases) {
      const r = await runCli(["run", "--flow", `${DIR}/greet.yaml`, ...flags]);
      assertStrictEquals(r.code, 2, r.stderr);
      if (expected.endsWith("\n")) assertStrictEquals(r.stderr, expected);
      else assertStringIncludes(r.stderr, expected);
    }
  });
});

Deno.test("stepflow run: a failed run names the failed step and its file:line:col on stderr", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(
      `${dir}/stepflow-config.yml`,
      `plugins:
  mock:
    type: mock
    components:
      /f:
        behaviors:
          ? { x: 1 }
          : { outcome: failed, error: { code: 7, message: "no luck" } }
routes:
  "/mock/{*component}": [{ plugin: mock }]
`,
    );
    await Deno.writeTextFile(
      `${dir}/flow.yaml`,
      `schema: https://stepflow.org/schemas/v1/flow.json
name: f
steps:
  - id: bad
    component: /mock/f
    input: { x: 1 }
output: { $from: { step: bad } }
`,
    );
    const r = await runCli(["run", "--flow", "flow.yaml", "--input-json", "{}"], { cwd: dir });
    assertStrictEquals(r.code, 1, r.stderr);
    assertStringIncludes(r.stderr, "run failed (code 7): no luck\n");
    assertStringIncludes(r.stderr, "  failed step 'bad' (flow.yaml:4:5): no luck\n");
  });
});

Deno.test("stepflow run: a skipped run names the skipped step and its file:line:col", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(
      `${dir}/flow.yaml`,
      `schema: https://stepflow.org/schemas/v1/flow.json
name: s
steps:
  - id: maybe
    component: /builtin/create_messages
    skipIf: { $from: { workflow: input }, path: skip }
    input: { user_prompt: x }
output: { $from: { step: maybe } }
`,
    );
    await Deno.writeTextFile(
      `${dir}/stepflow-config.yml`,
      `plugins: { builtin: { type: builtin } }
routes: { "/builtin/{*component}": [{ plugin: builtin }] }
`,
    );
    const r = await runCli(["run", "--flow", "flow.yaml", "--input-json", '{"skip":true}'], {
      cwd: dir,
    });
    assertStrictEquals(r.code, 1, r.stderr);
    assertStrictEquals(r.stdout, '{"outcome":"skipped"}\n');
    assertStringIncludes(
      r.stderr,
      "run skipped: the output references a skipped step; skipped: 'maybe' (flow.yaml:4:5)",
    );
  });
});

Deno.test("stepflow run: a step service that cannot start is named with its config file:line:col", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(
      `${dir}/stepflow-config.yml`,
      `plugins:
  svc:
    type: stepflow
    command: ./no/such/worker
routes:
  "/svc/{*component}": [{ plugin: svc }]
`,
    );
    await Deno.writeTextFile(
      `${dir}/flow.yaml`,
      `schema: https://stepflow.org/schemas/v1/flow.json
name: s
steps:
  - id: a
    component: /svc/x
    input: {}
output: { $from: { step: a } }
`,
    );
    const r = await runCli(["run", "--flow", "flow.yaml", "--input-json", "{}"], { cwd: dir });
    assertStrictEquals(r.code, 1, r.stderr);
    assertStringIncludes(
      r.stderr,
      "error: cannot start the engine: Failed to start plugins: plugin 'svc' (stepflow-config.yml:3:5): command not found",
    );
  });
});

Deno.test("CLI usage errors are one line that says which --help to read (exit 2)", async () => {
  const cases: [string[], string][] = [
    [["test", "--bogus"], "error: unknown option '--bogus' (see 'stepflow test --help')\n"],
    [["run"], "error: required option '--flow <file>' not specified (see 'stepflow run --help')\n"],
    [["tset"], "error: unknown command 'tset' (Did you mean test?) (see 'stepflow --help')\n"],
    // was: (see 'stepflow runs --help'), whose help lists the subcommands' names only
    [
      ["runs", "prune", "--store", "x.db"],
      "error: required option '--older-than <duration>' not specified (see 'stepflow runs prune --help')\n",
    ],
    [
      ["runs", "list", "--bogus"],
      "error: unknown option '--bogus' (see 'stepflow runs list --help')\n",
    ],
    [["runs", "bogus"], "error: unknown command 'bogus' (see 'stepflow runs --help')\n"],
  ];
  for (const [args, expected] of cases) {
    const r = await runCli(args);
    assertStrictEquals(r.code, 2, r.stderr);
    assertStrictEquals(r.stderr, expected);
  }
});

Deno.test("stepflow with no arguments shows help and exits 2; --help exits 0", async () => {
  const none = await runCli([]);
  assertStrictEquals(none.code, 2);
  assertStringIncludes(none.stderr, "Usage: stepflow");
  const help = await runCli(["--help"]);
  assertStrictEquals(help.code, 0);
  assertStringIncludes(help.stdout, "Usage: stepflow");
  // found by hand: 'stepflow runs' (a command group without its subcommand) printed its help on
  // stderr but exited 0, so a script that lost its arguments passed
  const group = await runCli(["runs"]);
  assertStrictEquals(group.code, 2);
  assertStringIncludes(group.stderr, "Usage: stepflow runs");
  const asked = await runCli(["help", "runs"]);
  assertStrictEquals(asked.code, 0, asked.stderr);
  assertStringIncludes(asked.stdout, "Usage: stepflow runs");
});
