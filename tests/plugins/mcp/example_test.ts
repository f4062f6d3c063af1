/**
 * `examples/mcp-files`: `stepflow run` prints the result its README documents.
 * @module
 */
import { assertEquals, assertStringIncludes, REPO_ROOT, runCli } from "../../_assert.ts";
import { serverScript } from "./_helpers.ts";
import { parseJson } from "../../../src/json/exact_json.ts";

Deno.test("examples/mcp-files: stepflow run prints the documented result", async () => {
  serverScript("server-filesystem"); // a clear message when the servers are not installed
  const readme = await Deno.readTextFile(`${REPO_ROOT}/examples/mcp-files/README.md`);
  const command = /^stepflow (run .+)$/m.exec(readme);
  const documented = /```json\n([\s\S]*?)\n```/.exec(readme);
  if (!command || !documented) throw new Error("README lost its command line or result block");
  assertStringIncludes(command[1], "--flow examples/mcp-files/flow.yaml");
  const input = /--input-json '([^']+)'/.exec(command[1])![1];
  const r = await runCli(
    ["run", "--flow", "examples/mcp-files/flow.yaml", "--input-json", input],
    { cwd: REPO_ROOT },
  );
  assertEquals(r.code, 0, r.stderr);
  assertEquals(parseJson(r.stdout), parseJson(documented[1]));
});

Deno.test("stepflow list-components shows each MCP tool with its route, description and input schema", async () => {
  serverScript("server-filesystem");
  const r = await runCli(
    ["list-components", "--config", "examples/mcp-files/stepflow-config.yml", "--format", "json"],
    { cwd: REPO_ROOT },
  );
  assertEquals(r.code, 0, r.stderr);
  const { components } = parseJson(r.stdout) as {
    components: {
      component: string;
      plugin: string;
      description?: string;
      input_schema?: { properties: Record<string, unknown> };
      routes: { resolvedPath: string }[];
    }[];
  };
  const read = components.find((c) => c.component === "/read_text_file" && c.plugin === "fs");
  if (!read) throw new Error(`no /read_text_file in ${r.stdout.slice(0, 500)}`);
  assertStringIncludes(read.description ?? "", "Read the complete contents of a file");
  assertEquals(Object.keys(read.input_schema!.properties).sort(), ["head", "path", "tail"]);
  assertEquals(read.routes.map((x) => x.resolvedPath), ["/fs/read_text_file"]);
});
