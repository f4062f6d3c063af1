/**
 * One call from a flow to a picture: {@linkcode renderFlow} builds the graph and renders it as
 * Mermaid, DOT or SVG.
 * @module
 */
import type { Flow } from "../flow/model.ts";
import type { LoadedFlow } from "../flow/load.ts";
import { buildFlowGraph, type BuildGraphOptions } from "./graph.ts";
import { renderMermaid } from "./mermaid.ts";
import { renderDot } from "./dot.ts";
import { renderSvg } from "./svg.ts";

/** The formats {@linkcode renderFlow} draws. */
export const VISUALIZE_FORMATS = ["mermaid", "dot", "svg"] as const;

/** A format {@linkcode renderFlow} draws. */
export type VisualizeFormat = typeof VISUALIZE_FORMATS[number];

/** Options of {@linkcode renderFlow}. */
export interface RenderFlowOptions extends BuildGraphOptions {
  /** @default "svg" (as stepflow 0.8's `visualize`) */
  format?: VisualizeFormat;
  /** Components, plugins, markers and edge paths in the labels. @default true */
  details?: boolean;
  /** SVG only: step id → status, drawn as the class `status-<status>` on the step's node. */
  stepStatus?: Readonly<Record<string, string>>;
}

/**
 * Draws a flow: nodes for the flow input, each step (id and component), the output, variables
 * and nested flows; edges for the data references (dashed for `skipIf` and `onSkip` conditions).
 * @returns Mermaid flowchart text, DOT text or an SVG document, ending with a newline.
 * @throws {TypeError} for an unknown format.
 */
export function renderFlow(flow: Flow | LoadedFlow, options: RenderFlowOptions = {}): string {
  const format = options.format ?? "svg";
  const graph = buildFlowGraph(flow, options);
  const labels = { details: options.details };
  switch (format) {
    case "mermaid":
      return renderMermaid(graph, labels);
    case "dot":
      return renderDot(graph, labels);
    case "svg":
      return renderSvg(graph, { ...labels, stepStatus: options.stepStatus });
    default:
      throw new TypeError(
        `unknown visualize format '${format}': use ${VISUALIZE_FORMATS.join(", ")}`,
      );
  }
}
