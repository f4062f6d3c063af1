import { assertEquals, assertStrictEquals, assertThrows } from "../_assert.ts";
import { applyOverrides, mergePatch } from "../../src/execution/overrides.ts";
import { ExecutionError } from "../../src/errors.ts";
import { flow } from "./_engine_helpers.ts";

Deno.test("mergePatch() follows RFC 7386: objects merge, null deletes, others replace", () => {
  assertEquals(mergePatch({ a: 1, b: { c: 2, d: 3 } }, { b: { c: null, e: 4 }, f: [1] }), {
    a: 1,
    b: { d: 3, e: 4 },
    f: [1],
  });
  assertEquals(mergePatch({ a: 1 }, "x"), "x");
  assertEquals(mergePatch("x", { a: 1 }), { a: 1 });
});

Deno.test("applyOverrides() patches steps by id and leaves the flow object alone", () => {
  const f = flow(`
steps:
  - id: a
    component: /builtin/create_messages
    input: { user_prompt: one }
output: { $from: { step: a } }
`).flow;
  const g = applyOverrides(f, {
    a: { $type: "merge_patch", value: { input: { user_prompt: "two" } } },
  });
  assertEquals(g.steps[0].input, { user_prompt: "two" });
  assertEquals(f.steps[0].input, { user_prompt: "one" });
  assertStrictEquals(applyOverrides(f, {}), f);
  assertStrictEquals(applyOverrides(f, undefined), f);
  const bad = (o: unknown, text: string) => {
    const e = assertThrows(
      () => applyOverrides(f, o as never),
      ExecutionError,
      "Failed to apply overrides",
    ) as ExecutionError;
    assertStrictEquals(e.code, 400);
    assertStrictEquals(JSON.stringify(e.frames).includes(text), true, JSON.stringify(e.frames));
  };
  bad({ zzz: { value: {} } }, "Step 'zzz' not found in flow");
  bad({ a: { $type: "json_patch", value: [] } }, "Unsupported override type 'json_patch'");
  bad({ a: { value: { component: null } } }, "without a string id and component");
});
