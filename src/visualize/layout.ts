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
 * @module
 */
import type { FlowGraph, GraphCluster, GraphEdge, GraphNode } from "./graph.ts";
import { edgeLabel, type LabelOptions, nodeLabel } from "./labels.ts";
import { textWidth } from "./text_width.ts";

/** A line of text in a box. `size` is the font size in px. */
export interface TextLine {
  text: string;
  bold: boolean;
  size: number;
}

/** How a node is drawn. */
export type NodeShape = "box" | "oval" | "cylinder" | "component";

/** A box: its centre (`x`, `y`) and size, in px. */
export interface Box {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** A laid-out node. */
export interface NodeBox extends Box {
  node: GraphNode;
  shape: NodeShape;
  lines: TextLine[];
}

/** A laid-out edge. */
export interface EdgePath {
  edge: GraphEdge;
  /**
   * From the source's border to the target's border, through the virtual points of a long edge.
   * For a self-loop (`selfLoop`), the four points of one cubic Bézier curve.
   */
  points: { x: number; y: number }[];
  selfLoop?: boolean;
  /** The label, beside the edge (`x`, `y`: the centre of its text). */
  label?: Box & { text: string };
}

/** A laid-out expanded nested flow. */
export interface ClusterBox extends Box {
  cluster: GraphCluster;
  lines: TextLine[];
}

/** The layout of a whole graph. */
export interface GraphLayout {
  width: number;
  height: number;
  /** The flow's name, centred at the top. */
  title?: Box & { lines: TextLine[] };
  nodes: NodeBox[];
  edges: EdgePath[];
  clusters: ClusterBox[];
}

/** Font sizes and line heights (px). */
export const TITLE_SIZE = 11;
export const DETAIL_SIZE = 9;
export const EDGE_LABEL_SIZE = 9;
export const GRAPH_TITLE_SIZE = 14;
const LINE = 1.3;
const PAD_X = 10;
const PAD_Y = 6;
const MARGIN = 8;
/** Gap between neighbouring nodes in a row, and between a node and a virtual point. */
const NODE_SEP = 22;
const DUMMY_SEP = 8;
/** Half the gap between two rows of nodes (a row of edge labels may sit between). */
const HALF_RANK_SEP = 17;
const CLUSTER_PAD = 10;
/** How far a self-loop reaches to the right of its node. */
const LOOP = 26;
const ORDER_ITERATIONS = 12;
const POSITION_ITERATIONS = 8;

/** Lays out a graph (labels as the renderers draw them). */
export function layoutGraph(graph: FlowGraph, options: LabelOptions = {}): GraphLayout {
  const level = layoutLevel(graph, undefined, options);
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

interface Level {
  width: number;
  height: number;
  nodes: NodeBox[];
  edges: EdgePath[];
  clusters: ClusterBox[];
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

/** A node or an expanded nested flow of one level. */
interface Item {
  key: string;
  width: number;
  height: number;
  node?: NodeBox;
  cluster?: { cluster: GraphCluster; inner: Level; lines: TextLine[]; titleHeight: number };
}

/**
 * A vertex of the layered graph: an item, or a virtual point of an edge. `x` is where edges
 * attach; the vertex reaches `left` px to its left and `right` px to its right (a label's slot
 * lies to the right of its edge).
 */
interface Vertex {
  left: number;
  right: number;
  height: number;
  layer: number;
  /** Index into the items, or -1 for a virtual point. */
  item: number;
  /** For the virtual point that holds a label: the label's size. */
  label?: { text: string; width: number; height: number };
  /** Weight of its own position when x positions are balanced (virtual points pull harder). */
  weight: number;
  /**
   * A virtual point shared by the edges from one item (a trunk): it is aligned with its trunk
   * only, not pulled aside by the edges that branch off it.
   */
  trunk?: boolean;
  x: number;
  y: number;
}

interface LEdge {
  edge: GraphEdge;
  from: number;
  to: number;
  reversed: boolean;
  /** The vertices from top to bottom (items at both ends). */
  chain: number[];
}

/** Lays out the nodes of one level (the top flow, or one expanded nested flow). */
function layoutLevel(graph: FlowGraph, cluster: string | undefined, options: LabelOptions): Level {
  // 1. items: the level's nodes in graph order, each expanded nested flow after its step
  const items: Item[] = [];
  for (const node of graph.nodes) {
    if (node.cluster !== cluster) continue;
    items.push(nodeItem(node, options));
    for (const c of graph.clusters) {
      if (c.parent !== cluster || c.step !== node.id) continue;
      const inner = layoutLevel(graph, c.id, options);
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

/** The size of lines of text stacked and centred. */
export function textBlock(lines: readonly TextLine[]): { width: number; height: number } {
  let width = 0;
  let height = 0;
  for (const l of lines) {
    width = Math.max(width, textWidth(l.text, l.size, l.bold));
    height += l.size * LINE;
  }
  return { width, height };
}

/**
 * Reverses the edges that close a cycle (only invalid flows have cycles: a step reading itself
 * through others), found by a depth-first search in item order.
 */
function breakCycles(n: number, edges: LEdge[]): void {
  const out: number[][] = Array.from({ length: n }, () => []);
  edges.forEach((e, i) => out[e.from].push(i));
  const state = new Uint8Array(n); // 0 new, 1 on the stack, 2 done
  for (let s = 0; s < n; s++) {
    if (state[s] !== 0) continue;
    const stack: [number, number][] = [[s, 0]];
    state[s] = 1;
    while (stack.length > 0) {
      const top = stack[stack.length - 1];
      const [v, k] = top;
      if (k >= out[v].length) {
        state[v] = 2;
        stack.pop();
        continue;
      }
      top[1]++;
      const e = edges[out[v][k]];
      if (state[e.to] === 1) e.reversed = true;
      else if (state[e.to] === 0) {
        state[e.to] = 1;
        stack.push([e.to, 0]);
      }
    }
  }
}

/**
 * Ranks: the longest path from a source; a source other than the flow input is then moved down
 * next to its first reader, and the flow output goes to the last rank.
 */
function rankItems(items: Item[], edges: LEdge[]): number[] {
  const n = items.length;
  const preds: number[][] = Array.from({ length: n }, () => []);
  const succs: number[][] = Array.from({ length: n }, () => []);
  for (const e of edges) {
    const [a, b] = e.reversed ? [e.to, e.from] : [e.from, e.to];
    succs[a].push(b);
    preds[b].push(a);
  }
  const rank = new Array<number>(n).fill(0);
  const indegree = preds.map((p) => p.length);
  const ready: number[] = [];
  for (let i = 0; i < n; i++) if (indegree[i] === 0) ready.push(i);
  // Kahn's algorithm, always taking the earliest item (deterministic)
  while (ready.length > 0) {
    ready.sort((a, b) => a - b);
    const v = ready.shift()!;
    for (const s of succs[v]) {
      rank[s] = Math.max(rank[s], rank[v] + 1);
      if (--indegree[s] === 0) ready.push(s);
    }
  }
  for (let i = 0; i < n; i++) {
    const kind = items[i].node?.node.kind;
    if (preds[i].length === 0 && succs[i].length > 0 && kind !== "input") {
      rank[i] = Math.max(rank[i], Math.min(...succs[i].map((s) => rank[s])) - 1);
    }
  }
  const last = Math.max(0, ...rank);
  for (let i = 0; i < n; i++) {
    if (items[i].node?.node.kind === "output") {
      const others = rank.filter((_, j) => j !== i);
      rank[i] = Math.max(rank[i], others.length > 0 ? Math.max(...others) + 1 : 0, last);
    }
  }
  return rank;
}

/**
 * The order of the vertices in each row: a depth-first order first, then sweeps down and up
 * sorting each row by the mean position of its neighbours in the row before (barycentres),
 * keeping the order with the fewest crossings.
 */
function orderLayers(
  vertices: Vertex[],
  layerCount: number,
  itemCount: number,
  up: number[][],
  down: number[][],
): number[][] {
  const layers: number[][] = Array.from({ length: layerCount }, () => []);
  const seen = new Uint8Array(vertices.length);
  const visit = (start: number) => {
    const stack = [start];
    while (stack.length > 0) {
      const v = stack.pop()!;
      if (seen[v]) continue;
      seen[v] = 1;
      layers[vertices[v].layer].push(v);
      for (let k = down[v].length - 1; k >= 0; k--) stack.push(down[v][k]);
    }
  };
  for (let i = 0; i < itemCount; i++) if (up[i].length === 0) visit(i);
  for (let v = 0; v < vertices.length; v++) visit(v);

  const pos = new Float64Array(vertices.length);
  const setPositions = (ls: number[][]) => {
    for (const l of ls) l.forEach((v, i) => pos[v] = i);
  };
  setPositions(layers);
  let best = layers.map((l) => l.slice());
  let bestCrossings = totalCrossings(layers, down, pos);
  const sortBy = (layer: number[], neighbours: number[][]) => {
    const keyed = layer.map((v) => {
      const ns = neighbours[v];
      let key = pos[v];
      if (ns.length > 0) {
        let sum = 0;
        for (const u of ns) sum += pos[u];
        key = sum / ns.length;
      }
      return { v, key };
    });
    keyed.sort((a, b) => a.key - b.key || pos[a.v] - pos[b.v]);
    keyed.forEach((k, i) => {
      layer[i] = k.v;
    });
    layer.forEach((v, i) => pos[v] = i);
  };
  // stop after a few sweeps that found nothing better
  for (let it = 0, stale = 0; it < ORDER_ITERATIONS && bestCrossings > 0 && stale < 3; it++) {
    for (let l = 1; l < layerCount; l++) sortBy(layers[l], up);
    for (let l = layerCount - 2; l >= 0; l--) sortBy(layers[l], down);
    const c = totalCrossings(layers, down, pos);
    if (c < bestCrossings) {
      bestCrossings = c;
      best = layers.map((l) => l.slice());
      stale = 0;
    } else {
      stale++;
    }
  }
  setPositions(best);
  return best;
}

/** Edge crossings between all neighbouring rows (counted with a Fenwick tree, O(E log V)). */
function totalCrossings(layers: number[][], down: number[][], pos: Float64Array): number {
  let total = 0;
  for (let l = 0; l + 1 < layers.length; l++) {
    const targets: number[] = [];
    for (const v of layers[l]) {
      const ts = down[v].map((u) => pos[u]).sort((a, b) => a - b);
      targets.push(...ts);
    }
    const size = layers[l + 1].length;
    const tree = new Float64Array(size + 1);
    for (let k = 0; k < targets.length; k++) {
      // crossings with earlier edges that end to the right of this one
      let greater = k;
      for (let i = targets[k] + 1; i > 0; i -= i & -i) greater -= tree[i];
      total += greater;
      for (let i = targets[k] + 1; i <= size; i += i & -i) tree[i]++;
    }
  }
  return total;
}

/**
 * x positions: each row keeps its order and its gaps, and every vertex is pulled towards the
 * mean x of its neighbours (in the row above, then below, then both), solved exactly for each
 * row as an isotonic regression (pool adjacent violators).
 */
function positionX(
  vertices: Vertex[],
  layers: number[][],
  up: number[][],
  down: number[][],
  loops: Set<number>,
): void {
  const gap = (a: number, b: number) => {
    const va = vertices[a];
    const vb = vertices[b];
    const sep = va.item >= 0 && vb.item >= 0
      ? NODE_SEP
      : va.item >= 0 || vb.item >= 0
      ? DUMMY_SEP + 4
      : DUMMY_SEP;
    const loop = loops.has(va.item) ? LOOP + 4 : 0;
    return va.right + vb.left + sep + loop;
  };
  for (const layer of layers) {
    let x = 0;
    layer.forEach((v, i) => {
      if (i > 0) x += gap(layer[i - 1], v);
      vertices[v].x = x;
    });
  }
  const balance = (layer: number[], neighbours: (v: number) => number[]) => {
    const n = layer.length;
    if (n === 0) return;
    // offsets: the least distance of each vertex from the first one
    const offset = new Float64Array(n);
    for (let i = 1; i < n; i++) offset[i] = offset[i - 1] + gap(layer[i - 1], layer[i]);
    const target = new Float64Array(n);
    const weight = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const v = vertices[layer[i]];
      let ns = neighbours(layer[i]);
      if (v.trunk) ns = ns.filter((u) => vertices[u].trunk || vertices[u].item >= 0);
      let t = v.x;
      if (ns.length > 0) {
        let sum = 0;
        for (const u of ns) sum += vertices[u].x;
        t = sum / ns.length;
      }
      target[i] = t - offset[i];
      weight[i] = ns.length > 0 ? v.weight : 0.01;
    }
    const y = isotonic(target, weight);
    for (let i = 0; i < n; i++) vertices[layer[i]].x = y[i] + offset[i];
  };
  for (let it = 0; it < POSITION_ITERATIONS; it++) {
    for (let l = 1; l < layers.length; l++) balance(layers[l], (v) => up[v]);
    for (let l = layers.length - 2; l >= 0; l--) balance(layers[l], (v) => down[v]);
  }
  for (let it = 0; it < 2; it++) {
    for (const layer of layers) balance(layer, (v) => [...up[v], ...down[v]]);
  }
  let min = Infinity;
  for (const v of vertices) min = Math.min(min, v.x - v.left);
  if (Number.isFinite(min)) { for (const v of vertices) v.x -= min; }
}

/**
 * The non-decreasing sequence closest to `target` (weighted least squares): the pool adjacent
 * violators algorithm, O(n).
 */
export function isotonic(target: Float64Array, weight: Float64Array): Float64Array {
  const n = target.length;
  const value: number[] = [];
  const w: number[] = [];
  const count: number[] = [];
  for (let i = 0; i < n; i++) {
    value.push(target[i]);
    w.push(weight[i]);
    count.push(1);
    while (value.length > 1 && value[value.length - 2] > value[value.length - 1]) {
      const v2 = value.pop()!, w2 = w.pop()!, c2 = count.pop()!;
      const v1 = value.pop()!, w1 = w.pop()!, c1 = count.pop()!;
      const ww = w1 + w2;
      value.push((v1 * w1 + v2 * w2) / ww);
      w.push(ww);
      count.push(c1 + c2);
    }
  }
  const out = new Float64Array(n);
  let i = 0;
  for (let b = 0; b < value.length; b++) {
    for (let k = 0; k < count[b]; k++) out[i++] = value[b];
  }
  return out;
}

/**
 * Where `count` edges leave (`side` 1: the bottom) or enter (`side` -1: the top) a box, heading
 * for the x positions `toward` (sorted): one edge heads straight for its neighbour; several are
 * spread evenly, clear of the corners. On an ellipse the points lie on its outline.
 */
function ports(
  v: Vertex,
  shape: NodeShape,
  toward: number[],
  side: 1 | -1,
): { x: number; y: number }[] {
  const halfW = v.left;
  const halfH = v.height / 2;
  const room = shape === "oval" ? halfW * 0.6 : Math.max(0, halfW - 8);
  const k = toward.length;
  let xs: number[];
  if (k === 1) {
    xs = [Math.min(v.x + room, Math.max(v.x - room, v.x + (toward[0] - v.x) * 0.5))];
  } else {
    const span = Math.min(2 * room, (k - 1) * 14);
    xs = toward.map((_, j) => v.x - span / 2 + (j * span) / (k - 1));
  }
  return xs.map((x) => {
    if (shape !== "oval") return { x, y: v.y + side * halfH };
    const u = (x - v.x) / halfW;
    return { x, y: v.y + side * halfH * Math.sqrt(Math.max(0, 1 - u * u)) };
  });
}

/**
 * The points of a polyline without those closer than `epsilon` px to the line through their
 * neighbours (Ramer–Douglas–Peucker); the ends are kept.
 */
export function simplify(
  pts: { x: number; y: number }[],
  epsilon: number,
): { x: number; y: number }[] {
  if (pts.length <= 2) return pts;
  const keep = new Uint8Array(pts.length);
  keep[0] = keep[pts.length - 1] = 1;
  const stack: [number, number][] = [[0, pts.length - 1]];
  while (stack.length > 0) {
    const [a, b] = stack.pop()!;
    const pa = pts[a];
    const pb = pts[b];
    const len = Math.hypot(pb.x - pa.x, pb.y - pa.y);
    let far = -1;
    let farDist = epsilon;
    for (let i = a + 1; i < b; i++) {
      const p = pts[i];
      const d = len < 1e-9
        ? Math.hypot(p.x - pa.x, p.y - pa.y)
        : Math.abs((pb.x - pa.x) * (pa.y - p.y) - (pa.x - p.x) * (pb.y - pa.y)) / len;
      if (d > farDist) {
        farDist = d;
        far = i;
      }
    }
    if (far >= 0) {
      keep[far] = 1;
      stack.push([a, far], [far, b]);
    }
  }
  return pts.filter((_, i) => keep[i] === 1);
}
