/**
 * Mermaid flowchart text of a {@linkcode FlowGraph} (for Markdown: GitHub, GitLab and most docs
 * tools draw ```` ```mermaid ```` blocks).
 *
 * Node ids are `n_` and the graph id with every run of other characters than `A-Z a-z 0-9` as
 * `_` (numbered `_2`, `_3` when two collide), so no step id can be a Mermaid keyword (`end`,
 * `subgraph`, `style`, ...) or start an `o`/`x` edge end. Labels are always quoted, with `"`, `#`,
 * `&`, `<`, `>`, `` ` ``, `|` and `\` written as Mermaid entity codes (`#quot;`, `#35;`, ...) and
 * line breaks as `<br>`.
 * @module
 */
import type { FlowGraph, GraphEdge, GraphNode } from "./graph.ts";
import { edgeLabel, type LabelOptions, nodeLines, printable } from "./labels.ts";

/** Options of {@linkcode renderMermaid}. */
export type MermaidOptions = LabelOptions;

/** The Mermaid text of a flow graph (ends with a newline). */
export function renderMermaid(graph: FlowGraph, options: MermaidOptions = {}): string {
  const ids = mermaidIds(graph);
  const out: string[] = [];
  if (graph.name !== undefined) {
    // front matter is YAML: a JSON string is a valid YAML scalar
    out.push("---", `title: ${JSON.stringify(printable(graph.name))}`, "---");
  }
  out.push("flowchart TD");
  const classes = new Map<string, string[]>();
  const addClass = (cls: string, id: string) => {
    const list = classes.get(cls);
    if (list) list.push(id);
    else classes.set(cls, [id]);
  };

  const emit = (cluster: string | undefined, indent: string) => {
    for (const node of graph.nodes) {
      if (node.cluster !== cluster) continue;
      const id = ids.get(node.id)!;
      out.push(`${indent}${id}${shape(node, mermaidText(nodeLines(node, options).join("\n")))}`);
      for (const cls of nodeClasses(node)) addClass(cls, id);
      for (const c of graph.clusters) {
        if (c.parent !== cluster || c.step !== node.id) continue;
        out.push(`${indent}subgraph ${ids.get(c.id)!} ["${mermaidText(c.label)}"]`);
        emit(c.id, indent + "  ");
        out.push(`${indent}end`);
      }
    }
  };
  emit(undefined, "  ");

  const errorDefaultLinks: number[] = [];
  graph.edges.forEach((e, i) => {
    const label = edgeLabel(e, options);
    const text = label === "" ? "" : `|"${mermaidText(label)}"|`;
    out.push(`  ${ids.get(e.from)!} ${arrow(e)}${text} ${ids.get(e.to)!}`);
    if (e.kind === "error_default") errorDefaultLinks.push(i);
  });

  for (const [cls, members] of classes) {
    out.push(`  classDef ${cls} ${CLASS_STYLES[cls]}`);
    out.push(`  class ${members.join(",")} ${cls}`);
  }
  if (errorDefaultLinks.length > 0) {
    out.push(`  linkStyle ${errorDefaultLinks.join(",")} stroke:#b35900,color:#b35900`);
  }
  return out.join("\n") + "\n";
}

const CLASS_STYLES: Record<string, string> = {
  flowIo: "fill:#eef3ff,stroke:#5a6fa8",
  variables: "fill:#f4f4f4,stroke:#777",
  nestedFlow: "fill:#f6f6f6,stroke:#777",
  mustExecute: "stroke-width:3px",
  neverRuns: "stroke-dasharray:4 3,color:#777",
  missingStep: "stroke:#c00,stroke-dasharray:3 3,color:#c00",
};

function nodeClasses(node: GraphNode): string[] {
  switch (node.kind) {
    case "input":
    case "output":
      return ["flowIo"];
    case "variables":
      return ["variables"];
    case "nested_flow":
      return node.valid === false ? ["nestedFlow", "missingStep"] : ["nestedFlow"];
    case "missing_step":
      return ["missingStep"];
    case "step": {
      const out: string[] = [];
      if (node.mustExecute) out.push("mustExecute");
      if (node.required === false) out.push("neverRuns");
      return out;
    }
  }
}

function shape(node: GraphNode, text: string): string {
  switch (node.kind) {
    case "input":
    case "output":
      return `(["${text}"])`;
    case "variables":
      return `[("${text}")]`;
    case "nested_flow":
      return `[["${text}"]]`;
    default:
      return `["${text}"]`;
  }
}

function arrow(e: GraphEdge): string {
  if (e.kind === "nested_flow") return "---";
  return e.conditional || e.kind === "error_default" ? "-.->" : "-->";
}

const ENTITIES: Record<string, string> = {
  '"': "#quot;",
  "#": "#35;",
  "&": "#amp;",
  "<": "#lt;",
  ">": "#gt;",
  "`": "#96;",
  "|": "#124;",
  "\\": "#92;",
};

/** Text for inside a quoted Mermaid label: entity codes for special characters, `<br>` for line breaks. */
export function mermaidText(s: string): string {
  return s.split("\n").map((line) => printable(line).replace(/["#&<>`|\\]/g, (c) => ENTITIES[c]))
    .join("<br>");
}

/** Mermaid ids of the nodes and clusters (graph id → Mermaid id), unique and deterministic. */
export function mermaidIds(graph: FlowGraph): Map<string, string> {
  const ids = new Map<string, string>();
  const used = new Set<string>();
  const add = (graphId: string) => {
    const base = "n_" + graphId.replace(/[^A-Za-z0-9]+/g, "_").replace(/_$/, "");
    let id = base;
    for (let k = 2; used.has(id); k++) id = `${base}_${k}`;
    used.add(id);
    ids.set(graphId, id);
  };
  for (const n of graph.nodes) add(n.id);
  for (const c of graph.clusters) add(c.id);
  return ids;
}
