/**
 * `stepflow permissions`: prints the narrowest `deno run` flags a flow needs.
 *
 * ```sh
 * stepflow permissions --flow F [--config C] [--input F] [--output F] [--variables F]
 *                      [--overrides F] [--env-variables] [--store DB] # for `run` with the same flags
 * stepflow permissions --test PATH... [--config C] [--update]      # for `test`
 * ```
 *
 * stdout is one line of flags only (e.g. `--no-prompt --allow-read=./f.yaml --allow-env=...`),
 * ready for `deno run $(...) dist/stepflow.js run --flow F`; notes about over-approximations go
 * to stderr. This command itself needs `--allow-read` (the flow, its config, PATH directories)
 * and `--allow-env` (PATH and the variables of the run).
 * @module
 */
import type { Command } from "commander";
import { dirname, extname, join, resolve } from "node:path";
import {
  findTestConfig,
  loadConfigFile,
  loadConfigForFlow,
  parseConfigValue,
} from "../config/load.ts";
import type { LoadedConfig } from "../config/model.ts";
import { UsageError } from "../errors.ts";
import { isFlowDocument, loadFlowFile, readText } from "../flow/load.ts";
import { formatFromPath, parseDocument } from "../flow/parse.ts";
import { isJsonObject } from "../json/exact_json.ts";
import { computeFlowPermissions } from "../permissions/compute.ts";
import { PermissionSet } from "../permissions/permission_set.ts";
import { EXIT_OK } from "./exit_codes.ts";
import type { SetExit } from "./commands.ts";
import { writeStderr, writeStdout } from "./main.ts";
import { cliSettings } from "./global_flags.ts";
import { applyStoreFlag } from "./store_option.ts";

/** Options of `stepflow permissions`. */
export interface PermissionsOptions {
  flow?: string;
  test?: string[];
  config?: string;
  input?: string;
  output?: string;
  variables?: string;
  overrides?: string;
  envVariables?: boolean;
  update?: boolean;
  store?: string;
}

/** Registers `stepflow permissions`. */
export function register(program: Command, setExit: SetExit): void {
  program
    .command("permissions")
    .description(
      "print the narrowest `deno run` permission flags for a flow (--flow) or for `stepflow test` over files/directories (--test)",
    )
    .option("--flow <file>", "the flow to run")
    .option("--test <paths...>", "flow files or directories, as given to `stepflow test`")
    .option("--config <file>", "the config (default: discovered as `run`/`test` do)")
    .option("--input <file>", "the --input file `run` will read")
    .option("--output <file>", "the --output file `run` will write")
    .option("--variables <file>", "the --variables file `run` will read")
    .option("--overrides <file>", "the --overrides file `run` will read")
    .option("--env-variables", "`run --env-variables` will be used (reads all STEPFLOW_VAR_*)")
    .option("--update", "`test --update` will be used (rewrites the flow files)")
    .option("--store <url>", "the --store database `run` will record into")
    .action(async (opts: PermissionsOptions) => {
      const set = await permissionsFor(opts);
      for (const n of set.notes) writeStderr(`note: ${n}\n`);
      writeStdout(set.toFlags(Deno.cwd()).join(" ") + "\n");
      setExit(EXIT_OK);
    });
}

/**
 * Computes the permissions for `opts` (see the module doc).
 * @throws {UsageError} without `--flow` or `--test`, or with both.
 * @throws {FlowLoadError} when a flow or config cannot be loaded.
 */
export async function permissionsFor(opts: PermissionsOptions): Promise<PermissionSet> {
  if ((opts.flow === undefined) === (opts.test === undefined)) {
    throw new UsageError("stepflow permissions needs exactly one of --flow FILE or --test PATH...");
  }
  const cwd = Deno.cwd();
  if (opts.flow !== undefined) {
    const flowPath = resolve(cwd, opts.flow);
    const loaded = await loadFlowFile(opts.flow);
    const config = applyStoreFlag(
      await loadConfigForFlow({ configPath: opts.config, flowPath: opts.flow, cwd }),
      opts.store,
    );
    return computeFlowPermissions({
      flowPath,
      flow: loaded.flow,
      config,
      inputFile: opts.input,
      outputFile: opts.output,
      readFiles: [opts.variables, opts.overrides].filter((f): f is string => f !== undefined),
      envVariables: opts.envVariables,
      logFile: cliSettings.logFile,
    });
  }
  const set = new PermissionSet();
  if (cliSettings.logFile) set.add("write", resolve(cwd, cliSettings.logFile));
  for (const p of opts.test ?? []) {
    const abs = resolve(cwd, p);
    set.add("read", abs);
    for (const file of await _flowFiles(abs)) {
      const text = await readText(file, "flow");
      const doc = parseDocument(text, formatFromPath(file), file);
      if (!isFlowDocument(doc.value)) continue;
      const flow = (await loadFlowFile(file)).flow;
      const config = await _testConfig(file, flow.test, opts.config, cwd);
      set.merge(
        computeFlowPermissions({ flowPath: file, flow, config, test: true, update: opts.update }),
      );
    }
  }
  return set;
}

/** Config precedence of `stepflow test` (§7): --config > test.config > test file > discovery. */
async function _testConfig(
  flowPath: string,
  test: { config?: unknown; stepflow_config?: unknown } | undefined,
  configPath: string | undefined,
  cwd: string,
): Promise<LoadedConfig> {
  if (configPath !== undefined) return await loadConfigFile(resolve(cwd, configPath));
  const inline = test?.config ?? test?.stepflow_config;
  if (inline !== undefined && isJsonObject(inline)) {
    return parseConfigValue(inline, { workingDirectory: dirname(flowPath) });
  }
  const testFile = await findTestConfig(dirname(flowPath));
  if (testFile) return await loadConfigFile(testFile);
  return await loadConfigForFlow({ flowPath, cwd });
}

/** `path` itself if a file, else every `*.yaml`/`*.yml` below it, sorted. */
async function _flowFiles(path: string): Promise<string[]> {
  const st = await Deno.stat(path);
  if (st.isFile) return [path];
  const out: string[] = [];
  const walk = async (dir: string) => {
    for await (const e of Deno.readDir(dir)) {
      const p = join(dir, e.name);
      if (e.isDirectory) await walk(p);
      else if (e.isFile && [".yaml", ".yml"].includes(extname(e.name))) out.push(p);
    }
  };
  await walk(path);
  return out.sort();
}
