/**
 * The service in process (no sockets, no load generator competing for the CPU): `clients`
 * concurrent `POST /api/v1/runs` (wait) of the 3-step built-in flow through `server.fetch`, with
 * the SQLite store (WAL checkpoints in a worker, or SQLite's automatic ones: `--checkpoint auto`)
 * or the in-memory one. Prints runs/s, latency percentiles, CPU µs per run and the longest
 * event-loop stalls (what every request in flight waits for).
 *
 * ```sh
 * deno run -A bench/serve_inprocess.ts --store sqlite --checkpoint worker --clients 50 --duration 10
 * ```
 * @module
 */
import process from "node:process";
import { Engine } from "../src/execution/engine.ts";
import { loadConfigForFlow } from "../src/config/load.ts";
import { SqliteStateStore } from "../src/state/sqlite.ts";
import { MemoryStateStore } from "../src/state/memory.ts";
import { createServer } from "../src/server/server.ts";
import { THREE_STEPS } from "./_service_flow.ts";

function arg(name: string, dflt: string): string {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < Deno.args.length ? Deno.args[i + 1] : dflt;
}
const storeKind = arg("store", "sqlite");
const checkpoint = arg("checkpoint", "worker") as "worker" | "auto";
const clients = Number(arg("clients", "50"));
const duration = Number(arg("duration", "10"));
const warmup = Number(arg("warmup", "2"));

const dir = await Deno.makeTempDir({ prefix: "stepflow-inproc-" });
const store = storeKind === "memory"
  ? new MemoryStateStore({ journal: true })
  : SqliteStateStore.open(`sqlite:${dir}/stepflow.db`, { checkpoint });
await Deno.writeTextFile(
  `${dir}/stepflow-config.yml`,
  `plugins:\n  builtin: { type: builtin }\nroutes:\n  "/builtin/{*component}":\n    - plugin: builtin\n`,
);
const engine = await Engine.create(
  await loadConfigForFlow({ configPath: `${dir}/stepflow-config.yml` }),
  { store },
);
const server = createServer(engine, { maxConcurrentRuns: 1000 });
const post = (path: string, body: unknown) =>
  server.fetch(
    new Request(`http://127.0.0.1${path}`, {
      method: "POST",
      headers: { "content-type": "application/json", host: "127.0.0.1" },
      body: JSON.stringify(body),
    }),
  );
const { flowId } = await (await post("/api/v1/flows", { flow: THREE_STEPS })).json();
const body = { flowId, input: { q: "hello" } };

// event-loop stalls: how late a 1 ms timer fires
const stalls: number[] = [];
let monitoring = true;
(async () => {
  while (monitoring) {
    const t = performance.now();
    await new Promise((r) => setTimeout(r, 1));
    stalls.push(performance.now() - t - 1);
  }
})();

async function level(seconds: number) {
  const lat: number[] = [];
  let errors = 0;
  const end = performance.now() + seconds * 1000;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(Array.from({ length: clients }, async () => {
    while (performance.now() < end) {
      const a = performance.now();
      const res = await post("/api/v1/runs", body);
      const answer = await res.json();
      if (res.status !== 200 || answer.result?.outcome !== "success") errors++;
      lat.push(performance.now() - a);
    }
  }));
  const secs = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  lat.sort((a, b) => a - b);
  const q = (p: number) => lat[Math.min(lat.length - 1, Math.floor(lat.length * p))];
  return {
    rps: Math.round(lat.length / secs),
    p50: q(0.5),
    p90: q(0.9),
    p99: q(0.99),
    max: lat.at(-1)!,
    cpuUs: Math.round((cpu.user + cpu.system) / lat.length),
    errors,
  };
}

await level(warmup);
stalls.length = 0;
const r = await level(duration);
monitoring = false;
stalls.sort((a, b) => b - a);
const fmt = (n: number) => n.toFixed(1);
console.log(
  `| ${storeKind}${storeKind === "sqlite" ? `/${checkpoint}` : ""} | ${clients} | ${r.rps} | ${
    fmt(r.p50)
  } | ${fmt(r.p90)} | ${fmt(r.p99)} | ${fmt(r.max)} | ${r.cpuUs} | ${
    stalls.slice(0, 3).map(fmt).join(", ")
  } | ${r.errors} |`,
);
await server.shutdown(1000);
await engine.close();
await Deno.remove(dir, { recursive: true });
