/**
 * scripts/lazy_require.ts: the bundles' `require` made lazy (issue 17, goal 5: cold start).
 * @module
 */
import { assert, assertStrictEquals } from "../_assert.ts";
import { lazyRequire } from "../../scripts/lazy_require.ts";

const toFileUrl = (path: string) => new URL(`file://${path}`).href;

Deno.test("lazyRequire() rewrites deno bundle's eager createRequire, minified or not", async () => {
  const plain =
    'var a = 1;\nimport { createRequire as __deno_internal_createRequire } from "node:module";\n' +
    "var __require = __deno_internal_createRequire(import.meta.url);\nvar b = 2;\n";
  const out = lazyRequire(plain)!;
  assert(!out.includes("import "), out);
  assert(out.startsWith("var a = 1;\n") && out.endsWith("\nvar b = 2;\n"), out);
  // the rewritten require works where it is evaluated as a module
  const file = await Deno.makeTempFile({ suffix: ".mjs" });
  try {
    await Deno.writeTextFile(file, out + 'export const n = __require("node:path").join("a", "b");');
    assertStrictEquals((await import(toFileUrl(file))).n, "a/b");
  } finally {
    await Deno.remove(file);
  }
  const min = 'import{createRequire as __deno_internal_createRequire} from "node:module";' +
    "var hy=__deno_internal_createRequire(import.meta.url);hy(1)";
  assert(lazyRequire(min)!.startsWith("var __deno_lazy_require;var hy=(id)=>"), lazyRequire(min));
  assertStrictEquals(lazyRequire("var x = 1;"), undefined);
});

Deno.test("lazyRequire() rewrites esbuild's require shim that deno bundle --minify left in (its name had a $: every require threw 'Dynamic require of \"node:process\" is not supported')", async () => {
  const shim = 'var a=1;var $y=(t=>typeof require<"u"?require:typeof Proxy<"u"?new Proxy(t,{get:' +
    '(e,n)=>(typeof require<"u"?require:e)[n]}):t)(function(t){if(typeof require<"u")return ' +
    "require.apply(this,arguments);throw Error('Dynamic require of \"'+t+'\" is not supported')});" +
    "var b=2;";
  const out = lazyRequire(shim)!;
  assert(
    out.startsWith("var a=1;var __deno_lazy_require;var $y=(id)=>") && out.endsWith("var b=2;"),
    out,
  );
  const file = await Deno.makeTempFile({ suffix: ".mjs" });
  try {
    await Deno.writeTextFile(file, out + 'export const n = $y("node:process").platform;');
    assertStrictEquals((await import(toFileUrl(file))).n, Deno.build.os);
  } finally {
    await Deno.remove(file);
  }
});
