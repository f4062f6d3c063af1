/**
 * The durable-store benchmark (issue 12): steps per second of the 10,000-step chain and fan-out
 * (bench/_engine_shapes.ts) with the in-memory store, and with an SQLite database file (WAL,
 * group commit) written behind the run or under the durability rule.
 *
 *   deno run -A bench/durable_report.ts [--steps 10000] [--runs 5]
 *
 * Variants (each shape and variant in its own process, on a fresh database file):
 * - `memory`: the in-memory store (the baseline);
 * - `sqlite`: a database file under the engine's durability rule (src/execution/pipeline.ts):
 *   step results, statuses and journal events are committed once per event-loop turn; a step with
 *   side effects starts only once what it follows (and its own start) is committed, and the output
 *   is built on committed results; replayable built-ins do not wait for commits (after a crash
 *   they run again with the same result). This is `stepflow run --store runs.db`;
 * - `sqlite-strict`: the same file with every step waiting for the commit of every result
 *   recorded before it (`await store.flush()`), as if every step had side effects. Parallel steps
 *   share one commit.
 *
 * Times are the mean of `--runs` warm runs after one cold run of the same flow object.
 * @module
 */
import { Engine } from "../src/execution/engine.ts";
import { runStep } from "../src/execution/pipeline.ts";
import type { StepRunner } from "../src/execution/run_context.ts";
import { parseConfigValue } from "../src/config/load.ts";
import { chainFlow, fanOutFlow } from "./_engine_shapes.ts";

const args = Deno.args;
const arg = (name: string, d: number) => Number(args[args.indexOf(name) + 1] || 0) || d;
const steps = arg("--steps", 10_000);
const runs = arg("--runs", 5);

type Variant = "memory" | "sqlite" | "sqlite-strict";
const VARIANTS: Variant[] = ["memory", "sqlite", "sqlite-strict"];

interface Result {
  shape: string;
  variant: Variant;
  steps: number;
  coldMs: number;
  warmMs: number;
  rows: number;
}

async function measure(shape: "chain" | "fanout", variant: Variant): Promise<Result> {
  const dir = await Deno.makeTempDir();
  const flow = shape === "chain" ? chainFlow(steps) : fanOutFlow(steps);
  const total = shape === "chain" ? steps : steps + 1;
  const config = parseConfigValue({
    plugins: { builtin: { type: "builtin" } },
    routes: { "/builtin/{*component}": [{ plugin: "builtin" }] },
    stateStore: variant === "memory"
      ? { type: "inMemory" }
      : { type: "sqlite", databaseUrl: `sqlite:${dir}/runs.db` },
  }, { workingDirectory: dir });
  // Every step as if it had side effects: it starts once every result recorded before it is
  // committed.
  const durable: StepRunner = async (step, run) => {
    await run.store.flush();
    return await runStep(step, run);
  };
  const engine = await Engine.create(
    config,
    variant === "sqlite-strict" ? { stepRunner: durable } : {},
  );
  try {
    let t = performance.now();
    const first = await engine.run(flow, { prompt: "hello" });
    const coldMs = performance.now() - t;
    if (first.outcome !== "success") throw new Error(`run failed: ${JSON.stringify(first)}`);
    t = performance.now();
    for (let i = 0; i < runs; i++) await engine.run(flow, { prompt: "hello" });
    const warmMs = (performance.now() - t) / runs;
    await engine.store.flush();
    const rows = (await engine.store.listRuns()).length;
    return { shape, variant, steps: total, coldMs, warmMs, rows };
  } finally {
    await engine.close();
    await Deno.remove(dir, { recursive: true });
  }
}

if (args.includes("--child")) {
  const shape = args[args.indexOf("--child") + 1] as "chain" | "fanout";
  const variant = args[args.indexOf("--variant") + 1] as Variant;
  console.log(JSON.stringify(await measure(shape, variant)));
} else {
  const results: Result[] = [];
  for (const shape of ["chain", "fanout"]) {
    for (const variant of VARIANTS) {
      const out = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          import.meta.filename ?? new URL(import.meta.url).pathname,
          "--child",
          shape,
          "--variant",
          variant,
          "--steps",
          String(steps),
          "--runs",
          String(runs),
        ],
        stderr: "inherit",
      }).output();
      if (!out.success) Deno.exit(1);
      results.push(JSON.parse(new TextDecoder().decode(out.stdout)));
    }
  }
  const fmt = (n: number) => Math.round(n).toLocaleString("en-US");
  const load = (() => {
    try {
      return Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
    } catch {
      return "?";
    }
  })();
  console.log(
    `durable store benchmark: ${steps} steps, ${runs} warm runs, Deno ${Deno.version.deno}, load average ${load}`,
  );
  console.log("| shape | store | cold run | warm run | warm steps/s | ÷ memory |");
  console.log("| --- | --- | --- | --- | --- | --- |");
  for (const r of results) {
    const base = results.find((b) => b.shape === r.shape && b.variant === "memory")!;
    console.log(
      `| ${r.shape} | ${r.variant} | ${r.coldMs.toFixed(1)} ms | ${r.warmMs.toFixed(1)} ms | ${
        fmt(r.steps / (r.warmMs / 1000))
      } | ${(base.warmMs / r.warmMs).toFixed(2)} |`,
    );
  }
}
