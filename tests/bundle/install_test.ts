/**
 * `deno task install` (scripts/install.ts): where it installs, the launcher it writes when
 * `deno compile` cannot get the runtime, and that the installed command runs with neither the
 * checkout nor `deno` on PATH. (tests/docs/docs_test.ts also runs the README's install as
 * written.)
 * @module
 */
import {
  assert,
  assertEquals,
  assertStrictEquals,
  assertStringIncludes,
  REPO_ROOT,
  withTempDir,
} from "../_assert.ts";
import {
  compileFailure,
  defaultRoot,
  INSTALL_PERMISSIONS,
  launcherScript,
  parseArgs,
} from "../../scripts/install.ts";

const env = (vars: Record<string, string>) => (n: string) => vars[n];

Deno.test("install root: --root, else $DENO_INSTALL_ROOT, else ~/.deno (as deno install -g)", () => {
  assertEquals(parseArgs([], env({ HOME: "/h" })), {
    root: "/h/.deno",
    name: "stepflow",
    launcher: false,
  });
  assertStrictEquals(defaultRoot(env({ HOME: "/h", DENO_INSTALL_ROOT: "/opt/d" })), "/opt/d");
  assertStrictEquals(defaultRoot(env({ USERPROFILE: "/u" })), "/u/.deno");
  assertEquals(parseArgs(["--root", "/r", "--name=sf", "--launcher"], env({})), {
    root: "/r",
    name: "sf",
    launcher: true,
  });
  for (const bad of [["--root"], ["--nope"], ["--name", "a/b"]]) {
    let threw = false;
    try {
      parseArgs(bad, env({ HOME: "/h" }));
    } catch {
      threw = true;
    }
    assert(threw, `rejects ${bad.join(" ")}`);
  }
});

Deno.test("the launcher runs the bundle by absolute paths with the five scoped permissions, --no-config and --unstable-no-legacy-abort", () => {
  const sh = launcherScript("/opt/sf/lib/stepflow/deno", "/opt/sf/lib/stepflow/stepflow.js", false);
  assertStrictEquals(
    sh,
    "#!/bin/sh\n# stepflow, installed by `deno task install`: the bundle run by this Deno\n" +
      "exec /opt/sf/lib/stepflow/deno run --no-config --allow-read --allow-write --allow-net " +
      "--allow-env --allow-run --unstable-no-legacy-abort /opt/sf/lib/stepflow/stepflow.js " +
      '"$@"\n',
  );
  assert(!INSTALL_PERMISSIONS.includes("-A"));
  assertStringIncludes(launcherScript("C:\\d\\deno.exe", "C:\\d\\s.js", true), '"C:\\d\\s.js" %*');
  // a path with a space or a quote is quoted for sh
  assertStringIncludes(launcherScript("/a b/deno", "/x/it's.js", false), `'/a b/deno'`);
  assertStringIncludes(launcherScript("/a b/deno", "/x/it's.js", false), `'/x/it'\\''s.js'`);
});

Deno.test("compileFailure() keeps the first line and the last cause of deno compile's error", () => {
  const text = "\x1b[31merror\x1b[0m: Writing deno compile executable to x\n\nCaused by:\n" +
    "    0: error sending request\n    1: dns error\n    2: failed to lookup address information\n" +
    "\nStack backtrace:\n   0: <unknown>\n";
  assertStrictEquals(
    compileFailure(new TextEncoder().encode(text)),
    "error: Writing deno compile executable to x: failed to lookup address information",
  );
});

Deno.test({
  name: "the installed stepflow runs a flow from another directory without deno on PATH",
  sanitizeResources: false,
  async fn() {
    const bundle = await new Deno.Command(Deno.execPath(), {
      args: ["task", "--quiet", "bundle"],
      cwd: REPO_ROOT,
      stdout: "null",
      stderr: "piped",
    }).output();
    assertStrictEquals(bundle.code, 0, new TextDecoder().decode(bundle.stderr));
    await withTempDir(async (dir) => {
      const install = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          `${REPO_ROOT}/scripts/install.ts`,
          "--root",
          `${dir}/root`,
          "--launcher",
        ],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const said = new TextDecoder().decode(install.stderr);
      assertStrictEquals(install.code, 0, said);
      assertStringIncludes(said, `install: installed ${dir}/root/bin/stepflow (stepflow 0.1.0)`);
      assertStringIncludes(said, "is not on PATH");
      const script = await Deno.readTextFile(`${dir}/root/bin/stepflow`);
      assert(
        !script.includes(REPO_ROOT),
        `the launcher does not point into the checkout:\n${script}`,
      );

      await Deno.mkdir(`${dir}/work`);
      for (const f of ["flow.yaml", "stepflow-config.yml"]) {
        await Deno.copyFile(`${REPO_ROOT}/examples/greet/${f}`, `${dir}/work/${f}`);
      }
      const run = await new Deno.Command(`${dir}/root/bin/stepflow`, {
        args: ["run", "--flow", "flow.yaml", "--input-json", '{"who":"Ada","skip":false}'],
        cwd: `${dir}/work`,
        clearEnv: true,
        env: { PATH: "/usr/bin:/bin", HOME: `${dir}/work`, NO_COLOR: "1" },
        stdout: "piped",
        stderr: "piped",
      }).output();
      const dec = new TextDecoder();
      assertStrictEquals(run.code, 0, dec.decode(run.stderr));
      assertStrictEquals(
        dec.decode(run.stdout),
        '{"outcome":"success","result":{"messages":[{"role":"user","content":"Ada"}],"extra":"Hello, Ada!"}}\n',
      );
    });
  },
});
