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
 * A third shape, `service-chain`, is a chain of `--service-steps` (default 500) calls of a stdio
 * step service (tests/fixtures/workers/journal_worker.ts `/record`, writing no journal): steps
 * with side effects, each of which waits for the commit of its start (and of the result before it)
 * under the durability rule.
 *
 * Times are the mean of `--runs` warm runs after one cold run of the same flow object.
 * @module
 */
import { Engine } from "../src/execution/engine.ts";
import { runStep } from "../src/execution/pipeline.ts";
import type { StepRunner } from "../src/execution/run_context.ts";
import { parseConfigValue } from "../src/config/load.ts";
import { chainFlow, fanOutFlow } from "./_engine_shapes.ts";
import { type Flow, FlowSchema } from "../src/flow/model.ts";

const args = Deno.args;
const arg = (name: string, d: number) => Number(args[args.indexOf(name) + 1] || 0) || d;
const steps = arg("--steps", 10_000);
const runs = arg("--runs", 5);
const serviceSteps = arg("--service-steps", 500);
const WORKER = new URL("../tests/fixtures/workers/journal_worker.ts", import.meta.url).pathname;

type Shape = "chain" | "fanout" | "service-chain";

/** `n` calls of the journal worker's `/record`, each on the previous one's value. */
function serviceChainFlow(n: number): Flow {
  const steps = [];
  for (let i = 0; i < n; i++) {
    steps.push({
      id: `s${i}`,
      component: "/journal/record",
      input: {
        value: i === 0 ? { $from: { workflow: "input" }, path: "n" } : {
          $from: { step: `s${i - 1}` },
          path: "value",
        },
      },
    });
  }
  return FlowSchema.parse({
    schema: "https://stepflow.org/schemas/v1/flow.json",
    name: `service-chain-${n}`,
    steps,
    output: { $from: { step: `s${n - 1}` }, path: "value" },
  });
}

type Variant = "memory" | "sqlite" | "sqlite-strict";
const VARIANTS: Variant[] = ["memory", "sqlite", "sqlite-strict"];

interface Result {
  shape: string;
  variant: Variant;
  steps: number;
  coldMs: number;
  warmMs: number;
  /** CPU time (user + system) of the warm runs, ms per run: steady under a loaded machine. */
  cpuMs: number;
  rows: number;
}

/** This process's CPU time (user + system) in ms, from /proc (NaN where there is none). */
function cpuTimeMs(): number {
  try {
    const stat = Deno.readTextFileSync("/proc/self/stat");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) * 10; // clock ticks of 10 ms (USER_HZ 100)
  } catch {
    return NaN;
  }
}

async function measure(shape: Shape, variant: Variant): Promise<Result> {
  const dir = await Deno.makeTempDir();
  const flow = shape === "chain"
    ? chainFlow(steps)
    : shape === "fanout"
    ? fanOutFlow(steps)
    : serviceChainFlow(serviceSteps);
  const total = shape === "chain" ? steps : shape === "fanout" ? steps + 1 : serviceSteps;
  const config = parseConfigValue({
    plugins: {
      builtin: { type: "builtin" },
      journal: {
        type: "stepflow",
        command: Deno.execPath(),
        args: ["run", "-A", "--quiet", WORKER],
      },
    },
    routes: {
      "/builtin/{*component}": [{ plugin: "builtin" }],
      "/journal/{*component}": [{ plugin: "journal" }],
    },
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
    const input = { prompt: "hello", n: 0 };
    const first = await engine.run(flow, input);
    const coldMs = performance.now() - t;
    if (first.outcome !== "success") throw new Error(`run failed: ${JSON.stringify(first)}`);
    t = performance.now();
    const cpu0 = cpuTimeMs();
    for (let i = 0; i < runs; i++) await engine.run(flow, input);
    const warmMs = (performance.now() - t) / runs;
    const cpuMs = (cpuTimeMs() - cpu0) / runs;
    await engine.store.flush();
    const rows = (await engine.store.listRuns()).length;
    return { shape, variant, steps: total, coldMs, warmMs, cpuMs, rows };
  } finally {
    await engine.close();
    await Deno.remove(dir, { recursive: true });
  }
}

if (args.includes("--child")) {
  const shape = args[args.indexOf("--child") + 1] as Shape;
  const variant = args[args.indexOf("--variant") + 1] as Variant;
  console.log(JSON.stringify(await measure(shape, variant)));
} else {
  const results: Result[] = [];
  for (const shape of ["chain", "fanout", "service-chain"]) {
    for (const variant of shape === "service-chain" ? VARIANTS.slice(0, 2) : VARIANTS) {
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
          "--service-steps",
          String(serviceSteps),
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
  console.log(
    "| shape | store | cold run | warm run | warm steps/s | ÷ memory | steps per CPU-s | ÷ memory (CPU) |",
  );
  console.log("| --- | --- | --- | --- | --- | --- | --- | --- |");
  for (const r of results) {
    const base = results.find((b) => b.shape === r.shape && b.variant === "memory")!;
    console.log(
      `| ${r.shape} | ${r.variant} | ${r.coldMs.toFixed(1)} ms | ${r.warmMs.toFixed(1)} ms | ${
        fmt(r.steps / (r.warmMs / 1000))
      } | ${(base.warmMs / r.warmMs).toFixed(2)} | ${fmt(r.steps / (r.cpuMs / 1000))} | ${
        (base.cpuMs / r.cpuMs).toFixed(2)
      } |`,
    );
  }
}
