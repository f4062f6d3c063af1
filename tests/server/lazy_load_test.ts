/**
 * The server code (Hono, zod-openapi, src/server) is imported only by `stepflow serve`, lazily:
 * no static import from main.ts reaches it, so `stepflow run` does not pay for loading it.
 * @module
 */
import { assert, assertEquals, REPO_ROOT } from "../_assert.ts";

interface Dep {
  code?: { specifier: string };
  isDynamic?: boolean;
}

Deno.test("main.ts reaches src/server and Hono only through a dynamic import", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", "main.ts"],
    cwd: REPO_ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert(out.code === 0, new TextDecoder().decode(out.stderr));
  const info = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    roots: string[];
    modules: { specifier: string; dependencies?: Dep[] }[];
    redirects: Record<string, string>;
  };
  const bySpec = new Map(info.modules.map((m) => [m.specifier, m]));
  const seen = new Set<string>();
  const dynamic: string[] = [];
  const stack = [...info.roots];
  while (stack.length > 0) {
    const next = stack.pop()!;
    const s = info.redirects[next] ?? next;
    if (seen.has(s)) continue;
    seen.add(s);
    for (const d of bySpec.get(s)?.dependencies ?? []) {
      const target = d.code?.specifier;
      if (!target) continue;
      // the subcommands' modules are loaded by name (src/cli/commands.ts): walked as if static
      if (d.isDynamic && !target.includes("/src/cli/")) dynamic.push(target);
      else stack.push(target);
    }
  }
  assert([...seen].some((s) => s.endsWith("/src/cli/serve.ts")), "the walk reached serve.ts");
  const server = [...seen].filter((s) => s.includes("/src/server/") || /hono/.test(s));
  assertEquals(server, []);
  assert(
    dynamic.some((d) => d.endsWith("/src/server/listen.ts")),
    "serve imports the server lazily",
  );
});
