/**
 * The modules a file imports statically, directly or not (dynamic imports not followed), from
 * `deno info --json`: for the tests that keep packages off a command's start (issue 17, goal 5).
 * @module
 */
import { REPO_ROOT } from "./_assert.ts";

interface Dep {
  code?: { specifier: string };
  isDynamic?: boolean;
}

/** Specifiers (file: URLs, npm:, node:) of every module `file` (repo-relative) reaches statically. */
export async function staticImports(file: string): Promise<string[]> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", file],
    cwd: REPO_ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (out.code !== 0) throw new Error(new TextDecoder().decode(out.stderr));
  const info = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    roots: string[];
    modules: { specifier: string; dependencies?: Dep[] }[];
    redirects: Record<string, string>;
  };
  const bySpec = new Map(info.modules.map((m) => [m.specifier, m]));
  const seen = new Set<string>();
  const stack = [...info.roots];
  while (stack.length > 0) {
    const s = info.redirects[stack.at(-1)!] ?? stack.at(-1)!;
    stack.pop();
    if (seen.has(s)) continue;
    seen.add(s);
    for (const d of bySpec.get(s)?.dependencies ?? []) {
      if (d.code?.specifier && !d.isDynamic) stack.push(d.code.specifier);
    }
  }
  return [...seen];
}
