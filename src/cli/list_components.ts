/**
 * `stepflow list-components [--config C] [--format pretty|json|yaml] [--schemas [bool]]
 * [--hide-unreachable [bool]]`: starts every configured plugin, asks each for its components,
 * and prints them with the routes that reach them (stepflow 0.8 §6).
 *
 * JSON/YAML shape (0.8): `{components: [{component, description?, input_schema?,
 * output_schema?, plugin, routes: [{pathPattern, resolvedPath, conditions, isConditional}]}]}`,
 * sorted by component then plugin. Schemas are included by default for json/yaml and left out
 * for pretty. Components no route reaches are hidden unless `--hide-unreachable false`.
 * The config is `--config`, else one found in the current directory, else the default config
 * (0.8: list-components does not look next to a flow). Without a config, stderr says where it
 * looked, which configs lie in the directories below, and why nothing is listed.
 *
 * Exit codes: 0; 1 when a plugin could not list its components (the others are still printed;
 * when none is left, stdout stays empty: the failures are on stderr) or the engine could not
 * start; 2 for bad usage or an invalid config.
 * @module
 */
import type { Command } from "commander";
import type { SetExit } from "./output.ts";
import { EXIT_CANCELLED, EXIT_FAILED, EXIT_INVALID, EXIT_OK } from "./exit_codes.ts";
import { onCancelSignals } from "./signals.ts";
import { startFailure } from "./run.ts";
import { configProblems } from "./config_problems.ts";
import type { LoadedConfig } from "../config/model.ts";
import type { SourceMap } from "../core/diagnostics.ts";
import { writeStderr, writeStdout } from "./output.ts";
import { toYaml } from "./yaml_output.ts";
import { CONFIG_FILE_NAMES, loadConfigForFlow } from "../config/load.ts";
import { type RouteInfo, Router } from "../config/router.ts";
import { Engine } from "../execution/engine.ts";
import { describeError, FlowLoadError, PluginError, ValidationError } from "../errors.ts";
import { type JsonValue, stringifyJson } from "../json/exact_json.ts";

interface ListFlags {
  config?: string;
  format?: string;
  schemas?: string | boolean;
  hideUnreachable?: string | boolean;
}

/** One listed component (0.8 JSON shape). */
export interface ListedComponent {
  component: string;
  description?: string;
  input_schema?: JsonValue | null;
  output_schema?: JsonValue | null;
  plugin: string;
  routes: RouteInfo[];
}

/** Adds `list-components` to `program`. */
export function register(program: Command, setExit: SetExit): void {
  program.command("list-components")
    .description("Start the configured plugins and list their components and the routes to them")
    .option("--config <file>", "config file (default: found in the current directory)")
    .option("--format <format>", "pretty, json or yaml", "pretty")
    .option("--schemas [bool]", "include input/output schemas (default: false for pretty)")
    .option("--hide-unreachable [bool]", "hide components no route reaches", "true")
    .action(async (flags: ListFlags) => {
      setExit(await listComponentsCommand(flags));
    });
}

function flag(value: string | boolean | undefined, dflt: boolean, name: string): boolean {
  if (value === undefined) return dflt;
  if (value === true || value === "true") return true;
  if (value === false || value === "false") return false;
  throw new Error(`${name} must be true or false, got '${value}'`);
}

/** Runs `stepflow list-components`; returns the exit code. Never throws. */
export async function listComponentsCommand(flags: ListFlags): Promise<number> {
  const format = flags.format ?? "pretty";
  let schemas: boolean, hideUnreachable: boolean;
  try {
    if (!["pretty", "json", "yaml"].includes(format)) {
      throw new Error(`--format must be pretty, json or yaml, got '${format}'`);
    }
    schemas = flag(flags.schemas, format !== "pretty", "--schemas");
    hideUnreachable = flag(flags.hideUnreachable, true, "--hide-unreachable");
  } catch (e) {
    writeStderr(`error: ${describeError(e)}\n`);
    return EXIT_INVALID;
  }
  let engine: Engine;
  let router: Router;
  let source: SourceMap | undefined;
  let usedDefault = false;
  // Ctrl-C / SIGTERM: the plugins are closed (no step service or MCP server is left running).
  const cancel = onCancelSignals((sig) =>
    writeStderr(`${sig}: cancelling (again to exit at once)\n`)
  );
  let config: LoadedConfig | undefined;
  try {
    const loaded = await loadConfigForFlow({ configPath: flags.config });
    config = loaded;
    source = loaded.source;
    usedDefault = loaded.path === undefined;
    if (loaded.path === undefined) writeStderr(await noConfigNote(Deno.cwd()));
    router = new Router(loaded.config);
    engine = await Engine.create(loaded, { signal: cancel.signal });
  } catch (e) {
    cancel.dispose();
    if (cancel.signal.aborted) {
      writeStderr("cancelled while the plugins were starting; step services stopped\n");
      return EXIT_CANCELLED;
    }
    // a config error with its file:line:col and line, as run and validate print it (before:
    // `error: Routing rule 0 for path '/x/{*c}' references unknown plugin 'ghost'`, no file)
    const problems = configProblems(config);
    if (problems !== "") {
      writeStderr(`error: the config is not valid:\n${problems}`);
      return EXIT_INVALID;
    }
    writeStderr(`error: ${startFailure(e, source)}\n`);
    return e instanceof FlowLoadError || e instanceof ValidationError ? EXIT_INVALID : EXIT_FAILED;
  }
  let exit = EXIT_OK;
  const listed: ListedComponent[] = [];
  let hidden = 0;
  const stop = () => engine.close();
  cancel.signal.addEventListener("abort", stop, { once: true });
  try {
    const answers = await Promise.allSettled(
      [...engine.plugins.values()].map(async (p) => ({ p, list: await p.listComponents() })),
    );
    if (cancel.signal.aborted) {
      writeStderr("cancelled; step services stopped\n");
      return EXIT_CANCELLED;
    }
    for (const [i, a] of answers.entries()) {
      if (a.status === "rejected") {
        const name = [...engine.plugins.keys()][i];
        // a start failure the plugin already logged as a warning is not repeated
        const why = a.reason instanceof PluginError && a.reason.reported
          ? " (the warning above says why)"
          : `: ${describeError(a.reason)}`;
        writeStderr(`error: plugin '${name}' could not list its components${why}\n`);
        exit = EXIT_FAILED;
        continue;
      }
      for (const info of a.value.list) {
        const routes = router.routesFor(a.value.p.name, info.component);
        if (hideUnreachable && routes.length === 0) {
          hidden++;
          continue;
        }
        const c: ListedComponent = { component: info.component } as ListedComponent;
        if (info.description != null) c.description = info.description;
        if (schemas) {
          if (info.input_schema !== undefined) c.input_schema = info.input_schema;
          if (info.output_schema !== undefined) c.output_schema = info.output_schema;
        }
        c.plugin = a.value.p.name;
        c.routes = routes;
        listed.push(c);
      }
    }
  } finally {
    cancel.signal.removeEventListener("abort", stop);
    cancel.dispose();
    await engine.close();
  }
  if (hidden > 0) {
    writeStderr(
      `note: ${hidden} component(s) hidden: no route reaches them` +
        (usedDefault ? ", as the default config has no routes" : "") +
        " (--hide-unreachable false lists them)\n",
    );
  }
  listed.sort((a, b) =>
    a.component < b.component ? -1 : a.component > b.component ? 1 : a.plugin < b.plugin ? -1 : 1
  );
  if (exit !== EXIT_OK && listed.length === 0) {
    // an empty listing would read as "no components": the failures above are the answer
    writeStderr("error: no components listed: no plugin could list its components\n");
    return exit;
  }
  if (format === "json") writeStdout(stringifyJson({ components: listed }, 2) + "\n");
  else if (format === "yaml") writeStdout(toYaml({ components: listed }));
  else writeStdout(pretty(listed, schemas));
  return exit;
}

/** The pretty listing (0.8 layout: header, one block per component, total). */
export function pretty(listed: ListedComponent[], schemas: boolean): string {
  const lines = ["Available Components:", "====================", ""];
  for (const c of listed) {
    lines.push(`Component: ${c.component} (plugin: ${c.plugin})`);
    if (c.description) lines.push(`  Description: ${c.description}`);
    if (c.routes.length > 0) {
      lines.push("  Available Routes:");
      for (const r of c.routes) {
        const cond = r.isConditional
          ? ` (when ${
            r.conditions.map((x) => `${x.path} = ${stringifyJson(x.value)}`).join(" and ")
          })`
          : "";
        lines.push(`    ${r.resolvedPath}${cond}`);
      }
    } else lines.push("  Available Routes: none (no route reaches this component)");
    if (schemas) {
      if (c.input_schema != null) lines.push(`  Input Schema: ${stringifyJson(c.input_schema)}`);
      if (c.output_schema != null) lines.push(`  Output Schema: ${stringifyJson(c.output_schema)}`);
    }
    lines.push("");
  }
  lines.push(`Total components: ${listed.length}`);
  return lines.join("\n") + "\n";
}

/**
 * The stderr note when no config was found in `cwd`: the names looked for and where, that the
 * default config (builtin plugin, no routes) is listed, and up to 3 config files found up to two
 * directories below `cwd` to pass with `--config` (unreadable directories are passed over).
 */
export async function noConfigNote(cwd: string): Promise<string> {
  const below = await configsBelow(cwd, 2, 3);
  const hint = below.length > 0
    ? `pass one with --config, e.g. ${below.map((p) => `--config ${p}`).join(", ")}`
    : "pass --config FILE";
  return `note: no config found: looked for ${CONFIG_FILE_NAMES.join(", ")} in ${cwd} ` +
    `(list-components looks only in the current directory); listing the default config ` +
    `(the builtin plugin, no routes); ${hint}\n`;
}

async function configsBelow(root: string, depth: number, max: number): Promise<string[]> {
  const out: string[] = [];
  async function visit(dir: string, rel: string, left: number) {
    let entries: Deno.DirEntry[];
    try {
      entries = await Array.fromAsync(Deno.readDir(dir));
    } catch {
      return;
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      if (out.length >= max) return;
      if (e.isFile && rel && (CONFIG_FILE_NAMES as readonly string[]).includes(e.name)) {
        out.push(`${rel}/${e.name}`);
      }
    }
    if (left === 0) return;
    for (const e of entries) {
      if (out.length >= max) return;
      if (!e.isDirectory || e.name.startsWith(".") || e.name === "node_modules") continue;
      await visit(`${dir}/${e.name}`, rel ? `${rel}/${e.name}` : e.name, left - 1);
    }
  }
  await visit(root, "", depth);
  return out;
}
