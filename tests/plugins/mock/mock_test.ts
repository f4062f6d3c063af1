import { assertEquals, assertRejects } from "../../_assert.ts";
import { MockPlugin } from "../../../src/plugins/mock/plugin.ts";
import { PluginError } from "../../../src/errors.ts";
import { parseJson } from "../../../src/json/exact_json.ts";
import type { ExecuteContext } from "../../../src/plugins/plugin.ts";

const ctx = {} as ExecuteContext;

function plugin() {
  return new MockPlugin("mock", {
    type: "mock",
    components: {
      "/c": {
        behaviors: [
          { input: { b: 1, a: "x" }, result: { outcome: "success", result: { out: 1 } } },
          { input: parseJson('{"n":15.0}'), result: { outcome: "skipped" } },
          { input: { n: 15 }, result: { outcome: "failed", error: { code: 3, message: "no" } } },
          { input: "boom", result: { error: "exploded" } },
        ],
      },
    },
  });
}

Deno.test("MockPlugin.execute() matches the whole input by JSON equality (key order ignored, 15 ≠ 15.0)", async () => {
  const p = plugin();
  assertEquals(await p.execute("/c", { a: "x", b: 1 }, ctx), {
    outcome: "success",
    result: { out: 1 },
  });
  assertEquals(await p.execute("/c", parseJson('{"n":15.0}'), ctx), { outcome: "skipped" });
  assertEquals(await p.execute("/c", { n: 15 }, ctx), {
    outcome: "failed",
    error: { code: 3, message: "no" },
  });
});

Deno.test("MockPlugin.execute() throws 0.8's plugin errors for a missing behavior and {error}", async () => {
  const p = plugin();
  const e = await assertRejects(() => p.execute("/c", { input: "world" }, ctx), PluginError);
  assertEquals((e as PluginError).message, "error executing user-defined function");
  assertEquals((e as PluginError).attachments, [
    'No behavior defined for /c on {"input":"world"}',
  ]);
  const e2 = await assertRejects(() => p.execute("/c", "boom", ctx), PluginError);
  assertEquals((e2 as PluginError).attachments, ["exploded"]);
  await assertRejects(() => p.execute("/other", {}, ctx), PluginError, "error executing");
});
