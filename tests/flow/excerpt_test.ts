import { fileExcerpt, sourceExcerpt } from "../../src/flow/excerpt.ts";
import { assert, assertStrictEquals } from "../_assert.ts";

Deno.test("sourceExcerpt() shows the line with a caret under the column", () => {
  const text = "a: 1\r\n\tb: {x\nc: 3\n";
  assertStrictEquals(sourceExcerpt(text, { line: 1, col: 4 }), " 1 | a: 1\n   |    ^\n");
  assertStrictEquals(sourceExcerpt(text, { line: 2, col: 5 }), " 2 | \tb: {x\n   | \t   ^\n");
  assertStrictEquals(sourceExcerpt(text, { line: 9, col: 1 }), "");
});

Deno.test("fileExcerpt() reads the file of the position, or gives nothing", () => {
  assertStrictEquals(fileExcerpt(undefined), "");
  assertStrictEquals(fileExcerpt({ file: "/nonexistent/x.yaml", line: 1, col: 1 }), "");
  const path = new URL("../fixtures/flows/typo_key.yaml", import.meta.url).pathname;
  assertStrictEquals(fileExcerpt({ file: path, line: 4, col: 1 }), " 4 | stpes:\n   | ^\n");
});

Deno.test("sourceExcerpt() cuts a very long line to a window around the column", () => {
  const line = "x".repeat(5000) + "BAD" + "y".repeat(5000);
  const out = sourceExcerpt(line, { line: 1, col: 5001 });
  const [src, caret] = out.split("\n");
  assert(src.length < 140, `excerpt is ${src.length} characters long`);
  assert(src.startsWith(" 1 | ...") && src.endsWith("..."), src);
  assertStrictEquals(src[caret.indexOf("^")], "B");
  // short lines are unchanged
  assertStrictEquals(sourceExcerpt("ab: [", { line: 1, col: 5 }), " 1 | ab: [\n   |     ^\n");
});
