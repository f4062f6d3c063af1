import { assert } from "../_assert.ts";

Deno.test("sdk/mod.ts is importable on its own: it does not load the engine", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", new URL("../../sdk/mod.ts", import.meta.url).pathname],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert(out.success, new TextDecoder().decode(out.stderr));
  const info = JSON.parse(new TextDecoder().decode(out.stdout));
  const local = (info.modules as { specifier: string }[])
    .map((m) => m.specifier)
    .filter((s) => s.startsWith("file://"));
  const engine = local.filter((s) =>
    /\/src\/(execution|plugins|config|state|cli|server)\//.test(s)
  );
  assert(engine.length === 0, `the SDK pulls in engine modules: ${engine.join(", ")}`);
  assert(local.some((s) => s.endsWith("/sdk/server.ts")));
});
