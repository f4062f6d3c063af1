/**
 * `stepflow visualize --flow F [--format mermaid|dot|svg] [-o FILE] [--config C]
 * [--expand-nested] [--no-details] [--no-servers]`: draws a flow as a graph (stepflow 0.8 §6).
 *
 * - Formats: `mermaid` (flowchart text), `dot` (Graphviz text), `svg` (laid out here: no
 *   Graphviz binary needed). Default: from the extension of `-o`
 *   (`.svg`, `.dot`/`.gv`, `.mmd`/`.mermaid`), else `svg` as in 0.8. `png` (0.8, through the
 *   system's `dot`) is not drawn: a usage error that names the alternatives.
 * - Output: `-o/--output FILE`, else stdout (0.8 only allowed `dot` on stdout).
 * - Config: `--config`, else discovered as `run` does; each step then shows the plugin its
 *   component is routed to. A discovered config that cannot be loaded is a warning.
 * - `--no-details`: only step ids (0.8). `--no-servers` (0.8: do not start step services for
 *   component details) is accepted; nothing is ever started here.
 * - Problems that change the picture (an undefined step, an invalid reference) are warnings on
 *   stderr.
 *
 * Exit codes: 0; 2 for bad usage or a flow (or given config) that cannot be loaded; 1 when the
 * output file cannot be written.
 * @module
 */
import type { Command } from "commander";
import type { SetExit } from "./output.ts";
import { EXIT_FAILED, EXIT_INVALID, EXIT_OK } from "./exit_codes.ts";
import { writeStderr, writeStdout } from "./output.ts";
import { checkOutputPath } from "./output_path.ts";
import { describeError, FlowLoadError, UsageError } from "../errors.ts";
import { fileExcerpt } from "../flow/excerpt.ts";
import { type LoadedFlow, loadFlowFile } from "../flow/load.ts";
import { loadConfigForFlow } from "../config/load.ts";
import { Router } from "../config/router.ts";
import { buildFlowGraph } from "../visualize/graph.ts";
import { renderMermaid } from "../visualize/mermaid.ts";
import { renderDot } from "../visualize/dot.ts";
import { renderSvg } from "../visualize/svg.ts";
import { VISUALIZE_FORMATS, type VisualizeFormat } from "../visualize/render.ts";

/** Flags of `stepflow visualize`. */
export interface VisualizeFlags {
  flow: string;
  format?: string;
  output?: string;
  config?: string;
  expandNested?: boolean;
  /** false with `--no-details`. */
  details?: boolean;
  /** false with `--no-servers` (no effect). */
  servers?: boolean;
}

/** Registers `stepflow visualize`. */
export function register(program: Command, setExit: SetExit): void {
  program
    .command("visualize")
    .description("draw a flow as a graph: Mermaid, Graphviz DOT or SVG (no Graphviz needed)")
    .requiredOption("--flow <file>", "the flow file (.yaml, .yml, .json, .jsonc)")
    .option(
      "--format <format>",
      "mermaid, dot or svg (default: from the -o extension, else svg)",
    )
    .option("-o, --output <file>", "write to this file instead of stdout")
    .option("--config <file>", "config whose routes name each step's plugin (default: discovered)")
    .option("--expand-nested", "draw nested flows with their steps instead of one node each")
    .option("--no-details", "show only step ids (no components, markers or edge paths)")
    .option("--no-servers", "accepted for stepflow 0.8; no step service is ever started")
    .action(async (flags: VisualizeFlags) => {
      setExit(await visualizeCommand(flags));
    });
}

/** Runs `stepflow visualize`; returns the exit code. Throws only for a missing permission. */
export async function visualizeCommand(flags: VisualizeFlags): Promise<number> {
  let format: VisualizeFormat;
  try {
    format = chooseFormat(flags.format, flags.output);
  } catch (e) {
    writeStderr(`error: ${(e as Error).message}\n`);
    return EXIT_INVALID;
  }
  if (flags.output !== undefined) {
    try {
      await checkOutputPath(flags.output);
    } catch (e) {
      if (!(e instanceof UsageError)) throw e;
      writeStderr(`error: ${e.message}\n`);
      return EXIT_INVALID;
    }
  }
  let loaded: LoadedFlow;
  try {
    loaded = await loadFlowFile(flags.flow);
  } catch (e) {
    if (!(e instanceof FlowLoadError)) throw e;
    writeStderr(`error: ${describeError(e)}\n${fileExcerpt(e.position)}`);
    return EXIT_INVALID;
  }
  let resolvePlugin: ((component: string) => string | undefined) | undefined;
  try {
    const config = await loadConfigForFlow({ configPath: flags.config, flowPath: flags.flow });
    const router = new Router(config.config);
    resolvePlugin = (component) => router.resolveStatic(component)?.plugin;
  } catch (e) {
    if (isPermissionError(e)) throw e;
    if (flags.config !== undefined) {
      writeStderr(`error: ${describeError(e)}\n`);
      return EXIT_INVALID;
    }
    writeStderr(`warning: the config is left out (steps show no plugin): ${describeError(e)}\n`);
  }

  const graph = buildFlowGraph(loaded, { expandNested: flags.expandNested, resolvePlugin });
  for (const w of graph.warnings) writeStderr(`warning: ${w}\n`);
  const labels = { details: flags.details };
  let text: string;
  if (format === "mermaid") text = renderMermaid(graph, labels);
  else if (format === "dot") text = renderDot(graph, labels);
  else text = renderSvg(graph, labels);

  if (flags.output === undefined) {
    writeStdout(text);
    return EXIT_OK;
  }
  try {
    await Deno.writeTextFile(flags.output, text);
  } catch (e) {
    if (isPermissionError(e)) throw e;
    writeStderr(`error: cannot write '${flags.output}': ${describeError(e)}\n`);
    return EXIT_FAILED;
  }
  return EXIT_OK;
}

const EXTENSIONS: Record<string, VisualizeFormat | "png"> = {
  svg: "svg",
  dot: "dot",
  gv: "dot",
  mmd: "mermaid",
  mermaid: "mermaid",
  png: "png",
};

/**
 * The format: `--format`, else the output file's extension, else `svg`.
 * @throws {Error} for an unknown format, or `png`.
 */
export function chooseFormat(
  flag: string | undefined,
  output: string | undefined,
): VisualizeFormat {
  let format: string;
  if (flag !== undefined) {
    format = flag.toLowerCase();
  } else {
    const ext = /\.([^./\\]+)$/.exec(output ?? "")?.[1]?.toLowerCase();
    format = (ext !== undefined ? EXTENSIONS[ext] : undefined) ?? "svg";
  }
  if (format === "png") {
    throw new Error(
      "png is not drawn (stepflow 0.8 needed the Graphviz binary for it): use --format svg " +
        "(viewable in any browser) or --format dot and run Graphviz's `dot -Tpng`",
    );
  }
  if (!(VISUALIZE_FORMATS as readonly string[]).includes(format)) {
    throw new Error(`--format must be ${VISUALIZE_FORMATS.join(", ")}, got '${flag}'`);
  }
  return format as VisualizeFormat;
}

function isPermissionError(e: unknown): boolean {
  return e instanceof Deno.errors.NotCapable ||
    (e instanceof Error && e.cause instanceof Deno.errors.NotCapable);
}
