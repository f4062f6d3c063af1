/**
 * Exact JSON (src/json/exact_json.ts): numbers round-trip as written (stepflow 0.8 keeps
 * `9007199254740993` and `15.0`), equality and canonical text treat them as numbers by their text.
 * @module
 */
import {
  assert,
  assertEquals,
  assertStrictEquals,
  assertStringIncludes,
  assertThrows,
} from "../_assert.ts";
import {
  canonicalJson,
  isJsonObject,
  isNumber,
  isRawNumber,
  jsonEquals,
  notJsonAt,
  numbersArePlain,
  parseJson,
  rawNumber,
  setOwn,
  sortKeys,
  stringifyJson,
  toNumber,
} from "../../src/json/exact_json.ts";

Deno.test("parseJson/stringifyJson keep numbers as written", () => {
  for (
    const text of [
      "9007199254740993",
      "15.0",
      "1.50",
      "1e3",
      "-0.0",
      "123456789012345678901234567890",
      '{"big":9007199254740993,"f":15.0,"e":1.50,"n":[1,2.0,-3]}',
    ]
  ) {
    assertStrictEquals(stringifyJson(parseJson(text)), text);
  }
  // plain numbers stay plain JS numbers
  assertStrictEquals(parseJson("42"), 42);
  assertStrictEquals(parseJson("0.5"), 0.5);
  assert(isRawNumber(parseJson("15.0")));
});

Deno.test("parseJson does not change strings that look like numbers, and throws on bad JSON", () => {
  assertEquals(parseJson('{"a":"15.0","b":[" 1.0"]}'), { a: "15.0", b: [" 1.0"] });
  assertStrictEquals(stringifyJson(parseJson('["x:1.0", 1.0]')), '["x:1.0",1.0]');
  assertThrows(() => parseJson("{"), SyntaxError);
  assertThrows(() => parseJson("[1,]"), SyntaxError);
});

Deno.test("numbersArePlain finds number tokens that would not round-trip", () => {
  assertStrictEquals(numbersArePlain('{"a":1,"b":[2,3.5],"c":"x"}'), true);
  assertStrictEquals(numbersArePlain('{"a":15.0}'), false);
  assertStrictEquals(numbersArePlain("[9007199254740993]"), false);
  assertStrictEquals(numbersArePlain("1e3"), false);
  // inside a string: a (correct) fallback to the exact parse, never a wrong answer
  assertStrictEquals(numbersArePlain('{"a":"x","b":"1.0"}'), true);
});

Deno.test("raw numbers are numbers: isNumber, toNumber, rawNumber", () => {
  const r = rawNumber("15.0");
  assert(isRawNumber(r));
  assert(isNumber(r));
  assertStrictEquals(toNumber(r), 15);
  assertStrictEquals(rawNumber("15"), 15); // reads back as written: a plain number
  assert(!isJsonObject(r));
  assert(isJsonObject({}));
  assert(!isJsonObject([]));
  assert(!isJsonObject(null));
});

Deno.test("jsonEquals: objects by key set, arrays by position, numbers by their text (0.8)", () => {
  assert(jsonEquals({ a: 1, b: [1, 2] }, { b: [1, 2], a: 1 }));
  assert(!jsonEquals([1, 2], [2, 1]));
  assert(!jsonEquals(parseJson("15"), parseJson("15.0")));
  assert(jsonEquals(parseJson("15.0"), parseJson("15.0")));
  assert(jsonEquals(parseJson("9007199254740993"), parseJson("9007199254740993")));
  assert(!jsonEquals(parseJson("9007199254740993"), parseJson("9007199254740992")));
  assert(!jsonEquals({ a: 1 }, { a: 1, b: 2 }));
  assert(!jsonEquals(null, {}));
  assert(!jsonEquals("1", 1));
});

Deno.test("canonicalJson sorts keys (deeply), keeps raw numbers; equal iff jsonEquals", () => {
  const a = parseJson('{"b":{"y":1.0,"x":2},"a":[{"d":1,"c":2}]}');
  assertStrictEquals(canonicalJson(a), '{"a":[{"c":2,"d":1}],"b":{"x":2,"y":1.0}}');
  assertStrictEquals(
    canonicalJson(parseJson('{"x":2,"y":1.0}')),
    canonicalJson(parseJson('{"y":1.0,"x":2}')),
  );
  assertEquals(sortKeys({ b: 1, a: { d: 1, c: 2 } }), { a: { c: 2, d: 1 }, b: 1 });
});

Deno.test("setOwn sets __proto__ as a plain own key (no prototype change)", () => {
  const o: Record<string, unknown> = {};
  setOwn(o, "__proto__", { polluted: true });
  assert(Object.hasOwn(o, "__proto__"));
  assertStrictEquals(Object.getPrototypeOf(o), Object.prototype);
  assertStrictEquals(stringifyJson(o), '{"__proto__":{"polluted":true}}');
  const parsed = parseJson('{"__proto__":{"x":1}}') as Record<string, unknown>;
  assert(Object.hasOwn(parsed, "__proto__"));
});

Deno.test("notJsonAt: the path of the first value that is not JSON, and only then a path", () => {
  const cycle: Record<string, unknown> = { a: [1, 2] };
  (cycle.a as unknown[]).push(cycle);
  assertStrictEquals(
    notJsonAt({ items: [{ x: 1 }, { "a b": [NaN] }] }),
    '$.items[1]["a b"][0]: the number NaN (not JSON)',
  );
  assertStrictEquals(notJsonAt([undefined]), "$[0]: undefined (use null)");
  assertStrictEquals(notJsonAt({ m: new Map() }), "$.m: a Map (not a plain object)");
  assertStrictEquals(notJsonAt({ f: () => 1 }), "$.f: a function (not JSON)");
  assertStrictEquals(notJsonAt({ ok: undefined, n: [1, "x", null, { y: true }] }), undefined);
  const deep = notJsonAt(cycle)!;
  assertStringIncludes(deep, "$.a[2].a[2].a[2]");
  assertStringIncludes(deep, "…: nested too deep (more than 512 levels: a cycle?)");
});
