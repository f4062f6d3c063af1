/**
 * The project's own flow and config files that loading, validation and schema tests run over:
 * the suite (tests/fixtures/suite) and every example. Together with the unit tests they cover
 * what the stepflow 0.8 conformance files are checked for, when those are absent.
 * @module
 */
import { REPO_ROOT } from "./_assert.ts";

/** The project's own suite of flows with test cases. */
export const SUITE_DIR = `${REPO_ROOT}/tests/fixtures/suite`;

const ROOTS = [SUITE_DIR, `${REPO_ROOT}/examples`];

/** Every flow file (YAML with the top-level flow `schema:`) of the suite and examples, sorted. */
export async function ownFlows(): Promise<string[]> {
  const out: string[] = [];
  for (const p of await files()) {
    if (!/\.ya?ml$/.test(p)) continue;
    if (
      /^schema: https:\/\/stepflow\.org\/schemas\/v1\/flow\.json\s*$/m.test(
        await Deno.readTextFile(p),
      )
    ) {
      out.push(p);
    }
  }
  return out;
}

/** Every `stepflow-config*.yml` of the suite and examples, sorted. */
export async function ownConfigs(): Promise<string[]> {
  return (await files()).filter((p) => /\/stepflow[-_]config[^/]*\.ya?ml$/.test(p));
}

async function files(): Promise<string[]> {
  const out: string[] = [];
  async function visit(path: string) {
    for await (const e of Deno.readDir(path)) {
      const p = `${path}/${e.name}`;
      if (e.isDirectory && e.name !== "node_modules" && !e.name.startsWith(".")) await visit(p);
      else if (e.isFile) out.push(p);
    }
  }
  for (const r of ROOTS) await visit(r);
  return out.sort();
}
