/**
 * The expression language (src/flow/template.ts; stepflow 0.8 §1.3-§1.5): paths, references,
 * `$literal`, `onSkip`, skipped/failed propagation, variables and truthiness.
 * @module
 */
import { assert, assertEquals, assertStrictEquals, assertThrows } from "../_assert.ts";
import {
  applyPath,
  compileTemplate,
  isTruthy,
  parsePath,
  pathText,
  referencedSteps,
  type ResolveScope,
  resolveTemplate,
  TemplateError,
} from "../../src/flow/template.ts";
import type { FlowResult } from "../../src/core/flow_result.ts";
import { type JsonValue, parseJson } from "../../src/json/exact_json.ts";

function scope(
  input: JsonValue,
  steps: Record<string, FlowResult> = {},
  variables: Record<string, JsonValue> = {},
  defaults: Record<string, JsonValue> = {},
): ResolveScope {
  return {
    input,
    stepResult: (id) => steps[id],
    variable: (n) => variables[n],
    variableDefault: (n) => defaults[n],
  };
}

const ok = (result: JsonValue): FlowResult => ({ outcome: "success", result });

function resolve(t: JsonValue, s: ResolveScope): FlowResult {
  return resolveTemplate(compileTemplate(t), s);
}

Deno.test("parsePath: $-paths, brackets, quoted keys; a path without $ is one key (0.8)", () => {
  assertEquals(parsePath("$.a.b[0]").segments, ["a", "b", 0]);
  assertEquals(parsePath("$['x y'][\"z\"]").segments, ["x y", "z"]);
  assertEquals(parsePath("$").segments, []);
  assertEquals(parsePath("").segments, []);
  assertEquals(parsePath("a.b").segments, ["a.b"]);
  assertStrictEquals(parsePath("a.b").text, '$["a.b"]');
  assertStrictEquals(pathText(["a", 0, "b.c"]), '$.a[0]["b.c"]');
  assertThrows(() => parsePath("$.a["), TemplateError, "Unclosed bracket '[' in path");
  assertThrows(() => parsePath("$[x]"), TemplateError, "Invalid index 'x'");
  assertThrows(() => parsePath("$a"), TemplateError, "Invalid character 'a'");
});

Deno.test("applyPath: a missing key or index is an error, never null", () => {
  const v = parseJson('{"a":[{"b":1}],"n":null}');
  assertEquals(applyPath(v, parsePath("$.a[0].b")), 1);
  assertEquals(applyPath(v, parsePath("$.n")), null);
  assertThrows(() => applyPath(v, parsePath("$.a[1]")), TemplateError, "Undefined field '$.a[1]'");
  assertThrows(() => applyPath(v, parsePath("$.x")), TemplateError, "Undefined field '$.x'");
  assertThrows(() => applyPath(v, parsePath("$.n.x")), TemplateError, "Undefined field");
  // a raw number's text is not a field
  assertThrows(() => applyPath(parseJson('{"f":1.0}'), parsePath("$.f.rawJSON")), TemplateError);
});

Deno.test("references: input, steps, variables (given, default, schema default), with path", () => {
  const s = scope({ q: "hi" }, { a: ok({ out: [1, 2] }) }, { v: "set" }, { d: 0 });
  assertEquals(resolve({ $from: { workflow: "input" }, path: "q" }, s), ok("hi"));
  assertEquals(resolve({ $from: { step: "a" }, path: "$.out[1]" }, s), ok(2));
  assertEquals(resolve({ $from: { variable: "v" } }, s), ok("set"));
  assertEquals(resolve({ $from: { variable: "w", default: 5 } }, s), ok(5));
  assertEquals(resolve({ $from: { variable: "d" } }, s), ok(0));
  assertThrows(
    () => resolve({ $from: { variable: "none" } }, s),
    TemplateError,
    "Undefined variable 'none'",
  );
  assertThrows(
    () => resolve({ $from: { step: "b" } }, s),
    TemplateError,
    "Step 'b' has no result yet",
  );
});

Deno.test("templates: nested values, $literal escapes, other keys of a reference are ignored", () => {
  const s = scope({ x: 1 });
  assertEquals(
    resolve({
      a: [{ $from: { workflow: "input" }, path: "x" }, 2],
      b: { $literal: { $from: "no" } },
    }, s),
    ok({ a: [1, 2], b: { $from: "no" } }),
  );
  assertEquals(resolve({ $from: { workflow: "input" }, path: "x", other: 9 }, s), ok(1));
  // reference-free subtrees are literals (the same value, not a copy)
  const lit = { deep: { list: [1, 2] } };
  const c = compileTemplate(lit);
  assert(c.kind === "literal" && c.value === lit);
});

Deno.test("the first skipped or failed reference decides; onSkip useDefault replaces a skip", () => {
  const skipped: FlowResult = { outcome: "skipped" };
  const failed: FlowResult = { outcome: "failed", error: { code: 7, message: "no" } };
  const s = scope({}, { s: skipped, f: failed, a: ok(1) });
  assertEquals(resolve([{ $from: { step: "a" } }, { $from: { step: "s" } }], s), skipped);
  assertEquals(resolve({ x: { $from: { step: "f" } }, y: { $from: { step: "s" } } }, s), failed);
  assertEquals(
    resolve({ $from: { step: "s" }, onSkip: { action: "useDefault", defaultValue: 3 } }, s),
    ok(3),
  );
  assertEquals(resolve({ $from: { step: "s" }, onSkip: { action: "useDefault" } }, s), ok(null));
  // the default is used as is, not read through `path`
  assertEquals(
    resolve(
      { $from: { step: "s" }, path: "$.x", onSkip: { action: "useDefault", defaultValue: 4 } },
      s,
    ),
    ok(4),
  );
});

Deno.test("invalid references fail to compile at their place", () => {
  const where = (t: JsonValue) => {
    try {
      compileTemplate(t, ["steps", 0, "input"]);
    } catch (e) {
      assert(e instanceof TemplateError);
      return [e.message, e.at];
    }
    throw new Error("compiled");
  };
  assertEquals(where({ x: { $from: "input" } }), [
    'invalid type: string "input", expected a map for $from',
    ["steps", 0, "input", "x", "$from"],
  ]);
  assertEquals(where({ $from: { workflow: "output" } })[1], [
    "steps",
    0,
    "input",
    "$from",
    "workflow",
  ]);
  assertEquals(where({ $from: { step: 1 } })[0], "$from.step must be a string step id");
  assertEquals(where({ $from: {} })[1], ["steps", 0, "input", "$from"]);
  assertEquals(where({ $from: { step: "a" }, path: "$[x]" })[1], ["steps", 0, "input", "path"]);
  assertEquals(where({ $from: { step: "a" }, onSkip: { action: "nope" } })[1], [
    "steps",
    0,
    "input",
    "onSkip",
  ]);
});

Deno.test("referencedSteps lists each step once, in first-use order", () => {
  const t = compileTemplate({
    a: { $from: { step: "x" } },
    b: [{ $from: { step: "y" } }, { $from: { step: "x" }, path: "z" }],
    c: { $from: { workflow: "input" } },
  });
  assertEquals(referencedSteps(t), ["x", "y"]);
});

Deno.test('isTruthy: false, 0, 0.0 and "" are falsy; null, [] and {} are truthy (0.8)', () => {
  for (const v of [false, 0, "", parseJson("0.0")]) {
    assertStrictEquals(isTruthy(v as JsonValue), false);
  }
  for (const v of [true, 1, "x", null, [], {}, parseJson("1.0")]) {
    assertStrictEquals(isTruthy(v as JsonValue), true);
  }
});

Deno.test("exact numbers survive resolution", () => {
  const input = parseJson('{"n":9007199254740993,"f":15.0}');
  const r = resolve({
    both: [{ $from: { workflow: "input" }, path: "n" }, {
      $from: { workflow: "input" },
      path: "f",
    }],
  }, scope(input));
  assertStrictEquals(
    JSON.stringify(r),
    '{"outcome":"success","result":{"both":[9007199254740993,15.0]}}',
  );
});

Deno.test("parsePath keeps short paths in its cache and never long ones (bounded in bytes)", () => {
  // Before: every distinct path was kept up to 10,000 entries whatever its length: 300 distinct
  // 1 MB paths (flows posted to the service) kept 300 MB.
  const short = "$.a.b[0]";
  assertStrictEquals(parsePath(short), parsePath(short));
  const long = "$.a" + "b".repeat(100_000);
  const first = parsePath(long);
  assertStrictEquals(first === parsePath(long), false);
  assertEquals(first.segments, ["a" + "b".repeat(100_000)]);
});
