/**
 * The fast YAML reader (src/core/yaml_fast.ts) against the `yaml` package: for every YAML file
 * of the project and of the conformance suite, and for constructs at the edges of the subset, the
 * values, key order and every node's and key's position must be identical; what the reader does
 * not support it must decline (the `yaml` package reads it), never misread.
 */
import { parseDocument } from "../../src/core/document.ts";
import { type FastSourceNode, readYamlFast } from "../../src/core/yaml_fast.ts";
import { stringifyJson } from "../../src/json/exact_json.ts";
import { assert, assertEquals } from "../_assert.ts";

interface Node {
  start: number;
  keyStart?: number;
  keyValue?: unknown;
  isSeq?: boolean;
  noValue?: boolean;
  children?: Map<string | number, Node>;
}

function dump(n: Node): unknown {
  return {
    start: n.start,
    keyStart: n.keyStart,
    keyValue: n.keyValue,
    isSeq: n.isSeq,
    noValue: n.noValue,
    children: n.children ? [...n.children].map(([k, c]) => [k, dump(c)]) : undefined,
  };
}

/** Parses with the `yaml` package; undefined when it rejects the text. */
function viaPackage(text: string): { value: string; source: unknown } | undefined {
  try {
    const doc = parseDocument(text, "yaml", "t.yaml", { yamlPackageOnly: true });
    const root = (doc.source as unknown as { root: Node }).root;
    return { value: stringifyJson(doc.value), source: dump(root) };
  } catch {
    return undefined;
  }
}

/** Checks that the fast reader agrees with the package or declines; returns true if it read. */
function agrees(text: string, name: string): boolean {
  const fast = readYamlFast(text);
  if (!fast) return false;
  const slow = viaPackage(text);
  assert(slow !== undefined, `${name}: the fast reader accepted what the yaml package rejects`);
  assertEquals(
    { value: stringifyJson(fast.value), source: dump(fast.source as FastSourceNode) },
    slow,
    name,
  );
  return true;
}

async function* yamlFiles(dir: string): AsyncGenerator<string> {
  let entries: Deno.DirEntry[] = [];
  try {
    entries = [...Deno.readDirSync(dir)];
  } catch {
    return;
  }
  for (const e of entries) {
    const path = `${dir}/${e.name}`;
    if (e.isDirectory && e.name !== "node_modules" && !e.name.startsWith(".")) {
      yield* yamlFiles(path);
    } else if (e.isFile && /\.ya?ml$/.test(e.name)) yield path;
  }
}

Deno.test("fast YAML reader: the project's and conformance YAML files read as the yaml package reads them", async () => {
  const root = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");
  let read = 0;
  let total = 0;
  for (const dir of [root, "/work/shared/conformance"]) {
    for await (const path of yamlFiles(dir)) {
      let text = await Deno.readTextFile(path);
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
      total++;
      if (agrees(text, path)) read++;
    }
  }
  console.log(`fast reader: ${read} of ${total} YAML files`);
  // most real flows are in the subset
  assert(read >= total / 2, `only ${read} of ${total} files read by the fast reader`);
});

const READ: [string, string][] = [
  ["block map", "a: 1\nb: two\nc: 'three'\nd: \"four\"\n"],
  ["nested", "a:\n  b:\n    c: x\n  d: y\ne: z\n"],
  ["seq", "- a\n- b\n-   c\n"],
  ["compact map in seq", "steps:\n  - id: a\n    component: /x\n  - id: b\n    input: {x: 1}\n"],
  ["seq at key column", "steps:\n- id: a\n- id: b\nout: 1\n"],
  ["item on next line", "-\n  a: 1\n- b\n"],
  ["seq of seq", "- - a\n  - b\n- - c\n"],
  ["comments", "# head\na: 1 # c\n# mid\n  # indented\nb: # after\n  c: 2\n"],
  [
    "scalars",
    "a: true\nb: False\nc: null\nd: ~\ne: NULL\nf: 15.0\ng: 9007199254740993\nh: -0\ni: 1e5\nj: 2024-01-01\nk: 1.0.0\nl: -x\n",
  ],
  ["strings with indicators inside", "a: http://x.y/z\nb: a#b\nd: it's\ne: a-b\nf: x:y\n"],
  [
    "quoted",
    'a: \'it\'\'s\'\nb: "q\\"x\\n\\t\\u00e9\\\\"\nc: "#not comment"\n"k y": 1\n\'k2\': 2\n',
  ],
  [
    "flow",
    'a: { $from: { step: s1 }, path: "$.x[0]" }\nb: [1, \'two\', "three", [], {}]\nc: [a, b,]\n',
  ],
  ["flow over lines", "a: {\n    x: 1,\n    y: [\n      2, 3\n    ]\n  }\nb: 2\n"],
  ["flow comments", "a: [1, # one\n  2]\n"],
  ["literal", "a: |\n  line 1\n  line 2\n\nb: |-\n  x\n    more\n  y\nc: 1\n"],
  ["folded", "a: >\n  one\n  two\n\n  three\nb: >-\n  x\n  y\n"],
  ["block scalar in seq", "- |\n  text\n- >\n  folded\n  text\n"],
  [
    "literal with blank lines and comment-like text",
    "p: |\n  # not a comment\n\n  end\n\n\nq: 1\n",
  ],
  ["root scalar", "hello\n"],
  ["root flow", "{a: 1}\n"],
  ["__proto__ key", "__proto__: 1\na: 2\n"],
  ["key with spaces before colon", "a  : 1\n"],
  ["no final newline", "a: 1\nb: [x]"],
  [
    "closing brackets at the block's column",
    "a: {\n  x: 1\n}\nb:\n  - c: [\n      1\n    ]\n  - [\n    2\n  ]\n",
  ],
  ["URLs in flow", "a: { schema: https://x.org/v1/flow.json, b: [http://y:80/z, 'q'] }\n"],
  ["URL as a flow key", "a: {http://k: 1}\n"],
];

for (const [name, text] of READ) {
  Deno.test(`fast YAML reader reads ${name} as the yaml package does`, () => {
    assert(agrees(text, name), `${name}: declined`);
  });
}

const DECLINED: [string, string][] = [
  ["anchor and alias", "a: &x 1\nb: *x\n"],
  ["tag", "a: !!str 1\n"],
  ["explicit key", "? a\n: 1\n"],
  ["complex key", "{ input: a }: 1\n"],
  ["number key", "1: a\n"],
  ["bool key", "true: a\n"],
  ["merge key", "<<: {a: 1}\n"],
  ["empty value", "a:\nb: 1\n"],
  ["multi-line plain", "a: one\n  two\n"],
  ["multi-line quoted", 'a: "one\n  two"\n'],
  ["document marker", "---\na: 1\n"],
  ["directive", "%YAML 1.2\n---\na: 1\n"],
  ["tab", "a:\t1\n"],
  ["crlf", "a: 1\r\nb: 2\r\n"],
  ["hex", "a: 0x1F\n"],
  ["plus int", "a: +1\n"],
  ["leading zero", "a: 01\n"],
  ["inf", "a: .inf\n"],
  ["duplicate key", "a: 1\na: 2\n"],
  ["duplicate flow key", "a: {x: 1, x: 2}\n"],
  ["nested map on one line", "a: b: c\n"],
  ["bad indent", "a: 1\n  b: 2\n"],
  ["unclosed flow", "a: [1, 2\nb: 3\n"],
  ["keep chomping", "a: |+\n  x\n\n"],
  ["indentation indicator", "a: |2\n   x\n"],
  ["brace template", "a: {{ name }}\n"],
  ["flow key without value", "a: {name}\n"],
  ["pair in flow seq", "a: [x: 1]\n"],
  ["empty document", "# nothing\n"],
  ["two documents", "a: 1\n---\nb: 2\n"],
  ["flow content at the block's column", "a:\n  b: [\n  1]\n"],
  ["closing bracket left of the block's column", "a:\n  - b: [\n      1\n   ]\n"],
  ["colon then space in a flow value", "a: {b: c: d}\n"],
  ["colon then a flow indicator", "a: [x:]\n"],
];

for (const [name, text] of DECLINED) {
  Deno.test(`fast YAML reader declines ${name}`, () => {
    assertEquals(readYamlFast(text), undefined);
  });
}

/** A small seeded generator (mulberry32). */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const PIECES = [
  "a",
  "b",
  "key",
  "x]",
  "a,b",
  "{a: 1}",
  "[x, y]",
  "[x, y:z]",
  "{a: [1, {b: c}]}",
  "'q''s'",
  '"e\\u00e9\\n"',
  '"a":',
  "|",
  "|-",
  ">",
  ">-",
  "#c",
  " #c",
  "true",
  "null",
  "~",
  "0x1",
  "1.",
  "1.5",
  "-2",
  "007",
  "9007199254740993",
  "-",
  "--",
  "? ",
  "x: y",
  "&a ",
  "*a",
  "!t ",
  "@x",
  "`x",
  "%x",
  "...",
  "---",
  "",
  ":x",
  "x:",
  ": ",
  '"a":b',
  "{",
  "}",
  "[",
  "]",
  ",",
  "'",
  '"',
  "- ",
  "k: ",
  "https://x.y",
  "{a: b,\n  c: d}",
  "[\n  1,\n]",
  "a b",
  "  ",
  "<<: ",
  "__proto__: ",
];

Deno.test("fast YAML reader: random documents read as the yaml package reads them, or are declined", () => {
  const next = random(Number(Deno.env.get("FUZZ_SEED") ?? 17));
  const pick = <T>(xs: T[]): T => xs[Math.floor(next() * xs.length)];
  let read = 0;
  for (let i = 0; i < Number(Deno.env.get("FUZZ_N") ?? 4000); i++) {
    let text = "";
    const lines = 1 + Math.floor(next() * 6);
    for (let l = 0; l < lines; l++) {
      text += " ".repeat(pick([0, 0, 0, 2, 2, 4, 1, 3, 6]));
      // mostly entries and items with a value, sometimes anything
      const lead = pick(["k: ", "- ", "- k: ", "k:", "-", "k2: ", "- - ", "", '"q k": ']);
      text += lead;
      const parts = pick([1, 1, 1, 2, 3]);
      for (let p = 0; p < parts; p++) text += pick(PIECES);
      text += "\n";
    }
    if (agrees(text, JSON.stringify(text))) read++;
  }
  if (Deno.env.get("FUZZ_VERBOSE")) console.log(`random: ${read} read`);
  assert(read > 100, `only ${read} random documents read`);
});
