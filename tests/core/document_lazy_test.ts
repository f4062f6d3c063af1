/**
 * The lazy document readers (src/core/document_base.ts): JSON read by the fast reader gives the
 * values and positions `jsonc-parser` gives, and `parseDocumentAsync` (which imports the `yaml` and
 * `jsonc-parser` readers on demand) gives the same values, positions and errors as the
 * synchronous `parseDocument`.
 * @module
 */
import { assert, assertEquals } from "../_assert.ts";
import {
  type DocumentFormat,
  type DocumentSourceMap,
  type ParsedDocument,
  parseDocument,
  parseDocumentAsync,
} from "../../src/core/document.ts";
import { readYamlFast } from "../../src/core/yaml_fast.ts";
import { stringifyJson } from "../../src/json/exact_json.ts";
import { describeError } from "../../src/errors.ts";

/** Every path of `value` with the value's and the key's position. */
function positions(doc: ParsedDocument): string[] {
  const out: string[] = [];
  const walk = (v: unknown, path: (string | number)[]) => {
    const src: DocumentSourceMap = doc.source;
    const p = src.positionOf(path);
    const k = src.keyPositionOf(path);
    out.push(`${JSON.stringify(path)} ${p?.line}:${p?.col} key ${k?.line}:${k?.col}`);
    if (Array.isArray(v)) v.forEach((x, i) => walk(x, [...path, i]));
    else if (v !== null && typeof v === "object" && !("rawJSON" in v)) {
      for (const [key, x] of Object.entries(v)) walk(x, [...path, key]);
    }
  };
  walk(doc.value, []);
  return out;
}

const JSON_TEXTS = [
  '{"topic":"stepflow"}',
  '{"topic": "stepflow", "n": 15.0, "big": 9007199254740993, "e": 1e400, "neg": -0}',
  '[1, 2.50, {"a": [true, false, null]}, "x"]',
  '"just a string"',
  "42",
  '{"s": "quote \\" slash \\/ tab \\t nl \\n u \\u00e9 pair \\ud83d\\ude00", "k:v": "a: b # c"}',
  '{\n  "a": {\n    "b": [\n      1,\n      2\n    ]\n  },\n  "c": {}\n}\n',
  '{"__proto__": {"x": 1}, "constructor": 2}',
  '{"a":{"b":{"c":[[],[{}]]}}}',
];

Deno.test("JSON read by the fast reader: the values and positions of jsonc-parser", () => {
  for (const text of JSON_TEXTS) {
    const fast = parseDocument(text, "json", "in.json");
    const pkg = parseDocument(text, "json", "in.json", { jsonPackageOnly: true });
    assertEquals(stringifyJson(fast.value), stringifyJson(pkg.value), text);
    assertEquals(positions(fast), positions(pkg), text);
  }
  // the fast path takes the JSON the CLI gets most (`--input-json '{"a":1}'`)
  assert(readYamlFast('{"topic":"stepflow"}') !== undefined);
});

/** The error message (with file:line:col) of parsing `text`, or the value's JSON. */
function outcome(f: () => ParsedDocument): string {
  try {
    return stringifyJson(f().value);
  } catch (e) {
    return `error: ${describeError(e)}`;
  }
}

async function outcomeAsync(f: () => Promise<ParsedDocument>): Promise<string> {
  try {
    return stringifyJson((await f()).value);
  } catch (e) {
    return `error: ${describeError(e)}`;
  }
}

const CASES: [DocumentFormat, string][] = [
  // JSON the fast path declines: duplicate keys, syntax errors, comments, too deep
  ["json", '{"a": 1, "a": 2}'],
  ["json", '{"a": 1,}'],
  ["json", '{"a": 1 // no\n}'],
  ["json", "[".repeat(300) + "]".repeat(300)],
  ["json", ""],
  ["jsonc", '{"a": 15.0, // c\n "b": [1,],}'],
  ["jsonc", '{"a": }'],
  // YAML outside the fast subset: anchors, tags, complex keys, multi-line plain scalars
  ["yaml", "a: &x {b: 1}\nc: *x\n"],
  ["yaml", "a: !!str 15\n"],
  ["yaml", "{ input: Ada }: hello\n"],
  ["yaml", "a: one\n  two\n"],
  // YAML errors, each with file:line:col
  ["yaml", "a: [1, 2\nb: 3\n"],
  ["yaml", "a: 1\na: 2\n"],
  ["yaml", "a:\n\t- 1\n"],
  ["yaml", "a: *nope\n"],
  ["yaml", "---\na: 1\n---\nb: 2\n"],
];

Deno.test("parseDocumentAsync() gives the values and errors of parseDocument()", async () => {
  for (const [format, text] of CASES) {
    const sync = outcome(() => parseDocument(text, format, "f.txt"));
    const lazy = await outcomeAsync(() => parseDocumentAsync(text, format, "f.txt"));
    assertEquals(lazy, sync, `${format}: ${JSON.stringify(text)}`);
    if (sync.startsWith("error: ")) assert(/^error: f\.txt:\d+:\d+/.test(sync), sync);
  }
  const doc = await parseDocumentAsync("x: 1\ny: &a [1, 2]\nz: *a\n", "yaml", "f.yaml");
  const sync = parseDocument("x: 1\ny: &a [1, 2]\nz: *a\n", "yaml", "f.yaml");
  assertEquals(positions(doc), positions(sync));
});
