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
import { dirname, resolve } from "node:path";
import type { LoadedConfig, PluginConfig } from "../config/model.ts";
import { FLOW_SCHEMA_URL } from "../flow/model.ts";
import { isJsonObject, type JsonValue } from "../json/exact_json.ts";
import { envVarsIn } from "./env_refs.ts";
import { ALWAYS_READ_ENV, COMMAND_LOOKUP_ENV } from "./library_env.ts";
import { ALL, PermissionSet } from "./permission_set.ts";
import { postgresEnvVars, postgresNetHost } from "../config/postgres_url.ts";
import { addStepPermissions, type StepLike } from "./steps.ts";
import { commandPermission, findOnPath, hasSeparator, netHost, sqliteFile } from "./targets.ts";

/** The parts of a flow the computation looks at (a loaded `Flow` fits). */
export interface FlowLike {
  steps?: StepLike[];
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
  if (plugin.type === "stepflow" && !hasSeparator(plugin.command)) {
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
