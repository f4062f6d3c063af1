/**
 * Rows and their order for the layered layout (src/visualize/layout.ts): cycles broken by
 * reversing edges, ranks by longest path, and the order within each row that reduces edge
 * crossings (barycentre sweeps, crossings counted with a Fenwick tree).
 * @module
 */
import { type Item, type LEdge, ORDER_ITERATIONS, type Vertex } from "./layout_model.ts";

/**
 * Reverses the edges that close a cycle (only invalid flows have cycles: a step reading itself
 * through others), found by a depth-first search in item order.
 */
export function breakCycles(n: number, edges: LEdge[]): void {
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
export function rankItems(items: Item[], edges: LEdge[]): number[] {
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
export function orderLayers(
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
