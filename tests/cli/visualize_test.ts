/**
 * `stepflow visualize` as a real subprocess: formats, the output file and its extension, the
 * config's plugins, 0.8's flags, warnings, and errors (exit codes, no stack traces).
 * @module
 */
import {
  assert,
  assertStrictEquals,
  assertStringIncludes,
  REPO_ROOT,
  runCli,
  withTempDir,
} from "../_assert.ts";
import { parseXml } from "../visualize/_xml.ts";

const HELLO = `${REPO_ROOT}/examples/hello/flow.yaml`;

Deno.test("stepflow visualize: Mermaid and DOT on stdout, with the plugin each step is routed to", async () => {
  const m = await runCli(["visualize", "--flow", HELLO, "--format", "mermaid"]);
  assertStrictEquals(m.code, 0, m.stderr);
  assert(m.stdout.startsWith('---\ntitle: "hello"\n---\nflowchart TD\n'), m.stdout);
  // examples/hello/stepflow-config.yml is found next to the flow
  assertStringIncludes(m.stdout, 'n_step_prompt["prompt<br>/builtin/create_messages → builtin"]');
  assertStrictEquals(m.stderr, "");
  const d = await runCli(["visualize", "--flow", HELLO, "--format", "DOT", "--no-details"]);
  assertStrictEquals(d.code, 0, d.stderr);
  assert(d.stdout.startsWith('digraph "hello" {'), d.stdout);
  assertStringIncludes(d.stdout, '"step:prompt" [label=<<B>prompt</B>>];');
  assert(!d.stdout.includes("/builtin/"), "no components with --no-details");
});

Deno.test("stepflow visualize: -o picks the format from its extension; SVG by default (0.8)", async () => {
  await withTempDir(async (dir) => {
    for (const [file, start] of [["g.svg", "<svg "], ["g.gv", "digraph"], ["g.mmd", "---"]]) {
      const r = await runCli([
        "visualize",
        "--flow",
        HELLO,
        "-o",
        `${dir}/${file}`,
        "--no-servers",
      ]);
      assertStrictEquals(r.code, 0, r.stderr);
      assertStrictEquals(r.stdout, "");
      assert((await Deno.readTextFile(`${dir}/${file}`)).startsWith(start), file);
    }
    const r = await runCli(["visualize", "--flow", HELLO, "--expand-nested"]);
    assertStrictEquals(r.code, 0, r.stderr);
    const svg = parseXml(r.stdout);
    assertStrictEquals(svg.name, "svg");
    assertStringIncludes(r.stdout, 'class="cluster nested-flow-cluster"');
  });
});

Deno.test("stepflow visualize: problems in the flow are warnings; the picture is still drawn", async () => {
  await withTempDir(async (dir) => {
    const f = `${dir}/flow.yaml`;
    await Deno.writeTextFile(
      f,
      "schema: https://stepflow.org/schemas/v1/flow.json\nsteps:\n" +
        "  - {id: a, component: /x, input: {$from: {step: ghost}}}\noutput: {$from: {step: a}}\n",
    );
    const r = await runCli(["visualize", "--flow", f, "--format", "mermaid"]);
    assertStrictEquals(r.code, 0, r.stderr);
    assertStringIncludes(r.stdout, 'n_missing_ghost["ghost<br>undefined step"]');
    assertStrictEquals(
      r.stderr,
      "warning: $.steps[0].input: step 'a' references undefined step 'ghost'\n",
    );
  });
});

Deno.test("stepflow visualize: bad usage and unreadable flows exit 2 with one clear line", async () => {
  const png = await runCli(["visualize", "--flow", HELLO, "-o", "/tmp/x.png"]);
  assertStrictEquals(png.code, 2);
  assertStringIncludes(png.stderr, "error: png is not drawn");
  assertStringIncludes(png.stderr, "--format svg");
  const bad = await runCli(["visualize", "--flow", HELLO, "--format", "jpeg"]);
  assertStrictEquals(bad.code, 2);
  assertStrictEquals(bad.stderr, "error: --format must be mermaid, dot, svg, got 'jpeg'\n");
  const missing = await runCli(["visualize", "--flow", "no/such/flow.yaml"]);
  assertStrictEquals(missing.code, 2);
  assertStringIncludes(
    missing.stderr,
    "error: Cannot read flow file 'no/such/flow.yaml': no such file",
  );
  await withTempDir(async (dir) => {
    const f = `${dir}/flow.yaml`;
    await Deno.writeTextFile(f, "schema: https://stepflow.org/schemas/v1/flow.json\nsteps: [\n");
    const r = await runCli(["visualize", "--flow", f]);
    assertStrictEquals(r.code, 2);
    assertStringIncludes(r.stderr, `${f}:`);
    assert(!/\n\s+at /.test(r.stderr), r.stderr);
    const cfg = await runCli(["visualize", "--flow", HELLO, "--config", `${dir}/none.yml`]);
    assertStrictEquals(cfg.code, 2);
    assertStringIncludes(cfg.stderr, "none.yml");
    const out = await runCli(["visualize", "--flow", HELLO, "-o", `${dir}/no/dir/g.svg`]);
    assertStrictEquals(out.code, 2);
    assertStringIncludes(
      out.stderr,
      `error: --output '${dir}/no/dir/g.svg': directory '${dir}/no/dir' does not exist`,
    );
  });
});
