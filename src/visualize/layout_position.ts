/**
 * Geometry of the layered layout (src/visualize/layout.ts): x positions (every vertex pulled
 * towards its neighbours without overlaps, each row solved as an isotonic regression), where
 * edges leave and enter a box, and polylines simplified (Ramer–Douglas–Peucker).
 * @module
 */
import {
  DUMMY_SEP,
  LOOP,
  NODE_SEP,
  type NodeShape,
  POSITION_ITERATIONS,
  type Vertex,
} from "./layout_model.ts";

/**
 * x positions: each row keeps its order and its gaps, and every vertex is pulled towards the
 * mean x of its neighbours (in the row above, then below, then both), solved exactly for each
 * row as an isotonic regression (pool adjacent violators).
 */
export function positionX(
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
export function ports(
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
