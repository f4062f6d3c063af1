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
  /** What `roots` import statically (transitively), and the dynamic imports found on the way. */
  const walk = (roots: string[]) => {
    const seen = new Set<string>();
    const dynamic: string[] = [];
    const stack = [...roots];
    while (stack.length > 0) {
      const next = stack.pop()!;
      const s = info.redirects[next] ?? next;
      if (seen.has(s)) continue;
      seen.add(s);
      for (const d of bySpec.get(s)?.dependencies ?? []) {
        const target = d.code?.specifier;
        if (!target) continue;
        if (d.isDynamic) dynamic.push(target);
        else stack.push(target);
      }
    }
    return { seen, dynamic };
  };
  const isServer = (s: string) => s.includes("/src/server/") || /hono/.test(s);
  const fromMain = walk(info.roots);
  assertEquals([...fromMain.seen].filter(isServer), []);
  // `serve` itself may be loaded statically or lazily (the CLI loads each command's module)
  const serve = [...fromMain.seen, ...fromMain.dynamic].find((s) =>
    s.endsWith("/src/cli/serve.ts")
  );
  assert(serve !== undefined, "main.ts reaches serve.ts");
  const fromServe = walk([serve]);
  assertEquals([...fromServe.seen].filter(isServer), []);
  assert(
    fromServe.dynamic.some((d) => d.endsWith("/src/server/listen.ts")),
    "serve imports the server lazily",
  );
});
