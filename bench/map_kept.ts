/**
 * What a finished `/builtin/map` item keeps in the engine's in-memory store, by kind of heap
 * object: a heap snapshot before and after a map of 20,000 items over a stdio step service (the
 * SDK worker's `/echo`, a one-step item flow), the difference per item, rows of 4 bytes an item or
 * more (issue 17: docs/performance.md, sixth, seventh and ninth passes).
 *
 * ```sh
 * deno run -A bench/map_kept.ts [--items 20000] [--two-steps]
 * ```
 * @module
 */
import { Session } from "node:inspector/promises";
import { mapEngine, mapFlow } from "./_map_worker.ts";

function arg(name: string, dflt: string): string {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 ? Deno.args[i + 1] : dflt;
}
const ITEMS = Number(arg("items", "20000"));
const TWO = Deno.args.includes("--two-steps");

const engine = await mapEngine();
const flow = mapFlow(16, TWO);
const items = Array.from({ length: ITEMS }, (_, i) => ({ x: i }));
await engine.run(flow, { items: items.slice(0, 100) }); // warm: code, plugin, flow

const session = new Session();
session.connect();

/** Count and bytes of the live heap by kind (object constructor, closure, string kind, ...). */
async function snapshot(): Promise<Map<string, [number, number]>> {
  let text = "";
  const onChunk = (m: { params: { chunk: string } }) => text += m.params.chunk;
  session.on("HeapProfiler.addHeapSnapshotChunk", onChunk);
  await session.post("HeapProfiler.collectGarbage");
  await session.post("HeapProfiler.takeHeapSnapshot", { reportProgress: false });
  session.off("HeapProfiler.addHeapSnapshotChunk", onChunk);
  const h = JSON.parse(text);
  const fields = h.snapshot.meta.node_fields as string[];
  const type = fields.indexOf("type"), name = fields.indexOf("name");
  const size = fields.indexOf("self_size");
  const types = h.snapshot.meta.node_types[0] as string[];
  const byKind = new Map<string, [number, number]>();
  for (let i = 0; i < h.nodes.length; i += fields.length) {
    const t = types[h.nodes[i + type]];
    const named = t === "object" || t === "closure" || t === "native" ||
      t === "concatenated string";
    const kind = named ? `${t}:${h.strings[h.nodes[i + name]]}` : t;
    const a = byKind.get(kind) ?? [0, 0];
    a[0]++;
    a[1] += h.nodes[i + size];
    byKind.set(kind, a);
  }
  return byKind;
}

const before = await snapshot();
const res = await engine.run(flow, { items });
if (res.outcome !== "success") throw new Error(JSON.stringify(res).slice(0, 400));
const after = await snapshot();
session.disconnect();
await engine.close();
const rows = [...after]
  .map(([k, [n, b]]) => [k, n - (before.get(k)?.[0] ?? 0), b - (before.get(k)?.[1] ?? 0)] as const)
  .filter((r) => r[2] >= ITEMS * 4)
  .sort((a, b) => b[2] - a[2]);
console.log(`kept per map item (${ITEMS} items, ${TWO ? "two-step" : "one-step"} item flow):`);
let total = 0;
for (const [kind, n, bytes] of rows) {
  total += bytes;
  console.log(
    `${(bytes / ITEMS).toFixed(0).padStart(6)} B ${
      (n / ITEMS).toFixed(2).padStart(6)
    } objects  ${kind}`,
  );
}
console.log(`${(total / ITEMS).toFixed(0).padStart(6)} B in all (rows of 4 B an item or more)`);
