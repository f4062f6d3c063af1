/**
 * The narrowest Deno permissions one flow with one config needs (`stepflow permissions`).
 *
 * What a run touches, and the flag each needs:
 * - the flow file, the config file and the discovery probes → `--allow-read` (exact files);
 * - every configured step service and MCP server (the executor starts them all, as 0.8) →
 *   `--allow-run=<command>`: a bare name as written (Deno looks it up on PATH), a path
 *   resolved against the working directory; a bare step-service command is also looked up by
 *   the engine itself (0.8 resolves it when the config is loaded) → `--allow-env=PATH` and
 *   `--allow-read=<the executable found>`;
 * - `${VAR}` references in stdio/MCP `args` and `env` (§2.5) → `--allow-env=VAR`;
 * - HTTP step services and MCP `url`s → `--allow-net=host:port`;
 * - built-in `/load_file` with a literal `path` → `--allow-read=<that file>`; with a computed
 *   path → the working directory (noted); `/openai` and `/chat` → `--allow-net=<host:port of
 *   the base URL>` (the step's literal `base_url`, else the builtin plugin's `openai.baseUrl`,
 *   else `OPENAI_BASE_URL` as set now, else `api.openai.com:443`; a computed `base_url` makes
 *   net unscoped, noted) and `--allow-env=` the key variable (`openai.apiKeyEnv`, default
 *   `OPENAI_API_KEY`, unless the input gives a literal `api_key`) and `OPENAI_BASE_URL` when no
 *   base URL is configured; nested
 *   flows given to `/map`, `/iterate`, `/put_blob` are searched the same way;
 * - a builtin plugin's `openai` settings → `--allow-env` for each `${VAR}` they reference (read
 *   when the plugin starts);
 * - an SQLite state store file → `--allow-read` and `--allow-write` on it; a PostgreSQL one →
 *   `--allow-net=host:port` and `--allow-env` for the `PG*` variables its client reads;
 * - `stepflow test`: the `test.servers` commands → `--allow-run`, and `--allow-net=127.0.0.1`
 *   to find a free port and reach them;
 * - always: the variables of {@linkcode ALWAYS_READ_ENV}.
 * @module
 */
import { delimiter, dirname, isAbsolute, join, resolve } from "node:path";
import type { LoadedConfig, PluginConfig } from "../config/model.ts";
import { FLOW_SCHEMA_URL } from "../flow/model.ts";
import { compileTemplate } from "../flow/template.ts";
import { isJsonObject, type JsonValue } from "../json/exact_json.ts";
import { envVarsIn } from "./env_refs.ts";
import {
  ALWAYS_READ_ENV,
  COMMAND_LOOKUP_ENV,
  OPENAI_BASE_URL_ENV,
  OPENAI_HOST,
  OPENAI_KEY_ENV,
} from "./library_env.ts";
import { ALL, PermissionSet } from "./permission_set.ts";
import { postgresEnvVars, postgresNetHost } from "../state/postgres_url.ts";
import { substituteEnv } from "../config/env.ts";

/** The parts of a flow the computation looks at (a loaded `Flow` fits). */
export interface FlowLike {
  steps?: { id?: string; component: string; input?: JsonValue }[];
  test?: { servers?: Record<string, JsonValue> } | undefined;
}

/** What to compute the permissions of. */
export interface FlowPermissionOptions {
  /** Absolute path of the flow file (read). */
  flowPath?: string;
  /** The loaded flow. */
  flow: FlowLike;
  /** The config the run uses (the default config when none was found). */
  config: LoadedConfig;
  /**
   * Files read to find and load the config: the config file and every discovery probe
   * (absolute). Default: `config.path` when set.
   */
  configFiles?: string[];
  /** Also what `stepflow test` needs: `test.servers`. @default false */
  test?: boolean;
  /** `--input FILE` of `run` (read). */
  inputFile?: string;
  /** `--output FILE` of `run` (written). */
  outputFile?: string;
  /** Other files `run` reads: `--variables FILE`, `--overrides FILE`. */
  readFiles?: string[];
  /** `run --env-variables` reads every `STEPFLOW_VAR_*`: env becomes unscoped. */
  envVariables?: boolean;
  /** `test --update` rewrites the flow file. */
  update?: boolean;
  /** The PATH to find bare step-service commands on. @default the engine's PATH */
  pathEnv?: string;
  /**
   * Reads a variable as the run will see it (`OPENAI_BASE_URL`, `${VAR}` in a configured base
   * URL). @default this process's environment (undefined when not readable)
   */
  env?: (name: string) => string | undefined;
  /** `--log-file` (global flag): written. */
  logFile?: string;
}

/**
 * Computes the permissions of one flow with its config.
 * Never throws for odd configs: what cannot be scoped is over-approximated and noted.
 */
export function computeFlowPermissions(opts: FlowPermissionOptions): PermissionSet {
  const set = new PermissionSet();
  set.addAll("env", ALWAYS_READ_ENV);
  if (opts.flowPath) set.add("read", resolve(opts.flowPath));
  for (const f of opts.configFiles ?? (opts.config.path ? [opts.config.path] : [])) {
    set.add("read", resolve(f));
  }
  if (opts.inputFile) set.add("read", resolve(opts.inputFile));
  if (opts.outputFile) set.add("write", resolve(opts.outputFile));
  for (const f of opts.readFiles ?? []) set.add("read", resolve(f));
  if (opts.envVariables) {
    set.add("env", ALL).note(
      "--env-variables reads every STEPFLOW_VAR_* variable: --allow-env is unscoped",
    );
  }
  if (opts.update && opts.flowPath) set.add("write", resolve(opts.flowPath));
  if (opts.logFile) set.add("write", resolve(opts.logFile));
  addConfigPermissions(set, opts.config, opts.pathEnv);
  for (const flow of _flowsIn(opts.flow)) addStepPermissions(set, flow, opts.config, opts.env);
  if (opts.test) {
    const base = opts.flowPath ? dirname(resolve(opts.flowPath)) : opts.config.workingDirectory;
    addTestServerPermissions(set, opts.flow.test?.servers, base);
  }
  return set;
}

/**
 * Adds what the config's plugins and state store need, whatever the flow (the executor starts
 * every configured plugin).
 */
export function addConfigPermissions(
  set: PermissionSet,
  loaded: LoadedConfig,
  pathEnv?: string,
): void {
  const wd = loaded.workingDirectory;
  for (const [name, plugin] of Object.entries(loaded.config.plugins ?? {})) {
    _addPlugin(set, name, plugin, wd, pathEnv);
  }
  const store = loaded.config.stateStore;
  if (store?.type === "sqlite") {
    const file = sqliteFile(store.databaseUrl, wd);
    if (file) set.add("read", file).add("write", file);
  } else if (store?.type === "postgres") {
    const host = postgresNetHost(store.url);
    if (host) set.add("net", host);
    else set.note("stateStore.url names no host; no --allow-net added for PostgreSQL");
    set.addAll("env", postgresEnvVars(store.url));
  }
}

function _addPlugin(
  set: PermissionSet,
  name: string,
  plugin: PluginConfig,
  wd: string,
  pathEnv: string | undefined,
): void {
  if (plugin.type === "builtin") {
    // `openai` settings are resolved when the plugin starts (src/plugins/builtin/openai_client.ts)
    const o = plugin.openai;
    for (const s of [o?.baseUrl, o?.model, ...Object.values(o?.headers ?? {})]) {
      if (s !== undefined) set.addAll("env", envVarsIn(s));
    }
    return;
  }
  if (plugin.type !== "stepflow" && plugin.type !== "mcp") return;
  for (const s of [...(plugin.args ?? []), ...Object.values(plugin.env ?? {})]) {
    set.addAll("env", envVarsIn(s));
  }
  const isHttp = plugin.type === "stepflow" ? plugin.transport === "http" : !plugin.command;
  if (isHttp) {
    const host = plugin.url ? netHost(plugin.url) : undefined;
    if (host) set.add("net", host);
    else set.note(`plugin '${name}': url '${plugin.url ?? ""}' has no host; no --allow-net added`);
    return;
  }
  if (!plugin.command) return;
  const cmd = commandPermission(plugin.command, wd);
  set.add("run", cmd);
  if (plugin.type === "stepflow" && !_hasSeparator(plugin.command)) {
    // src/plugins/stepflow/spawn.ts looks the command up on PATH itself.
    set.addAll("env", COMMAND_LOOKUP_ENV);
    const found = findOnPath(plugin.command, wd, pathEnv);
    if (found) set.add("read", found);
    else set.note(`plugin '${name}': command '${plugin.command}' was not found on PATH`);
  } else if (plugin.type === "stepflow") {
    set.add("read", cmd);
  }
}

/**
 * The `--allow-run` value for a configured command: a bare name as written (Deno resolves it
 * on PATH), a path resolved against the working directory.
 */
export function commandPermission(command: string, workingDirectory: string): string {
  return _hasSeparator(command) ? resolve(workingDirectory, command) : command;
}

function _hasSeparator(command: string): boolean {
  return command.includes("/") || (Deno.build.os === "windows" && command.includes("\\"));
}

/**
 * The first executable named `command` in the PATH directories (relative ones against `cwd`),
 * as src/plugins/stepflow/spawn.ts finds it. Undefined when none (or PATH is unreadable).
 */
export function findOnPath(command: string, cwd: string, pathEnv?: string): string | undefined {
  let path = pathEnv;
  if (path === undefined) {
    try {
      path = Deno.env.get("PATH");
    } catch {
      return undefined;
    }
  }
  const exts = Deno.build.os === "windows" ? ["", ".exe", ".cmd", ".bat"] : [""];
  for (const dir of (path ?? "").split(delimiter).filter((d) => d !== "")) {
    for (const ext of exts) {
      const candidate = join(isAbsolute(dir) ? dir : resolve(cwd, dir), command + ext);
      try {
        const st = Deno.statSync(candidate);
        if (st.isFile && (st.mode === null || (st.mode & 0o111) !== 0)) return candidate;
      } catch {
        // not there (or not readable): try the next
      }
    }
  }
  return undefined;
}

/**
 * `host:port` for `--allow-net` from a URL (default ports 80/443), or undefined when the URL
 * does not parse (e.g. it still holds a `{server.url}` placeholder).
 */
export function netHost(url: string): string | undefined {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return undefined;
  }
  if (!u.hostname) return undefined;
  const port = u.port || (u.protocol === "https:" ? "443" : u.protocol === "http:" ? "80" : "");
  return port ? `${u.hostname}:${port}` : u.hostname;
}

/**
 * The absolute database file of an SQLite `databaseUrl` (`sqlite:path.db?mode=rwc`,
 * `sqlite://path.db`), resolved against `workingDirectory`; undefined for `sqlite::memory:`
 * (which needs no permission).
 */
export function sqliteFile(databaseUrl: string, workingDirectory: string): string | undefined {
  if (!databaseUrl.startsWith("sqlite:")) return undefined;
  let rest = databaseUrl.slice("sqlite:".length);
  if (rest.startsWith("//")) rest = rest.slice(2);
  const q = rest.indexOf("?");
  const query = new URLSearchParams(q >= 0 ? rest.slice(q + 1) : "");
  if (q >= 0) rest = rest.slice(0, q);
  if (rest === "" || rest === ":memory:" || query.get("mode") === "memory") return undefined;
  return resolve(workingDirectory, rest);
}

/** Adds what the built-in components used by `flow`'s steps need. */
export function addStepPermissions(
  set: PermissionSet,
  flow: FlowLike,
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
  step: { id?: string; component: string; input?: JsonValue },
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

/**
 * Adds what `test.servers` need: each `command` (relative to the server's
 * `workingDirectory`, else `baseDir`), `${VAR}`s in `args`/`env`, and `--allow-net=127.0.0.1`
 * (free-port search and readiness checks on the loopback interface).
 */
export function addTestServerPermissions(
  set: PermissionSet,
  servers: Record<string, JsonValue> | undefined,
  baseDir: string,
): void {
  for (const server of Object.values(servers ?? {})) {
    if (!isJsonObject(server) || typeof server.command !== "string") continue;
    const wd = typeof server.workingDirectory === "string"
      ? resolve(baseDir, server.workingDirectory)
      : baseDir;
    set.add("run", commandPermission(server.command, wd));
    const args = Array.isArray(server.args) ? server.args : [];
    const env = isJsonObject(server.env) ? Object.values(server.env) : [];
    for (const s of [...args, ...env]) if (typeof s === "string") set.addAll("env", envVarsIn(s));
    set.add("net", "127.0.0.1");
  }
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

/**
 * The flow and every flow nested in its step inputs (objects with the flow `schema` URL and a
 * `steps` list, e.g. `/map` `workflow`, `/iterate` `flow`, `/put_blob` `data`, inside
 * `$literal` or not).
 */
function _flowsIn(flow: FlowLike): FlowLike[] {
  const out: FlowLike[] = [flow];
  const visit = (v: JsonValue | undefined, depth: number): void => {
    if (depth > 64 || v === null || v === undefined || typeof v !== "object") return;
    if (Array.isArray(v)) {
      for (const x of v) visit(x, depth + 1);
      return;
    }
    if (!isJsonObject(v)) return;
    if (v.schema === FLOW_SCHEMA_URL && Array.isArray(v.steps)) {
      const steps = v.steps.filter((s): s is { component: string; input?: JsonValue } =>
        isJsonObject(s) && typeof s.component === "string"
      );
      out.push({ steps });
    }
    for (const x of Object.values(v)) visit(x, depth + 1);
  };
  for (const step of flow.steps ?? []) visit(step.input, 0);
  return out;
}
