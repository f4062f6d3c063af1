import { assert, assertEquals } from "../_assert.ts";
import { parseJson, stringifyJson } from "../../src/json/exact_json.ts";
import { compileTemplate, resolveTemplate } from "../../src/flow/template.ts";
import { loadFlowText } from "../../src/flow/load.ts";

const scope = {
  input: parseJson('{"__proto__": {"x": 1}}'),
  stepResult: () => undefined,
  variable: () => undefined,
  variableDefault: () => undefined,
};

Deno.test("compileTemplate() keeps a literal `__proto__` key as data", () => {
  const t = compileTemplate(parseJson('{"__proto__": {"polluted": true}, "a": 1}'));
  const r = resolveTemplate(t, scope);
  assert(r.outcome === "success");
  assertEquals(stringifyJson(r.result), '{"__proto__":{"polluted":true},"a":1}');
  assert(({} as Record<string, unknown>).polluted === undefined, "no prototype pollution");
});

Deno.test("resolveTemplate() keeps a `__proto__` key next to a reference", () => {
  const t = compileTemplate(
    parseJson('{"__proto__": {"$from": {"workflow": "input"}, "path": "$[\\"__proto__\\"]"}}'),
  );
  const r = resolveTemplate(t, scope);
  assert(r.outcome === "success");
  assertEquals(stringifyJson(r.result), '{"__proto__":{"x":1}}');
});

Deno.test("loadFlowText() keeps a `__proto__` key of a YAML flow as data", () => {
  const l = loadFlowText(
    'schema: https://stepflow.org/schemas/v1/flow.json\noutput: {"__proto__": 1}\n',
    { format: "yaml" },
  );
  assertEquals(stringifyJson(l.flow.output), '{"__proto__":1}');
});
