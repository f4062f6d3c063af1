/**
 * `stepflow list-components` from a directory without a config: it says which config it lists and
 * that components were hidden, instead of a bare "Total components: 0".
 * @module
 */
import {
  assertStrictEquals,
  assertStringIncludes,
  REPO_ROOT,
  runCli,
  withTempDir,
} from "../_assert.ts";

Deno.test("stepflow list-components without a config names the default config and the hidden components", async () => {
  await withTempDir(async (dir) => {
    const r = await runCli(["list-components"], { cwd: dir });
    assertStrictEquals(r.code, 0, r.stderr);
    assertStringIncludes(r.stdout, "Total components: 0");
    assertStringIncludes(
      r.stderr,
      "note: no config found: looked for stepflow-config.yml, stepflow-config.yaml, " +
        `stepflow_config.yml, stepflow_config.yaml in ${dir} (list-components looks only in the ` +
        "current directory); listing the default config (the builtin plugin, no routes); " +
        "pass --config FILE\n",
    );
    assertStringIncludes(
      r.stderr,
      "component(s) hidden: no route reaches them, as the default config has no routes (--hide",
    );
    const hello = await runCli([
      "list-components",
      "--config",
      `${REPO_ROOT}/examples/hello/stepflow-config.yml`,
    ]);
    assertStrictEquals(hello.code, 0, hello.stderr);
    assertStrictEquals(hello.stderr, "");
  });
});

Deno.test("stepflow list-components from the repo root suggests the configs below it", async () => {
  const r = await runCli(["list-components"], { cwd: REPO_ROOT });
  assertStrictEquals(r.code, 0, r.stderr);
  assertStringIncludes(
    r.stderr,
    "pass one with --config, e.g. --config examples/ai-research/stepflow-config.yml, " +
      "--config examples/greet/stepflow-config.yml, --config examples/hello/stepflow-config.yml\n",
  );
});

Deno.test("stepflow list-components with every plugin failing prints the failures on stderr and nothing on stdout (exit 1)", async () => {
  await withTempDir(async (dir) => {
    const server = (mode: string) =>
      `    type: mcp\n    command: ${JSON.stringify(Deno.execPath())}\n` +
      `    args: [run, --quiet, --no-prompt, ${
        JSON.stringify(`${REPO_ROOT}/tests/fixtures/mcp/fault_server.ts`)
      }, ${mode}]\n`;
    await Deno.writeTextFile(
      `${dir}/stepflow-config.yml`,
      `plugins:\n  early:\n${server("exit-at-start")}  notmcp:\n${server("not-mcp")}` +
        `routes:\n  "/early/{*c}": [{ plugin: early }]\n  "/notmcp/{*c}": [{ plugin: notmcp }]\n`,
    );
    // was: "Available Components: ... Total components: 0" on stdout
    const r = await runCli(["list-components"], { cwd: dir });
    assertStrictEquals(r.code, 1, r.stderr);
    assertStrictEquals(r.stdout, "");
    assertStringIncludes(r.stderr, "error: plugin 'early' could not list its components");
    assertStringIncludes(r.stderr, "stderr: fatal: config missing");
    // the start failure is said once (the plugin's warning), not again in the error line
    assertStrictEquals(r.stderr.split("MCP plugin 'early'").length - 1, 1, r.stderr);
    assertStringIncludes(r.stderr, "error: plugin 'notmcp' could not list its components");
    assertStringIncludes(r.stderr, "error: no components listed: no plugin could list");
    assertStrictEquals(r.stderr.includes("-32000"), false, r.stderr);
    const json = await runCli(["list-components", "--format", "json"], { cwd: dir });
    assertStrictEquals(json.code, 1, json.stderr);
    assertStrictEquals(json.stdout, "");
    // a plugin that lists is still printed, with exit 1 for the one that could not
    await Deno.writeTextFile(
      `${dir}/stepflow-config.yml`,
      `plugins:\n  builtin: { type: builtin }\n  early:\n${server("exit-at-start")}` +
        `routes:\n  "/builtin/{*c}": [{ plugin: builtin }]\n  "/early/{*c}": [{ plugin: early }]\n`,
    );
    const some = await runCli(["list-components"], { cwd: dir });
    assertStrictEquals(some.code, 1, some.stderr);
    assertStringIncludes(some.stdout, "Component: /eval (plugin: builtin)");
    assertStringIncludes(some.stderr, "error: plugin 'early' could not list its components");
  });
});

Deno.test("stepflow list-components: a config error is printed with its file:line:col and line (was: the bare message)", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(
      `${dir}/stepflow-config.yml`,
      `plugins:
  builtin: { type: builtin }
routes:
  "/builtin/{*component}": [{ plugin: builtin }]
  "/never/{*component}": [{ plugin: ghost }]
`,
    );
    const r = await runCli(["list-components", "--config", `${dir}/stepflow-config.yml`]);
    assertStrictEquals(r.code, 2);
    assertStringIncludes(r.stderr, "error: the config is not valid:");
    assertStringIncludes(
      r.stderr,
      `${dir}/stepflow-config.yml:5:37: error: Routing rule 0 for path '/never/{*component}' references unknown plugin 'ghost'`,
    );
    assertStringIncludes(r.stderr, ` 5 |   "/never/{*component}": [{ plugin: ghost }]`);
  });
});
