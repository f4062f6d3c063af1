/**
 * A layered layout of a {@linkcode FlowGraph} (Sugiyama style, as Graphviz's `dot` does): every
 * node gets a rank (a row; data flows downwards), long edges pass through virtual points, each
 * labelled edge gets a slot for its label, the order within each row is chosen to reduce edge
 * crossings, and x positions pull every node towards its neighbours without overlaps. An expanded
 * nested flow is laid out on its own first and then placed as one block.
 *
 * Pure and deterministic (no Deno or DOM API, no randomness): the same graph always gives the
 * same coordinates, so the SVG can be compared in tests and the module can run in a browser.
 * Coordinates are px, y downwards; boxes are given by their centre and size.
 *
 * The steps live in their own modules: the shapes and sizes in src/visualize/layout_model.ts,
 * ranks and row order in src/visualize/layout_rank.ts, x positions and edge geometry in
 * src/visualize/layout_position.ts.
 * @module
 */
import type { FlowGraph, GraphEdge, GraphNode } from "./graph.ts";
import { edgeLabel, type LabelOptions, nodeLabel } from "./labels.ts";
import { textWidth } from "./text_width.ts";
import {
  CLUSTER_PAD,
  DETAIL_SIZE,
  EDGE_LABEL_SIZE,
  type EdgePath,
  GRAPH_TITLE_SIZE,
  type GraphLayout,
  HALF_RANK_SEP,
  type Item,
  type LEdge,
  type Level,
  LINE,
  LOOP,
  MARGIN,
  type NodeBox,
  type NodeShape,
  PAD_X,
  PAD_Y,
  textBlock,
  type TextLine,
  TITLE_SIZE,
  type Vertex,
} from "./layout_model.ts";
import { breakCycles, orderLayers, rankItems } from "./layout_rank.ts";
import { ports, positionX, simplify } from "./layout_position.ts";

// the layout's result, for its callers (src/visualize/svg.ts draws it)
export type { GraphLayout } from "./layout_model.ts";

/** Options of {@linkcode layoutGraph}. */
export interface LayoutOptions extends LabelOptions {
  /**
   * Most points the layout may hold: its vertices (boxes, and the points where edges cross a
   * layer) and the points of its edges. Past it, {@linkcode LayoutTooLargeError} is thrown before
   * the costly steps (ordering, positions). @default Infinity
   */
  maxPoints?: number;
}

/** A graph whose layout would take more than {@linkcode LayoutOptions.maxPoints} points. */
export class LayoutTooLargeError extends Error {
  override name = "LayoutTooLargeError";
  constructor(readonly maxPoints: number, readonly edges: number) {
    super(
      `the graph's layout takes more than ${maxPoints} points (its ${edges} edges run across ` +
        "many layers)",
    );
  }
}

/** Points left to a layout, shared by its levels. */
interface Budget {
  left: number;
  max: number;
  edges: number;
}

/**
 * Lays out a graph (labels as the renderers draw them).
 * @throws {LayoutTooLargeError} past `options.maxPoints`.
 */
export function layoutGraph(graph: FlowGraph, options: LayoutOptions = {}): GraphLayout {
  const max = options.maxPoints ?? Infinity;
  const level = layoutLevel(graph, undefined, options, {
    left: max,
    max,
    edges: graph.edges.length,
  });
  let top = MARGIN;
  let title: GraphLayout["title"];
  let width = level.width + 2 * MARGIN;
  if (graph.name !== undefined) {
    const lines = nodeLabel({ id: "", kind: "input", label: graph.name }).title.map((text) => ({
      text,
      bold: true,
      size: GRAPH_TITLE_SIZE,
    }));
    const size = textBlock(lines);
    width = Math.max(width, size.width + 2 * MARGIN);
    title = { x: width / 2, y: top + size.height / 2, ...size, lines };
    top += size.height + 6;
  }
  const dx = (width - level.width) / 2;
  const out: GraphLayout = {
    width,
    height: top + level.height + MARGIN,
    nodes: [],
    edges: [],
    clusters: [],
  };
  if (title) out.title = title;
  place(level, dx, top, out);
  return out;
}

/** Copies a level's boxes into `out`, moved by (`dx`, `dy`). */
function place(level: Level, dx: number, dy: number, out: Level): void {
  for (const n of level.nodes) out.nodes.push({ ...n, x: n.x + dx, y: n.y + dy });
  for (const c of level.clusters) out.clusters.push({ ...c, x: c.x + dx, y: c.y + dy });
  for (const e of level.edges) {
    const moved: EdgePath = { ...e, points: e.points.map((p) => ({ x: p.x + dx, y: p.y + dy })) };
    if (e.label) moved.label = { ...e.label, x: e.label.x + dx, y: e.label.y + dy };
    out.edges.push(moved);
  }
}

/** Lays out the nodes of one level (the top flow, or one expanded nested flow). */
function layoutLevel(
  graph: FlowGraph,
  cluster: string | undefined,
  options: LabelOptions,
  budget: Budget,
): Level {
  // 1. items: the level's nodes in graph order, each expanded nested flow after its step
  const items: Item[] = [];
  for (const node of graph.nodes) {
    if (node.cluster !== cluster) continue;
    items.push(nodeItem(node, options));
    for (const c of graph.clusters) {
      if (c.parent !== cluster || c.step !== node.id) continue;
      const inner = layoutLevel(graph, c.id, options, budget);
      const lines: TextLine[] = [
        ...nodeLabel({ id: "", kind: "input", label: c.label }).title.map((text) => ({
          text,
          bold: true,
          size: TITLE_SIZE,
        })),
        { text: "nested flow", bold: false, size: DETAIL_SIZE },
      ];
      const t = textBlock(lines);
      const titleHeight = t.height + 4;
      items.push({
        key: c.id,
        width: Math.max(inner.width, t.width) + 2 * CLUSTER_PAD,
        height: inner.height + titleHeight + 2 * CLUSTER_PAD,
        cluster: { cluster: c, inner, lines, titleHeight },
      });
    }
  }
  const index = new Map(items.map((it, i) => [it.key, i]));

  // 2. the edges between them; self-loops are drawn apart
  const edges: LEdge[] = [];
  const loops: GraphEdge[] = [];
  for (const e of graph.edges) {
    const from = index.get(e.from);
    const to = index.get(e.to);
    if (from === undefined || to === undefined) continue;
    if (from === to) loops.push(e);
    else edges.push({ edge: e, from, to, reversed: false, chain: [] });
  }
  breakCycles(items.length, edges);

  // 3. ranks
  const rank = rankItems(items, edges);

  // 4. the layered graph: rows 2·rank hold items; rows in between hold edge labels and the
  // virtual points of edges that span several ranks
  const vertices: Vertex[] = items.map((it, i) => ({
    left: it.width / 2,
    right: it.width / 2,
    height: it.height,
    layer: 2 * rank[i],
    item: i,
    weight: 1,
    x: 0,
    y: 0,
  }));
  const dummy = (layer: number): number => {
    vertices.push({ left: 1, right: 1, height: 0, layer, item: -1, weight: 4, x: 0, y: 0 });
    return vertices.length - 1;
  };
  /**
   * Edges from the same item share their virtual points while they run down together (as
   * Graphviz's `concentrate`), so an input read by every step is one trunk, not one line per
   * step: the vertex count stays near items + edges + the longest span.
   */
  const trunks = new Map<number, Map<number, number>>();
  for (const e of edges) {
    const [top, bottom] = e.reversed ? [e.to, e.from] : [e.from, e.to];
    e.chain = [top];
    const first = vertices[top].layer + 1;
    const last = vertices[bottom].layer - 1;
    let trunk = trunks.get(top);
    if (!trunk) trunks.set(top, trunk = new Map());
    for (let layer = first; layer < last; layer++) {
      let v = e.reversed ? undefined : trunk.get(layer);
      if (v === undefined) {
        v = dummy(layer);
        if (!e.reversed) {
          trunk.set(layer, v);
          vertices[v].trunk = true;
        }
      }
      e.chain.push(v);
    }
    // its own last point, just above its target, holds its label
    const own = dummy(last);
    const text = edgeLabel(e.edge, options);
    if (text !== "") {
      const width = textWidth(text, EDGE_LABEL_SIZE);
      const height = EDGE_LABEL_SIZE * LINE;
      const v = vertices[own];
      v.label = { text, width, height };
      v.right = width + 9;
      v.height = height;
    }
    e.chain.push(own, bottom);
    // a dense flow (every step reading every earlier one) made 45,000 edges of up to 600 points:
    // 46 s of layout and a 97 MB picture
    budget.left -= e.chain.length + (last - first + 1);
    if (budget.left < 0) throw new LayoutTooLargeError(budget.max, budget.edges);
  }
  let layerCount = 1;
  for (const v of vertices) layerCount = Math.max(layerCount, v.layer + 1);
  const up: number[][] = vertices.map(() => []);
  const down: number[][] = vertices.map(() => []);
  const linked = new Set<number>();
  for (const e of edges) {
    for (let k = 0; k + 1 < e.chain.length; k++) {
      const key = e.chain[k] * vertices.length + e.chain[k + 1];
      if (linked.has(key)) continue;
      linked.add(key);
      down[e.chain[k]].push(e.chain[k + 1]);
      up[e.chain[k + 1]].push(e.chain[k]);
    }
  }

  // 5. order within rows, 6. x and y positions
  const layers = orderLayers(vertices, layerCount, items.length, up, down);
  const looped = new Set(loops.map((e) => index.get(e.from)!));
  positionX(vertices, layers, up, down, looped);
  let y = 0;
  /** The top and bottom of each row. */
  const bands: { top: number; bottom: number }[] = [];
  for (const layer of layers) {
    const h = Math.max(0, ...layer.map((v) => vertices[v].height));
    for (const v of layer) vertices[v].y = y + h / 2;
    bands.push({ top: y, bottom: y + h });
    y += h + HALF_RANK_SEP;
  }
  const height = Math.max(0, y - HALF_RANK_SEP);

  // 7. boxes and edge paths
  const level: Level = { width: 0, height, nodes: [], edges: [], clusters: [] };
  let width = 0;
  for (const v of vertices) width = Math.max(width, v.x + v.right);
  for (const [i, it] of items.entries()) {
    const v = vertices[i];
    if (it.node) {
      level.nodes.push({ ...it.node, x: v.x, y: v.y });
    } else if (it.cluster) {
      const c = it.cluster;
      const box = { x: v.x, y: v.y, width: it.width, height: it.height };
      const left = box.x - box.width / 2;
      const top = box.y - box.height / 2;
      level.clusters.push({ ...box, cluster: c.cluster, lines: c.lines });
      const innerLeft = left + (box.width - c.inner.width) / 2;
      place(c.inner, innerLeft, top + CLUSTER_PAD + c.titleHeight, level);
    }
  }
  const shapeOf = (item: number): NodeShape => items[item].node?.shape ?? "box";
  // the points between the two ends, and the label
  const inner = edges.map((e) => {
    const pts: { x: number; y: number }[] = [];
    let label: EdgePath["label"];
    for (let k = 1; k + 1 < e.chain.length; k++) {
      const v = vertices[e.chain[k]];
      if (v.label) {
        // the edge runs down the left side of its label
        pts.push({ x: v.x, y: v.y - v.height / 2 }, { x: v.x, y: v.y + v.height / 2 });
        label = {
          text: v.label.text,
          x: v.x + 5 + v.label.width / 2,
          y: v.y,
          width: v.label.width,
          height: v.label.height,
        };
      } else if (v.layer % 2 === 0) {
        // beside the items of a row, straight down
        const band = bands[v.layer];
        pts.push({ x: v.x, y: band.top }, { x: v.x, y: band.bottom });
      } else {
        pts.push({ x: v.x, y: v.y });
      }
    }
    return { pts, label };
  });
  // ports: the edges leaving (entering) an item are spread along its bottom (top), in the order
  // of where they go (come from); edges that run on together share their port
  const starts = new Array<{ x: number; y: number }>(edges.length);
  const ends = new Array<{ x: number; y: number }>(edges.length);
  const outOf: number[][] = items.map(() => []);
  const intoOf: number[][] = items.map(() => []);
  edges.forEach((e, k) => {
    outOf[e.chain[0]].push(k);
    intoOf[e.chain[e.chain.length - 1]].push(k);
  });
  for (let i = 0; i < items.length; i++) {
    for (const side of [1, -1] as const) {
      const groups = new Map<number, number[]>();
      for (const k of side === 1 ? outOf[i] : intoOf[i]) {
        const chain = edges[k].chain;
        const next = side === 1 ? chain[1] : chain[chain.length - 2];
        const g = groups.get(next);
        if (g) g.push(k);
        else groups.set(next, [k]);
      }
      if (groups.size === 0) continue;
      const order = [...groups.keys()].sort((a, b) => vertices[a].x - vertices[b].x || a - b);
      const ps = ports(vertices[i], shapeOf(i), order.map((u) => vertices[u].x), side);
      order.forEach((u, j) => {
        for (const k of groups.get(u)!) (side === 1 ? starts : ends)[k] = ps[j];
      });
    }
  }
  edges.forEach((e, k) => {
    const pts = [starts[k], ...inner[k].pts, ends[k]];
    // beside a taller item of its row, an edge goes straight down to the row's bottom (or comes
    // straight down from its top) before it bends, so it does not cut across that item
    const top = vertices[e.chain[0]];
    const bottom = vertices[e.chain[e.chain.length - 1]];
    const below = bands[top.layer].bottom;
    const above = bands[bottom.layer].top;
    if (below - starts[k].y > 2) pts.splice(1, 0, { x: starts[k].x, y: below });
    if (ends[k].y - above > 2) pts.splice(pts.length - 1, 0, { x: ends[k].x, y: above });
    if (e.reversed) pts.reverse();
    const path: EdgePath = { edge: e.edge, points: simplify(pts, 1.5) };
    const label = inner[k].label;
    if (label) path.label = label;
    level.edges.push(path);
  });
  for (const e of loops) {
    const v = vertices[index.get(e.from)!];
    const right = v.x + v.right;
    const path: EdgePath = {
      edge: e,
      selfLoop: true,
      points: [
        { x: right, y: v.y - 5 },
        { x: right + LOOP, y: v.y - 18 },
        { x: right + LOOP, y: v.y + 18 },
        { x: right, y: v.y + 5 },
      ],
    };
    const text = edgeLabel(e, options);
    if (text !== "") {
      const w = textWidth(text, EDGE_LABEL_SIZE);
      path.label = {
        text,
        x: right + LOOP + 4 + w / 2,
        y: v.y,
        width: w,
        height: EDGE_LABEL_SIZE * LINE,
      };
      width = Math.max(width, right + LOOP + 6 + w);
    }
    width = Math.max(width, right + LOOP + 2);
    level.edges.push(path);
  }
  level.width = width;
  return level;
}

/** The box of a node: its shape, lines and size. */
function nodeItem(node: GraphNode, options: LabelOptions): Item {
  const label = nodeLabel(node, options);
  const lines: TextLine[] = [
    ...label.title.map((text) => ({ text, bold: true, size: TITLE_SIZE })),
    ...label.details.map((text) => ({ text, bold: false, size: DETAIL_SIZE })),
  ];
  const shape: NodeShape = node.kind === "input" || node.kind === "output"
    ? "oval"
    : node.kind === "variables"
    ? "cylinder"
    : node.kind === "nested_flow"
    ? "component"
    : "box";
  const t = textBlock(lines);
  let width = t.width + 2 * PAD_X;
  let height = t.height + 2 * PAD_Y;
  if (shape === "oval") {
    // an ellipse around the text block
    width = Math.max(56, t.width * 1.3 + 16);
    height = Math.max(30, t.height * 1.3 + 8);
  } else if (shape === "cylinder") {
    height += 10;
  } else if (shape === "component") {
    width += 12;
  }
  width = Math.max(width, 40);
  const box: NodeBox = { node, shape, lines, x: 0, y: 0, width, height };
  return { key: node.id, width, height, node: box };
}
