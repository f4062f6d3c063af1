/**
 * The stepflow 0.8 conformance suite (`../shared/conformance/stepflow-0.8`, read-only, beside
 * the repo) must pass in full through `stepflow test`. Registered only where the suite exists
 * (always in CI); tests/suite_test.ts covers the same behaviours with the project's own flows.
 * @module
 */
import { assertStrictEquals, assertStringIncludes, runCli } from "./_assert.ts";
import { CONFORMANCE_DIR, conformanceTest } from "./_conformance.ts";

conformanceTest("stepflow test passes every stepflow 0.8 conformance case", async () => {
  const r = await runCli(["test", CONFORMANCE_DIR]);
  assertStrictEquals(r.code, 0, r.stdout + r.stderr);
  assertStringIncludes(r.stdout, "Total test cases: 24\n");
  assertStringIncludes(r.stdout, "no_tests.yaml: Skipped (no test cases)");
  assertStrictEquals(r.stdout.trimEnd().split("\n").at(-1), "24 passed, 0 failed, 1 skipped");
});
