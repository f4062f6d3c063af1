/**
 * Peak memory of a `map` over many items with `max_concurrency: 4` (issue 5), against a
 * 100-item map. Each size runs in its own process so peaks do not mix:
 *
 * ```sh
 * deno run -A bench/map_memory.ts                 # 100 and 10,000 items, prints a table
 * deno run -A bench/map_memory.ts --items 10000 --limit 4   # one case, one JSON line
 *                                                             # (--limit null: no limit)
 * ```
 *
 * The item flow calls the builtin `/create_messages` (in-process), so the numbers are the
 * engine's own cost: the batch's bookkeeping, item runs in flight, and the results list (which
 * a map must return, so it grows with the items). Results go in docs/performance.md.
 * @module
 */
import { Engine } from "../src/execution/engine.ts";
import { parseConfigValue } from "../src/config/load.ts";
import { loadFlowText } from "../src/flow/load.ts";
import type { JsonValue } from "../src/json/exact_json.ts";

const FLOW = `schema: https://stepflow.org/schemas/v1/flow.json
steps:
  - id: each
    component: /builtin/map
    input:
      workflow:
        $literal:
          schema: https://stepflow.org/schemas/v1/flow.json
          steps:
            - id: m
              component: /builtin/create_messages
              input: { user_prompt: { $from: { workflow: input }, path: text } }
          output: { $from: { step: m }, path: "$.messages[0].content" }
      items: { $from: { workflow: input }, path: items }
      max_concurrency: __LIMIT__
output:
  successful: { $from: { step: each }, path: successful }
`;

interface Sample {
  items: number;
  limit: string;
  ms: number;
  baseRssMiB: number;
  peakRssMiB: number;
  baseHeapMiB: number;
  peakHeapMiB: number;
}

const MiB = 1024 * 1024;

async function measure(items: number, limit: string): Promise<Sample> {
  const config = parseConfigValue({
    plugins: { builtin: { type: "builtin" } },
    routes: { "/builtin/{*component}": [{ plugin: "builtin" }] },
  }, { workingDirectory: Deno.cwd() });
  const flow = loadFlowText(FLOW.replace("__LIMIT__", limit), {
    format: "yaml",
    file: "map_memory.yaml",
  });
  const input = { items: Array.from({ length: items }, (_, i) => ({ text: `item ${i}` })) };
  const engine = await Engine.create(config);
  // Warm up (compile, JIT) on a small run, then take the baseline.
  await engine.run(flow, { items: input.items.slice(0, 10) } as unknown as JsonValue);
  (globalThis as { gc?: () => void }).gc?.();
  const base = Deno.memoryUsage();
  let peakRss = base.rss;
  let peakHeap = base.heapUsed;
  const sampler = setInterval(() => {
    const m = Deno.memoryUsage();
    if (m.rss > peakRss) peakRss = m.rss;
    if (m.heapUsed > peakHeap) peakHeap = m.heapUsed;
  }, 5);
  const t0 = performance.now();
  const r = await engine.run(flow, input as unknown as JsonValue);
  const ms = performance.now() - t0;
  clearInterval(sampler);
  const end = Deno.memoryUsage();
  peakRss = Math.max(peakRss, end.rss);
  peakHeap = Math.max(peakHeap, end.heapUsed);
  await engine.close();
  if (r.outcome !== "success") throw new Error(`map failed: ${JSON.stringify(r)}`);
  const ok = (r.result as { successful: number }).successful;
  if (ok !== items) throw new Error(`only ${ok} of ${items} items succeeded`);
  const round = (b: number) => Math.round((b / MiB) * 10) / 10;
  return {
    items,
    limit,
    ms: Math.round(ms),
    baseRssMiB: round(base.rss),
    peakRssMiB: round(peakRss),
    baseHeapMiB: round(base.heapUsed),
    peakHeapMiB: round(peakHeap),
  };
}

const i = Deno.args.indexOf("--items");
if (i >= 0) {
  // one case
  const l = Deno.args.indexOf("--limit");
  console.log(
    JSON.stringify(await measure(Number(Deno.args[i + 1]), l >= 0 ? Deno.args[l + 1] : "4")),
  );
} else {
  const rows: Sample[] = [];
  const cases: [number, string][] = [[100, "4"], [1_000, "4"], [10_000, "4"], [10_000, "null"]];
  for (const [n, limit] of cases) {
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "--v8-flags=--expose-gc",
        new URL(import.meta.url).pathname,
        "--items",
        String(n),
        "--limit",
        limit,
      ],
      stdout: "piped",
      stderr: "inherit",
    }).output();
    if (!out.success) throw new Error(`size ${n} failed`);
    rows.push(JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").pop()!));
  }
  console.log(
    "| items | max_concurrency | time (ms) | RSS base → peak (MiB) | heap base → peak (MiB) | heap growth (MiB) |",
  );
  console.log("|---:|---:|---:|---:|---:|---:|");
  for (const r of rows) {
    console.log(
      `| ${r.items} | ${
        r.limit === "null" ? "none" : r.limit
      } | ${r.ms} | ${r.baseRssMiB} → ${r.peakRssMiB} | ${r.baseHeapMiB} → ${r.peakHeapMiB} | ${
        Math.round((r.peakHeapMiB - r.baseHeapMiB) * 10) / 10
      } |`,
    );
  }
}
