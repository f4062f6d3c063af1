/**
 * The PostgreSQL store benchmark (issue 14): the per-step cost of recording a run in PostgreSQL
 * vs SQLite, on the chain shape of bench/_engine_shapes.ts (each step reads the previous one).
 *
 *   deno run -A bench/pg_report.ts [--pg postgres://...] [--steps 10000] [--durable-steps 1000] [--runs 3]
 *
 * The server is `--pg` or `STEPFLOW_TEST_PG_URL` (a role that may create databases; each
 * measurement gets a fresh database, dropped afterwards). Variants, each in its own process:
 * - `memory`: the in-memory store (the baseline);
 * - `sqlite` / `postgres`: a database file / a PostgreSQL database; the writes of each event-loop
 *   turn committed together, nobody waiting for them (write-behind) — the run's last commit is
 *   awaited before its result is returned;
 * - `sqlite-durable` / `postgres-durable`: the strict durability rule: before every step starts,
 *   every result recorded so far is committed (`await store.flush()`): a chain pays one commit
 *   (one round trip to the server) per step. Run on `--durable-steps` steps.
 *
 * Times are the mean of `--runs` warm runs after one cold run of the same flow object; "+µs/step"
 * is what the store adds to each step over the in-memory store of the same length.
 * @module
 */
import { Engine } from "../src/execution/engine.ts";
import { runStep } from "../src/execution/run_step.ts";
import type { StepRunner } from "../src/execution/executor.ts";
import { parseConfigValue } from "../src/config/load.ts";
import { chainFlow } from "./_engine_shapes.ts";

const args = Deno.args;
const opt = (name: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const num = (name: string, d: number) => Number(opt(name) ?? 0) || d;
const steps = num("--steps", 10_000);
const durableSteps = num("--durable-steps", 1_000);
const runs = num("--runs", 3);
const server = opt("--pg") ?? Deno.env.get("STEPFLOW_TEST_PG_URL");

type Variant = "memory" | "sqlite" | "postgres" | "sqlite-durable" | "postgres-durable";

interface Result {
  variant: Variant;
  steps: number;
  coldMs: number;
  warmMs: number;
}

async function withDatabase<T>(fn: (url: string) => Promise<T>): Promise<T> {
  const { default: postgres } = await import("postgres");
  const admin = postgres(server!, { max: 1, onnotice: () => {} });
  const name = `stepflow_bench_${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
  await admin.unsafe(`CREATE DATABASE ${name}`);
  try {
    const u = new URL(server!);
    u.pathname = `/${name}`;
    return await fn(u.toString());
  } finally {
    await admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.end();
  }
}

async function measure(variant: Variant, n: number, url?: string): Promise<Result> {
  const dir = await Deno.makeTempDir();
  const flow = chainFlow(n);
  const config = parseConfigValue({
    plugins: { builtin: { type: "builtin" } },
    routes: { "/builtin/{*component}": [{ plugin: "builtin" }] },
    stateStore: variant === "memory"
      ? { type: "inMemory" }
      : variant.startsWith("sqlite")
      ? { type: "sqlite", databaseUrl: `sqlite:${dir}/runs.db` }
      : { type: "postgres", url: url ?? "" },
  }, { workingDirectory: dir });
  const durable: StepRunner = async (step, run) => {
    await run.store.flush();
    return await runStep(step, run);
  };
  const engine = await Engine.create(
    config,
    variant.endsWith("-durable") ? { stepRunner: durable } : {},
  );
  try {
    let t = performance.now();
    const first = await engine.run(flow, { prompt: "hello" });
    const coldMs = performance.now() - t;
    if (first.outcome !== "success") throw new Error(`run failed: ${JSON.stringify(first)}`);
    t = performance.now();
    for (let i = 0; i < runs; i++) await engine.run(flow, { prompt: "hello" });
    const warmMs = (performance.now() - t) / runs;
    return { variant, steps: n, coldMs, warmMs };
  } finally {
    await engine.close();
    await Deno.remove(dir, { recursive: true });
  }
}

if (args.includes("--child")) {
  const variant = opt("--child") as Variant;
  const n = Number(opt("--n"));
  const result = variant.startsWith("postgres")
    ? await withDatabase((url) => measure(variant, n, url))
    : await measure(variant, n);
  console.log(JSON.stringify(result));
} else {
  if (!server) {
    console.error("bench/pg_report.ts needs a server: --pg postgres://... or STEPFLOW_TEST_PG_URL");
    Deno.exit(2);
  }
  const plan: [Variant, number][] = [
    ["memory", steps],
    ["sqlite", steps],
    ["postgres", steps],
    ["memory", durableSteps],
    ["sqlite-durable", durableSteps],
    ["postgres-durable", durableSteps],
  ];
  const results: Result[] = [];
  for (const [variant, n] of plan) {
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        import.meta.filename ?? new URL(import.meta.url).pathname,
        "--child",
        variant,
        "--n",
        String(n),
        "--runs",
        String(runs),
        "--pg",
        server,
      ],
      stderr: "inherit",
    }).output();
    if (!out.success) Deno.exit(1);
    results.push(JSON.parse(new TextDecoder().decode(out.stdout)));
  }
  const load = (() => {
    try {
      return Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
    } catch {
      return "?";
    }
  })();
  console.log(
    `PostgreSQL store benchmark: chain, ${runs} warm runs, Deno ${Deno.version.deno}, load ${load}`,
  );
  console.log(
    "| store | steps | cold run | warm run | warm steps/s | µs/step | +µs/step vs memory |",
  );
  console.log("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
  for (const r of results) {
    const base = results.find((b) => b.variant === "memory" && b.steps === r.steps)!;
    const per = (r.warmMs * 1000) / r.steps;
    const extra = ((r.warmMs - base.warmMs) * 1000) / r.steps;
    console.log(
      `| ${r.variant} | ${r.steps.toLocaleString("en-US")} | ${r.coldMs.toFixed(0)} ms | ${
        r.warmMs.toFixed(0)
      } ms | ${Math.round(r.steps / (r.warmMs / 1000)).toLocaleString("en-US")} | ${
        per.toFixed(1)
      } | ${r.variant === "memory" ? "—" : extra.toFixed(1)} |`,
    );
  }
}
