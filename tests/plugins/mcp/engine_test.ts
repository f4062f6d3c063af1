/**
 * MCP steps through the engine: `onError` handles a tool's `isError` result, parallel steps share
 * one server, and a step `timeout` cancels the call.
 * @module
 */
import { assertEquals, assertStringIncludes, REPO_ROOT } from "../../_assert.ts";
import { everythingConfig, faultConfig } from "./_helpers.ts";
import { Engine } from "../../../src/execution/engine.ts";
import { parseConfigValue } from "../../../src/config/load.ts";
import { parseFlowValue } from "../../../src/flow/load.ts";
import type { JsonValue } from "../../../src/json/exact_json.ts";

async function withEngine(fn: (engine: Engine) => Promise<void>): Promise<void> {
  const config = parseConfigValue({
    plugins: {
      everything: everythingConfig() as unknown as JsonValue,
      fault: faultConfig("ok", { output: "structured" }) as unknown as JsonValue,
    },
    routes: {
      "/everything/{*component}": [{ plugin: "everything" }],
      "/fault/{*component}": [{ plugin: "fault" }],
    },
  }, { workingDirectory: REPO_ROOT });
  const engine = await Engine.create(config);
  try {
    await fn(engine);
  } finally {
    await engine.close();
  }
}

const flow = (steps: JsonValue[], output: JsonValue) =>
  parseFlowValue({ schema: "https://stepflow.org/schemas/v1/flow.json", steps, output });

Deno.test("engine: onError applies to an MCP tool's isError result; parallel steps share the server", async () => {
  await withEngine(async (engine) => {
    const f = flow([
      {
        id: "bad",
        component: "/everything/get-resource-reference",
        input: { resourceId: 0 },
        onError: { action: "useDefault", defaultValue: "fallback" },
      },
      ...Array.from({ length: 10 }, (_, i) => ({
        id: `sum${i}`,
        component: "/everything/get-sum",
        input: { a: i, b: { $from: { workflow: "input" }, path: "$.b" } },
      })),
    ], {
      bad: { $from: { step: "bad" } },
      sums: Array.from(
        { length: 10 },
        (_, i) => ({ $from: { step: `sum${i}` }, path: "$[0].text" }),
      ),
    });
    const r = await engine.run(f, { b: 100 });
    assertEquals(r, {
      outcome: "success",
      result: {
        bad: "fallback",
        sums: Array.from({ length: 10 }, (_, i) => `The sum of ${i} and 100 is ${i + 100}.`),
      },
    });
  });
});

Deno.test("engine: an input that breaks the tool's inputSchema fails the step, naming the field", async () => {
  await withEngine(async (engine) => {
    const r = await engine.run(
      flow([{ id: "s", component: "/everything/get-sum", input: { a: 1 } }], {
        $from: { step: "s" },
      }),
      null,
    );
    if (r.outcome !== "failed") throw new Error(JSON.stringify(r));
    assertStringIncludes(r.error.message, "field 'b' is required");
  });
});

Deno.test("engine: a step timeout cancels a silent MCP call", async () => {
  await withEngine(async (engine) => {
    const r = await engine.run(
      flow([{
        id: "slow",
        component: "/everything/trigger-long-running-operation",
        input: { duration: 2, steps: 1 },
        timeout: "300ms",
      }], { $from: { step: "slow" } }),
      null,
    );
    if (r.outcome !== "failed") throw new Error(JSON.stringify(r));
    assertEquals(r.error.code, 504);
    // the server got notifications/cancelled for the abandoned call
    const hang = await engine.run(
      flow([{ id: "h", component: "/fault/hang", input: {}, timeout: "200ms" }], {
        $from: { step: "h" },
      }),
      null,
    );
    assertEquals(hang.outcome, "failed");
    const ids = await engine.run(
      flow([{ id: "c", component: "/fault/cancelled", input: {} }], { $from: { step: "c" } }),
      null,
    );
    if (ids.outcome !== "success") throw new Error(JSON.stringify(ids));
    assertEquals((ids.result as { ids: unknown[] }).ids.length, 1);
  });
});
