import { findDuplicateKey } from "../../src/json/duplicate_keys.ts";
import { assertEquals, assertStrictEquals } from "../_assert.ts";

Deno.test("findDuplicateKey() finds a key given twice, with the object's path and both places", () => {
  assertEquals(findDuplicateKey('{"a":1,\n "b":{"c":[{"x":1},{"x":2,"x":3}]}}'), {
    path: "$.b.c[1]",
    key: "x",
    offset: 34,
    line: 2,
    col: 27,
    firstLine: 2,
    firstCol: 21,
  });
  assertStrictEquals(findDuplicateKey('{"a":1,"a":2}')?.path, "$");
  // escapes decode: "\u0061" is "a"; a key needing brackets in the path
  assertEquals(findDuplicateKey('{"a b":{"\\u0061":1,"a":2}}')?.path, '$["a b"]');
  // more keys than the list holds: the map takes over
  const many = Array.from({ length: 20 }, (_, i) => `"k${i}":${i}`).join(",");
  assertStrictEquals(findDuplicateKey(`{${many},"k3":0}`)?.key, "k3");
});

Deno.test("findDuplicateKey() answers undefined for values equal to keys, strings with quotes and escapes, deep text", () => {
  for (
    const text of [
      '{"a":"a","b":["a","a"],"c":{"a":{"a":1}}}',
      '{"a\\"":1,"a":2,"\\\\":3,"\\\\\\"":4}',
      '[{"a":1},{"a":1}]',
      '"{\\"a\\":1,\\"a\\":2}"',
      "[]",
      "{}",
      "1",
      "[".repeat(100_000) + "]".repeat(100_000),
    ]
  ) assertStrictEquals(findDuplicateKey(text), undefined, text);
});
