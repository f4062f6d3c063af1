/**
 * Config checks of one plugin (src/config/validate.ts): a step service's or MCP server's `url`
 * that is not an http(s) URL, `${VAR}` references in its `args` and `env` (malformed: error;
 * unset: warning), and mock behaviour results the mock plugin cannot use. Each diagnostic is at
 * the exact key.
 * @module
 */
import { isJsonObject, type JsonValue } from "../json/exact_json.ts";
import type { DiagnosticCollector } from "../core/diagnostics.ts";
import { substituteEnv } from "./env.ts";
import { toAnswer } from "./mock_answer.ts";

/**
 * A step service or MCP server `url` that is not an http(s) URL: an error here (with its
 * position) instead of a failed step at run time. (A missing `url`/`command` is checked above.)
 */
export function checkPluginEndpoint(name: string, p: unknown, c: DiagnosticCollector): void {
  const plugin = p as { type?: string; url?: unknown; openai?: { baseUrl?: unknown } } | undefined;
  // the builtin plugin's model endpoint (docs/ai.md), checked when it starts: say so here too
  if (plugin?.type === "builtin" && typeof plugin.openai?.baseUrl === "string") {
    const url = plugin.openai.baseUrl;
    if (url !== "" && !/[{$]/.test(url) && !isHttpUrl(url)) {
      c.add(
        "error",
        "invalid_plugin",
        `Plugin '${name}': openai.baseUrl ${JSON.stringify(url)} is not an http(s) URL`,
        ["plugins", name, "openai", "baseUrl"],
        { hint: "e.g. baseUrl: http://127.0.0.1:11434/v1" },
      );
    }
    return;
  }
  if (plugin?.type !== "stepflow" && plugin?.type !== "mcp") return;
  // `{name.url}` / `{port}` of test servers are filled in later.
  if (typeof plugin.url !== "string" || /[{$]/.test(plugin.url)) return;
  if (!isHttpUrl(plugin.url)) {
    c.add(
      "error",
      "invalid_plugin",
      `Plugin '${name}': url ${JSON.stringify(plugin.url)} is not an http(s) URL`,
      ["plugins", name, "url"],
      { hint: "e.g. url: http://127.0.0.1:8080" },
    );
  }
}

function isHttpUrl(text: string): boolean {
  try {
    return ["http:", "https:"].includes(new URL(text).protocol);
  } catch {
    return false; // not a URL
  }
}

/** A behavior whose `result` the mock plugin cannot use is an error at that result. */
export function checkMockBehaviors(
  plugin: string,
  component: string,
  b: JsonValue | undefined,
  c: DiagnosticCollector,
) {
  const entries: [string | number, JsonValue][] = Array.isArray(b)
    ? b.map((x, i) => [i, isJsonObject(x) ? x.result : undefined] as [number, JsonValue])
    : isJsonObject(b)
    ? Object.entries(b)
    : [];
  for (const [key, result] of entries) {
    if (result === undefined) continue;
    const at = ["plugins", plugin, "components", component, "behaviors", key];
    if (typeof key === "number") at.push("result");
    try {
      toAnswer(plugin, component, result);
    } catch (e) {
      c.add("error", "invalid_mock_behavior", (e as Error).message, at);
    }
  }
}

/**
 * `${VAR}` references in a step service's or MCP server's `args` and `env`, and in the builtin
 * plugin's `openai` settings (`baseUrl`, `model`, `headers`): a malformed one is an
 * error; an unset variable without a default is a warning (the environment of `validate` may not
 * be the one of the run), both at the exact arg or env entry. Variables this process may not read
 * are not checked.
 */
export function checkPluginEnvRefs(name: string, p: unknown, c: DiagnosticCollector): void {
  const plugin = p as
    | { type?: string; args?: unknown; env?: unknown; openai?: unknown }
    | undefined;
  const entries: [(string | number)[], string][] = [];
  // the builtin plugin's `openai` settings are substituted when it starts (docs/ai.md)
  if (plugin?.type === "builtin" && isJsonObject(plugin.openai as JsonValue)) {
    const o = plugin.openai as Record<string, unknown>;
    for (const k of ["baseUrl", "model"]) {
      if (typeof o[k] === "string") entries.push([["plugins", name, "openai", k], o[k] as string]);
    }
    if (isJsonObject(o.headers as JsonValue)) {
      for (const [k, v] of Object.entries(o.headers as Record<string, unknown>)) {
        if (typeof v === "string") entries.push([["plugins", name, "openai", "headers", k], v]);
      }
    }
  } else if (plugin?.type !== "stepflow" && plugin?.type !== "mcp") return;
  if (Array.isArray(plugin.args)) {
    plugin.args.forEach((a, i) => {
      if (typeof a === "string") entries.push([["plugins", name, "args", i], a]);
    });
  }
  if (isJsonObject(plugin.env as JsonValue)) {
    for (const [k, v] of Object.entries(plugin.env as Record<string, unknown>)) {
      if (typeof v === "string") entries.push([["plugins", name, "env", k], v]);
    }
  }
  const unreadable = new Error("unreadable");
  for (const [at, text] of entries) {
    if (!text.includes("${")) continue;
    let unset: string | undefined;
    try {
      substituteEnv(text, (v) => {
        let value: string | undefined;
        try {
          value = Deno.env.get(v);
        } catch {
          throw unreadable;
        }
        if (value === undefined) unset ??= v;
        return value;
      });
    } catch (e) {
      if (e === unreadable) continue;
      if (unset !== undefined) {
        c.add(
          "warning",
          "unset_env",
          `Environment variable '${unset}' is not set (used in ${JSON.stringify(text)})`,
          at,
          {
            hint: `set it before the run, or give a default: \${${unset}:-default}`,
          },
        );
      } else {
        c.add("error", "invalid_env_ref", (e as Error).message, at);
      }
    }
  }
}
