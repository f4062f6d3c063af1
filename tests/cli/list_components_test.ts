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
