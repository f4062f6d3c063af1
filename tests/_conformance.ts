/**
 * The stepflow 0.8 conformance files, read from `../shared/conformance/stepflow-0.8` beside the
 * checkout (never copied into the project), and the gate for the tests that read them.
 *
 * A fresh clone has no `../shared`: there {@linkcode conformanceTest} registers nothing, and
 * `deno task test` ends with one line saying what was skipped and where the suite is expected
 * (scripts/conformance.ts). CI (`.ci/run`) sets `STEPFLOW_REQUIRE_CONFORMANCE=1`, which turns a
 * missing suite into a failing test. The behaviours these tests check are also covered by the
 * project's own tests (tests/fixtures/suite and the unit tests), so a skip loses no coverage of
 * our code, only the comparison with 0.8's own files.
 * @module
 */

/** The repo root (absolute, no trailing slash). */
const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");

/** The conformance folder beside the repo (`../shared/conformance/stepflow-0.8`), absolute. */
export const CONFORMANCE_DIR: string = normalize(`${ROOT}/../shared/conformance/stepflow-0.8`);

/** The environment variable that makes a missing suite a failure (set by `.ci/run`). */
export const REQUIRE_CONFORMANCE_ENV = "STEPFLOW_REQUIRE_CONFORMANCE";

/** True when the conformance folder exists. */
export const CONFORMANCE_PRESENT: boolean = (() => {
  try {
    return Deno.statSync(CONFORMANCE_DIR).isDirectory;
  } catch {
    return false;
  }
})();

/** True when `STEPFLOW_REQUIRE_CONFORMANCE=1` (CI): a missing suite fails. */
export const CONFORMANCE_REQUIRED: boolean = (() => {
  try {
    return Deno.env.get(REQUIRE_CONFORMANCE_ENV) === "1";
  } catch {
    return false;
  }
})();

/**
 * Registers a test that reads the conformance files: as is when they exist; as a failing test
 * naming the missing folder when {@linkcode CONFORMANCE_REQUIRED}; otherwise not at all (the
 * skip is reported once, by `deno task test`).
 */
export function conformanceTest(name: string, fn: () => void | Promise<void>): void {
  if (CONFORMANCE_PRESENT) {
    Deno.test(name, fn);
  } else if (CONFORMANCE_REQUIRED) {
    Deno.test(name, () => {
      throw new Error(
        `the stepflow 0.8 conformance suite is missing: expected at ${CONFORMANCE_DIR} ` +
          `(${REQUIRE_CONFORMANCE_ENV}=1 makes its absence a failure)`,
      );
    });
  }
}

/** Every `*.yaml` flow file below `dir` (not configs), sorted. */
export async function conformanceFlows(dir: string = CONFORMANCE_DIR): Promise<string[]> {
  return (await walk(dir)).filter((p) => /\.ya?ml$/.test(p) && !/\/stepflow[^/]*$/.test(p));
}

/** Every `stepflow-config*.yml` below `dir`, sorted. */
export async function conformanceConfigs(dir: string = CONFORMANCE_DIR): Promise<string[]> {
  return (await walk(dir)).filter((p) => /\/stepflow[-_]config[^/]*\.ya?ml$/.test(p));
}

/** Every file below `dir` (sorted). @throws when `dir` cannot be read. */
async function walk(dir: string): Promise<string[]> {
  const out: string[] = [];
  async function visit(path: string) {
    for await (const e of Deno.readDir(path)) {
      const p = `${path}/${e.name}`;
      if (e.isDirectory) await visit(p);
      else out.push(p);
    }
  }
  await visit(dir.replace(/\/$/, ""));
  return out.sort();
}

function normalize(path: string): string {
  const parts: string[] = [];
  for (const part of path.split("/")) {
    if (part === "..") parts.pop();
    else if (part !== "." && part !== "") parts.push(part);
  }
  return "/" + parts.join("/");
}
