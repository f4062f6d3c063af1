/**
 * The MCP plugin against the real `@modelcontextprotocol/server-filesystem` on a temporary folder.
 * @module
 */
import { assert, assertEquals, assertStringIncludes } from "../../_assert.ts";
import { serverScript, startPlugin, stepCtx } from "./_helpers.ts";
import type { FlowResult } from "../../../src/core/flow_result.ts";

function textOf(r: FlowResult): string {
  if (r.outcome !== "success") throw new Error(`expected success, got ${JSON.stringify(r)}`);
  return (r.result as { type: string; text: string }[]).map((c) => c.text).join("\n");
}

Deno.test("McpPlugin with server-filesystem: write, read and list files", async () => {
  const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "stepflow-mcp-fs-" }));
  try {
    await using s = await startPlugin(
      { type: "mcp", command: "node", args: [serverScript("server-filesystem"), dir] },
      "fs",
    );
    const names = (await s.plugin.listComponents()).map((c) => c.component);
    for (const t of ["/write_file", "/read_text_file", "/list_directory"]) {
      assert(names.includes(t), `${t} missing from ${names.join(", ")}`);
    }
    const w = await s.plugin.execute(
      "/fs/write_file",
      { path: `${dir}/notes.txt`, content: "line 1\nline 2\n" },
      stepCtx(),
    );
    assertStringIncludes(textOf(w), "Successfully wrote");
    assertEquals(await Deno.readTextFile(`${dir}/notes.txt`), "line 1\nline 2\n");

    const r = await s.plugin.execute("/fs/read_text_file", { path: `${dir}/notes.txt` }, stepCtx());
    assertEquals(textOf(r), "line 1\nline 2\n");

    await Deno.writeTextFile(`${dir}/other.md`, "# other");
    const l = await s.plugin.execute("/fs/list_directory", { path: dir }, stepCtx());
    assertEquals(textOf(l).split("\n").sort(), ["[FILE] notes.txt", "[FILE] other.md"]);

    // outside the allowed folder: the server answers isError, a failed step
    const denied = await s.plugin.execute(
      "/fs/read_text_file",
      { path: "/etc/hostname" },
      stepCtx(),
    );
    assert(denied.outcome === "failed", JSON.stringify(denied));
    assertEquals(denied.error.code, 500);
    assertStringIncludes(denied.error.message, "Access denied");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
