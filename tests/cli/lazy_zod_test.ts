/**
 * `stepflow run` reads a common flow and config without the `zod` package (issue 17, goal 5:
 * cold start): its static import graph does not reach zod, and what the zod-free readers decline
 * (a retry policy, `openai` settings, a wrong shape at the top, in a nested flow or in a flow blob
 * made at run time) is read by the zod models, loaded then, with their messages.
 * @module
 */
import { assertStrictEquals, assertStringIncludes, runCli, withTempDir } from "../_assert.ts";
import { staticImports } from "../_static_imports.ts";

Deno.test("stepflow run: no static import reaches zod", async () => {
  const heavy = (await staticImports("src/cli/run.ts")).filter((s) =>
    /npm[:/]+zod@/.test(s) || /\/src\/(flow|config)\/(model|load|shapes_zod)\.ts$/.test(s)
  );
  assertStrictEquals(heavy.join(", "), "");
});

const HEAD = "schema: https://stepflow.org/schemas/v1/flow.json\n";
const CONFIG = "plugins:\n  builtin: { type: builtin }\n" +
  'routes:\n  "/builtin/{*component}":\n    - plugin: builtin\n';

Deno.test("stepflow run: a retry policy and openai settings are read by the zod models", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(
      `${dir}/stepflow-config.yml`,
      "plugins:\n  builtin: { type: builtin, openai: { model: m } }\n" +
        'routes:\n  "/builtin/{*component}":\n    - plugin: builtin\n',
    );
    await Deno.writeTextFile(
      `${dir}/flow.yaml`,
      HEAD + "steps:\n  - id: m\n    component: /builtin/create_messages\n" +
        "    onError: { action: retry, maxRetries: 2, initialDelay: 0s }\n" +
        "    input: { user_prompt: { $from: { workflow: input }, path: who } }\n" +
        'output: { p: { $from: { step: m }, path: "$.messages[0].content" } }\n',
    );
    const r = await runCli(["run", "--flow", `${dir}/flow.yaml`, "--input-json", '{"who":"Ada"}']);
    assertStrictEquals(r.code, 0, r.stderr);
    assertStrictEquals(r.stdout, '{"outcome":"success","result":{"p":"Ada"}}\n');
  });
});

Deno.test("stepflow run: wrong shapes get zod's messages, at the top and nested", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/stepflow-config.yml`, CONFIG);
    // at the top
    await Deno.writeTextFile(`${dir}/top.yaml`, HEAD + "steps:\n  - component: /builtin/eval\n");
    const top = await runCli(["run", "--flow", `${dir}/top.yaml`, "--input-json", "{}"]);
    assertStrictEquals(top.code, 2, top.stderr);
    assertStringIncludes(top.stderr, "top.yaml:3:5");
    assertStringIncludes(top.stderr, "Invalid flow: $.steps[0]");
    // in a nested flow (validation, before the run)
    await Deno.writeTextFile(
      `${dir}/nested.yaml`,
      HEAD + "steps:\n  - id: s\n    component: /builtin/put_blob\n    input:\n" +
        "      blob_type: flow\n      data:\n        $literal:\n" +
        "          schema: https://stepflow.org/schemas/v1/flow.json\n" +
        "          steps: [{ id: 7, component: /x }]\n",
    );
    const nested = await runCli(["run", "--flow", `${dir}/nested.yaml`, "--input-json", "{}"]);
    assertStrictEquals(nested.code, 2, nested.stderr);
    assertStringIncludes(nested.stderr, "Invalid nested flow");
    // in a flow blob made at run time (from the input)
    await Deno.writeTextFile(
      `${dir}/blob.yaml`,
      HEAD + "steps:\n  - id: s\n    component: /builtin/put_blob\n    input:\n" +
        "      blob_type: flow\n      data: { $from: { workflow: input } }\n" +
        "output: { $from: { step: s } }\n",
    );
    const blob = await runCli([
      "run",
      "--flow",
      `${dir}/blob.yaml`,
      "--input-json",
      '{"schema":"https://stepflow.org/schemas/v1/flow.json","steps":[{"id":1}]}',
    ]);
    assertStrictEquals(blob.code, 1, blob.stderr);
    assertStringIncludes(blob.stdout, "Invalid flow blob: Invalid flow: $.steps[0].id");
  });
});
