import { FlowLoadError } from "../../src/errors.ts";
import {
  formatFromPath,
  MAX_ALIAS_EXPANSION,
  MAX_DEPTH,
  parseDocument,
} from "../../src/core/document.ts";
import { isRawNumber, stringifyJson } from "../../src/json/exact_json.ts";
import {
  assert,
  assertEquals,
  assertStrictEquals,
  assertStringIncludes,
  assertThrows,
} from "../_assert.ts";

Deno.test("parseDocument() keeps YAML numbers exact", () => {
  const { value } = parseDocument(
    "big: 9007199254740993\nfloat: 15.0\nhuge: 1e400\nsmall: 0.1\nint: 42\nquoted: '15.0'\n",
    "yaml",
  );
  assertStrictEquals(
    stringifyJson(value),
    '{"big":9007199254740993,"float":15.0,"huge":1e400,"small":0.1,"int":42,"quoted":"15.0"}',
  );
  const v = value as Record<string, unknown>;
  assert(isRawNumber(v.float), "15.0 is a raw number");
  assertStrictEquals(v.int, 42);
});

Deno.test("parseDocument() keeps JSON and JSONC numbers exact", () => {
  const json = parseDocument('{"a": 9007199254740993, "b": 15.0, "c": [1e400, 2]}', "json");
  assertStrictEquals(stringifyJson(json.value), '{"a":9007199254740993,"b":15.0,"c":[1e400,2]}');
  const jsonc = parseDocument('{"a": 15.0, // c\n "b": [1,],}', "jsonc");
  assertStrictEquals(stringifyJson(jsonc.value), '{"a":15.0,"b":[1]}');
});

Deno.test("parseDocument() rejects comments and trailing commas in .json", () => {
  const e1 = assertThrows(
    () => parseDocument('{"a": 1, // no\n}', "json", "f.json"),
    FlowLoadError,
  );
  assertStringIncludes(e1.message, "f.json:1:10");
  assertStringIncludes(e1.message, "comments are not allowed");
  const e2 = assertThrows(() => parseDocument('{"a": [1,]}', "json", "f.json"), FlowLoadError);
  assertStringIncludes(e2.message, "f.json:1:10");
});

Deno.test("parseDocument() reports duplicate keys naming both lines", () => {
  const y = assertThrows(
    () => parseDocument("a: 1\nb:\n  c: 2\n  c: 3\n", "yaml", "d.yaml"),
    FlowLoadError,
  ) as FlowLoadError;
  assertStringIncludes(y.message, "d.yaml:4:3: Duplicate key 'c' (first defined at line 3");
  assertEquals(y.position, { file: "d.yaml", line: 4, col: 3 });
  const j = assertThrows(
    () => parseDocument('{\n "a": 1,\n "a": 2\n}', "json", "d.json"),
    FlowLoadError,
  );
  assertStringIncludes(j.message, "d.json:3:2: Duplicate key 'a' (first defined at line 2");
});

Deno.test("parseDocument() points an unterminated flow mapping at its '{'", () => {
  const e = assertThrows(
    () =>
      parseDocument(
        "steps:\n  - id: a\n    input: {$from: {step: a}\n  - id: b\n",
        "yaml",
        "u.yaml",
      ),
    FlowLoadError,
  ) as FlowLoadError;
  assertEquals(e.position, { file: "u.yaml", line: 3, col: 12 });
  assertStringIncludes(e.message, "not closed");
  assertStringIncludes(e.message, "add the missing '}'");
  assert(!e.message.includes("\n"), "one line");
});

Deno.test("parseDocument() keeps complex keys and their values", () => {
  const text = 'm:\n  { input: "a" }:\n    result: {output: b}\n  { input: 15.0 }: 2\n  7: x\n' +
    "  ~: n\n  plain: p\n";
  const { value, source } = parseDocument(text, "yaml");
  assertEquals(Object.keys((value as Record<string, object>).m), [
    "7",
    '{"input":"a"}',
    '{"input":15.0}',
    "~",
    "plain",
  ]);
  assertEquals(source.keyValue(["m", '{"input":"a"}']), { input: "a" });
  assertStrictEquals(stringifyJson(source.keyValue(["m", '{"input":15.0}'])), '{"input":15.0}');
  assertStrictEquals(source.keyValue(["m", "7"]), 7);
  assertStrictEquals(source.keyValue(["m", "~"]), null);
  assertStrictEquals(source.keyValue(["m", "plain"]), undefined);
  assertEquals(source.keyPositionOf(["m", "plain"]), { line: 7, col: 3 });
  assertEquals(source.keysOf(["m"]), ['{"input":"a"}', '{"input":15.0}', "7", "~", "plain"]);
  assertStrictEquals(source.keysOf(["nope"]), undefined);
});

Deno.test("parseDocument() expands anchors and aliases with positions", () => {
  const { value, source } = parseDocument(
    "a: &x {k: [1, 15.0]}\nb: *x\nc: [*x, *x]\n",
    "yaml",
    "f.yaml",
  );
  assertStrictEquals(
    stringifyJson(value),
    '{"a":{"k":[1,15.0]},"b":{"k":[1,15.0]},"c":[{"k":[1,15.0]},{"k":[1,15.0]}]}',
  );
  const v = value as Record<string, Record<string, unknown>>;
  assert(v.a !== v.b, "aliases are copies");
  assertEquals(source.positionOf(["b", "k", 1]), { file: "f.yaml", line: 1, col: 15 });
});

Deno.test("parseDocument() rejects an alias bomb", () => {
  let bomb = 'a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n';
  for (let i = 1; i < 12; i++) {
    bomb += `a${i}: &a${i} [${Array(9).fill(`*a${i - 1}`).join(",")}]\n`;
  }
  const e = assertThrows(() => parseDocument(bomb, "yaml", "bomb.yaml"), FlowLoadError);
  assertStringIncludes(e.message, `more than ${MAX_ALIAS_EXPANSION} nodes`);
});

Deno.test("parseDocument() rejects recursive and undefined aliases", () => {
  assertThrows(() => parseDocument("a: &x {b: *x}\n", "yaml"), FlowLoadError, "recursive");
  assertThrows(() => parseDocument("a: *nope\n", "yaml"), FlowLoadError, "refers to no anchor");
});

Deno.test("parseDocument() handles empty documents, __proto__ keys and YAML-only numbers", () => {
  assertStrictEquals(parseDocument("", "yaml").value, null);
  const { value } = parseDocument("__proto__: 1\nhex: 0x10\n", "yaml");
  assertStrictEquals(Object.getPrototypeOf(value), Object.prototype);
  assertEquals(value, JSON.parse('{"__proto__": 1, "hex": 16}'));
  assertThrows(() => parseDocument("a: .inf\n", "yaml"), FlowLoadError, "no JSON form");
});

Deno.test("parseDocument() explains YAML errors in one line with position", () => {
  const tabs = assertThrows(() => parseDocument("a:\n\tb: 1\n", "yaml", "t.yaml"), FlowLoadError);
  assertStringIncludes(tabs.message, "t.yaml:2:1");
  assertStringIncludes(tabs.message, "indent with spaces");
  const multi = assertThrows(() => parseDocument("a: 1\n---\nb: 2\n", "yaml"), FlowLoadError);
  assertStringIncludes(multi.message, "remove the extra '---'");
});

Deno.test("formatFromPath() picks the format by extension", () => {
  assertStrictEquals(formatFromPath("a/flow.yaml"), "yaml");
  assertStrictEquals(formatFromPath("flow.YML"), "yaml");
  assertStrictEquals(formatFromPath("flow.json"), "json");
  assertStrictEquals(formatFromPath("flow.jsonc"), "jsonc");
  assertThrows(() => formatFromPath("flow.txt"), FlowLoadError, "Unrecognized file extension");
});

Deno.test("parseDocument() rejects documents nested too deeply, without a stack overflow", () => {
  for (const n of [MAX_DEPTH + 10, 50_000]) {
    const text = "[".repeat(n) + "]".repeat(n);
    for (const f of ["yaml", "json", "jsonc"] as const) {
      assertThrows(() => parseDocument(text, f), FlowLoadError, `more than ${MAX_DEPTH} levels`);
    }
  }
  const ok = "[".repeat(100) + "]".repeat(100);
  parseDocument(ok, "yaml");
});

Deno.test("parseDocument() refuses a lone surrogate in YAML, JSON and JSONC, naming its JSON path and file:line:col", () => {
  // was: read as is; a flow name or step id holding one was stored as U+FFFD in the runs table
  // (SQLite, PostgreSQL write UTF-8), so the run read back differed from the flow sent.
  // stepflow 0.8 (serde_json) refuses it when it parses.
  const cases: [string, "yaml" | "json" | "jsonc", string, string][] = [
    ['name: "bad \\ud800 name"\nsteps: []\n', "yaml", "f.yaml:1:7", "$.name holds"],
    ['steps:\n  - id: "a\\U0000DC00"\n', "yaml", "f.yaml:2:9", "$.steps[0].id holds"],
    ['{"steps": [{"id": "x"}, {"id": "a\\udc00"}]}', "json", "f.json:1:32", "$.steps[1].id holds"],
    ['// c\n{"labels": {"\\ud83dx": 1}}', "jsonc", "f.jsonc:2:12", "a key of $.labels holds"],
  ];
  for (const [text, format, at, where] of cases) {
    const e = assertThrows(() => parseDocument(text, format, `f.${format}`), FlowLoadError);
    assertStringIncludes(e.message, at, text);
    assertStringIncludes(e.message, `${where} a lone UTF-16 surrogate`, text);
    assertStringIncludes(e.message, "write the character itself, or both halves of its");
  }
  // a lone surrogate in the text itself (a string handed to the library, not read from a file)
  assertThrows(() => parseDocument('name: "x\ud800"\n', "yaml"), FlowLoadError, "$.name holds");
  // a surrogate pair is one character; an escaped backslash before "u" is no escape
  assertEquals(
    parseDocument('{"a": "\\ud83d\\ude00", "b": "\\\\ud800"}', "json").value,
    { a: "\u{1F600}", b: "\\ud800" },
  );
  assertEquals(parseDocument('a: "\\U0001F600"\n', "yaml").value, { a: "\u{1F600}" });
});
