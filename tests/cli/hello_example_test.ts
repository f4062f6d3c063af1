/**
 * `deno task start` (README) runs examples/hello with scoped permissions: keep it working.
 * @module
 */
import { assertStrictEquals, REPO_ROOT, runCli } from "../_assert.ts";
import { parseJson } from "../../src/json/exact_json.ts";

Deno.test("deno task start: examples/hello runs with the task's scoped permissions", async () => {
  const task = (parseJson(await Deno.readTextFile(`${REPO_ROOT}/deno.json`)) as {
    tasks: Record<string, string>;
  }).tasks.start;
  // `deno run <flags> main.ts run ...` as the task writes it; the JSON input is one quoted word.
  const args = task.replace(/^deno /, "").match(/'[^']*'|\S+/g)!.map((a) =>
    a.startsWith("'") ? a.slice(1, -1) : a
  );
  const out = await new Deno.Command(Deno.execPath(), {
    args: [args[0], "--quiet", ...args.slice(1)],
    cwd: REPO_ROOT,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  assertStrictEquals(out.code, 0, new TextDecoder().decode(out.stderr));
  const r = parseJson(stdout) as { outcome: string; result: { mapped_ok: number } };
  assertStrictEquals(r.outcome, "success");
  assertStrictEquals(r.result.mapped_ok, 3);
  assertStrictEquals(stdout.endsWith("}\n"), true);
});

Deno.test("examples/hello: its test case passes", async () => {
  const r = await runCli(["test", `${REPO_ROOT}/examples/hello`]);
  assertStrictEquals(r.code, 0, r.stdout);
  assertStrictEquals(r.stdout.trimEnd().split("\n").at(-1), "1 passed, 0 failed");
});
