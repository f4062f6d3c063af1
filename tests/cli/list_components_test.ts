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
      "note: no stepflow-config.yml in the current directory: listing the default config",
    );
    assertStringIncludes(r.stderr, "component(s) hidden: no route reaches them");
    const hello = await runCli([
      "list-components",
      "--config",
      `${REPO_ROOT}/examples/hello/stepflow-config.yml`,
    ]);
    assertStrictEquals(hello.code, 0, hello.stderr);
    assertStrictEquals(hello.stderr, "");
  });
});
