/**
 * Graphviz DOT text of a {@linkcode FlowGraph} (`dot -Tpng`, or any Graphviz viewer; `svg.ts`
 * lays it out with Graphviz compiled to WebAssembly).
 *
 * Every id is a quoted string (`"step:prompt"`, with `\` and `"` escaped), so no step id can be a
 * DOT keyword. Node labels are HTML-like labels (`<` `>` `&` `"` as entities); edge labels are
 * quoted strings with `\` and `"` escaped (so a step id cannot inject `\N` or `\l`).
 * @module
 */
import type { FlowGraph, GraphCluster, GraphEdge, GraphNode } from "./graph.ts";
import {
  edgeLabel,
  type LabelOptions,
  nodeLabel,
  printable,
  statusClass,
  stepClass,
} from "./labels.ts";

/** Options of {@linkcode renderDot}. */
export interface DotOptions extends LabelOptions {
  /**
   * Add a `class` attribute to every node, edge and cluster (Graphviz copies it into the SVG):
   * step nodes get `step` and {@linkcode stepClass} (`step-<id>`), plus {@linkcode statusClass}
   * of their status in `stepStatus`. @default false
   */
  cssClasses?: boolean;
  /** Step id → status (e.g. `running`, `completed`): `status-<status>` on its node. */
  stepStatus?: Readonly<Record<string, string>>;
}

// Graphviz estimates text widths from the metrics of a font it knows by this exact name
const FONT = "Helvetica";

/** The DOT text of a flow graph (ends with a newline). */
export function renderDot(graph: FlowGraph, options: DotOptions = {}): string {
  const out: string[] = [];
  out.push(`digraph ${dotId(graph.name ?? "flow")} {`);
  const graphAttrs: string[] = [
    "rankdir=TB",
    `fontname=${dotId(FONT)}`,
    "fontsize=14",
    "nodesep=0.35",
    "ranksep=0.45",
  ];
  if (graph.clusters.length > 0) graphAttrs.push("compound=true");
  if (graph.name !== undefined) {
    graphAttrs.push(`label=<<B>${htmlLines(graph.name)}</B>>`, "labelloc=t");
  }
  if (options.cssClasses) graphAttrs.push(`class="flow-graph"`);
  out.push(`  graph [${graphAttrs.join(", ")}];`);
  out.push(
    `  node [shape=box, style="rounded,filled", fillcolor="#ffffff", color="#444444", ` +
      `fontname=${dotId(FONT)}, fontsize=11, margin="0.15,0.06"];`,
  );
  out.push(
    `  edge [fontname=${dotId(FONT)}, fontsize=9, color="#555555", fontcolor="#333333", ` +
      `arrowsize=0.7];`,
  );

  const emit = (cluster: string | undefined, indent: string) => {
    for (const node of graph.nodes) {
      if (node.cluster !== cluster) continue;
      out.push(`${indent}${dotId(node.id)} [${nodeAttrs(node, options).join(", ")}];`);
      for (const c of graph.clusters) {
        if (c.parent !== cluster || c.step !== node.id) continue;
        out.push(`${indent}subgraph ${dotId(`cluster_${c.id}`)} {`);
        out.push(`${indent}  ${clusterAttrs(c, options).join("; ")};`);
        emit(c.id, indent + "  ");
        out.push(`${indent}}`);
      }
    }
  };
  emit(undefined, "  ");

  for (const e of graph.edges) {
    let from = e.from;
    const attrs = edgeAttrs(e, options);
    const cluster = graph.clusters.find((c) => c.id === e.from);
    if (cluster) {
      // an edge from a cluster: from its output node, clipped at the cluster's border
      from = graph.nodes.find((n) => n.cluster === cluster.id && n.kind === "output")!.id;
      attrs.push(`ltail=${dotId(`cluster_${cluster.id}`)}`);
    }
    const a = attrs.length > 0 ? ` [${attrs.join(", ")}]` : "";
    out.push(`  ${dotId(from)} -> ${dotId(e.to)}${a};`);
  }
  out.push("}");
  return out.join("\n") + "\n";
}

function nodeAttrs(node: GraphNode, options: DotOptions): string[] {
  const label = nodeLabel(node, options);
  const title = label.title.map((l) => `<B>${html(l)}</B>`).join("<BR/>");
  const details = label.details.map((l) => `<FONT POINT-SIZE="9">${html(l)}</FONT>`);
  const attrs = [`label=<${[title, ...details].join("<BR/>")}>`];
  const classes: string[] = [];
  switch (node.kind) {
    case "input":
    case "output":
      attrs.push("shape=oval", `fillcolor="#eef3ff"`, `color="#5a6fa8"`);
      classes.push(`flow-${node.kind}`);
      break;
    case "variables":
      attrs.push("shape=cylinder", `fillcolor="#f4f4f4"`, `color="#777777"`);
      classes.push("flow-variables");
      break;
    case "nested_flow":
      attrs.push("shape=component", `fillcolor="#f6f6f6"`, `color="#777777"`);
      if (node.valid === false) attrs.push(`color="#cc0000"`, `fontcolor="#cc0000"`);
      classes.push("nested-flow");
      break;
    case "missing_step":
      attrs.push(`style="rounded,dashed"`, `color="#cc0000"`, `fontcolor="#cc0000"`);
      classes.push("missing-step");
      break;
    case "step": {
      if (node.mustExecute) attrs.push("penwidth=2.5");
      if (node.required === false) {
        attrs.push(`style="rounded,dashed,filled"`, `color="#999999"`, `fontcolor="#777777"`);
      }
      classes.push("step", stepClass(node.stepId!));
      if (node.mustExecute) classes.push("must-execute");
      if (node.required === false) classes.push("never-runs");
      const status = options.stepStatus?.[node.stepId!];
      if (status !== undefined && node.cluster === undefined) classes.push(statusClass(status));
      break;
    }
  }
  if (node.cluster !== undefined) classes.push("in-nested-flow");
  if (options.cssClasses) attrs.push(`class=${dotId(classes.join(" "))}`);
  return attrs;
}

function edgeAttrs(e: GraphEdge, options: DotOptions): string[] {
  const attrs: string[] = [];
  const label = edgeLabel(e, options);
  if (label !== "") attrs.push(`label=${dotId(" " + label + " ")}`);
  const classes: string[] = [e.kind.replace("_", "-")];
  if (e.kind === "nested_flow") {
    attrs.push("arrowhead=none", `color="#777777"`, "style=bold");
  } else if (e.kind === "error_default") {
    attrs.push("style=dotted", `color="#b35900"`, `fontcolor="#b35900"`);
  } else if (e.conditional) {
    attrs.push("style=dashed");
  }
  if (e.conditional) classes.push("conditional");
  if (options.cssClasses) attrs.push(`class=${dotId(classes.join(" "))}`);
  return attrs;
}

function clusterAttrs(c: GraphCluster, options: DotOptions): string[] {
  const attrs = [
    `label=<<B>${htmlLines(c.label)}</B><BR/><FONT POINT-SIZE="9">nested flow</FONT>>`,
    `style="rounded,dashed"`,
    `color="#777777"`,
    "fontsize=11",
  ];
  if (options.cssClasses) attrs.push(`class="nested-flow-cluster"`);
  return attrs;
}

/** A quoted DOT id or string: `"` and `\` escaped, line breaks as `\n`, control characters shown. */
export function dotId(s: string): string {
  const body = s.split(/\r\n|\r|\n/).map((l) => printable(l).replace(/["\\]/g, (c) => `\\${c}`))
    .join("\\n");
  return `"${body}"`;
}

/** Text for inside an HTML-like label: `&`, `<`, `>`, `"` as entities, control characters shown. */
export function html(s: string): string {
  return printable(s).replace(/[&<>"]/g, (c) => HTML_ENTITIES[c]);
}

function htmlLines(s: string): string {
  return s.split(/\r\n|\r|\n/).map(html).join("<BR/>");
}

const HTML_ENTITIES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
};
