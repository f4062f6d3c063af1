/**
 * `deno task compile` and the release workflow are present and consistent. (The compile itself
 * needs the `denort` runtime from dl.deno.land, which the test network cannot reach; the
 * release workflow runs it.)
 * @module
 */
import { assert, assertEquals, assertStringIncludes, REPO_ROOT } from "../_assert.ts";
import { parse as parseYaml } from "yaml";
import { COMPILE_PERMISSIONS, outputName, sha256File, TARGETS } from "../../scripts/compile.ts";

Deno.test("compile targets: linux x64/arm64, macOS x64/arm64, windows x64", () => {
  assertEquals([...TARGETS].sort(), [
    "aarch64-apple-darwin",
    "aarch64-unknown-linux-gnu",
    "x86_64-apple-darwin",
    "x86_64-pc-windows-msvc",
    "x86_64-unknown-linux-gnu",
  ]);
  assertEquals(outputName("x86_64-pc-windows-msvc"), "stepflow-x86_64-pc-windows-msvc.exe");
  assertEquals(outputName("aarch64-apple-darwin"), "stepflow-aarch64-apple-darwin");
  assert(!COMPILE_PERMISSIONS.includes("-A") && !COMPILE_PERMISSIONS.includes("--allow-all"));
  assert(!COMPILE_PERMISSIONS.some((p) => /ffi|sys|import/.test(p)));
});

Deno.test("sha256File() matches the sha256sum of known bytes", async () => {
  const f = await Deno.makeTempFile();
  try {
    await Deno.writeTextFile(f, "abc");
    assertEquals(
      await sha256File(f),
      "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
    );
  } finally {
    await Deno.remove(f);
  }
});

Deno.test("deno.json has the compile, bundle and install tasks", async () => {
  const tasks = JSON.parse(await Deno.readTextFile(`${REPO_ROOT}/deno.json`)).tasks;
  assertStringIncludes(tasks.compile, "scripts/compile.ts");
  assertStringIncludes(tasks.bundle, "deno bundle");
  assertStringIncludes(tasks.bundle, "dist/stepflow.js");
  assertStringIncludes(tasks.bundle, "dist/mod.js");
  assertStringIncludes(tasks.install, "scripts/install.ts");
  assert(!/\s-A\b|--allow-all/.test(tasks.install), "install without -A");
});

Deno.test("the release workflow builds on v* tags with Deno 2.9.6 and uploads checksums", async () => {
  const text = await Deno.readTextFile(`${REPO_ROOT}/.github/workflows/release.yml`);
  // deno-lint-ignore no-explicit-any
  const wf = parseYaml(text) as any;
  assertEquals(wf.on.push.tags, ["v*"]);
  const steps = wf.jobs.release.steps as {
    uses?: string;
    with?: Record<string, string>;
    run?: string;
  }[];
  const setup = steps.find((s) => s.uses?.startsWith("denoland/setup-deno"));
  assertEquals(setup?.with?.["deno-version"], "v2.9.6");
  const runs = steps.map((s) => s.run ?? "").join("\n");
  assertStringIncludes(runs, "deno task compile");
  assertStringIncludes(runs, "deno task bundle");
  assertStringIncludes(runs, "sha256sum");
  assertStringIncludes(runs, "gh release upload");
});
