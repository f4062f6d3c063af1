/**
 * SVG of a {@linkcode FlowGraph}, drawn from our own layered layout (`layout.ts`): no Graphviz
 * binary (stepflow 0.8 runs the system's `dot`) and no WebAssembly, so the program stays small and
 * quick to start, and the module also runs in a browser. The same graph always gives the same SVG.
 *
 * The document starts with `<svg` (no XML declaration), so it can be written to a file or put
 * into an HTML page as it is. For the web UI, each node is a `<g>` with `data-node-id` (the graph
 * node id) and classes:
 * - steps: `node step step-<id>` ({@linkcode stepClass}), `must-execute`, `never-runs`, and
 *   `status-<status>` ({@linkcode statusClass}) when `stepStatus` names one; `data-step-id` holds
 *   the step id as written;
 * - others: `node flow-input`, `flow-output`, `flow-variables`, `nested-flow`, `missing-step`;
 *   nodes inside an expanded nested flow also have `in-nested-flow`;
 * - edges: `edge data|skip-if|error-default|nested-flow`, plus `conditional`, with `data-from`
 *   and `data-to`; expanded nested flows: `cluster nested-flow-cluster`.
 * Colours are presentation attributes, so a page's CSS (`.status-failed rect { fill: ... }`)
 * overrides them.
 * @module
 */
import type { FlowGraph, GraphNode } from "./graph.ts";
import { type LabelOptions, printable, statusClass, stepClass } from "./labels.ts";
import { layoutGraph } from "./layout.ts";
import {
  EDGE_LABEL_SIZE,
  type EdgePath,
  type GraphLayout,
  type NodeBox,
  type TextLine,
} from "./layout_model.ts";

/** Options of {@linkcode renderSvg}. */
export interface SvgOptions extends LabelOptions {
  /** Step id → status (e.g. `running`, `completed`): the class `status-<status>` on its node. */
  stepStatus?: Readonly<Record<string, string>>;
}

const FONT = "Helvetica, Arial, sans-serif";
const ARROW = 7;

/** The SVG document of a flow graph (ends with a newline). */
export function renderSvg(graph: FlowGraph, options: SvgOptions = {}): string {
  return renderLayoutSvg(layoutGraph(graph, options), options);
}

/** The SVG document of a layout made by {@linkcode layoutGraph}. */
export function renderLayoutSvg(layout: GraphLayout, options: SvgOptions = {}): string {
  const w = num(layout.width);
  const h = num(layout.height);
  const name = layout.title?.lines.map((l) => l.text).join(" ");
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" ` +
      `class="flow-graph" role="img" aria-label="${
        attr(name !== undefined ? `Flow graph: ${name}` : "Flow graph")
      }" font-family="${FONT}">`,
  );
  if (name !== undefined) out.push(`<title>${text(name)}</title>`);
  out.push(`<rect class="background" x="0" y="0" width="${w}" height="${h}" fill="#ffffff"/>`);
  if (layout.title) {
    out.push(`<g class="graph-title">${lines(layout.title.lines, layout.title)}</g>`);
  }
  for (const c of layout.clusters) {
    const x = c.x - c.width / 2;
    const y = c.y - c.height / 2;
    const titleTop = { x: c.x, y: y + 6 + blockHeight(c.lines) / 2 };
    out.push(
      `<g class="cluster nested-flow-cluster" data-node-id="${attr(c.cluster.id)}">` +
        `<title>${text(`nested flow ${c.cluster.label}`)}</title>` +
        `<rect x="${num(x)}" y="${num(y)}" width="${num(c.width)}" height="${num(c.height)}" ` +
        `rx="8" ry="8" fill="#fbfbfb" stroke="#777777" stroke-dasharray="5 4"/>` +
        `${lines(c.lines, titleTop)}</g>`,
    );
  }
  for (const e of layout.edges) out.push(edgeSvg(e));
  for (const n of layout.nodes) out.push(nodeSvg(n, options));
  out.push("</svg>");
  return out.join("\n") + "\n";
}

function nodeSvg(b: NodeBox, options: SvgOptions): string {
  const n = b.node;
  const classes = ["node", ...nodeClasses(n)];
  const status = n.kind === "step" && n.cluster === undefined
    ? options.stepStatus?.[n.stepId!]
    : undefined;
  if (status !== undefined) classes.push(statusClass(status));
  let stroke = "#444444";
  let fill = "#ffffff";
  let color = "#111111";
  let extra = "";
  switch (n.kind) {
    case "input":
    case "output":
      fill = "#eef3ff";
      stroke = "#5a6fa8";
      break;
    case "variables":
      fill = "#f4f4f4";
      stroke = "#777777";
      break;
    case "nested_flow":
      fill = "#f6f6f6";
      stroke = n.valid === false ? "#cc0000" : "#777777";
      if (n.valid === false) color = "#cc0000";
      break;
    case "missing_step":
      stroke = "#cc0000";
      color = "#cc0000";
      extra = ` stroke-dasharray="4 3"`;
      break;
    case "step":
      if (n.mustExecute) extra += ` stroke-width="2.5"`;
      if (n.required === false) {
        stroke = "#999999";
        color = "#777777";
        extra += ` stroke-dasharray="4 3"`;
      }
      break;
  }
  const paint = `fill="${fill}" stroke="${stroke}"${extra}`;
  const x = b.x - b.width / 2;
  const y = b.y - b.height / 2;
  let shape: string;
  switch (b.shape) {
    case "oval":
      shape = `<ellipse cx="${num(b.x)}" cy="${num(b.y)}" rx="${num(b.width / 2)}" ry="${
        num(b.height / 2)
      }" ${paint}/>`;
      break;
    case "cylinder": {
      const r = 5;
      const right = x + b.width;
      const bottom = y + b.height;
      const a = `A${num(b.width / 2)},${r} 0 0 1`;
      const a0 = `A${num(b.width / 2)},${r} 0 0 0`;
      shape = `<path d="M${num(x)},${num(y + r)} ${a} ${num(right)},${num(y + r)} ${a} ${num(x)},${
        num(y + r)
      } L${num(x)},${num(bottom - r)} ${a0} ${num(right)},${num(bottom - r)} L${num(right)},${
        num(y + r)
      }" ${paint}/>`;
      break;
    }
    case "component":
      shape =
        `<rect x="${num(x)}" y="${num(y)}" width="${num(b.width)}" height="${
          num(b.height)
        }" ${paint}/>` +
        `<rect x="${num(x - 4)}" y="${num(y + 5)}" width="8" height="4" ${paint}/>` +
        `<rect x="${num(x - 4)}" y="${num(y + b.height - 9)}" width="8" height="4" ${paint}/>`;
      break;
    default:
      shape = `<rect x="${num(x)}" y="${num(y)}" width="${num(b.width)}" height="${
        num(b.height)
      }" rx="6" ry="6" ${paint}/>`;
  }
  const data = [`data-node-id="${attr(n.id)}"`];
  if (n.stepId !== undefined) data.push(`data-step-id="${attr(n.stepId)}"`);
  const title = n.kind === "step" ? `step ${n.label}: ${n.component}` : b.lines.map((l) => l.text)
    .join(" ");
  const textY = b.shape === "cylinder" ? b.y + 2.5 : b.y;
  return `<g class="${classes.join(" ")}" ${data.join(" ")}><title>${
    text(printable(title))
  }</title>${shape}${lines(b.lines, { x: b.x, y: textY }, color)}</g>`;
}

function nodeClasses(n: GraphNode): string[] {
  const out: string[] = [];
  switch (n.kind) {
    case "step":
      out.push("step", stepClass(n.stepId!));
      if (n.mustExecute) out.push("must-execute");
      if (n.required === false) out.push("never-runs");
      break;
    case "input":
    case "output":
    case "variables":
      out.push(`flow-${n.kind}`);
      break;
    case "nested_flow":
      out.push("nested-flow");
      break;
    case "missing_step":
      out.push("missing-step");
      break;
  }
  if (n.cluster !== undefined) out.push("in-nested-flow");
  return out;
}

function edgeSvg(p: EdgePath): string {
  const e = p.edge;
  const classes = ["edge", e.kind.replace("_", "-")];
  if (e.conditional) classes.push("conditional");
  let stroke = "#555555";
  let extra = "";
  let arrow = true;
  if (e.kind === "nested_flow") {
    stroke = "#888888";
    extra = ` stroke-width="2"`;
    arrow = false;
  } else if (e.kind === "error_default") {
    stroke = "#b35900";
    extra = ` stroke-dasharray="2 3"`;
  } else if (e.conditional) {
    extra = ` stroke-dasharray="5 4"`;
  }
  const pts = p.points;
  let d: string;
  let tip: { x: number; y: number } | undefined;
  let dir = { x: 0, y: 1 };
  if (p.selfLoop) {
    const [a, b, c, q] = pts;
    dir = unit(q.x - c.x, q.y - c.y) ?? dir;
    tip = q;
    const end = arrow ? { x: q.x - dir.x * ARROW, y: q.y - dir.y * ARROW } : q;
    d = `M${pt(a)} C${pt(b)} ${pt(c)} ${pt(end)}`;
  } else {
    // a smooth curve through the points (Catmull-Rom), leaving and entering vertically; the
    // straight piece beside a label stays straight
    const n = pts.length;
    const tan = pts.map((p, i) => {
      if (i === 0) return { x: 0, y: pts[1].y - p.y };
      if (i === n - 1) return { x: 0, y: p.y - pts[n - 2].y };
      return { x: (pts[i + 1].x - pts[i - 1].x) / 2, y: (pts[i + 1].y - pts[i - 1].y) / 2 };
    });
    for (let i = 1; i + 2 < n; i++) {
      if (pts[i].x === pts[i + 1].x) tan[i].x = tan[i + 1].x = 0;
    }
    let end = pts[n - 1];
    if (arrow) {
      dir = unit(tan[n - 1].x, tan[n - 1].y) ?? dir;
      tip = end;
      end = { x: end.x - dir.x * ARROW, y: end.y - dir.y * ARROW };
    }
    d = `M${pt(pts[0])}`;
    for (let k = 1; k < n; k++) {
      const a = pts[k - 1];
      const q = k === n - 1 ? end : pts[k];
      const c1 = { x: a.x + tan[k - 1].x / 3, y: a.y + tan[k - 1].y / 3 };
      const c2 = { x: q.x - tan[k].x / 3, y: q.y - tan[k].y / 3 };
      d += ` C${pt(c1)} ${pt(c2)} ${pt(q)}`;
    }
  }
  let s = `<g class="${classes.join(" ")}" data-from="${attr(e.from)}" data-to="${attr(e.to)}">` +
    `<path d="${d}" fill="none" stroke="${stroke}"${extra}/>`;
  if (arrow && tip) {
    const base = { x: tip.x - dir.x * ARROW, y: tip.y - dir.y * ARROW };
    const half = ARROW / 2;
    const l = { x: base.x - dir.y * half, y: base.y + dir.x * half };
    const r = { x: base.x + dir.y * half, y: base.y - dir.x * half };
    s += `<path d="M${pt(tip)} L${pt(l)} L${pt(r)} Z" fill="${stroke}" stroke="${stroke}"/>`;
  }
  if (p.label) {
    const color = e.kind === "error_default" ? "#b35900" : "#333333";
    s += `<text x="${num(p.label.x)}" y="${num(p.label.y + EDGE_LABEL_SIZE * 0.35)}" ` +
      `text-anchor="middle" font-size="${EDGE_LABEL_SIZE}" fill="${color}" ` +
      `stroke="#ffffff" stroke-width="3" paint-order="stroke">${text(p.label.text)}</text>`;
  }
  return s + "</g>";
}

/** Lines of text centred on `at`. */
function lines(ls: readonly TextLine[], at: { x: number; y: number }, color = "#111111"): string {
  let y = at.y - blockHeight(ls) / 2;
  let out = "";
  for (const l of ls) {
    const lh = l.size * 1.3;
    const baseline = y + lh / 2 + l.size * 0.35;
    out +=
      `<text x="${num(at.x)}" y="${num(baseline)}" text-anchor="middle" font-size="${l.size}"` +
      `${l.bold ? ` font-weight="bold"` : ""} fill="${color}">${text(l.text)}</text>`;
    y += lh;
  }
  return out;
}

function blockHeight(ls: readonly TextLine[]): number {
  let h = 0;
  for (const l of ls) h += l.size * 1.3;
  return h;
}

function unit(x: number, y: number): { x: number; y: number } | undefined {
  const len = Math.hypot(x, y);
  return len < 1e-6 ? undefined : { x: x / len, y: y / len };
}

/** A coordinate with at most two decimals (no `-0`). */
function num(v: number): string {
  const r = Math.round(v * 100) / 100;
  return String(r === 0 ? 0 : r);
}

function pt(p: { x: number; y: number }): string {
  return `${num(p.x)},${num(p.y)}`;
}

/** XML text: `&`, `<`, `>` escaped (the text is already printable). */
function text(s: string): string {
  return s.replace(/[&<>]/g, (c) => XML[c]);
}

/** An XML attribute value in double quotes. */
function attr(s: string): string {
  return printable(s).replace(/[&<>"]/g, (c) => XML[c]).replaceAll("\n", "&#10;");
}

const XML: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" };
