/**
 * The shapes of a graph layout (src/visualize/layout.ts): the boxes, edge paths and text lines the
 * renderers draw, the layered graph the layout works on (items, vertices, edges), and its sizes
 * and spacings in px.
 * @module
 */
import type { GraphCluster, GraphEdge, GraphNode } from "./graph.ts";
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
export const LINE = 1.3;
export const PAD_X = 10;
export const PAD_Y = 6;
export const MARGIN = 8;
/** Gap between neighbouring nodes in a row, and between a node and a virtual point. */
export const NODE_SEP = 22;
export const DUMMY_SEP = 8;
/** Half the gap between two rows of nodes (a row of edge labels may sit between). */
export const HALF_RANK_SEP = 17;
export const CLUSTER_PAD = 10;
/** How far a self-loop reaches to the right of its node. */
export const LOOP = 26;
export const ORDER_ITERATIONS = 12;
export const POSITION_ITERATIONS = 8;

/** The layout of one level (the top flow, or one expanded nested flow), at (0, 0). */
export interface Level {
  width: number;
  height: number;
  nodes: NodeBox[];
  edges: EdgePath[];
  clusters: ClusterBox[];
}

/** A node or an expanded nested flow of one level. */
export interface Item {
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
export interface Vertex {
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

export interface LEdge {
  edge: GraphEdge;
  from: number;
  to: number;
  reversed: boolean;
  /** The vertices from top to bottom (items at both ends). */
  chain: number[];
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
