/**
 * The stepflow 0.8 conformance suite (`../shared/conformance/stepflow-0.8`, read-only, beside
 * the repo) must pass in full through `stepflow test`.
 * @module
 */
import { assertStrictEquals, assertStringIncludes } from "./_assert.ts";
import { CONFORMANCE_DIR, runCli } from "./_assert.ts";

Deno.test("stepflow test passes every stepflow 0.8 conformance case", async () => {
  const r = await runCli(["test", CONFORMANCE_DIR]);
  assertStrictEquals(r.code, 0, r.stdout + r.stderr);
  assertStringIncludes(r.stdout, "Total test cases: 24\n");
  assertStringIncludes(r.stdout, "no_tests.yaml: Skipped (no test cases)");
  assertStrictEquals(r.stdout.trimEnd().split("\n").at(-1), "24 passed, 0 failed, 1 skipped");
});
