/**
 * `stepflow validate --flow F [--config C] [--format text|json]`: loads a flow and its config
 * (discovered as `run` does, stepflow 0.8 §2.6) and prints their diagnostics.
 *
 * Text output (stdout), one line per diagnostic, in source order:
 * `file:line:col: level: message [$.json.path] (hint)`, then a summary line
 * (`✅ Validation passed with no errors` or `N fatal, N errors, N warnings`).
 * JSON output (stdout): `{"diagnostics": [...], "numFatal": n, "numError": n, "numWarning": n}`
 * where each diagnostic is `{level, message, path, code?, hint?, position?: {file, line, col}}`.
 *
 * Exit codes: 0 when there are no errors (warnings allowed); 1 (`EXIT_FAILED`) when there is any
 * fatal or error diagnostic; 2 (`EXIT_INVALID`) when the flow or config cannot be loaded at all
 * (unreadable, bad syntax) — the message names file:line:col and shows the line with a caret
 * under the column, no stack trace; with `--format json` that load error is printed as a single
 * fatal diagnostic too. A flow of the wrong shape also exits 2, but its report lists every shape
 * problem (`invalid_flow`), with what the other checks found on the flow without its wrong
 * optional keys (`timeout: banana` does not hide a reference to an undefined step).
 * @module
 */
import type { Command } from "commander";
import { describeError, FlowLoadError } from "../errors.ts";
import type { Diagnostic } from "../core/diagnostics.ts";
import { formatDiagnostic } from "../core/diagnostics.ts";
import { fileExcerpt } from "../flow/excerpt.ts";
import { type LoadedFlow, loadFlowFile, ShapeError } from "../flow/load.ts";
import { validateConfig, validateFlow } from "../config/preflight.ts";
import { loadConfigForFlow } from "../config/load.ts";
import { EXIT_FAILED, EXIT_INVALID, EXIT_OK } from "./exit_codes.ts";
import type { SetExit } from "./output.ts";
import { writeStderr, writeStdout } from "./output.ts";

/** Options of `stepflow validate`. */
export interface ValidateOptions {
  flow: string;
  config?: string;
  format?: string;
}

/** The result of validating: diagnostics and counts, or a load error. */
export interface ValidateReport {
  /**
   * True when the flow does not have the shape of a flow (exit 2): `diagnostics` has each shape
   * problem, and what the other checks found where the shape allowed them to run.
   */
  shapeError?: boolean;
  diagnostics: Diagnostic[];
  numFatal: number;
  numError: number;
  numWarning: number;
}

/** Registers `stepflow validate`. */
export function register(program: Command, setExit: SetExit): void {
  program
    .command("validate")
    .description("check a flow (and its config) and print diagnostics with file:line:col")
    .requiredOption("--flow <file>", "the flow file (.yaml, .yml, .json, .jsonc)")
    .option("--config <file>", "the config (default: discovered next to the flow, then in cwd)")
    .option("--format <format>", "text or json", "text")
    .action(async (opts: ValidateOptions) => {
      setExit(await runValidate(opts));
    });
}

/**
 * Runs the command: validates, prints, returns the exit code. Never throws for user errors.
 */
export async function runValidate(opts: ValidateOptions): Promise<number> {
  const format = opts.format ?? "text";
  if (format !== "text" && format !== "json") {
    writeStderr(`error: --format must be 'text' or 'json', got '${format}'\n`);
    return EXIT_INVALID;
  }
  let report: ValidateReport;
  try {
    report = await validateFiles(opts.flow, opts.config);
  } catch (e) {
    if (!(e instanceof FlowLoadError)) throw e;
    if (format === "json") {
      const d: Diagnostic = {
        level: "fatal",
        code: "load_error",
        message: describeError(e),
        path: "$",
      };
      if (e.position) {
        d.position = e.position;
        d.message = e.message.replace(/^\S+:\d+:\d+: /, "");
      }
      writeStdout(
        JSON.stringify({ diagnostics: [d], numFatal: 1, numError: 0, numWarning: 0 }, null, 2) +
          "\n",
      );
    } else {
      writeStderr(`error: ${describeError(e)}\n${fileExcerpt(e.position)}`);
    }
    return EXIT_INVALID;
  }
  const { shapeError, ...shown } = report;
  if (format === "json") {
    writeStdout(JSON.stringify(shown, null, 2) + "\n");
  } else {
    writeStdout(formatReport(report));
  }
  if (shapeError) return EXIT_INVALID;
  return report.numFatal + report.numError > 0 ? EXIT_FAILED : EXIT_OK;
}

/**
 * Loads a flow and its config and returns every diagnostic, config first, each group in source
 * order.
 * @throws {FlowLoadError} when the flow or config cannot be loaded.
 */
export async function validateFiles(
  flowPath: string,
  configPath?: string,
): Promise<ValidateReport> {
  // A wrong shape is not the end: every problem is reported, and the other checks still run
  // on the flow without its wrong optional keys (e.g. `timeout: banana`).
  let loaded: LoadedFlow | undefined;
  let shape: ShapeError | undefined;
  try {
    loaded = await loadFlowFile(flowPath);
  } catch (e) {
    if (!(e instanceof ShapeError)) throw e;
    shape = e;
    loaded = e.repaired?.loaded;
  }
  let configDiagnostics: Diagnostic[];
  let configShape = false;
  let config: Awaited<ReturnType<typeof loadConfigForFlow>> | undefined;
  try {
    config = await loadConfigForFlow({ configPath, flowPath });
    configDiagnostics = validateConfig(config);
  } catch (e) {
    if (!(e instanceof ShapeError)) throw e;
    configDiagnostics = e.problems; // the flow is still checked, without the config's routes
    configShape = true;
  }
  let flowDiagnostics = loaded ? validateFlow(loaded, config) : [];
  if (shape) {
    const removed = shape.repaired?.removed ?? [];
    // what the checks say about a removed key is its shape problem, already reported
    flowDiagnostics = [
      ...shape.problems,
      ...flowDiagnostics.filter((d) =>
        !removed.some((r) =>
          d.path === r || d.path.startsWith(`${r}.`) || d.path.startsWith(`${r}[`)
        )
      ),
    ];
  }
  const diagnostics = [...sortBySource(configDiagnostics), ...sortBySource(flowDiagnostics)];
  return {
    shapeError: shape !== undefined || configShape,
    diagnostics,
    numFatal: diagnostics.filter((d) => d.level === "fatal").length,
    numError: diagnostics.filter((d) => d.level === "error").length,
    numWarning: diagnostics.filter((d) => d.level === "warning").length,
  };
}

function sortBySource(ds: Diagnostic[]): Diagnostic[] {
  return ds
    .map((d, i) => ({ d, i }))
    .sort((a, b) => {
      const pa = a.d.position;
      const pb = b.d.position;
      if (pa && pb && (pa.file ?? "") === (pb.file ?? "")) {
        return pa.line - pb.line || pa.col - pb.col || a.i - b.i;
      }
      return a.i - b.i;
    })
    .map((x) => x.d);
}

/** The text report: one line per diagnostic, then the summary. */
export function formatReport(r: ValidateReport): string {
  let out = "";
  for (const d of r.diagnostics) out += formatDiagnostic(d) + "\n";
  if (r.numFatal + r.numError === 0) {
    out += r.numWarning === 0
      ? "✅ Validation passed with no errors\n"
      : `✅ Validation passed with no errors (${plural(r.numWarning, "warning")})\n`;
  } else {
    out += `❌ Validation failed: ${r.numFatal} fatal, ${plural(r.numError, "error")}, ${
      plural(r.numWarning, "warning")
    }\n`;
  }
  return out;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}
