/**
 * The MCP plugin over Streamable HTTP (`url`), against server-everything's HTTP transport on
 * 127.0.0.1, and against a port where nothing listens.
 * @module
 */
import { assert, assertEquals, assertStringIncludes } from "../../_assert.ts";
import { serverScript, startPlugin, stepCtx } from "./_helpers.ts";
import { MCP_ERROR_CODES } from "../../../src/plugins/mcp/plugin.ts";

/** A free loopback port (bound, then released). */
function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** Starts server-everything over HTTP; resolves once it says it listens. */
async function startHttpServer(port = freePort()): Promise<{ url: string } & AsyncDisposable> {
  const child = new Deno.Command("node", {
    args: [serverScript("server-everything"), "streamableHttp"],
    env: { PORT: String(port) },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const lines = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  while (!seen.includes(`listening on port ${port}`)) {
    const { value, done } = await lines.read();
    if (done) {
      await child.status;
      throw new Error(`server-everything did not start on port ${port}: ${seen}`);
    }
    seen += value;
  }
  const drain = (async () => {
    while (!(await lines.read()).done) { /* keep reading until exit */ }
  })();
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    [Symbol.asyncDispose]: async () => {
      child.kill("SIGTERM");
      await child.status;
      await drain;
    },
  };
}

Deno.test("McpPlugin over Streamable HTTP: lists and calls tools, 20 at once", async () => {
  await using server = await startHttpServer();
  await using s = await startPlugin({ type: "mcp", url: server.url }, "remote");
  const names = (await s.plugin.listComponents()).map((c) => c.component);
  assert(names.includes("/echo"), names.join(", "));
  assertEquals(await s.plugin.execute("/echo", { message: "over http" }, stepCtx()), {
    outcome: "success",
    result: [{ type: "text", text: "Echo: over http" }],
  });
  const rs = await Promise.all(
    Array.from({ length: 20 }, (_, i) => s.plugin.execute("/get-sum", { a: i, b: 1 }, stepCtx())),
  );
  rs.forEach((r, i) =>
    assertEquals(r, {
      outcome: "success",
      result: [{ type: "text", text: `The sum of ${i} and 1 is ${i + 1}.` }],
    })
  );
  const p = await s.plugin.execute(
    "/trigger-long-running-operation",
    { duration: 1.2, steps: 12 },
    stepCtx({ timeoutMs: 600 }),
  );
  assertEquals(p.outcome, "success", JSON.stringify(p));
});

Deno.test("McpPlugin over Streamable HTTP: nothing listening fails the step with the URL", async () => {
  const url = `http://127.0.0.1:${freePort()}/mcp`;
  await using s = await startPlugin({ type: "mcp", url, timeout: "2s" }, "remote");
  const r = await s.plugin.execute("/echo", { message: "x" }, stepCtx());
  assert(r.outcome === "failed", JSON.stringify(r));
  assertEquals(r.error.code, MCP_ERROR_CODES.unavailable);
  assertStringIncludes(r.error.message, `MCP plugin 'remote': server at ${url} failed to start`);
});

Deno.test("McpPlugin over Streamable HTTP: a server that went away fails the call; the next call reconnects", async () => {
  const first = await startHttpServer();
  const port = Number(new URL(first.url).port);
  await using s = await startPlugin({ type: "mcp", url: first.url, timeout: "5s" }, "remote");
  assertEquals((await s.plugin.execute("/echo", { message: "1" }, stepCtx())).outcome, "success");
  await first[Symbol.asyncDispose]();
  const down = await s.plugin.execute("/echo", { message: "2" }, stepCtx());
  assert(down.outcome === "failed", JSON.stringify(down));
  assertEquals(down.error.code, MCP_ERROR_CODES.unavailable);
  assertStringIncludes(down.error.message, `tool 'echo' of MCP plugin 'remote' failed`);
  assertStringIncludes(down.error.message, first.url);
  await using _second = await startHttpServer(port);
  assertEquals(await s.plugin.execute("/echo", { message: "3" }, stepCtx()), {
    outcome: "success",
    result: [{ type: "text", text: "Echo: 3" }],
  });
});
