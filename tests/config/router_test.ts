import { Router } from "../../src/config/router.ts";
import type { Config } from "../../src/config/model.ts";
import { PluginError, ValidationError } from "../../src/errors.ts";
import { rawNumber } from "../../src/json/exact_json.ts";
import {
  assert,
  assertEquals,
  assertStrictEquals,
  assertStringIncludes,
  assertThrows,
} from "../_assert.ts";

const PLUGINS = {
  builtin: { type: "builtin" },
  mock: { type: "mock", components: {} },
  py: { type: "builtin" },
  openai: { type: "builtin" },
} as unknown as Config["plugins"];

function router(routes: Record<string, unknown[]>): Router {
  return new Router({ plugins: PLUGINS, routes: routes as Config["routes"] });
}

Deno.test("Router.resolve() maps {component} and {*component} params", () => {
  const r = router({
    "/builtin/{*component}": [{ plugin: "builtin" }],
    "/mock/{component}": [{ plugin: "mock" }],
  });
  assertEquals(r.resolve("/builtin/eval", {}), { plugin: "builtin", component: "/eval" });
  assertEquals(r.resolve("/builtin/a/b", {}), { plugin: "builtin", component: "/a/b" });
  assertEquals(r.resolve("/mock/one_output", {}), { plugin: "mock", component: "/one_output" });
  assertThrows(
    () => r.resolve("/mock/a/b", {}),
    PluginError,
    "No matching rule found for component: /mock/a/b",
  );
  assertThrows(() => r.resolve("/builtin", {}), PluginError, "No matching rule found");
});

Deno.test("Router.resolve(): an unrouted component's error says what to add (was only 0.8's text)", () => {
  // `stepflow serve` or `stepflow run` without a stepflow-config.yml: the default config has the
  // builtin plugin and no routes; the run failed with "No matching rule found for component:
  // /builtin/create_messages" and nothing said that a route was missing or how to add one.
  const none = router({});
  const e = assertThrows(() => none.resolve("/builtin/create_messages", {}), PluginError);
  assertStringIncludes(e.message, "No matching rule found for component: /builtin/create_messages");
  assertStringIncludes(e.message, "the config has no routes");
  assertStringIncludes(e.message, '"/builtin/{*component}": [{plugin: builtin}]');
  const some = router({ "/mock/{component}": [{ plugin: "mock" }] });
  const e2 = assertThrows(() => some.resolve("/python/udf", {}), PluginError);
  assertStringIncludes(e2.message, "no route pattern of the config matches it (/mock/{component})");
  assertStringIncludes(e2.message, '"/python/{*component}": [{plugin: <name>}]');
});

Deno.test("Router.resolve() passes the whole path with a root catch-all (0.8)", () => {
  const r = router({ "/{*component}": [{ plugin: "builtin" }] });
  assertEquals(r.resolve("/builtin/eval", null), { plugin: "builtin", component: "/builtin/eval" });
  assertEquals(r.resolve("/eval", null), { plugin: "builtin", component: "/eval" });
});

Deno.test("Router.resolve() prefers static over {param} over {*catchAll}, with backtracking", () => {
  const r = router({
    "/{*component}": [{ plugin: "builtin" }],
    "/x/{component}": [{ plugin: "mock" }],
    "/x/special": [{ plugin: "py", component: "/sp" }],
    "/x/{component}/deep": [{ plugin: "openai" }],
  });
  assertEquals(r.resolve("/x/special", {}), { plugin: "py", component: "/sp" });
  assertEquals(r.resolve("/x/other", {}), { plugin: "mock", component: "/other" });
  assertEquals(r.resolve("/x/other/deep", {}), { plugin: "openai", component: "/other" });
  assertEquals(r.resolve("/x/other/shallow", {}), {
    plugin: "builtin",
    component: "/x/other/shallow",
  });
});

Deno.test("Router.resolve() evaluates conditions against the input with JSON equality", () => {
  const r = router({
    "/ai/{component}": [
      { plugin: "openai", conditions: [{ path: "$.model", value: "gpt-4" }] },
      { plugin: "py", conditions: [{ path: "$.n", value: rawNumber("15.0") }] },
      { plugin: "mock" },
    ],
  });
  assertEquals(r.resolve("/ai/chat", { model: "gpt-4", n: 1 }), {
    plugin: "openai",
    component: "/chat",
  });
  assertEquals(r.resolve("/ai/chat", { model: "x", n: rawNumber("15.0") }), {
    plugin: "py",
    component: "/chat",
  });
  assertEquals(r.resolve("/ai/chat", { model: "x", n: 15 }), {
    plugin: "mock",
    component: "/chat",
  });
  assertThrows(
    () => r.resolve("/ai/chat", {}),
    PluginError,
    "Routing condition path '$.model' not found in the input of component '/ai/chat'",
  );
});

Deno.test("Router.resolve() applies allow/deny lists, except for a single unconditional rule", () => {
  const r = router({
    "/a/{component}": [
      { plugin: "py", componentAllow: ["/x"] },
      { plugin: "mock", componentDeny: ["/y"] },
      { plugin: "builtin" },
    ],
    "/b/{component}": [{ plugin: "py", componentAllow: ["/x"] }],
  });
  assertEquals(r.resolve("/a/x", {}), { plugin: "py", component: "/x" });
  assertEquals(r.resolve("/a/z", {}), { plugin: "mock", component: "/z" });
  assertEquals(r.resolve("/a/y", {}), { plugin: "builtin", component: "/y" });
  assertEquals(
    r.resolve("/b/other", {}),
    { plugin: "py", component: "/other" },
    "0.8: not checked",
  );
  const onlyDeny = router({
    "/c/{component}": [{ plugin: "py", componentDeny: ["/y"] }, {
      plugin: "mock",
      componentAllow: ["/z"],
    }],
  });
  assertThrows(
    () => onlyDeny.resolve("/c/y", {}),
    PluginError,
    "No matching rule found for component: /c/y",
  );
});

Deno.test("Router.resolve() fills component templates", () => {
  const r = router({
    "/tools/{server}/{name}": [{ plugin: "mock", component: "/{server}_{name}" }],
    "/all/{*rest}": [{ plugin: "py", component: "/fixed/{rest}" }],
    "/noparam/{x}": [{ plugin: "py" }],
  });
  assertEquals(r.resolve("/tools/fs/read", {}), { plugin: "mock", component: "/fs_read" });
  assertEquals(r.resolve("/all/a/b", {}), { plugin: "py", component: "/fixed/a/b" });
  assertThrows(() => r.resolve("/noparam/q", {}), PluginError, "has no {component} parameter");
});

Deno.test("Router caches input-independent answers, including errors", () => {
  const r = router({ "/m/{component}": [{ plugin: "mock" }] });
  const a = r.resolve("/m/x", {});
  const b = r.resolve("/m/x", { other: 1 });
  assertStrictEquals(a, b, "same cached object");
  const e1 = assertThrows(() => r.resolve("/nope", {}));
  const e2 = assertThrows(() => r.resolve("/nope", {}));
  assertStrictEquals(e1, e2);
});

Deno.test("new Router() rejects conflicts, bad patterns and unknown plugins", () => {
  assertThrows(
    () => router({ "/a/{x}": [{ plugin: "py" }], "/a/{y}": [{ plugin: "py" }] }),
    ValidationError,
    "Conflicting route patterns",
  );
  assertThrows(
    () => router({ "/a/{x}/c": [{ plugin: "py" }], "/a/{y}/d": [{ plugin: "py" }] }),
    ValidationError,
    "Conflicting route patterns",
  );
  assertThrows(
    () => router({ "/{*a}": [{ plugin: "py" }], "/{*b}": [{ plugin: "py" }] }),
    ValidationError,
    "Conflicting",
  );
  assertThrows(() => router({ "/a/{*x}/b": [{ plugin: "py" }] }), ValidationError, "last segment");
  assertThrows(() => router({ "/a/x{y}": [{ plugin: "py" }] }), ValidationError, "not a literal");
  assertThrows(() => router({ "a": [{ plugin: "py" }] }), ValidationError, "must start with '/'");
  assertThrows(
    () => router({ "/a": [{ plugin: "nope" }] }),
    ValidationError,
    "Routing rule 0 for path '/a' references unknown plugin 'nope'",
  );
  assertThrows(
    () => router({ "/a": [{ plugin: "py", conditions: [{ path: "$[x", value: 1 }] }] }),
    ValidationError,
    "condition path",
  );
  // Different shapes coexist.
  const ok = router({ "/a/{x}": [{ plugin: "py" }], "/a/{x}/b": [{ plugin: "py" }] });
  assert(ok.patterns.length === 2);
});

Deno.test("Router.routesFor() lists the routes that reach a plugin's component", () => {
  const r = router({
    "/builtin/{*component}": [{ plugin: "builtin" }],
    "/{*component}": [{ plugin: "builtin" }],
    "/ai/{component}": [
      { plugin: "openai", conditions: [{ path: "$.model", value: "gpt-4" }] },
      { plugin: "builtin", componentDeny: ["/secret"] },
    ],
    "/tools/{server}/{name}": [{ plugin: "mock", component: "/{server}_{name}" }],
  });
  assertEquals(r.routesFor("builtin", "/eval"), [
    {
      pathPattern: "/builtin/{*component}",
      resolvedPath: "/builtin/eval",
      conditions: [],
      isConditional: false,
    },
    { pathPattern: "/{*component}", resolvedPath: "/eval", conditions: [], isConditional: false },
    {
      pathPattern: "/ai/{component}",
      resolvedPath: "/ai/eval",
      conditions: [],
      isConditional: false,
    },
  ]);
  assertStrictEquals(
    r.routesFor("builtin", "/secret").some((x) => x.pathPattern === "/ai/{component}"),
    false,
  );
  assertEquals(r.routesFor("openai", "/chat"), [{
    pathPattern: "/ai/{component}",
    resolvedPath: "/ai/chat",
    conditions: [{ path: "$.model", value: "gpt-4" }],
    isConditional: true,
  }]);
  assertEquals(r.routesFor("mock", "/fs_read").map((x) => x.resolvedPath), ["/tools/fs/read"]);
  assertEquals(r.routesFor("py", "/x"), []);
});

Deno.test("Router.resolveStatic() resolves only input-independent routes", () => {
  const r = router({
    "/m/{component}": [{ plugin: "mock" }],
    "/c/{component}": [{ plugin: "py", conditions: [{ path: "$.x", value: 1 }] }],
  });
  assertEquals(r.resolveStatic("/m/a"), { plugin: "mock", component: "/a" });
  assertStrictEquals(r.resolveStatic("/c/a"), undefined);
  assertStrictEquals(r.resolveStatic("/nope"), undefined);
});
