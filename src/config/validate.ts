/**
 * Config validation (stepflow 0.8 §1.9, config part): diagnostics with a level, a JSON path and,
 * when the config came from a file, file:line:col.
 *
 * - error: `Routing rule N for path 'p' references unknown plugin 'x'`, conflicting or malformed
 *   route patterns, step services and MCP servers without `command`/`url` or with a bad `url`,
 *   malformed `${VAR}` references, a SQLite `databaseUrl` that cannot open, mock behavior results
 *   that are not FlowResults, invalid durations;
 * - warning: `No plugins configured`, `No routing rules configured`, `Plugin 'p' is not referenced
 *   by any routing rule`, unset environment variables, unknown keys (with a suggestion; 0.8
 *   ignores them silently).
 * @module
 */
import { dirname } from "node:path";
import { isJsonObject, type JsonValue } from "../json/exact_json.ts";
import { ValidationError } from "../errors.ts";
import {
  type Diagnostic,
  DiagnosticCollector,
  jsonPath,
  type SourceMap,
} from "../core/diagnostics.ts";
import { parseDuration } from "../core/duration.ts";
import { suggestKey } from "../flow/keys.ts";
import { keysByTag } from "../core/fast_shape.ts";
import type { Config, LoadedConfig } from "./model.ts";
import {
  fastConfig,
  fastMockComponent,
  fastPluginConfig,
  fastRouteCondition,
  fastRouteRule,
  fastStateStore,
} from "./fast_model.ts";
import { Router } from "./router.ts";
import { parsePattern } from "./route_pattern.ts";
import { parseSqliteUrl } from "./store_url.ts";
import { parsePostgresUrl } from "./postgres_url.ts";
import { checkMockBehaviors, checkPluginEndpoint, checkPluginEnvRefs } from "./validate_plugins.ts";

/**
 * Keys of each object kind of a config, from the zod-free model (src/config/fast_model.ts;
 * tests/flow/fast_shape_test.ts checks them against the zod model).
 */
const CONFIG_KEYS = fastConfig.keys;
const PLUGIN_KEYS = keysByTag(fastPluginConfig);
const MOCK_COMPONENT_KEYS = fastMockComponent.keys;
const RULE_KEYS = fastRouteRule.keys;
const CONDITION_KEYS = fastRouteCondition.keys;
const STATE_STORE_KEYS = keysByTag(fastStateStore);

/**
 * Diagnostics of a config (§1.9 config part): unknown plugins in routes (error), conflicting or
 * malformed route patterns (error), stdio/http/MCP plugins missing `command`/`url` (error), no
 * plugins / no routes / unused plugins (warnings), unknown keys (warnings, with suggestions;
 * needs the raw value: `loaded.raw` when the loader kept it).
 * @param source positions (defaults to `loaded.source` when present).
 */
export function validateConfig(
  loaded: LoadedConfig & { raw?: JsonValue; source?: SourceMap },
  source?: SourceMap,
): Diagnostic[] {
  const c = new DiagnosticCollector(source ?? loaded.source, [], suggestKey);
  checkConfig(loaded.config, loaded.raw, c);
  checkStateStore(loaded, c);
  return [...c.out, ...configPolicyDiagnostics(loaded.config, source ?? loaded.source)];
}

/**
 * A PostgreSQL `url` that is not one is an error here (its message never holds the password).
 * A SQLite `databaseUrl` that cannot work is an error here, with its position, rather than a
 * failure to start the engine: a malformed URL, a file in a directory that does not exist, or a
 * missing file with `mode=rw`/`ro`. What cannot be checked (no read permission) is left to the
 * engine.
 */
function checkStateStore(loaded: LoadedConfig, c: DiagnosticCollector): void {
  const store = loaded.config.stateStore as
    | { type?: string; databaseUrl?: unknown; url?: unknown }
    | undefined;
  if (store?.type === "postgres" && typeof store.url === "string") {
    try {
      parsePostgresUrl(store.url);
    } catch (e) {
      c.add("error", "invalid_state_store", (e as Error).message, ["stateStore", "url"], {
        hint: "e.g. postgres://stepflow:${PGPASSWORD}@db.internal:5432/stepflow",
      });
    }
    return;
  }
  if (store?.type !== "sqlite" || typeof store.databaseUrl !== "string") return;
  const at = ["stateStore", "databaseUrl"];
  let parsed: { path: string; mode: string };
  try {
    parsed = parseSqliteUrl(store.databaseUrl, loaded.workingDirectory);
  } catch (e) {
    c.add("error", "invalid_state_store", (e as Error).message, at);
    return;
  }
  if (parsed.path === ":memory:") return;
  const kind = (p: string) => {
    try {
      return Deno.statSync(p).isDirectory ? "dir" : "file";
    } catch (e) {
      return e instanceof Deno.errors.NotFound ? "missing" : "unknown";
    }
  };
  const dir = dirname(parsed.path);
  const file = kind(parsed.path);
  if (file === "dir") {
    c.add("error", "invalid_state_store", `SQLite database '${parsed.path}' is a directory`, at, {
      hint: "give a file name, e.g. sqlite:runs.db?mode=rwc",
    });
  } else if (file === "missing" && parsed.mode !== "rwc") {
    c.add(
      "error",
      "invalid_state_store",
      `SQLite database '${parsed.path}' does not exist (mode=${parsed.mode} does not create it)`,
      at,
      { hint: "use mode=rwc to create it" },
    );
  } else if (file === "missing" && kind(dir) === "missing") {
    c.add(
      "error",
      "invalid_state_store",
      `SQLite database '${parsed.path}' cannot be created: directory '${dir}' does not exist`,
      at,
      {
        hint:
          "create the directory, or point databaseUrl elsewhere (relative paths are from the config's directory)",
      },
    );
  }
}

/**
 * Diagnostics of an inline config value (a flow's `test.config`) at `prefix`: a light check of
 * its shape, plugins, routes and keys without building plugins (`stepflow test` parses it fully).
 */
export function validateConfigValue(
  value: JsonValue,
  source: SourceMap | undefined,
  prefix: (string | number)[],
): Diagnostic[] {
  const c = new DiagnosticCollector(source, prefix, suggestKey);
  if (!isJsonObject(value)) {
    c.add("error", "invalid_config", "The test config must be a mapping", []);
    return c.out;
  }
  // A light check of the shape without building plugins; full parsing happens in `stepflow test`.
  const plugins = isJsonObject(value.plugins) ? value.plugins : {};
  const routes = isJsonObject(value.routes) ? value.routes : {};
  checkConfig(
    { plugins, routes } as unknown as Config,
    value,
    c,
  );
  return c.out;
}

function checkConfig(config: Config, raw: JsonValue | undefined, c: DiagnosticCollector): void {
  const plugins = config.plugins ?? {};
  const routes = config.routes ?? {};
  const pluginNames = Object.keys(plugins);
  if (pluginNames.length === 0) c.add("warning", "no_plugins", "No plugins configured", []);
  const patterns = Object.keys(routes);
  if (patterns.length === 0) {
    c.add("warning", "no_routes", "No routing rules configured", [], {
      hint:
        'without routes no component can be called; e.g. routes: {"/builtin/{*component}": [{plugin: builtin}]}',
    });
  }
  const used = new Set<string>();
  // Each malformed pattern is an error at its own key (before: only the first one the router met
  // was reported, at the first key of `routes`, and the others not at all).
  const malformed = new Set<string>();
  for (const p of patterns) {
    try {
      parsePattern(p);
    } catch (e) {
      if (!(e instanceof ValidationError)) throw e;
      malformed.add(p);
      c.add("error", "invalid_route", e.message, ["routes", p]);
    }
  }
  for (const p of patterns) {
    const rules = routes[p];
    if (!Array.isArray(rules)) continue;
    if (rules.length === 0 && !malformed.has(p)) {
      c.add(
        "warning",
        "route_without_rules",
        `Route '${p}' has no rules: every step routed by it fails at run time ` +
          "(No matching rule found for component)",
        ["routes", p],
        { hint: "add a rule such as [{plugin: builtin}], or remove the route" },
      );
    }
    rules.forEach((rule, i) => {
      const name = isJsonObject(rule as unknown as JsonValue) ? rule.plugin : undefined;
      if (typeof name !== "string") return;
      used.add(name);
      // no {component} parameter and no template: every step routed here fails at run time
      if (
        typeof rule.component !== "string" && !/\{\*?component\}/.test(p) && !malformed.has(p)
      ) {
        const param = /\{\*?([A-Za-z_][A-Za-z0-9_]*)\}/.exec(p)?.[1];
        c.add(
          "warning",
          "route_without_component",
          `Route '${p}' has no {component} parameter and rule ${i} has no 'component' ` +
            `template: every step routed by it fails at run time`,
          ["routes", p, i],
          {
            hint: param !== undefined
              ? `rename '{${p.includes(`{*${param}}`) ? "*" : ""}${param}}' to ` +
                `'{${
                  p.includes(`{*${param}}`) ? "*" : ""
                }component}', or add component: "/{${param}}"`
              : `add a 'component' template to the rule, e.g. component: "/name"`,
          },
        );
      }
      if (!Object.hasOwn(plugins, name)) {
        c.add(
          "error",
          "unknown_plugin",
          `Routing rule ${i} for path '${p}' references unknown plugin '${name}'`,
          ["routes", p, i, "plugin"],
          {
            hint: suggestKey(name, pluginNames) ??
              (pluginNames.length ? `configured plugins: ${pluginNames.join(", ")}` : undefined),
          },
        );
      }
    });
  }
  for (const name of pluginNames) {
    if (!used.has(name)) {
      c.add(
        "warning",
        "unused_plugin",
        `Plugin '${name}' is not referenced by any routing rule`,
        ["plugins", name],
        { hint: `route to it, e.g. "/${name}/{*component}": [{plugin: ${name}}]` },
      );
    }
    const p = plugins[name] as unknown as JsonValue;
    if (!isJsonObject(p)) continue;
    if (p.type === "stepflow" && p.transport !== "http" && !p.command) {
      c.add("error", "missing_command", `Plugin '${name}' (stdio) needs a 'command'`, [
        "plugins",
        name,
      ]);
    }
    if (p.type === "stepflow" && p.transport === "http" && !p.url) {
      c.add("error", "missing_url", `Plugin '${name}' (http) needs a 'url'`, ["plugins", name]);
    }
    if (p.type === "mcp" && !p.command && !p.url) {
      c.add("error", "missing_command", `Plugin '${name}' (mcp) needs a 'command' or a 'url'`, [
        "plugins",
        name,
      ]);
    }
  }
  // Route patterns (conflicts, syntax). Unknown plugins are reported above.
  const known = Object.fromEntries(
    [...pluginNames, ...used].map((n) => [n, { type: "builtin" }]),
  ) as unknown as Config["plugins"];
  try {
    // (the malformed patterns are reported above)
    const wellFormed = Object.fromEntries(
      Object.entries(routes).filter(([p]) => !malformed.has(p)),
    ) as Config["routes"];
    new Router({ plugins: known, routes: wellFormed });
  } catch (e) {
    if (!(e instanceof ValidationError)) throw e;
    // at the pattern that conflicts (the message names it first), else at `routes`
    const named = /^Conflicting route patterns: '([^']*)'/.exec(e.message)?.[1];
    const at = named !== undefined && Object.hasOwn(routes, named) ? ["routes", named] : ["routes"];
    c.add("error", "invalid_route", e.message, at);
  }
  for (const [name, p] of Object.entries(plugins)) {
    checkPluginEndpoint(name, p, c);
    checkPluginEnvRefs(name, p, c);
  }
  if (raw !== undefined) configUnknownKeys(raw, c);
}

function configUnknownKeys(raw: JsonValue, c: DiagnosticCollector): void {
  if (!isJsonObject(raw)) return;
  c.unknownKeys(raw, [], CONFIG_KEYS, "the config");
  if (isJsonObject(raw.plugins)) {
    for (const [name, p] of Object.entries(raw.plugins)) {
      if (!isJsonObject(p) || typeof p.type !== "string") continue;
      const known = PLUGIN_KEYS[p.type];
      if (known) c.unknownKeys(p, ["plugins", name], known, `plugin '${name}'`);
      if (p.type === "mock" && isJsonObject(p.components)) {
        for (const [cn, comp] of Object.entries(p.components)) {
          c.unknownKeys(
            comp,
            ["plugins", name, "components", cn],
            MOCK_COMPONENT_KEYS,
            `mock component '${cn}'`,
          );
          if (isJsonObject(comp)) checkMockBehaviors(name, cn, comp.behaviors, c);
        }
      }
    }
  }
  if (isJsonObject(raw.routes)) {
    for (const [p, rules] of Object.entries(raw.routes)) {
      if (!Array.isArray(rules)) continue;
      rules.forEach((r, i) => {
        c.unknownKeys(r, ["routes", p, i], RULE_KEYS, `routing rule ${i} for '${p}'`);
        if (isJsonObject(r) && Array.isArray(r.conditions)) {
          r.conditions.forEach((cond, j) =>
            c.unknownKeys(cond, ["routes", p, i, "conditions", j], CONDITION_KEYS, "a condition")
          );
        }
      });
    }
  }
  if (isJsonObject(raw.stateStore) && typeof raw.stateStore.type === "string") {
    const known = STATE_STORE_KEYS[raw.stateStore.type];
    if (known) c.unknownKeys(raw.stateStore, ["stateStore"], known, "stateStore");
  }
}

/**
 * Problems in a config's limits (extension, issue 5): plugin `timeout`s, `runTimeout`, restart
 * delays, `closeGrace` and `openai.timeout` that are not durations the engine can wait (greater
 * than zero, or zero where allowed, at most 2^31 - 1 ms; the config model only checks their
 * shape), as `error`
 * diagnostics (code `invalid_timeout`) with the JSON path and, given `source`, the position.
 */
export function configPolicyDiagnostics(config: Config, source?: SourceMap): Diagnostic[] {
  const out: Diagnostic[] = [];
  const check = (
    value: unknown,
    segments: (string | number)[],
    what: string,
    allowZero = false,
  ) => {
    if (value === undefined) return;
    try {
      parseDuration(value, { what, allowZero });
    } catch (e) {
      const d: Diagnostic = {
        level: "error",
        message: (e as Error).message,
        path: jsonPath(segments),
        code: "invalid_timeout",
        hint: 'use a number of milliseconds or a string such as "30s"',
      };
      const position = source?.positionOf(segments);
      if (position) d.position = position;
      out.push(d);
    }
  };
  check(config.runTimeout, ["runTimeout"], "runTimeout");
  for (const [name, pc] of Object.entries(config.plugins ?? {})) {
    const p = pc as Record<string, unknown>;
    check(p.timeout, ["plugins", name, "timeout"], `plugins.${name}.timeout`);
    // checked when the plugin starts too: say so here, where `validate` reports it
    for (const key of ["restartDelay", "maxRestartDelay", "closeGrace"]) {
      check(p[key], ["plugins", name, key], `plugins.${name}.${key}`, true);
    }
    const openai = p.openai as { timeout?: unknown } | undefined;
    if (openai) check(openai.timeout, ["plugins", name, "openai", "timeout"], "openai.timeout");
  }
  return out;
}
