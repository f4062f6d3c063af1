/**
 * `stepflow run --flow F [--config C] [input] [variables] [overrides] [--output FILE]`: runs a
 * flow once and prints its FlowResult as one JSON line on stdout (or writes it to `--output`, JSON
 * or YAML by extension). Diagnostics and errors go to stderr.
 *
 * Exit codes: 0 when the outcome is `success`; 1 when it is `failed` or `skipped`, or the engine
 * could not start; 2 when nothing was run (bad usage, a flow or config that cannot be loaded);
 * 130 when Ctrl-C / SIGTERM cancelled the run (running steps cancelled, plugins closed, what was
 * cancelled printed on stderr). `--max-concurrency` and `--timeout` limit the run
 * (docs/error-handling.md).
 * (stepflow 0.8 exits 0 for failed runs and prints the validation report on stdout; here stdout
 * holds the result alone.)
 * @module
 */
import type { Command } from "commander";
import { checkOutputPath } from "./output_path.ts";
import type { SetExit } from "./output.ts";
import {
  EXIT_CANCELLED,
  EXIT_FAILED,
  EXIT_INVALID,
  EXIT_OK,
  EXIT_PERMISSION,
} from "./exit_codes.ts";
import { permissionHint } from "../core/permission_hint.ts";
import { writeStderr, writeStdout } from "./output.ts";
import { cliSettings } from "./global_flags.ts";
import { readRunInput, readStdin } from "./input.ts";
import { parseRunLimits, readVariablesAndOverrides } from "./value_flags.ts";
import { onCancelSignals } from "./signals.ts";
import { progressMode, QUIET_HELP, RunProgress } from "./progress.ts";
import { loadFlowFile } from "../flow/load_file.ts";
import { validateConfig, validateFlow } from "../config/preflight.ts";
import { formatDiagnostic, hasErrors } from "../core/diagnostics.ts";
import { MAX_SHOWN_PATH } from "../core/elide.ts";
import { fileExcerpt } from "../flow/excerpt.ts";
import type { SourceMap } from "../core/diagnostics.ts";
import { parsePath } from "../flow/template.ts";
import { loadConfigForFlow } from "../config/load_file.ts";
import { Engine, type RunHandle } from "../execution/engine.ts";
import type { InternalRunOptions } from "../execution/run_lifecycle.ts";
import { withChecks } from "../core/lazy_check.ts";
import { applyStoreFlag } from "./store_option.ts";
import { isJsonObject, type JsonValue, stringifyJson } from "../json/exact_json.ts";
import type { FlowResult } from "../core/flow_result.ts";
import type { StepResultRecord } from "../state/store.ts";
import { describeError, FlowLoadError, PluginStartError, ValidationError } from "../errors.ts";

/** Options of `stepflow run` as commander gives them. */
interface RunFlags {
  flow: string;
  config?: string;
  input?: string;
  inputJson?: string;
  inputYaml?: string;
  stdinFormat?: string;
  variables?: string;
  variablesJson?: string;
  variablesYaml?: string;
  envVariables?: boolean;
  overrides?: string;
  overridesJson?: string;
  overridesYaml?: string;
  output?: string;
  verbose?: boolean;
  maxConcurrency?: string;
  timeout?: string;
  store?: string;
  quiet?: boolean;
}

/** Adds `run` to `program`. */
export function register(program: Command, setExit: SetExit): void {
  program.command("run")
    .description("Run a flow once and print its result (a FlowResult) as JSON on stdout")
    .requiredOption("--flow <file>", "the flow file (.yaml, .yml, .json, .jsonc)")
    .option("--config <file>", "config file (default: discovered next to the flow, then in cwd)")
    .option("--input <file>", "run input from a JSON or YAML file")
    .option("--input-json <json>", "run input as JSON text")
    .option("--input-yaml <yaml>", "run input as YAML text")
    .option("--stdin-format <format>", "format of input read from stdin: json or yaml", "json")
    .option("--variables <file>", "run variables from a JSON or YAML file")
    .option("--variables-json <json>", "run variables as JSON text")
    .option("--variables-yaml <yaml>", "run variables as YAML text")
    .option("--env-variables", "read variables from STEPFLOW_VAR_<NAME> environment variables")
    .option("--overrides <file>", "step overrides from a JSON or YAML file")
    .option("--overrides-json <json>", "step overrides as JSON text")
    .option("--overrides-yaml <yaml>", "step overrides as YAML text")
    .option("--output <file>", "write the result to this file (JSON, or YAML for .yaml/.yml)")
    .option(
      "--verbose",
      "print every validation warning (default: only their number) and the run id",
    )
    .option(
      "--max-concurrency <n>",
      "most steps in flight at once (default: config, else no limit)",
    )
    .option("--timeout <duration>", 'limit on the whole run, e.g. "5m" or 300000 (ms)')
    .option(
      "--store <url>",
      "record the run in this state store: sqlite:FILE (or a file path), postgres://..., memory (default: config)",
    )
    .option("-q, --quiet", QUIET_HELP)
    .action(async (flags: RunFlags) => {
      setExit(await runCommand(flags));
    });
}

/** Runs `stepflow run`; returns the exit code. Never throws. */
export async function runCommand(flags: RunFlags): Promise<number> {
  let prepared;
  try {
    prepared = await prepare(flags);
  } catch (e) {
    const hint = permissionHint(e);
    if (hint) return permissionExit(hint);
    const where = e instanceof FlowLoadError ? fileExcerpt(e.position) : "";
    writeStderr(`error: ${describeError(e)}\n${where}`);
    return EXIT_INVALID;
  }
  const { loaded, config, input, variables, overrides, limits } = prepared;
  // nested flows the zod-free reader declines load the zod model first (src/core/lazy_check.ts)
  const diagnostics = await withChecks(() => [
    ...validateConfig(config),
    ...validateFlow(loaded, config),
  ]);
  if (hasErrors(diagnostics)) {
    for (const d of diagnostics) {
      if (d.level !== "warning") writeStderr(formatDiagnostic(d) + "\n" + fileExcerpt(d.position));
      else if (flags.verbose) writeStderr(formatDiagnostic(d) + "\n");
    }
    writeStderr(`error: ${flags.flow} is not valid; nothing was run\n`);
    return EXIT_INVALID;
  }
  const warnings = diagnostics.filter((d) => d.level === "warning");
  if (flags.verbose) { for (const d of warnings) writeStderr(formatDiagnostic(d) + "\n"); }
  else if (warnings.length > 0) {
    writeStderr(
      `${warnings.length} validation warning(s); see them with --verbose or stepflow validate\n`,
    );
  }
  // Ctrl-C / SIGTERM cancel the run, close the plugins and exit with EXIT_CANCELLED (issue 5).
  const runId = crypto.randomUUID();
  // a run recorded in a database is found again by its id (runs show, signal, resume)
  const store = config.config.stateStore;
  const persistent = store?.type === "postgres" ||
    (store?.type === "sqlite" && !store.databaseUrl.includes(":memory:"));
  let handle: RunHandle | undefined;
  const cancel = onCancelSignals((signal) => {
    const running = handle?.inFlight().map((s) => s.stepId) ?? [];
    writeStderr(
      `${signal}: cancelling the run${
        running.length > 0 ? `; steps cancelled: ${running.join(", ")}` : ""
      } (again to exit at once)\n`,
    );
  });
  let engine: Engine;
  try {
    engine = await Engine.create(config, { signal: cancel.signal });
  } catch (e) {
    cancel.dispose();
    if (cancel.signal.aborted) {
      writeStderr("run cancelled while the plugins were starting; step services stopped\n");
      return EXIT_CANCELLED;
    }
    const hint = permissionHint(e);
    if (hint) return permissionExit(hint);
    writeStderr(`error: cannot start the engine: ${startFailure(e, config.source)}\n`);
    return e instanceof ValidationError || e instanceof FlowLoadError ? EXIT_INVALID : EXIT_FAILED;
  }
  let result: FlowResult;
  let failedSteps: StepResultRecord[] = [];
  // the progress line on stderr (src/cli/progress.ts), cleared before the result is printed
  const progress = new RunProgress({ mode: progressMode(flags.quiet) });
  const unobserve = progress.mode === "off" ? undefined : engine.observe(progress);
  progress.begin({ totalSteps: loaded.flow.steps?.length ?? 0 });
  try {
    // The id is printed once the run's record is committed, never for a run that was not (an
    // engine that could not start its plugins, a store write that failed): `stepflow runs show
    // <id>` and `stepflow resume <id>` find every id printed here, even after a kill -9 right
    // after. It is printed from the engine's synchronous hook, before any step with side effects
    // makes its call: a run killed once a step service did something always had its id printed.
    const printId = flags.verbose || persistent;
    const options: InternalRunOptions = {
      variables,
      overrides,
      runId,
      newRunId: true, // made here: not looked up in the store
      signal: cancel.signal,
      ...limits,
      ...(printId ? { onRecorded: () => writeStderr(`run_id: ${runId}\n`) } : {}),
    };
    handle = engine.start(loaded, input, options);
    result = await handle.result;
    progress.end();
    if (result.outcome !== "success") {
      // which steps failed (or were skipped), for the account on stderr
      const want = result.outcome;
      failedSteps = (await engine.store.getStepResults(runId).catch(() => []))
        .filter((r) => r.result.outcome === want);
    }
  } finally {
    progress.end();
    unobserve?.();
    await engine.close();
    cancel.dispose();
  }
  if (cancel.signal.aborted) {
    try {
      await writeResult(result, flags.output);
    } catch {
      // the exit code says what happened
    }
    writeStderr("run cancelled; step services stopped\n");
    return EXIT_CANCELLED;
  }
  try {
    await writeResult(result, flags.output);
  } catch (e) {
    if (flags.output === undefined) {
      // the result itself cannot be printed (engine limits make this unreachable; say so anyway)
      writeStderr(`error: cannot print the result: ${describeError(e)}\n`);
      return EXIT_FAILED;
    }
    // Nothing is lost: the result goes to stdout instead.
    writeStderr(
      `error: cannot write the result to ${flags.output}: ${
        describeError(e)
      }; printed on stdout instead\n`,
    );
    try {
      writeStdout(stringifyJson(result) + "\n");
    } catch (e2) {
      writeStderr(`error: cannot print the result: ${describeError(e2)}\n`);
    }
    return EXIT_FAILED;
  }
  if (result.outcome === "failed") {
    // A missing Deno permission inside a step: the result is written (nothing is lost), and
    // the one line naming the flag replaces the failure report.
    const hint = permissionHint(result.error);
    if (hint) return permissionExit(hint);
    writeStderr(formatFailure(result, loaded.source));
    for (const r of cliSettings.omitStackTrace ? [] : failedSteps) {
      const pos = loaded.source?.positionOf(["steps", r.stepIndex]);
      const at = pos?.file ? ` (${pos.file}:${pos.line}:${pos.col})` : "";
      const msg = r.result.outcome === "failed" ? r.result.error.message : "";
      // the run's own failure (the step's result is the output), when long, is not printed
      // again (a message naming a long path was printed twice)
      const text = msg === result.error.message && msg.length > MAX_SHOWN_PATH
        ? ": the error above"
        : `: ${msg}`;
      writeStderr(`  failed step '${r.stepId}'${at}${text}\n`);
    }
  } else if (result.outcome === "skipped") {
    const names = failedSteps.map((r) => {
      const pos = loaded.source?.positionOf(["steps", r.stepIndex]);
      return `'${r.stepId}'${pos?.file ? ` (${pos.file}:${pos.line}:${pos.col})` : ""}`;
    });
    writeStderr(
      `run skipped: the output references a skipped step${
        names.length > 0 ? `; skipped: ${names.join(", ")}` : ""
      } (onSkip: {action: useDefault, defaultValue: ...} on the reference gives a value instead)\n`,
    );
  }
  return result.outcome === "success" ? EXIT_OK : EXIT_FAILED;
}

function permissionExit(hint: string): number {
  writeStderr(`error: ${hint}\n`);
  return EXIT_PERMISSION;
}

async function prepare(flags: RunFlags) {
  if (flags.output !== undefined) await checkOutputPath(flags.output);
  const loaded = await loadFlowFile(flags.flow);
  const config = applyStoreFlag(
    await loadConfigForFlow({ configPath: flags.config, flowPath: flags.flow }),
    flags.store,
  );
  const input = await readRunInput(
    flags,
    () => Deno.stdin.isTerminal() ? Promise.resolve("") : readStdin(),
  );
  const read = await readVariablesAndOverrides(flags, loaded.flow.variables);
  const variables: Record<string, JsonValue> = read.variables ?? {};
  const overrides = read.overrides;
  const limits = parseRunLimits(flags);
  return { loaded, config, input, variables, overrides, limits };
}

async function writeResult(result: FlowResult, output: string | undefined): Promise<void> {
  if (output === undefined) {
    writeStdout(stringifyJson(result) + "\n");
    return;
  }
  const lower = output.toLowerCase();
  const text = lower.endsWith(".yaml") || lower.endsWith(".yml")
    ? (await import("./yaml_output.ts")).toYaml(result) // the `yaml` package loads only here
    : stringifyJson(result) + "\n";
  await Deno.writeTextFile(output, text);
}

/**
 * A readable account of a failed result for stderr: the message, then each stack frame with its
 * attachments.
 */
export function formatFailure(result: FlowResult, source?: SourceMap): string {
  if (result.outcome !== "failed") return "";
  const { code, message, data } = result.error;
  let out = `run failed (code ${code}): ${message}\n`;
  if (cliSettings.omitStackTrace) return out;
  const stack = isJsonObject(data) && Array.isArray(data.stack) ? data.stack : [];
  stack.forEach((frame, i) => {
    if (!isJsonObject(frame)) return;
    if (i > 0) out += `  caused by: ${String(frame.error)}\n`;
    if (Array.isArray(frame.attachments)) {
      for (const a of frame.attachments) out += `    ${String(a)}${where(String(a), source)}\n`;
    }
  });
  return out;
}

/** ` (file:line:col)` for a `Reference at $.steps[0].input...` attachment, when known. */
function where(attachment: string, source: SourceMap | undefined): string {
  const m = /^Reference at (\$\S*)$/.exec(attachment);
  if (!m || !source) return "";
  try {
    const pos = source.positionOf(parsePath(m[1]).segments);
    return pos?.file ? ` (${pos.file}:${pos.line}:${pos.col})` : "";
  } catch {
    return "";
  }
}

/**
 * Why the engine could not start, for stderr: a {@linkcode PluginStartError} names each plugin
 * with where it is configured (`plugin 'x' (stepflow-config.yml:3:3): command not found`).
 */
export function startFailure(e: unknown, source: SourceMap | undefined): string {
  if (!(e instanceof PluginStartError)) return describeError(e);
  const parts = e.failures.map(({ plugin, cause }) => {
    const pos = source?.positionOf(["plugins", plugin]);
    const at = pos?.file ? ` (${pos.file}:${pos.line}:${pos.col})` : "";
    return `plugin '${plugin}'${at}: ${describeError(cause)}`;
  });
  return `Failed to start plugins: ${parts.join("; ")}`;
}
