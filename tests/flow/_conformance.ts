/**
 * Test helper: the stepflow 0.8 conformance files in /work/shared (read, never copied).
 * @module
 */

/** The conformance directory. */
export const CONFORMANCE = new URL("../../../shared/conformance/stepflow-0.8/", import.meta.url);

/** Every `*.yaml` flow file below `dir` (not configs). */
export async function conformanceFlows(dir: URL = CONFORMANCE): Promise<string[]> {
  const out: string[] = [];
  async function walk(path: string) {
    for await (const e of Deno.readDir(path)) {
      const p = `${path}/${e.name}`;
      if (e.isDirectory) await walk(p);
      else if (/\.ya?ml$/.test(e.name) && !e.name.startsWith("stepflow")) out.push(p);
    }
  }
  try {
    await walk(dir.pathname.replace(/\/$/, ""));
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return out.sort();
}

/** Every `stepflow-config*.yml` below `dir`. */
export async function conformanceConfigs(dir: URL = CONFORMANCE): Promise<string[]> {
  const out: string[] = [];
  async function walk(path: string) {
    for await (const e of Deno.readDir(path)) {
      const p = `${path}/${e.name}`;
      if (e.isDirectory) await walk(p);
      else if (/^stepflow[-_]config.*\.ya?ml$/.test(e.name)) out.push(p);
    }
  }
  try {
    await walk(dir.pathname.replace(/\/$/, ""));
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return out.sort();
}
