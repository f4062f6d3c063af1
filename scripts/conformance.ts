/**
 * The last step of `deno task test` (and `deno task conformance`): runs the stepflow 0.8
 * conformance suite with `stepflow test ../shared/conformance/stepflow-0.8` when that folder
 * exists beside the checkout.
 *
 * A fresh clone has no `../shared`. Then this prints ONE line saying that the suite and the
 * tests that read it were skipped and where the suite is expected, and exits 0 — unless
 * `STEPFLOW_REQUIRE_CONFORMANCE=1` (set by `.ci/run`), which makes the absence a failure
 * (exit 1). The tests that read the folder register through `conformanceTest()` of
 * tests/_conformance.ts, which follows the same rule.
 *
 * ```sh
 * deno run -A scripts/conformance.ts
 * ```
 * @module
 */
import { dirname, join, normalize, relative } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = normalize(join(dirname(fileURLToPath(import.meta.url)), ".."));
/** Where the suite is expected: `../shared/conformance/stepflow-0.8` beside the checkout. */
export const SUITE = normalize(join(ROOT, "..", "shared", "conformance", "stepflow-0.8"));

/** How many tests register with `conformanceTest(` below `tests/` (the skipped ones). */
export async function countConformanceTests(dir = join(ROOT, "tests")): Promise<number> {
  let n = 0;
  for await (const e of Deno.readDir(dir)) {
    const p = join(dir, e.name);
    if (e.isDirectory && e.name !== "fixtures") n += await countConformanceTests(p);
    else if (e.isFile && e.name.endsWith("_test.ts")) {
      n += (await Deno.readTextFile(p)).match(/^conformanceTest\(/gm)?.length ?? 0;
    }
  }
  return n;
}

async function exists(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isDirectory;
  } catch {
    return false;
  }
}

async function main(): Promise<number> {
  if (await exists(SUITE)) {
    const { code } = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", join(ROOT, "main.ts"), "test", relative(Deno.cwd(), SUITE) || SUITE],
      stdout: "inherit",
      stderr: "inherit",
    }).output();
    return code;
  }
  const where = `${relative(Deno.cwd(), SUITE) || SUITE} (${SUITE})`;
  if (Deno.env.get("STEPFLOW_REQUIRE_CONFORMANCE") === "1") {
    console.log(
      `conformance: FAILED: the stepflow 0.8 conformance suite is missing, expected at ${where}; ` +
        `STEPFLOW_REQUIRE_CONFORMANCE=1 makes its absence a failure`,
    );
    return 1;
  }
  const n = await countConformanceTests();
  console.log(
    `conformance: skipped the stepflow 0.8 conformance suite and the ${n} tests that read it: ` +
      `no folder at ${where}; the project's own suite (tests/fixtures/suite) ran instead`,
  );
  return 0;
}

if (import.meta.main) Deno.exit(await main());
