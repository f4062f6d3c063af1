/**
 * The project's own flow suite (tests/fixtures/suite) passes in full through `stepflow test`. It
 * covers what the stepflow 0.8 conformance suite checks (tests/conformance_test.ts, which runs
 * only where `../shared/conformance` exists) with flows written for this project.
 * @module
 */
import { assertStrictEquals, assertStringIncludes, REPO_ROOT, runCli } from "./_assert.ts";

export const SUITE_DIR = `${REPO_ROOT}/tests/fixtures/suite`;

Deno.test("stepflow test passes every case of the project's own suite", async () => {
  const r = await runCli(["test", SUITE_DIR]);
  assertStrictEquals(r.code, 0, r.stdout + r.stderr);
  assertStringIncludes(r.stdout, "Total test cases: 19\n");
  assertStringIncludes(r.stdout, "no_cases.yaml: Skipped (no test cases)");
  assertStrictEquals(r.stdout.trimEnd().split("\n").at(-1), "19 passed, 0 failed, 1 skipped");
});
