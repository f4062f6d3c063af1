/**
 * The self-contained bundle under least privilege (issue 6): `deno task bundle` builds
 * `dist/stepflow.js`; the conformance suite, a step service, an MCP server and every example
 * folder pass when run through it with exactly the flags `stepflow permissions` prints (never
 * `-A`); and a run with one of those flags removed fails with one line naming that flag.
 * @module
 */
import { assert, assertEquals, assertMatch, assertStringIncludes, REPO_ROOT } from "../_assert.ts";
import { CONFORMANCE_DIR, conformanceTest } from "../_conformance.ts";
import { parse as parseYaml } from "yaml";
import { ALWAYS_READ_ENV } from "../../src/permissions/library_env.ts";

const BUNDLE = "dist/stepflow.js";
const FIXTURES = "tests/fixtures/bundle";
/** What `stepflow permissions` itself needs (it reads the flows, configs and PATH). */
const PERMISSIONS_FLAGS = ["--no-prompt", "--allow-read", "--allow-env"];

interface Out {
  code: number;
  stdout: string;
  stderr: string;
}

let built: Promise<void> | undefined;

/** Runs `deno task bundle` once for this file. */
function ensureBundle(): Promise<void> {
  return built ??= (async () => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["task", "--quiet", "bundle"],
      cwd: REPO_ROOT,
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (out.code !== 0) {
      throw new Error(`deno task bundle failed:\n${new TextDecoder().decode(out.stderr)}`);
    }
  })();
}

/** `deno run <flags> dist/stepflow.js <args>` from the repo root. */
async function runBundle(flags: string[], args: string[]): Promise<Out> {
  await ensureBundle();
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...flags, BUNDLE, ...args],
    cwd: REPO_ROOT,
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** Splits the one line `stepflow permissions` prints into flags (single quotes as a shell). */
function splitFlags(line: string): string[] {
  const out: string[] = [];
  const re = /'((?:[^']|'\\'')*)'|(\S+)/g;
  for (const m of line.trim().matchAll(re)) {
    out.push(m[1] !== undefined ? m[1].replaceAll(`'\\''`, "'") : m[2]);
  }
  return out;
}

/** The flags `stepflow permissions <args>` prints, checked to be scoped (no -A, each with values). */
async function permissionsFor(args: string[]): Promise<string[]> {
  const out = await runBundle(PERMISSIONS_FLAGS, ["permissions", ...args]);
  assertEquals(out.code, 0, `stepflow permissions ${args.join(" ")}: ${out.stderr}`);
  assertEquals(out.stdout.trim().split("\n").length, 1, "one line of flags");
  const flags = splitFlags(out.stdout);
  for (const f of flags) {
    assert(f !== "-A" && !f.startsWith("--allow-all"), `no -A: ${f}`);
    if (f.startsWith("--allow-")) assertMatch(f, /^--allow-(read|write|net|env|run)=\S/, "scoped");
  }
  assertEquals(flags[0], "--no-prompt");
  return flags;
}

/** Runs `stepflow test <dir>` through the bundle under its own printed flags. */
async function testThroughBundle(dir: string): Promise<Out> {
  const flags = await permissionsFor(["--test", dir]);
  const out = await runBundle(flags, ["test", dir]);
  assertEquals(
    out.code,
    0,
    `stepflow test ${dir} under ${flags.join(" ")}\n${out.stdout}\n${out.stderr}`,
  );
  assertMatch(out.stdout + out.stderr, /\b0 failed\b/);
  return out;
}

/** Asserts a one-line error (no stack trace) that names `flagPart`. */
function assertOneLine(out: Out, flagPart: string): void {
  const lines = out.stderr.trim().split("\n").filter((l) => !/^\d+ validation warning/.test(l));
  assertEquals(lines.length, 1, `one line on stderr, got:\n${out.stderr}`);
  assertStringIncludes(lines[0], flagPart);
  assert(!/^\s+at /m.test(out.stderr), "no stack trace");
}

Deno.test("deno task bundle builds one self-contained dist/stepflow.js", async () => {
  await ensureBundle();
  // Only node: built-ins stay imports (static or dynamic); our modules and the npm packages are
  // inlined. Deno's own module graph lists them: the bundle is minified, so import-like lines
  // also occur inside the web UI's sources, which it keeps as strings.
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", "--no-config", BUNDLE],
    cwd: REPO_ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert(out.code === 0, new TextDecoder().decode(out.stderr));
  const info = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    modules: { specifier: string; dependencies?: { specifier: string }[] }[];
  };
  const root = info.modules.find((m) => m.specifier.endsWith(`/${BUNDLE}`));
  assert(root !== undefined, "deno info lists the bundle");
  const specifiers = (root.dependencies ?? []).map((d) => d.specifier);
  assert(specifiers.includes("node:fs"), specifiers.join(" "));
  for (const s of specifiers) assert(s.startsWith("node:"), `external import ${s}`);
  // the CommonJS loader loads with the first `require` (scripts/lazy_require.ts), not at start
  assert(!specifiers.includes("node:module"), "node:module is imported up front");
  const text = await Deno.readTextFile(`${REPO_ROOT}/${BUNDLE}`);
  assert(!text.includes("__deno_internal_createRequire"), "the eager require is left");
});

conformanceTest(
  "the conformance suite passes through the bundle under `stepflow permissions` flags",
  async () => {
    const flags = await permissionsFor(["--test", CONFORMANCE_DIR]);
    assert(!flags.some((f) => f.startsWith("--allow-run")), "the suite runs nothing");
    assert(!flags.some((f) => f.startsWith("--allow-write")), "the suite writes nothing");
    const out = await testThroughBundle(CONFORMANCE_DIR);
    assertStringIncludes(out.stdout + out.stderr, "24 passed, 0 failed");
  },
);

Deno.test("the project's own suite passes through the bundle under `stepflow permissions` flags", async () => {
  const dir = "tests/fixtures/suite";
  const flags = await permissionsFor(["--test", dir]);
  assert(!flags.some((f) => f.startsWith("--allow-run")), "the suite runs nothing");
  assert(!flags.some((f) => f.startsWith("--allow-write")), "the suite writes nothing");
  const out = await testThroughBundle(dir);
  assertStringIncludes(out.stdout + out.stderr, "19 passed, 0 failed");
});

Deno.test("an MCP server flow passes through the bundle under its flags", async () => {
  const dir = `${FIXTURES}/mcp`;
  const flags = await permissionsFor(["--test", dir]);
  assert(flags.includes("--allow-run=node"), flags.join(" "));
  assert(flags.some((f) => f.startsWith("--allow-env=") && f.includes("BUNDLE_TEST_SUFFIX")));
  await testThroughBundle(dir);
});

Deno.test("a step-service flow passes through the bundle under its flags", async () => {
  const dir = `${FIXTURES}/step_service`;
  const flags = await permissionsFor(["--test", dir]);
  assert(flags.includes("--allow-run=node"), flags.join(" "));
  assert(flags.some((f) => f.startsWith("--allow-env=") && f.includes("PATH")), "PATH lookup");
  await testThroughBundle(dir);
});

Deno.test("every examples/ folder passes through the bundle under its flags", async (t) => {
  const dirs: string[] = [];
  try {
    for await (const e of Deno.readDir(`${REPO_ROOT}/examples`)) {
      if (e.isDirectory) dirs.push(`examples/${e.name}`);
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  for (const dir of dirs.sort()) {
    await t.step(`stepflow test ${dir}`, async () => {
      await testThroughBundle(dir);
    });
    // Flows without test cases but with `examples:` inputs: `stepflow run` each one.
    for (const { flow, name, input } of await exampleInputs(dir)) {
      await t.step(`stepflow run --flow ${flow} (example ${name})`, async () => {
        const flags = await permissionsFor(["--flow", flow]);
        const out = await runBundle(flags, ["run", "--flow", flow, "--input-json", input]);
        assertEquals(out.code, 0, `under ${flags.join(" ")}\n${out.stdout}\n${out.stderr}`);
      });
    }
  }
});

/** The `examples:` inputs of the flows in `dir` that have no `test.cases`. */
async function exampleInputs(
  dir: string,
): Promise<{ flow: string; name: string; input: string }[]> {
  const out: { flow: string; name: string; input: string }[] = [];
  for await (const e of Deno.readDir(`${REPO_ROOT}/${dir}`)) {
    // configs are not flows (and their mock keys need our YAML reader, not a plain parse)
    if (!e.isFile || !/\.ya?ml$/.test(e.name) || /^stepflow[-_]config/.test(e.name)) continue;
    const doc = parseYaml(await Deno.readTextFile(`${REPO_ROOT}/${dir}/${e.name}`));
    if (!isFlowDoc(doc) || (doc.test?.cases?.length ?? 0) > 0) continue;
    for (const ex of doc.examples ?? []) {
      out.push({ flow: `${dir}/${e.name}`, name: ex.name, input: JSON.stringify(ex.input) });
    }
  }
  return out;
}

interface FlowDoc {
  schema: string;
  test?: { cases?: unknown[] };
  examples?: { name: string; input: unknown }[];
}

function isFlowDoc(v: unknown): v is FlowDoc {
  return typeof v === "object" && v !== null &&
    (v as FlowDoc).schema === "https://stepflow.org/schemas/v1/flow.json";
}

Deno.test("stepflow run through the bundle: printed flags work, output file included", async () => {
  const dir = await Deno.makeTempDir({ dir: REPO_ROOT, prefix: ".bundle-test-" });
  try {
    const rel = dir.slice(REPO_ROOT.length + 1);
    await Deno.copyFile(`${REPO_ROOT}/${FIXTURES}/mcp/server.mjs`, `${dir}/server.mjs`);
    await Deno.copyFile(`${REPO_ROOT}/${FIXTURES}/mcp/flow.yaml`, `${dir}/flow.yaml`);
    // Same MCP config, plus an SQLite state store file (read + write).
    const config = await Deno.readTextFile(`${REPO_ROOT}/${FIXTURES}/mcp/stepflow-config.yml`);
    await Deno.writeTextFile(
      `${dir}/stepflow-config.yml`,
      config + "stateStore:\n  type: sqlite\n  databaseUrl: sqlite:state.db\n",
    );
    const args = ["--flow", `${rel}/flow.yaml`, "--output", `${rel}/out.json`];
    const flags = await permissionsFor(args);
    assert(flags.some((f) => f.startsWith("--allow-write=") && f.includes("state.db")));
    const out = await runBundle(flags, ["run", ...args, "--input-json", '{"text":"ok"}']);
    assertEquals(out.code, 0, out.stderr);
    assertEquals(
      JSON.parse(await Deno.readTextFile(`${dir}/out.json`)),
      { outcome: "success", result: [{ type: "text", text: "OK!" }] },
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("stepflow permissions without the read flag it needs: one line, exit 3", async () => {
  const out = await runBundle(
    ["--no-prompt", "--allow-env"],
    ["permissions", "--flow", `${FIXTURES}/mcp/flow.yaml`],
  );
  assertEquals(out.code, 3, out.stderr);
  assertOneLine(out, "error: missing permission: add --allow-read");
});

Deno.test("a step-service run without --allow-run fails with one line naming --allow-run", async () => {
  const flow = `${FIXTURES}/step_service/flow.yaml`;
  const flags = (await permissionsFor(["--flow", flow])).filter((f) =>
    !f.startsWith("--allow-run")
  );
  const out = await runBundle(flags, ["run", "--flow", flow, "--input-json", '{"name":"x"}']);
  assert(out.code !== 0, "the run fails");
  assertEquals(out.stdout, "", "no result on stdout");
  assertOneLine(out, "--allow-run");
});

/** Runs the MCP fixture flow with `drop` removed from its printed flags. */
async function runWithout(drop: (flag: string) => string | undefined): Promise<Out> {
  const flow = `${FIXTURES}/mcp/flow.yaml`;
  const flags = (await permissionsFor(["--flow", flow])).map(drop).filter((f) => f !== undefined);
  return await runBundle(flags as string[], [
    "run",
    "--flow",
    flow,
    "--input-json",
    '{"text":"a"}',
  ]);
}

// src/cli/run.ts maps a missing permission (in its errors and in a failed result) to one line.
const RUN_MAPS_PERMISSIONS = true;

Deno.test({
  name: "a run without --allow-run fails with one line naming --allow-run=node, exit 3",
  ignore: !RUN_MAPS_PERMISSIONS,
  fn: async () => {
    const out = await runWithout((f) => f.startsWith("--allow-run") ? undefined : f);
    assertEquals(out.code, 3);
    assertOneLine(out, "add --allow-run=node ");
  },
});

Deno.test({
  name: "a run without one env variable fails with one line naming it, exit 3",
  ignore: !RUN_MAPS_PERMISSIONS,
  fn: async () => {
    const out = await runWithout((f) =>
      f.startsWith("--allow-env=") ? f.replace("BUNDLE_TEST_SUFFIX,", "") : f
    );
    assertEquals(out.code, 3);
    assertOneLine(out, "add --allow-env=BUNDLE_TEST_SUFFIX ");
  },
});

Deno.test({
  name: "a run without --allow-read fails with one line naming --allow-read, exit 3",
  ignore: !RUN_MAPS_PERMISSIONS,
  fn: async () => {
    const out = await runWithout((f) => f.startsWith("--allow-read") ? undefined : f);
    assertEquals(out.code, 3);
    assertOneLine(out, "add --allow-read");
  },
});

Deno.test("stepflow visualize through the bundle: an SVG with read access only (no Graphviz, no run)", async () => {
  const out = await runBundle(
    ["--no-prompt", "--allow-read=.", `--allow-env=${ALWAYS_READ_ENV.join(",")}`],
    ["visualize", "--flow", "examples/hello/flow.yaml"],
  );
  assertEquals(out.code, 0, out.stderr);
  assert(out.stdout.startsWith("<svg "), out.stdout.slice(0, 100));
  assertStringIncludes(out.stdout, 'data-step-id="prompt"');
});

Deno.test("stepflow serve through the bundle serves the web UI: its files are in the bundle", async () => {
  await ensureBundle();
  const { UI_FILES, UI_VERSION } = await import("../../src/server/routes_ui.ts");
  const dir = await Deno.makeTempDir();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${REPO_ROOT}/${BUNDLE}`, "serve", "--port", "0", "--store", "memory"],
    cwd: dir,
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  try {
    const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    let url: string | undefined;
    while (url === undefined) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`serve exited without listening:\n${text}`);
      text += value;
      const line = text.split("\n").find((l) => l.includes('"listening"'));
      if (line) url = JSON.parse(line).url;
    }
    reader.releaseLock();
    child.stderr.pipeTo(new WritableStream()).catch(() => {});
    const page = await fetch(`${url}/ui`);
    assertEquals(page.status, 200);
    assertStringIncludes(await page.text(), `/ui/static/${UI_VERSION}/app.js`);
    for (const [name, file] of Object.entries(UI_FILES)) {
      const res = await fetch(`${url}/ui/static/${UI_VERSION}/${name}`);
      assertEquals(res.status, 200, name);
      assertEquals(await res.text(), file.body, `${name} as served by the bundle`);
    }
  } finally {
    child.kill("SIGTERM");
    await child.status;
    await Deno.remove(dir, { recursive: true });
  }
});
