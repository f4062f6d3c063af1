/**
 * No object literal in `src/` or `sdk/` has a getter or setter: only classes do.
 *
 * Why (measured in the service, issue 13): V8 gives an object literal whose getter is a new closure
 * each time (`{ get recorded() { ... } }` inside a function) a hidden class of its own, allocated
 * in the old generation. That hidden class keeps the closure, and with it everything the closure
 * sees (a whole run), alive through every young collection until the next full one: 6-30% of a
 * run's allocations were promoted, and young-generation pauses grew to 5-20 ms. A class with the
 * getter on its prototype costs nothing of the kind.
 * @module
 */
import { assert } from "../_assert.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

async function* sources(dir: string): AsyncGenerator<string> {
  for await (const e of Deno.readDir(dir)) {
    const path = `${dir}/${e.name}`;
    if (e.isDirectory) yield* sources(path);
    else if (/\.(ts|js)$/.test(e.name) && !e.name.endsWith(".d.ts")) yield path;
  }
}

/**
 * `text` with the contents of strings, template text, comments and regular expressions replaced
 * by spaces (same length, newlines kept), so that only code braces are left to count.
 */
export function codeOnly(text: string): string {
  const out = text.split("");
  const blank = (from: number, to: number) => {
    for (let k = from; k < to; k++) if (out[k] !== "\n") out[k] = " ";
  };
  let prev = ""; // the last code character that is not a space
  for (let i = 0; i < text.length;) {
    const ch = text[i];
    const next = text[i + 1];
    if (ch === "/" && next === "/") {
      const end = text.indexOf("\n", i);
      const stop = end < 0 ? text.length : end;
      blank(i, stop);
      i = stop;
    } else if (ch === "/" && next === "*") {
      const end = text.indexOf("*/", i + 2);
      const stop = end < 0 ? text.length : end + 2;
      blank(i, stop);
      i = stop;
    } else if (ch === '"' || ch === "'" || ch === "`") {
      let j = i + 1;
      while (j < text.length && text[j] !== ch) {
        if (text[j] === "\\") j++;
        j++;
      }
      blank(i + 1, j);
      i = j + 1;
      prev = ch;
    } else if (ch === "/" && (prev === "" || "(,=:[!&|?{};".includes(prev))) {
      // a regular expression literal
      let j = i + 1;
      let inClass = false;
      while (j < text.length && text[j] !== "\n" && (inClass || text[j] !== "/")) {
        if (text[j] === "\\") j++;
        else if (text[j] === "[") inClass = true;
        else if (text[j] === "]") inClass = false;
        j++;
      }
      blank(i + 1, j);
      i = j + 1;
      prev = "/";
    } else {
      if (ch.trim() !== "") prev = ch;
      i++;
    }
  }
  return out.join("");
}

/** Index of the `{` opening the block that holds `pos` in `code` (see {@linkcode codeOnly}). */
function enclosingBrace(code: string, pos: number): number {
  let depth = 0;
  for (let i = pos - 1; i >= 0; i--) {
    const ch = code[i];
    if (ch === "}") depth++;
    else if (ch === "{") {
      if (depth === 0) return i;
      depth--;
    }
  }
  return -1;
}

/** `file:line` of every accessor whose enclosing block is not a class body. */
export function literalAccessors(text: string, file: string): string[] {
  const found: string[] = [];
  const code = codeOnly(text);
  const re = /^[ \t]*(?:static\s+)?(?:get|set)\s+[\w$#]+\s*\(/gm;
  for (let m = re.exec(code); m !== null; m = re.exec(code)) {
    const open = enclosingBrace(code, m.index);
    // the header of the block: from the previous statement end to its `{`
    const head = code.slice(Math.max(0, open - 300), open);
    const header = head.slice(Math.max(head.lastIndexOf(";"), head.lastIndexOf("}")) + 1);
    if (/\bclass\b/.test(header)) continue;
    found.push(`${file}:${text.slice(0, m.index).split("\n").length}`);
  }
  return found;
}

Deno.test("object literals in src/ and sdk/ have no getters or setters (V8 keeps them in old space)", async () => {
  const bad: string[] = [];
  let files = 0;
  for (const dir of ["src", "sdk"]) {
    for await (const path of sources(`${ROOT}${dir}`)) {
      files++;
      bad.push(...literalAccessors(await Deno.readTextFile(path), path.slice(ROOT.length)));
    }
  }
  assert(files > 100, `only ${files} source files found`);
  assert(
    bad.length === 0,
    `object literals with accessors (use a class with the accessor on its prototype, or a data property):\n${
      bad.join("\n")
    }`,
  );
});

Deno.test("the accessor scan tells literals from classes", () => {
  const literal =
    "function f(x) {\n  return {\n    a: 1,\n    get b() {\n      return x;\n    },\n  };\n}\n";
  const klass = "class C {\n  #x = 1;\n  get b() {\n    return this.#x;\n  }\n}\n";
  const expr = "const K = class extends Base {\n  get b() {\n    return 1;\n  }\n};\n";
  assert(
    literalAccessors(literal, "l.ts").join() === "l.ts:4",
    literalAccessors(literal, "l.ts").join(),
  );
  assert(literalAccessors(klass, "c.ts").length === 0);
  assert(literalAccessors(expr, "e.ts").length === 0);
});
