/**
 * Config mistakes `stepflow validate` used to pass:
 * - a route that can never name a component (no `{component}`/`{*component}` parameter and no
 *   `component` template): every step routed there failed at run time with `Route
 *   '/builtin/{*c}' has no {component} parameter`; now a warning where it is written;
 * - restart delays, `closeGrace` and `openai.timeout` too long for a timer: the engine refused to
 *   start (exit 1, no position); now errors at file:line:col;
 * - an unset `${VAR}` in the builtin plugin's `openai` settings: now a warning, as in `args`;
 *   an `openai.baseUrl` that is not http(s): now an error.
 * @module
 */
import { assertEquals, assertStringIncludes } from "../_assert.ts";
import { configFromValue, validateConfig } from "../../mod.ts";

Deno.test("validateConfig warns about a route without a {component} parameter or a component template", () => {
  const config = configFromValue({
    plugins: { builtin: { type: "builtin" } },
    routes: {
      "/builtin/{*c}": [{ plugin: "builtin" }],
      "/fixed": [{ plugin: "builtin" }],
      "/named/{x}": [{ plugin: "builtin", component: "/{x}" }],
      "/ok/{*component}": [{ plugin: "builtin" }],
    },
  });
  const found = validateConfig(config).filter((d) => d.code === "route_without_component");
  assertEquals(found.map((d) => [d.level, d.path]), [
    ["warning", '$.routes["/builtin/{*c}"][0]'],
    ["warning", '$.routes["/fixed"][0]'],
  ]);
  assertStringIncludes(found[0].message, "every step routed by it fails at run time");
  assertStringIncludes(found[0].hint ?? "", "rename '{*c}' to '{*component}'");
});

Deno.test("validateConfig checks restart delays, closeGrace and openai.timeout as it checks timeouts", () => {
  // before: `stepflow validate` passed, and `stepflow run` stopped with exit 1 ("cannot start the
  // engine: ... restartDelay must be at most 2147483647 ms") and no file:line:col
  const config = configFromValue({
    plugins: {
      builtin: { type: "builtin", openai: { timeout: 9_999_999_999_999 } },
      w: {
        type: "stepflow",
        command: "python3",
        args: [],
        restartDelay: 99_999_999_999,
        maxRestartDelay: "0s",
        closeGrace: "1h",
      },
    },
    routes: {
      "/builtin/{*component}": [{ plugin: "builtin" }],
      "/w/{*component}": [{ plugin: "w" }],
    },
  });
  const found = validateConfig(config).filter((d) => d.code === "invalid_timeout");
  assertEquals(found.map((d) => [d.level, d.path]), [
    ["error", "$.plugins.builtin.openai.timeout"],
    ["error", "$.plugins.w.restartDelay"],
  ]);
  assertStringIncludes(found[1].message, "at most 2147483647 ms");
});

Deno.test("validateConfig warns about unset variables in the builtin plugin's openai settings", () => {
  // before: only step-service and MCP args/env were checked; `${VAR}` in openai.baseUrl passed
  // validate and then stopped the engine at start
  const unset = `STEPFLOW_TEST_UNSET_${crypto.randomUUID().replaceAll("-", "").slice(0, 10)}`;
  const config = configFromValue({
    plugins: {
      builtin: {
        type: "builtin",
        openai: { baseUrl: `\${${unset}}`, headers: { "x-key": `\${${unset}}` } },
      },
    },
    routes: { "/builtin/{*component}": [{ plugin: "builtin" }] },
  });
  const found = validateConfig(config).filter((d) => d.code === "unset_env");
  assertEquals(found.map((d) => d.path), [
    "$.plugins.builtin.openai.baseUrl",
    '$.plugins.builtin.openai.headers["x-key"]',
  ]);
});

Deno.test("validateConfig: an openai.baseUrl that is not an http(s) URL is an error at its key", () => {
  const config = configFromValue({
    plugins: { builtin: { type: "builtin", openai: { baseUrl: "ftp://models" } } },
    routes: { "/builtin/{*component}": [{ plugin: "builtin" }] },
  });
  const found = validateConfig(config).filter((d) => d.code === "invalid_plugin");
  assertEquals(found.map((d) => [d.level, d.path]), [
    ["error", "$.plugins.builtin.openai.baseUrl"],
  ]);
});

Deno.test("validateConfig reports every malformed route pattern at its own key, a conflict at the pattern, and a route without rules", () => {
  // Before: only the first malformed pattern the router met was reported, at the first key of
  // `routes` (`stepflow validate` pointed at "/builtin/{*component}" for 'no-slash'); the
  // others ('{a}' twice, a catch-all before the end, an unclosed '{') were not reported at all,
  // and a route with an empty list of rules passed.
  const config = configFromValue({
    plugins: { builtin: { type: "builtin" } },
    routes: {
      "/builtin/{*component}": [{ plugin: "builtin" }],
      "no-slash": [{ plugin: "builtin" }],
      "/x/{a}/{a}": [{ plugin: "builtin" }],
      "/y/{*a}/z": [{ plugin: "builtin" }],
      "/w/{": [{ plugin: "builtin" }],
      "/e/{*component}": [],
      "/c/{p}/{*component}": [{ plugin: "builtin" }],
      "/c/{q}/{*component}": [{ plugin: "builtin" }],
    },
  });
  const ds = validateConfig(config);
  const invalid = ds.filter((d) => d.code === "invalid_route");
  assertEquals(invalid.map((d) => [d.level, d.path]), [
    ["error", '$.routes["no-slash"]'],
    ["error", '$.routes["/x/{a}/{a}"]'],
    ["error", '$.routes["/y/{*a}/z"]'],
    ["error", '$.routes["/w/{"]'],
    ["error", '$.routes["/c/{q}/{*component}"]'],
  ]);
  assertStringIncludes(invalid[1].message, "uses the parameter 'a' twice");
  assertStringIncludes(invalid[4].message, "Conflicting route patterns");
  // a malformed pattern gets no second warning about its {component}
  assertEquals(ds.filter((d) => d.code === "route_without_component").length, 0);
  const empty = ds.filter((d) => d.code === "route_without_rules");
  assertEquals(empty.map((d) => [d.level, d.path]), [["warning", '$.routes["/e/{*component}"]']]);
});
