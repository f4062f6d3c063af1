/**
 * What the steps of a flow need (src/permissions/compute.ts): the built-in components their
 * routes send them to, `/load_file`'s path, and `/openai`/`/chat`'s base URL host and the
 * variables they read (a computed value makes the permission unscoped, with a note).
 * @module
 */
import { resolve } from "node:path";
import type { LoadedConfig } from "../config/model.ts";
import { substituteEnv } from "../config/env.ts";
import { compileTemplate } from "../flow/template.ts";
import { isJsonObject, type JsonValue } from "../json/exact_json.ts";
import { envVarsIn } from "./env_refs.ts";
import { OPENAI_BASE_URL_ENV, OPENAI_HOST, OPENAI_KEY_ENV } from "./library_env.ts";
import { ALL, type PermissionSet } from "./permission_set.ts";
import { netHost } from "./targets.ts";

/** A step as the computation sees it (a loaded flow's step fits). */
export interface StepLike {
  id?: string;
  component: string;
  input?: JsonValue;
}

/** Adds what the built-in components used by `flow`'s steps need. */
export function addStepPermissions(
  set: PermissionSet,
  flow: { steps?: StepLike[] },
  loaded: LoadedConfig,
  env: (name: string) => string | undefined = _readEnv,
): void {
  const plugins = loaded.config.plugins ?? {};
  for (const step of flow.steps ?? []) {
    for (const target of routeTargets(step.component, loaded)) {
      const plugin = plugins[target.plugin];
      if (plugin?.type !== "builtin") continue;
      const name = target.component.split("/").pop();
      if (name === "load_file") {
        const p = _literalKey(step.input, "path");
        if (typeof p === "string") set.add("read", resolve(loaded.workingDirectory, p));
        else {
          set.add("read", loaded.workingDirectory);
          set.note(
            `step '${step.id ?? "?"}': /load_file path is computed at run time, so the whole ` +
              `working directory ${loaded.workingDirectory} is readable; make it a literal to narrow this`,
          );
        }
      } else if (name === "openai" || name === "chat") {
        _addModelCall(set, step, plugin.openai, env);
      }
    }
  }
}

/** What a `/openai` or `/chat` step needs: the base URL's host and the variables read. */
function _addModelCall(
  set: PermissionSet,
  step: StepLike,
  settings: { baseUrl?: string; apiKeyEnv?: string } | undefined,
  env: (name: string) => string | undefined,
): void {
  const id = step.id ?? "?";
  if (_literalKey(step.input, "api_key") === undefined) {
    set.add("env", settings?.apiKeyEnv ?? OPENAI_KEY_ENV);
  }
  const literal = _literalKey(step.input, "base_url");
  if (_hasKey(step.input, "base_url") && literal === undefined) {
    set.add("net", ALL).note(
      `step '${id}': base_url is computed at run time, so --allow-net is unscoped; ` +
        `make it a literal or set openai.baseUrl in the config to narrow this`,
    );
    return;
  }
  let url: string | undefined;
  let from: string;
  if (typeof literal === "string") {
    url = literal;
    from = "its base_url";
  } else if (settings?.baseUrl !== undefined) {
    from = "the config's openai.baseUrl";
    try {
      url = substituteEnv(settings.baseUrl, env);
    } catch {
      url = undefined;
    }
  } else {
    set.add("env", OPENAI_BASE_URL_ENV);
    const current = env(OPENAI_BASE_URL_ENV);
    if (current) {
      url = current;
      from = `${OPENAI_BASE_URL_ENV} (as set now)`;
    } else {
      set.add("net", OPENAI_HOST);
      return;
    }
  }
  const host = url ? netHost(url) : undefined;
  const vars = from === "its base_url" ? [] : envVarsIn(settings?.baseUrl ?? "");
  if (host && (vars.length > 0 || !settings?.baseUrl && from !== "its base_url")) {
    set.note(
      `step '${id}': --allow-net=${host} comes from ${
        vars.length > 0 ? vars.join(", ") : OPENAI_BASE_URL_ENV
      } as set now; run \`stepflow permissions\` again with the value the run will have`,
    );
  }
  if (host) set.add("net", host);
  else {
    set.note(
      `step '${id}': the base URL from ${from} (${JSON.stringify(url ?? settings?.baseUrl)}) ` +
        `is not a URL yet; no --allow-net added for it`,
    );
  }
}

function _readEnv(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}

/** True when the step input (literal or template object) has `key`. */
function _hasKey(input: JsonValue | undefined, key: string): boolean {
  try {
    const t = compileTemplate(input);
    if (t.kind === "literal") return isJsonObject(t.value) && Object.hasOwn(t.value, key);
    if (t.kind === "object") return t.entries.some(([k]) => k === key);
  } catch {
    // not a template
  }
  return false;
}

/** A component a step may be routed to: plugin name and the component name it receives. */
export interface RouteTarget {
  plugin: string;
  component: string;
}

/**
 * Every plugin/component a component path may be routed to (§2.3), ignoring conditions (any
 * rule of a matching pattern may apply, so all are included). Patterns: `{name}` is one
 * segment, `{*name}` the rest; the component sent is the rule's `component` template, else
 * `/` + the `component` parameter.
 */
export function routeTargets(component: string, loaded: LoadedConfig): RouteTarget[] {
  const out: RouteTarget[] = [];
  for (const [pattern, rules] of Object.entries(loaded.config.routes ?? {})) {
    const params = _matchPattern(pattern, component);
    if (!params) continue;
    for (const rule of rules) {
      let name: string | undefined;
      if (rule.component) {
        name = rule.component.replace(
          /\{\*?([A-Za-z_][A-Za-z0-9_]*)\}/g,
          (_m, n: string) => params[n] ?? "",
        );
      } else if (params.component !== undefined) {
        name = params.component.startsWith("/") ? params.component : "/" + params.component;
      }
      if (name !== undefined) out.push({ plugin: rule.plugin, component: name });
    }
  }
  return out;
}

function _matchPattern(pattern: string, path: string): Record<string, string> | undefined {
  const names: string[] = [];
  const src = pattern.replace(/[.+?^$()|[\]\\]/g, "\\$&").replace(
    /\{(\*?)([A-Za-z_][A-Za-z0-9_]*)\}/g,
    (_m, star: string, name: string) => {
      names.push(name);
      return star ? "(.+)" : "([^/]+)";
    },
  );
  const m = new RegExp(`^${src}$`).exec(path);
  if (!m) return undefined;
  const params: Record<string, string> = {};
  names.forEach((n, i) => params[n] = m[i + 1]);
  return params;
}

/**
 * The value of `key` in a step input when it is a literal (no `$from` inside), else undefined.
 */
function _literalKey(input: JsonValue | undefined, key: string): JsonValue | undefined {
  let t;
  try {
    t = compileTemplate(input);
  } catch {
    return undefined;
  }
  if (t.kind === "literal") return isJsonObject(t.value) ? t.value[key] : undefined;
  if (t.kind === "object") {
    const e = t.entries.find(([k]) => k === key);
    if (e && e[1].kind === "literal") return e[1].value;
  }
  return undefined;
}
