/**
 * The step-service examples give their documented output (their flow's test case) through
 * `stepflow run`, over stdio and over HTTP.
 */
import { parse } from "yaml";
import { assertEquals, removeTree, REPO_ROOT, runCli } from "../../_assert.ts";
import { parseJson } from "../../../src/json/exact_json.ts";
import { spawnHttpWorker } from "./_helpers.ts";

const TEXT = `${REPO_ROOT}/examples/text-service`;

/** The example configs start `deno` from PATH: make it this Deno (CI runs Deno through npx). */
const env = {
  PATH: `${Deno.execPath().replace(/\/[^/]*$/, "")}:${Deno.env.get("PATH") ?? ""}`,
};

async function documented(flowPath: string) {
  const flow = parse(await Deno.readTextFile(flowPath));
  return { input: flow.test.cases[0].input, output: flow.test.cases[0].output };
}

Deno.test("examples/text-service over stdio gives the documented output", async () => {
  const { input, output } = await documented(`${TEXT}/flow.yaml`);
  const r = await runCli([
    "run",
    "--flow",
    "examples/text-service/flow.yaml",
    "--input-json",
    JSON.stringify(input),
  ], { cwd: REPO_ROOT, env });
  assertEquals(r.code, 0, r.stderr);
  assertEquals(parseJson(r.stdout), output);
});

Deno.test("examples/text-service over HTTP gives the documented output", async () => {
  const { input, output } = await documented(`${TEXT}/flow.yaml`);
  const svc = await spawnHttpWorker("service.ts", {
    cwd: TEXT,
    permissions: ["--allow-net=127.0.0.1"],
  });
  const dir = await Deno.makeTempDir();
  try {
    const config = (await Deno.readTextFile(`${TEXT}/stepflow-config-http.yml`))
      .replace("http://127.0.0.1:8717/", svc.url) + `workingDirectory: ${TEXT}\n`;
    await Deno.writeTextFile(`${dir}/stepflow-config.yml`, config);
    const r = await runCli([
      "run",
      "--flow",
      "examples/text-service/flow.yaml",
      "--config",
      `${dir}/stepflow-config.yml`,
      "--input-json",
      JSON.stringify(input),
    ], { cwd: REPO_ROOT, env });
    assertEquals(r.code, 0, r.stderr);
    assertEquals(parseJson(r.stdout), output);
  } finally {
    await svc.stop();
    await removeTree(dir);
  }
});

Deno.test("examples/python-service (standard library only) gives the documented output", async () => {
  const { input, output } = await documented(`${REPO_ROOT}/examples/python-service/flow.yaml`);
  const r = await runCli([
    "run",
    "--flow",
    "examples/python-service/flow.yaml",
    "--input-json",
    JSON.stringify(input),
  ], { cwd: REPO_ROOT, env });
  assertEquals(r.code, 0, r.stderr);
  assertEquals(parseJson(r.stdout), output);
});

Deno.test("stepflow list-components lists the text service's components with their routes", async () => {
  const r = await runCli([
    "list-components",
    "--config",
    "examples/text-service/stepflow-config.yml",
    "--format",
    "json",
  ], { cwd: REPO_ROOT, env });
  assertEquals(r.code, 0, r.stderr);
  const list = JSON.parse(r.stdout).components as Record<string, unknown>[];
  const kw = list.find((c) => c.component === "/keywords")!;
  assertEquals(kw.plugin, "text");
  assertEquals(
    kw.description,
    "The most frequent words that are not stopwords, most frequent first",
  );
  assertEquals(kw.routes, [{
    pathPattern: "/text/{*component}",
    resolvedPath: "/text/keywords",
    conditions: [],
    isConditional: false,
  }]);
  assertEquals((kw.input_schema as { required: string[] }).required, ["text"]);
  assertEquals(list.map((c) => c.component), [...list.map((c) => c.component as string)].sort());
  const pretty = await runCli([
    "list-components",
    "--config",
    "examples/text-service/stepflow-config.yml",
  ], { cwd: REPO_ROOT, env });
  assertEquals(pretty.code, 0, pretty.stderr);
  assertEquals(pretty.stdout.includes("Component: /keywords (plugin: text)\n"), true);
  assertEquals(pretty.stdout.includes("input_schema"), false);
  assertEquals(pretty.stdout.trimEnd().endsWith(`Total components: ${list.length}`), true);
});
