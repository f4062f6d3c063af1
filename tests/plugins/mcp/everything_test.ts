/**
 * The MCP plugin against the real `@modelcontextprotocol/server-everything` over stdio.
 * @module
 */
import { assert, assertEquals, assertStringIncludes } from "../../_assert.ts";
import { everythingConfig, startPlugin, stepCtx } from "./_helpers.ts";
import { MCP_ERROR_CODES } from "../../../src/plugins/mcp/plugin.ts";
import type { FlowResult } from "../../../src/core/flow_result.ts";

function errorOf(r: FlowResult) {
  if (r.outcome !== "failed") throw new Error(`expected failed, got ${JSON.stringify(r)}`);
  return r.error;
}

Deno.test("McpPlugin.listComponents() lists each tool with its description and input schema", async () => {
  await using s = await startPlugin(everythingConfig());
  const comps = await s.plugin.listComponents();
  const names = comps.map((c) => c.component);
  for (
    const t of ["/echo", "/get-sum", "/get-structured-content", "/trigger-long-running-operation"]
  ) {
    assert(names.includes(t), `${t} missing from ${names.join(", ")}`);
  }
  const echo = comps.find((c) => c.component === "/echo")!;
  assertEquals(echo.description, "Echoes back the input string");
  const schema = echo.input_schema as Record<string, unknown>;
  assertEquals(schema.required, ["message"]);
  assertEquals((schema.properties as Record<string, unknown>).message, {
    type: "string",
    description: "Message to echo",
  });
});

Deno.test("McpPlugin.execute() calls echo and get-sum; output is the content array (0.8)", async () => {
  await using s = await startPlugin(everythingConfig());
  assertEquals(await s.plugin.execute("/echo", { message: "hello" }, stepCtx()), {
    outcome: "success",
    result: [{ type: "text", text: "Echo: hello" }],
  });
  // the routed name may carry a prefix: the last path segment is the tool (0.8)
  assertEquals(await s.plugin.execute("/everything/get-sum", { a: 2, b: 40 }, stepCtx()), {
    outcome: "success",
    result: [{ type: "text", text: "The sum of 2 and 40 is 42." }],
  });
});

Deno.test("McpPlugin.execute() checks the input against the inputSchema, naming the field", async () => {
  await using s = await startPlugin(everythingConfig());
  const e1 = errorOf(await s.plugin.execute("/get-sum", { a: 1, b: "two" }, stepCtx()));
  assertEquals(e1.code, MCP_ERROR_CODES.invalidInput);
  assertEquals(
    e1.message,
    "Input of tool 'get-sum' (MCP plugin 'srv') does not match its inputSchema: " +
      `field 'b' must be number (got "two")`,
  );
  const e2 = errorOf(await s.plugin.execute("/echo", {}, stepCtx()));
  assertStringIncludes(e2.message, "field 'message' is required");
  const e3 = errorOf(
    await s.plugin.execute("/get-structured-content", { location: "Paris" }, stepCtx()),
  );
  assertStringIncludes(e3.message, `field 'location' must be equal to one of the allowed values`);
});

Deno.test("McpPlugin.execute() gives structuredContent per the output setting", async () => {
  const input = { location: "Chicago" };
  const weather = { temperature: 36, conditions: "Light rain / drizzle", humidity: 82 };
  const content = [{ type: "text", text: JSON.stringify(weather) }];
  {
    await using s = await startPlugin(everythingConfig());
    assertEquals(await s.plugin.execute("/get-structured-content", input, stepCtx()), {
      outcome: "success",
      result: content,
    });
  }
  {
    await using s = await startPlugin(everythingConfig({ output: "result" }));
    assertEquals(await s.plugin.execute("/get-structured-content", input, stepCtx()), {
      outcome: "success",
      result: { content, structuredContent: weather },
    });
    // a tool without structuredContent: only content
    assertEquals(await s.plugin.execute("/echo", { message: "x" }, stepCtx()), {
      outcome: "success",
      result: { content: [{ type: "text", text: "Echo: x" }] },
    });
  }
  {
    await using s = await startPlugin(everythingConfig({ output: "structured" }));
    assertEquals(await s.plugin.execute("/get-structured-content", input, stepCtx()), {
      outcome: "success",
      result: weather,
    });
  }
});

Deno.test("McpPlugin.execute() turns an isError result into a failed step", async () => {
  await using s = await startPlugin(everythingConfig());
  // resourceId 0 passes the schema (a number) but the tool rejects it with isError: true
  const r = await s.plugin.execute("/get-resource-reference", { resourceId: 0 }, stepCtx());
  const msg = "Invalid resourceId: 0. Must be a finite positive integer.";
  assertEquals(r, {
    outcome: "failed",
    error: { code: 500, message: msg, data: { content: [{ type: "text", text: msg }] } },
  });
});

Deno.test("McpPlugin.execute() lets progress notifications extend the timeout", async () => {
  await using s = await startPlugin(everythingConfig());
  // 12 progress notifications 100 ms apart, timeout 600 ms: each one restarts the timer
  const r = await s.plugin.execute(
    "/trigger-long-running-operation",
    { duration: 1.2, steps: 12 },
    stepCtx({ timeoutMs: 600 }),
  );
  assertEquals(r.outcome, "success", JSON.stringify(r));
});

Deno.test("McpPlugin.execute() fails a call with no progress after the timeout, naming the tool", async () => {
  await using s = await startPlugin(everythingConfig());
  const r = await s.plugin.execute(
    "/trigger-long-running-operation",
    { duration: 1.5, steps: 1 },
    stepCtx({ timeoutMs: 300 }),
  );
  const e = errorOf(r);
  assertEquals(e.code, MCP_ERROR_CODES.timeout);
  assertEquals(e.data, { kind: "TIMEOUT" }); // the engine's table: retried as a timeout
  assertStringIncludes(
    e.message,
    "tool 'trigger-long-running-operation' of MCP plugin 'srv' timed out after 300 ms",
  );
  // the server is still usable
  assertEquals((await s.plugin.execute("/echo", { message: "ok" }, stepCtx())).outcome, "success");
});

Deno.test("McpPlugin.execute() runs 20 concurrent calls on one server", async () => {
  await using s = await startPlugin(everythingConfig());
  const results = await Promise.all(
    Array.from(
      { length: 20 },
      (_, i) =>
        i % 2 === 0
          ? s.plugin.execute("/echo", { message: `m${i}` }, stepCtx())
          : s.plugin.execute("/get-sum", { a: i, b: 1000 }, stepCtx()),
    ),
  );
  results.forEach((r, i) =>
    assertEquals(r, {
      outcome: "success",
      result: [{
        type: "text",
        text: i % 2 === 0 ? `Echo: m${i}` : `The sum of ${i} and 1000 is ${i + 1000}.`,
      }],
    })
  );
});

Deno.test("McpPlugin: the server inherits the engine's environment plus `env` (substituted)", async () => {
  Deno.env.set("STEPFLOW_MCP_INHERITED", "from-engine");
  try {
    await using s = await startPlugin(
      everythingConfig({ env: { STEPFLOW_MCP_SET: "set-${STEPFLOW_MCP_INHERITED}" } }),
    );
    const r = await s.plugin.execute("/get-env", {}, stepCtx());
    if (r.outcome !== "success") throw new Error(JSON.stringify(r));
    const env = JSON.parse((r.result as { text: string }[])[0].text);
    assertEquals(env.STEPFLOW_MCP_INHERITED, "from-engine");
    assertEquals(env.STEPFLOW_MCP_SET, "set-from-engine");
  } finally {
    Deno.env.delete("STEPFLOW_MCP_INHERITED");
  }
});
