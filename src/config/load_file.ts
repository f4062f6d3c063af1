/**
 * Loading and discovering `stepflow-config.yml` (stepflow 0.8 §2, §2.6, §7).
 *
 * - {@linkcode loadConfigFile}: YAML (`.yml`/`.yaml`), JSON or JSONC by extension, with positions.
 * - {@linkcode parseConfigValue}: a parsed value → {@linkcode LoadedConfig} (also for a flow's
 *   `test.config`). Mock `behaviors` mappings are turned into `[{input, result}]` in file order:
 *   in YAML each key is read back as the value it was written as (a complex key
 *   `{ input: "a" }:`, a number, null, a string); in JSON the keys are strings, and the input is
 *   that string. A `behaviors` list of `{input, result}` (this engine's own form) is accepted too.
 * - {@linkcode findConfig}, {@linkcode findTestConfig}, {@linkcode loadConfigForFlow}: discovery.
 *
 * Environment variables are NOT substituted here (0.8: only stdio/MCP `args` and `env`, at spawn
 * time, see `env.ts`).
 *
 * This module does not import the `zod` package (issue 17, goal 5: cold start): a config's shape is
 * read by the zod-free reader of src/config/fast_model.ts, which leaves what it is not sure of
 * (and every error) to the zod model (src/config/shapes_zod.ts, loaded then). src/config/load.ts
 * re-exports everything here and loads the zod model up front, for the synchronous
 * {@linkcode parseConfigValue} of the library API.
 * @module
 */
import { dirname, isAbsolute, join, relative, resolve } from "node:path";
import { isJsonObject, type JsonValue } from "../json/exact_json.ts";
import { FlowLoadError } from "../errors.ts";
import type { SourceMap } from "../core/diagnostics.ts";
import {
  type DocumentSourceMap,
  formatFromPath,
  parseDocumentAsync,
} from "../core/document_base.ts";
import { readText } from "../flow/load_file.ts";
import { describeValue } from "../json/describe.ts";
import type { Config, LoadedConfig } from "./model.ts";
import { fastConfig } from "./fast_model.ts";
import { tryShape } from "../core/fast_shape.ts";
import { CheckNotLoaded, withChecks } from "../core/lazy_check.ts";
import { logger } from "../log.ts";

type ZodConfigCheck = (value: JsonValue, source?: SourceMap) => Config;
let zodConfigCheck: ZodConfigCheck | undefined;
const loadZodConfigCheck = async () => {
  zodConfigCheck ??= (await import("./shapes_zod.ts")).zodConfigCheck;
};

/**
 * Makes {@linkcode parseConfigValue} use `check` (src/config/shapes_zod.ts's `zodConfigCheck`)
 * when its fast reader declines, without loading it on demand: src/config/load.ts does this at
 * import.
 */
export function useZodConfigCheck(check: ZodConfigCheck): void {
  zodConfigCheck = check;
}

const log = logger("config");

/** Config file names looked for next to a flow and in the current directory (0.8 order). */
export const CONFIG_FILE_NAMES = [
  "stepflow-config.yml",
  "stepflow-config.yaml",
  "stepflow_config.yml",
  "stepflow_config.yaml",
] as const;

/** Test config file names looked for next to a flow under test (§7). */
export const TEST_CONFIG_FILE_NAMES = [
  "stepflow-config.test.yml",
  "stepflow-config.test.yaml",
  "stepflow_config.test.yml",
  "stepflow_config.test.yaml",
] as const;

/** A loaded config plus the source map of its file (for diagnostics). */
export interface LoadedConfigWithSource extends LoadedConfig {
  /** Positions of the config's nodes, when it came from a file or a flow's `test.config`. */
  source?: SourceMap;
  /** The config value as written (unknown keys included), for diagnostics. */
  raw?: JsonValue;
}

/**
 * The config used when none is found: the builtin plugin and **no routes** (stepflow 0.8), so
 * every component fails routing until a config adds routes.
 */
export function defaultConfig(cwd: string = Deno.cwd()): LoadedConfig {
  return {
    config: {
      plugins: { builtin: { type: "builtin" } },
      routes: {},
      stateStore: { type: "inMemory" },
    },
    workingDirectory: resolve(cwd),
  };
}

/**
 * Reads and parses a config file.
 * @throws {FlowLoadError} when the file cannot be read, is not valid YAML/JSON (file:line:col), or
 * does not have the shape of a config (JSON path and position).
 */
export async function loadConfigFile(path: string): Promise<LoadedConfigWithSource> {
  const abs = resolve(path);
  // Read first: a missing file or a directory is named as such, whatever its extension.
  const text = await readText(path, "config");
  const format = formatFromPath(path);
  const doc = await parseDocumentAsync(text, format, path);
  return await withChecks(() =>
    parseConfigValue(doc.value, {
      path: abs,
      workingDirectory: dirname(abs),
      source: doc.source,
    })
  );
}

/**
 * Checks a parsed config value and builds a {@linkcode LoadedConfig}.
 * @param options.path absolute path of the file (undefined for an inline config).
 * @param options.workingDirectory directory the config's relative `workingDirectory` (and, when
 *   absent, the config itself) resolves against: the config file's directory, or the flow's for
 *   `test.config`.
 * @param options.source positions (paths relative to the config value); a
 *   {@linkcode DocumentSourceMap} also gives back YAML complex keys of mock `behaviors`.
 * @throws {FlowLoadError} naming the JSON path and position of the first problem.
 * @throws {CheckNotLoaded} when the value needs the zod model and it is not loaded (never after
 * src/config/load.ts is imported): run it through `withChecks` (src/core/lazy_check.ts).
 */
export function parseConfigValue(
  value: JsonValue,
  options: { path?: string; workingDirectory: string; source?: SourceMap },
): LoadedConfigWithSource {
  const { source } = options;
  const where = options.path ?? "inline config";
  if (!isJsonObject(value)) {
    throw new FlowLoadError(
      `A config (${where}) must be a mapping with 'plugins' and 'routes', got ${
        describeValue(value)
      }${
        options.path === undefined && typeof value === "string"
          ? " (an inline config is not a file name: write the config here, or put it in " +
            "stepflow-config.test.yml next to the flow, or pass --config)"
          : ""
      }`,
      source?.positionOf([]),
    );
  }
  const prepared = prepareBehaviors(value, source);
  let config = tryShape<Config>(fastConfig, prepared);
  if (config === undefined) {
    if (zodConfigCheck === undefined) throw new CheckNotLoaded("config shape", loadZodConfigCheck);
    config = zodConfigCheck(prepared, source);
  }
  const base = resolve(options.workingDirectory);
  const workingDirectory = config.workingDirectory === undefined
    ? base
    : isAbsolute(config.workingDirectory)
    ? config.workingDirectory
    : resolve(base, config.workingDirectory);
  const out: LoadedConfigWithSource = { config, workingDirectory, raw: value };
  if (options.path !== undefined) out.path = options.path;
  if (source) out.source = source;
  return out;
}

/** A copy of the config value with every mock `behaviors` mapping turned into a list. */
function prepareBehaviors(value: Record<string, JsonValue>, source?: SourceMap): JsonValue {
  const plugins = value.plugins;
  if (!isJsonObject(plugins)) return value;
  let changedPlugins: Record<string, JsonValue> | undefined;
  for (const name of Object.keys(plugins)) {
    const plugin = plugins[name];
    if (!isJsonObject(plugin) || plugin.type !== "mock" || !isJsonObject(plugin.components)) {
      continue;
    }
    const components = plugin.components;
    const newComponents: Record<string, JsonValue> = {};
    let changed = false;
    for (const cname of Object.keys(components)) {
      const comp = components[cname];
      if (isJsonObject(comp) && isJsonObject(comp.behaviors)) {
        const path = ["plugins", name, "components", cname, "behaviors"];
        newComponents[cname] = { ...comp, behaviors: behaviorList(comp.behaviors, path, source) };
        changed = true;
      } else {
        newComponents[cname] = comp;
      }
    }
    if (changed) {
      changedPlugins ??= { ...plugins };
      changedPlugins[name] = { ...plugin, components: newComponents };
    }
  }
  return changedPlugins ? { ...value, plugins: changedPlugins } : value;
}

function behaviorList(
  behaviors: Record<string, JsonValue>,
  path: string[],
  source?: SourceMap,
): JsonValue[] {
  const doc = source as Partial<DocumentSourceMap> | undefined;
  const keyValue = doc?.keyValue?.bind(source);
  // File order (Object.keys would put integer-like keys first).
  const fileOrder = doc?.keysOf?.(path);
  const keys = fileOrder && fileOrder.length === Object.keys(behaviors).length
    ? fileOrder
    : Object.keys(behaviors);
  return keys.map((key) => {
    const original = keyValue?.([...path, key]);
    return { input: original !== undefined ? original : key, result: behaviors[key] };
  });
}

// ---------------------------------------------------------------------------------------------
// discovery

/** `abs` relative to the process's cwd when it lies below it (for messages), else `abs`. */
function displayPath(abs: string): string {
  try {
    const rel = relative(Deno.cwd(), abs);
    return rel !== "" && !rel.startsWith("..") && !isAbsolute(rel) ? rel : abs;
  } catch {
    return abs;
  }
}

/** `true`/`false` whether `path` is a file; `"denied"` when the process may not read it. */
async function probe(path: string): Promise<boolean | "denied"> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch (e) {
    if (e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied) {
      return "denied";
    }
    return false;
  }
}

/**
 * Every path {@linkcode findConfig} may look at (absolute, in order): the config names in the
 * flow's directory, then in `cwd`. For computing `--allow-read` flags.
 */
export function configCandidates(flowPath?: string, cwd: string = Deno.cwd()): string[] {
  const dirs = flowPath !== undefined
    ? [dirname(resolve(cwd, flowPath)), resolve(cwd)]
    : [resolve(cwd)];
  const out: string[] = [];
  for (const d of dirs) {
    for (const n of CONFIG_FILE_NAMES) {
      const p = join(d, n);
      if (!out.includes(p)) out.push(p);
    }
  }
  return out;
}

/** The one config among `names` in `dir`, and the probes the process was not allowed to read. */
async function findOne(
  dir: string,
  names: readonly string[],
): Promise<{ found?: string; denied: string[] }> {
  const found: string[] = [];
  const denied: string[] = [];
  for (const n of names) {
    const r = await probe(join(dir, n));
    if (r === "denied") denied.push(join(dir, n));
    else if (r) found.push(n);
  }
  if (found.length > 1) {
    throw new FlowLoadError(
      `Multiple stepflow config files found in directory ${dir}: ${found.join(", ")} ` +
        `(keep one, or choose with --config)`,
    );
  }
  return found.length === 1 ? { found: join(dir, found[0]), denied } : { denied };
}

/**
 * Finds the config for a flow (stepflow 0.8 §2.6): exactly one of {@linkcode CONFIG_FILE_NAMES}
 * in the flow file's directory, else in `cwd`; undefined when there is none (use
 * {@linkcode defaultConfig}).
 * Probes the process may not read are skipped (a scoped `deno run` may deny them); when nothing
 * is found and one was skipped, a warning says so.
 * @throws {FlowLoadError} `Multiple stepflow config files found in directory <dir>: a, b`.
 */
export async function findConfig(
  flowPath?: string,
  cwd: string = Deno.cwd(),
): Promise<string | undefined> {
  const denied: string[] = [];
  if (flowPath !== undefined) {
    const inFlowDir = await findOne(dirname(resolve(cwd, flowPath)), CONFIG_FILE_NAMES);
    if (inFlowDir.found) return inFlowDir.found;
    denied.push(...inFlowDir.denied);
  }
  const inCwd = await findOne(resolve(cwd), CONFIG_FILE_NAMES);
  if (inCwd.found) return inCwd.found;
  denied.push(...inCwd.denied);
  // Nothing readable was found. A scoped `deno run` may deny the probes on purpose (when there is
  // no config), so this is not an error, but it must not be silent.
  if (denied.length > 0) {
    log.warn(
      `no readable config found; could not check ${denied.length} candidate(s) such as ` +
        `'${denied[0]}' (permission denied): using the default config (builtin plugin, no ` +
        `routes). Pass --config or --allow-read=${denied[0]} if a config is there.`,
    );
  }
  return undefined;
}

/**
 * Finds a test config next to a flow under test (§7): one of {@linkcode TEST_CONFIG_FILE_NAMES}
 * in `flowDir`, or undefined.
 * @throws {FlowLoadError} when more than one exists.
 */
export async function findTestConfig(flowDir: string): Promise<string | undefined> {
  // A test config the process may not read counts as absent: discovery goes on (§7).
  return (await findOne(resolve(flowDir), TEST_CONFIG_FILE_NAMES)).found;
}

/**
 * The config for running or validating a flow: `configPath` if given (relative to `cwd`), else
 * the discovered one ({@linkcode findConfig}), else {@linkcode defaultConfig} with the flow's
 * directory (or `cwd`) as working directory.
 * @throws {FlowLoadError} for an unreadable or invalid config, or several candidates.
 */
export async function loadConfigForFlow(
  options: { configPath?: string; flowPath?: string; cwd?: string } = {},
): Promise<LoadedConfigWithSource> {
  const cwd = options.cwd ?? Deno.cwd();
  if (options.configPath !== undefined) {
    return await loadConfigFile(displayPath(resolve(cwd, options.configPath)));
  }
  const found = await findConfig(options.flowPath, cwd);
  if (found) return await loadConfigFile(displayPath(found));
  return defaultConfig(
    options.flowPath !== undefined ? dirname(resolve(cwd, options.flowPath)) : cwd,
  );
}
