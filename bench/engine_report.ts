/**
 * The engine benchmark: steps per second and peak RSS of a 10,000-step chain and a 10,000-step
 * fan-out (+1 join) of built-in steps, next to the floor of the same shapes as plain async no-op
 * calls. Each shape runs in its own process so its peak RSS (Linux `VmHWM`) is its own.
 *
 *   deno run -A bench/engine_report.ts [--steps 10000] [--sqlite]
 *
 * Times exclude process start, building the flow, config loading and engine creation (a GC runs
 * before each timed section); "cold" is the first run of a flow (includes hashing it for its flow
 * id and compiling its templates), "warm" the mean of the next runs.
 * @module
 */
import { Engine } from "../src/execution/engine.ts";
import { benchConfig, chainFloor, chainFlow, fanOutFloor, fanOutFlow } from "./_engine_shapes.ts";

const args = Deno.args;
const steps = Number(args[args.indexOf("--steps") + 1] || 0) || 10_000;
const sqlite = args.includes("--sqlite");
const WARM_RUNS = 5;

interface ShapeResult {
  shape: string;
  steps: number;
  coldMs: number;
  warmMs: number;
  floorMs: number;
  peakRssMb: number;
}

function peakRssMb(): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(Deno.readTextFileSync("/proc/self/status"));
    if (m) return Number(m[1]) / 1024;
  } catch {
    // not Linux
  }
  return Deno.memoryUsage().rss / (1024 * 1024);
}

/** Starts timed sections with an empty young generation (garbage of building the flow is not the run's). */
function collectGarbage(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

async function measure(shape: "chain" | "fanout"): Promise<ShapeResult> {
  const flow = shape === "chain" ? chainFlow(steps) : fanOutFlow(steps);
  const total = shape === "chain" ? steps : steps + 1;
  const engine = await Engine.create(benchConfig(sqlite));
  try {
    collectGarbage();
    let t = performance.now();
    const first = await engine.run(flow, { prompt: "hello" });
    const coldMs = performance.now() - t;
    if (first.outcome !== "success") throw new Error(`run failed: ${JSON.stringify(first)}`);
    collectGarbage();
    t = performance.now();
    for (let i = 0; i < WARM_RUNS; i++) await engine.run(flow, { prompt: "hello" });
    const warmMs = (performance.now() - t) / WARM_RUNS;
    const floor = shape === "chain" ? chainFloor : fanOutFloor;
    await floor(total);
    t = performance.now();
    for (let i = 0; i < WARM_RUNS; i++) await floor(total);
    const floorMs = (performance.now() - t) / WARM_RUNS;
    return { shape, steps: total, coldMs, warmMs, floorMs, peakRssMb: peakRssMb() };
  } finally {
    await engine.close();
  }
}

if (args.includes("--child")) {
  const shape = args[args.indexOf("--child") + 1] as "chain" | "fanout";
  console.log(JSON.stringify(await measure(shape)));
} else {
  const results: ShapeResult[] = [];
  for (const shape of ["chain", "fanout"]) {
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "--v8-flags=--expose-gc",
        import.meta.filename ?? new URL(import.meta.url).pathname,
        "--child",
        shape,
        "--steps",
        String(steps),
        ...(sqlite ? ["--sqlite"] : []),
      ],
      stderr: "inherit",
    }).output();
    if (!out.success) Deno.exit(1);
    results.push(JSON.parse(new TextDecoder().decode(out.stdout)));
  }
  const fmt = (n: number) => Math.round(n).toLocaleString("en-US");
  console.log(
    `engine benchmark: ${steps} steps, state store ${
      sqlite ? "sqlite (:memory:)" : "inMemory"
    }, Deno ${Deno.version.deno}`,
  );
  console.log(
    "| shape | steps | cold run | warm run | warm steps/s | floor (async no-ops) | warm / floor | peak RSS |",
  );
  console.log("| --- | --- | --- | --- | --- | --- | --- | --- |");
  for (const r of results) {
    console.log(
      `| ${r.shape} | ${r.steps} | ${r.coldMs.toFixed(1)} ms | ${r.warmMs.toFixed(1)} ms | ${
        fmt(r.steps / (r.warmMs / 1000))
      } | ${r.floorMs.toFixed(2)} ms | ${(r.warmMs / r.floorMs).toFixed(0)}x | ${
        r.peakRssMb.toFixed(0)
      } MB |`,
    );
  }
  console.log(
    `cold steps/s: ${
      results.map((r) => `${r.shape} ${fmt(r.steps / (r.coldMs / 1000))}`).join(", ")
    }`,
  );
}
