import {
  assertStrictEquals,
  assertStringIncludes,
  assertThrows,
  REPO_ROOT,
} from "../../_assert.ts";
import { resolveCommand } from "../../../src/plugins/stepflow/spawn.ts";
import { TransportError } from "../../../src/errors.ts";

Deno.test("resolveCommand() finds a bare name on PATH", () => {
  const sh = resolveCommand("sh", "/tmp", "/nonexistent:/usr/bin:/bin");
  assertStrictEquals(sh.endsWith("/sh"), true);
});

Deno.test("resolveCommand() names a command that is not on PATH", () => {
  const e = assertThrows(
    () => resolveCommand("no-such-cmd-xyz", "/tmp", "/usr/bin:/bin"),
    TransportError,
  );
  assertStringIncludes(
    e.message,
    "command not found: no-such-cmd-xyz (searched PATH: /usr/bin:/bin)",
  );
});

Deno.test("resolveCommand() leaves the lookup to Deno when PATH cannot be read (scoped run)", async () => {
  const code = `import { resolveCommand } from "${REPO_ROOT}/src/plugins/stepflow/spawn.ts";
console.log(resolveCommand("sh", "/tmp"), resolveCommand("sh", "/tmp", "/usr/bin:/bin"));`;
  const dir = await Deno.makeTempDir();
  const file = `${dir}/probe.ts`;
  await Deno.writeTextFile(file, code);
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-prompt", `--allow-read=${REPO_ROOT},${dir}`, file],
    stdout: "piped",
    stderr: "piped",
  }).output();
  await Deno.remove(dir, { recursive: true });
  const text = new TextDecoder().decode(out.stdout).trim();
  assertStrictEquals(text, "sh sh", new TextDecoder().decode(out.stderr));
});
