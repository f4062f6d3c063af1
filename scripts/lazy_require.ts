/**
 * Part of `deno task bundle`: makes the bundles' `require` load `node:module` on its first call
 * instead of at start (issue 17, goal 5: cold start).
 *
 * `deno bundle` (Deno 2.9.6) starts every bundle that holds a CommonJS package (`yaml`,
 * `jsonc-parser`, `ajv`) with
 *
 * ```js
 * import { createRequire as __deno_internal_createRequire } from "node:module";
 * var __require = __deno_internal_createRequire(import.meta.url);
 * ```
 *
 * so each start loads Deno's CommonJS loader, though a CommonJS package is only ever loaded on
 * demand (a YAML file outside the fast reader's subset, a `.jsonc` file, a JSON Schema to check).
 * This rewrites the two statements into a `__require` that creates the same function the first
 * time it is called, through `process.getBuiltinModule` (synchronous, as `require` must be).
 * A bundle without those statements is left as it is, with a warning (another Deno version:
 * the bundle still works, only its start is slower); tests/bundle/bundle_test.ts checks that the
 * rewrite applies with the Deno version the project pins.
 *
 * `deno bundle --minify` writes those statements only when it recognises esbuild's `require`
 * shim, and its pattern expects names the minifier does not always choose (`var $y=...` and a
 * `[n]` index do not match it): the shim is then left in, and every `require` of a CommonJS
 * package throws `Dynamic require of "node:process" is not supported` (the bundle does not start).
 * Such a shim is rewritten here into the same lazy `require`.
 *
 * ```sh
 * deno run --allow-read=dist --allow-write=dist scripts/lazy_require.ts dist/stepflow.js ...
 * ```
 * @module
 */

/** The statements `deno bundle` writes (minified or not); group 1 is the require's name. */
const EAGER =
  /import\s*\{\s*createRequire as __deno_internal_createRequire\s*\}\s*from\s*"node:module";?\s*var\s+([\w$]+)\s*=\s*__deno_internal_createRequire\(import\.meta\.url\);/;

/** esbuild's minified `require` shim, left in by `deno bundle`; group 1 is its name. */
const SHIM =
  /var\s+([\w$]+)=\(([\w$]+)=>typeof require<"u"\?require:typeof Proxy<"u"\?new Proxy\(\2,\{get:\(([\w$]+),([\w$]+)\)=>\(typeof require<"u"\?require:\3\)\[\4\]\}\):\2\)\(function\(([\w$]+)\)\{if\(typeof require<"u"\)return require\.apply\(this,arguments\);throw Error\('Dynamic require of "'\+\5\+'" is not supported'\)\}\);/;

/** `text` with the bundle's `require` made lazy, or undefined when it has no such statements. */
export function lazyRequire(text: string): string | undefined {
  const m = EAGER.exec(text) ?? SHIM.exec(text);
  if (m === null) return undefined;
  const name = m[1];
  const lazy = `var __deno_lazy_require;var ${name}=(id)=>(__deno_lazy_require??=` +
    `globalThis.process.getBuiltinModule("node:module").createRequire(import.meta.url))(id);`;
  return text.slice(0, m.index) + lazy + text.slice(m.index + m[0].length);
}

if (import.meta.main) {
  for (const file of Deno.args) {
    const text = await Deno.readTextFile(file);
    const out = lazyRequire(text);
    if (out === undefined) {
      console.error(`warning: ${file}: no eager createRequire found; left as it is`);
      continue;
    }
    await Deno.writeTextFile(file, out);
  }
}
