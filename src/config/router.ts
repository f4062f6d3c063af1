/**
 * Component routing (stepflow 0.8 §2.3): a step's `component` path (`/python/udf`) → the plugin
 * that runs it and the component name that plugin knows (`/udf`).
 *
 * Patterns follow `matchit` 0.8 semantics (src/config/route_pattern.ts): literal segments,
 * `{name}` (exactly one non-empty segment) and `{*name}` (the non-empty rest of the path, last in
 * the pattern); a static segment beats a `{param}`, which beats a `{*catchAll}`, with
 * backtracking. Two patterns that differ only in parameter names, or that name the parameter at
 * the same position differently, conflict (a config error, as in matchit).
 *
 * Each pattern has an ordered list of rules. A pattern with exactly one rule and no conditions
 * uses that rule directly (allow/deny lists are NOT checked — 0.8). Otherwise the rules are tried
 * in order: every condition must hold (JSON equality of the value at `path` in the resolved step
 * input; a missing path is an error), then `componentAllow`/`componentDeny` are checked against
 * the resolved component; the first passing rule wins.
 *
 * The component sent to the plugin is the rule's `component` template with `{param}` placeholders
 * replaced, else `"/" + <the value of the {component} / {*component} parameter>`.
 * @module
 */
import type { Config, RouteRule } from "./model.ts";
import { jsonEquals, type JsonValue } from "../json/exact_json.ts";
import { applyPath, type ParsedPath, parsePath, TemplateError } from "../flow/template.ts";
import { PluginError, ValidationError } from "../errors.ts";
import { parsePattern, type PatternMatch, PatternTrie, type Segment } from "./route_pattern.ts";

/** Where a component is routed. */
export interface RouteTarget {
  /** The plugin name (`plugins.<name>`). */
  plugin: string;
  /** The component name the plugin receives, e.g. `/udf`. */
  component: string;
}

/** A route that reaches a plugin's component (for `list-components`, stepflow 0.8 shape). */
export interface RouteInfo {
  pathPattern: string;
  /** The path a step writes to reach the component through this route. */
  resolvedPath: string;
  conditions: { path: string; value: JsonValue }[];
  isConditional: boolean;
}

interface CompiledRule {
  rule: RouteRule;
  conditions: { path: ParsedPath; text: string; value: JsonValue }[];
  allow?: Set<string>;
  deny?: Set<string>;
}

interface Route {
  pattern: string;
  segments: Segment[];
  rules: CompiledRule[];
  /** True if the rule chosen never depends on the step input (so results can be cached). */
  inputIndependent: boolean;
  /** Single rule without conditions: used directly. */
  direct: boolean;
}

type Match = PatternMatch<Route>;

/** Most cached resolutions kept per router. */
const MAX_CACHE = 10_000;

/**
 * Routes components to plugins. Build once per config; {@linkcode Router.resolve} runs per step
 * and caches input-independent answers per component string.
 */
export class Router {
  readonly #trie = new PatternTrie<Route>();
  readonly #routes: Route[] = [];
  readonly #cache = new Map<string, RouteTarget | PluginError>();

  /**
   * @throws {ValidationError} for a bad pattern (`{` not closed, catch-all not last), conflicting
   * patterns, a rule naming an unknown plugin, or a condition path that does not parse.
   */
  constructor(config: Pick<Config, "routes" | "plugins">) {
    const plugins = new Set(Object.keys(config.plugins ?? {}));
    for (const [pattern, rules] of Object.entries(config.routes ?? {})) {
      const segments = parsePattern(pattern);
      const compiled = rules.map((rule, i) => compileRule(pattern, rule, i, plugins));
      const direct = compiled.length === 1 && compiled[0].conditions.length === 0;
      const route: Route = {
        pattern,
        segments,
        rules: compiled,
        direct,
        inputIndependent: compiled.every((r) => r.conditions.length === 0),
      };
      this.#trie.insert(pattern, segments, route);
      this.#routes.push(route);
    }
  }

  /** The patterns, in config order. */
  get patterns(): string[] {
    return this.#routes.map((r) => r.pattern);
  }

  /**
   * Routes `component` for a step whose resolved input is `input`.
   * @throws {PluginError} `No matching rule found for component: /x` (stepflow 0.8 text; when no
   * pattern matches, followed by what to do: the config's patterns and a route to add) when no
   * pattern matches or no rule passes; a condition path missing from the input; a route without a
   * `{component}` parameter and without a `component` template.
   */
  resolve(component: string, input: JsonValue): RouteTarget {
    const cached = this.#cache.get(component);
    if (cached !== undefined) {
      if (cached instanceof PluginError) throw cached;
      return cached;
    }
    const match = this.match(component);
    if (!match) {
      const err = new PluginError(
        `No matching rule found for component: ${component} (${this.#noRouteHint(component)})`,
      );
      this.#remember(component, err);
      throw err;
    }
    const { route } = match;
    if (route.inputIndependent) {
      let result: RouteTarget | PluginError;
      try {
        result = this.#choose(component, match, input);
      } catch (e) {
        if (!(e instanceof PluginError)) throw e;
        result = e;
      }
      this.#remember(component, result);
      if (result instanceof PluginError) throw result;
      return result;
    }
    return this.#choose(component, match, input);
  }

  /**
   * Where `component` goes when that does not depend on the step input (no rule of its route
   * has conditions); undefined when it does, or when it cannot be routed.
   */
  resolveStatic(component: string): RouteTarget | undefined {
    const m = this.match(component);
    if (!m || !m.route.inputIndependent) return undefined;
    try {
      return this.resolve(component, null);
    } catch (e) {
      if (e instanceof PluginError) return undefined;
      throw e;
    }
  }

  /** The pattern and parameters `component` matches, or undefined. */
  match(component: string): Match | undefined {
    return this.#trie.match(component);
  }

  /**
   * The routes through which `plugin` serves `component` (for `list-components`): for each rule
   * naming `plugin`, the path a step would write to reach `component` that way.
   */
  routesFor(plugin: string, component: string): RouteInfo[] {
    const out: RouteInfo[] = [];
    for (const route of this.#routes) {
      for (const c of route.rules) {
        if (c.rule.plugin !== plugin) continue;
        const resolvedPath = invert(route, c, component);
        if (resolvedPath === undefined) continue;
        if (!route.direct) {
          if (c.allow && !c.allow.has(component)) continue;
          if (c.deny && c.deny.has(component)) continue;
        }
        if (!resolvedPath.includes("{")) {
          const m = this.match(resolvedPath);
          if (!m || m.route !== route) continue;
        }
        out.push({
          pathPattern: route.pattern,
          resolvedPath,
          conditions: (c.rule.conditions ?? []).map((x) => ({ path: x.path, value: x.value })),
          isConditional: c.conditions.length > 0,
        });
      }
    }
    return out;
  }

  /** What to do when no pattern matches `component`: the message's hint. */
  #noRouteHint(component: string): string {
    const seg = /^\/([^/]+)\//.exec(component)?.[1];
    const example = seg === undefined
      ? `"/{*component}": [{plugin: <name>}]`
      : `"/${seg}/{*component}": [{plugin: ${seg === "builtin" ? "builtin" : "<name>"}}]`;
    if (this.#routes.length === 0) {
      return "the config has no routes (without a stepflow-config.yml beside the flow or in the " +
        `current directory the default config has none): add one to its routes, e.g. ${example}`;
    }
    const shown = this.#routes.slice(0, 10).map((r) => r.pattern).join(", ");
    const more = this.#routes.length > 10 ? `, ... (${this.#routes.length} in all)` : "";
    return `no route pattern of the config matches it (${shown}${more}): add one to its routes, ` +
      `e.g. ${example}, or fix the step's component`;
  }

  #remember(component: string, v: RouteTarget | PluginError): void {
    if (this.#cache.size >= MAX_CACHE) this.#cache.clear();
    this.#cache.set(component, v);
  }

  #choose(component: string, match: Match, input: JsonValue): RouteTarget {
    const { route, params } = match;
    if (route.direct) {
      const rule = route.rules[0];
      return { plugin: rule.rule.plugin, component: targetName(route, rule.rule, params) };
    }
    for (const c of route.rules) {
      let ok = true;
      for (const cond of c.conditions) {
        let actual: JsonValue;
        try {
          actual = applyPath(input, cond.path);
        } catch (e) {
          if (!(e instanceof TemplateError)) throw e;
          throw new PluginError(
            `Routing condition path '${cond.text}' not found in the input of component ` +
              `'${component}' (route '${route.pattern}'): the input must contain it`,
            [],
            { cause: e },
          );
        }
        if (!jsonEquals(actual, cond.value)) {
          ok = false;
          break;
        }
      }
      if (!ok) continue;
      const name = targetName(route, c.rule, params);
      if (c.allow && !c.allow.has(name)) continue;
      if (c.deny && c.deny.has(name)) continue;
      return { plugin: c.rule.plugin, component: name };
    }
    throw new PluginError(`No matching rule found for component: ${component}`);
  }
}

function compileRule(
  pattern: string,
  rule: RouteRule,
  index: number,
  plugins: Set<string>,
): CompiledRule {
  if (!plugins.has(rule.plugin)) {
    throw new ValidationError(
      `Routing rule ${index} for path '${pattern}' references unknown plugin '${rule.plugin}'` +
        (plugins.size > 0 ? ` (configured plugins: ${[...plugins].join(", ")})` : ""),
    );
  }
  const conditions = (rule.conditions ?? []).map((c) => {
    try {
      return { path: parsePath(c.path), text: c.path, value: c.value };
    } catch (e) {
      throw new ValidationError(
        `Routing rule ${index} for path '${pattern}': condition path '${c.path}': ${
          (e as Error).message
        }`,
        [],
        { cause: e },
      );
    }
  });
  const out: CompiledRule = { rule, conditions };
  if (rule.componentAllow) out.allow = new Set(rule.componentAllow);
  if (rule.componentDeny) out.deny = new Set(rule.componentDeny);
  return out;
}

function targetName(route: Route, rule: RouteRule, params: Map<string, string>): string {
  if (rule.component !== undefined) {
    return rule.component.replace(
      /\{\*?([A-Za-z_][A-Za-z0-9_]*)\}/g,
      (all, name: string) => params.get(name) ?? all,
    );
  }
  const c = params.get("component");
  if (c === undefined) {
    throw new PluginError(
      `Route '${route.pattern}' has no {component} parameter: name one '{component}' or ` +
        `'{*component}', or give the rule a 'component' template`,
    );
  }
  return "/" + c;
}

/** The path through `route`/`rule` that resolves to `component`, or undefined. */
function invert(route: Route, c: CompiledRule, component: string): string | undefined {
  const params = new Map<string, string>();
  if (c.rule.component !== undefined) {
    const names: string[] = [];
    const re = new RegExp(
      "^" +
        c.rule.component.split(/(\{\*?[A-Za-z_][A-Za-z0-9_]*\})/).map((part) => {
          const m = /^\{(\*?)([A-Za-z_][A-Za-z0-9_]*)\}$/.exec(part);
          if (!m) return part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
          names.push(m[2]);
          return m[1] ? "(.+)" : "([^/]+)";
        }).join("") + "$",
    );
    const m = re.exec(component);
    if (!m) return undefined;
    names.forEach((n, i) => params.set(n, m[i + 1]));
  } else {
    if (!component.startsWith("/")) return undefined;
    params.set("component", component.slice(1));
  }
  const parts: string[] = [];
  for (const s of route.segments) {
    if (s.kind === "static") {
      parts.push(s.text);
      continue;
    }
    const v = params.get(s.name);
    if (v === undefined) parts.push(s.kind === "param" ? `{${s.name}}` : `{*${s.name}}`);
    else if (v === "" || (s.kind === "param" && v.includes("/"))) return undefined;
    else parts.push(v);
  }
  const out = parts.join("/");
  return out;
}
