/**
 * SVG of a {@linkcode FlowGraph}, laid out by Graphviz compiled to WebAssembly (`@viz-js/viz`):
 * no Graphviz binary is needed (stepflow 0.8 runs the system's `dot`).
 *
 * The WebAssembly module (about 1.2 MB) is imported on the first call only, so commands that draw
 * nothing never load it; the instance is kept for later calls. Layout is deterministic: the same
 * graph gives the same SVG.
 *
 * For the web UI, every step node's `<g>` carries the classes `node step step-<id>` (see
 * {@linkcode stepClass}) and, when `stepStatus` names its status, `status-<status>`; other nodes
 * have `flow-input`, `flow-output`, `flow-variables`, `nested-flow` or `missing-step`; edges have
 * `data`, `skip-if`, `error-default` or `nested-flow`, and `conditional`.
 * @module
 */
import type { FlowGraph } from "./graph.ts";
import { type DotOptions, renderDot } from "./dot.ts";

/** Options of {@linkcode renderSvg}. */
export type SvgOptions = Omit<DotOptions, "cssClasses">;

/** The Graphviz instance, made on first use. */
let vizInstance: Promise<{ renderString(dot: string, o: { format: string }): string }> | undefined;

function viz() {
  // a dynamic import: bundles keep the module, but it is only evaluated (and its WebAssembly
  // compiled) when an SVG is first drawn
  return vizInstance ??= import("@viz-js/viz").then((m) => m.instance());
}

/**
 * The SVG document of a flow graph (an XML declaration, then `<svg>`; ends with a newline).
 * @throws {Error} when Graphviz fails to lay out the graph (not expected for graphs made by
 * `buildFlowGraph`).
 */
export async function renderSvg(graph: FlowGraph, options: SvgOptions = {}): Promise<string> {
  const dot = renderDot(graph, { ...options, cssClasses: true });
  const svg = (await viz()).renderString(dot, { format: "svg" });
  return svg.endsWith("\n") ? svg : svg + "\n";
}
