/**
 * Benchmark of `stepflow serve`: runs/s and latency of `POST /api/v1/runs` (wait) for a 3-step
 * built-in flow, at 1 and 50 concurrent clients, against the real server (a subprocess) with the
 * durable SQLite store (default) or the in-memory one. Uses `wrk` (Debian package `wrk`) when it
 * is installed, else a Deno client (which competes with the server for the CPU: slower figures).
 *
 * ```sh
 * deno run -A bench/serve_bench.ts                  # sqlite store, 10 s per level
 * deno run -A bench/serve_bench.ts --store memory --duration 5 --clients 1,50,100
 * deno run -A bench/serve_bench.ts --commits loop  # SQLite commits on the event loop
 * ```
 * Results and how to read them: docs/performance.md ("Service").
 * @module
 */

import { THREE_STEPS as FLOW } from "./_service_flow.ts";

const REPO = new URL("..", import.meta.url).pathname;

function arg(name: string, dflt: string): string {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < Deno.args.length ? Deno.args[i + 1] : dflt;
}

const store = arg("store", "sqlite");
const duration = Number(arg("duration", "10"));
const levels = arg("clients", "1,50").split(",").map(Number);
/** `--commits loop`: SQLite commits on the event loop instead of the commit worker. */
const commits = arg("commits", "worker");
const useWrk = Deno.args.includes("--no-wrk") ? false : await hasWrk();

async function hasWrk(): Promise<boolean> {
  try {
    const out = await new Deno.Command("wrk", {
      args: ["--version"],
      stdout: "null",
      stderr: "null",
    })
      .output();
    return out.code === 0 || out.code === 1;
  } catch {
    return false;
  }
}

function loadavg(): string {
  try {
    return Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
  } catch {
    return "?";
  }
}

const dir = await Deno.makeTempDir({ prefix: "stepflow-serve-bench-" });
await Deno.writeTextFile(
  `${dir}/stepflow-config.yml`,
  `plugins:\n  builtin: { type: builtin }\nroutes:\n  "/builtin/{*component}":\n    - plugin: builtin\n`,
);
const server = new Deno.Command(Deno.execPath(), {
  args: [
    "run",
    "-A",
    "--quiet",
    `${REPO}main.ts`,
    "serve",
    "--port",
    "0",
    "--store",
    store === "memory" ? "memory" : `${dir}/stepflow.db`,
    "--max-concurrent-runs",
    "1000",
    "--sqlite-commits",
    commits,
  ],
  cwd: dir,
  stdin: "null",
  stdout: "null",
  stderr: "piped",
}).spawn();
const reader = server.stderr.pipeThrough(new TextDecoderStream()).getReader();
let buffered = "";
let url = "";
let pid = 0;
while (!url) {
  const { value, done } = await reader.read();
  if (done) throw new Error(`the server exited:\n${buffered}`);
  buffered += value;
  const line = buffered.split("\n").find((l) => l.includes('"listening"'));
  if (line) ({ url, pid } = JSON.parse(line));
}

/** CPU seconds (user + system) of `/proc/<pid>/stat` or `/proc/<pid>/task/<pid>/stat`. */
function cpuOf(statPath: string): number {
  try {
    const stat = Deno.readTextFileSync(statPath);
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) / 100; // utime, stime in clock ticks (100/s)
  } catch {
    return NaN;
  }
}

/** CPU seconds the server process used so far (all its threads; Linux /proc). */
function serverCpu(): number {
  return cpuOf(`/proc/${pid}/stat`);
}

/**
 * CPU seconds of the server's main thread (its event loop: requests, the engine, and SQLite
 * commits unless they run in the commit worker), without its other threads.
 */
function loopCpu(): number {
  return cpuOf(`/proc/${pid}/task/${pid}/stat`);
}
// keep draining stderr
(async () => {
  while (!(await reader.read()).done) { /* drain */ }
})();

const stored = await (await fetch(`${url}/api/v1/flows`, {
  method: "POST",
  headers: { "content-type": "application/json" },
  body: JSON.stringify({ flow: FLOW }),
})).json();
const body = JSON.stringify({ flowId: stored.flowId, input: { q: "hello" } });

interface Result {
  clients: number;
  rps: number;
  /** Requests answered. */
  n: number;
  /** Server CPU µs per run (user + system). */
  cpuUs?: number;
  /** CPU µs per run of the server's main thread (its event loop). */
  loopUs?: number;
  p50: number;
  p90: number;
  p99: number;
  errors: number;
}

async function withWrk(clients: number, seconds: number): Promise<Result> {
  const script = `${dir}/post.lua`;
  await Deno.writeTextFile(
    script,
    `wrk.method = "POST"\nwrk.body = ${
      JSON.stringify(body)
    }\nwrk.headers["Content-Type"] = "application/json"\n`,
  );
  const out = await new Deno.Command("wrk", {
    args: ["-t1", `-c${clients}`, `-d${seconds}s`, "-s", script, "--latency", `${url}/api/v1/runs`],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  const ms = (label: string) => {
    const m = new RegExp(`^\\s*${label}%\\s+([\\d.]+)(us|ms|s)`, "m").exec(text);
    if (!m) return NaN;
    const v = Number(m[1]);
    return m[2] === "us" ? v / 1000 : m[2] === "s" ? v * 1000 : v;
  };
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(text)?.[1]);
  const n = Number(/(\d+) requests in/.exec(text)?.[1]);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(text)?.[1] ?? 0);
  const sockErr = /Socket errors: (.*)/.exec(text)?.[1];
  return {
    clients,
    rps,
    n,
    p50: ms("50"),
    p90: ms("90"),
    p99: ms("99"),
    errors: non2xx + (sockErr ? sockErr.match(/\d+/g)!.map(Number).reduce((a, b) => a + b) : 0),
  };
}

async function withDeno(clients: number, seconds: number): Promise<Result> {
  const lat: number[] = [];
  let errors = 0;
  const end = performance.now() + seconds * 1000;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: clients }, async () => {
    while (performance.now() < end) {
      const a = performance.now();
      const res = await fetch(`${url}/api/v1/runs`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body,
      });
      await res.arrayBuffer();
      if (res.status !== 200) errors++;
      lat.push(performance.now() - a);
    }
  }));
  const total = (performance.now() - t0) / 1000;
  lat.sort((a, b) => a - b);
  const q = (p: number) => lat[Math.min(lat.length - 1, Math.floor(lat.length * p))];
  return {
    clients,
    rps: lat.length / total,
    n: lat.length,
    p50: q(0.5),
    p90: q(0.9),
    p99: q(0.99),
    errors,
  };
}

const results: Result[] = [];
console.error(
  `store=${store} commits=${commits} tool=${
    useWrk ? "wrk" : "deno fetch"
  } duration=${duration}s load before: ${loadavg()}`,
);
for (const clients of levels) {
  // warm-up: JIT, connection pool, SQLite pages
  await (useWrk ? withWrk(clients, 2) : withDeno(clients, 2));
  const cpu0 = serverCpu();
  const loop0 = loopCpu();
  const r = await (useWrk ? withWrk(clients, duration) : withDeno(clients, duration));
  r.cpuUs = (serverCpu() - cpu0) / r.n * 1e6;
  r.loopUs = (loopCpu() - loop0) / r.n * 1e6;
  results.push(r);
}
console.error(`load after: ${loadavg()}`);
console.log(
  `| clients | runs/s | p50 ms | p90 ms | p99 ms | server CPU µs/run | event loop µs/run | errors |`,
);
console.log(
  `| ------- | ------ | ------ | ------ | ------ | ----------------- | ----------------- | ------ |`,
);
for (const r of results) {
  console.log(
    `| ${r.clients} | ${r.rps.toFixed(0)} | ${r.p50.toFixed(2)} | ${r.p90.toFixed(2)} | ${
      r.p99.toFixed(2)
    } | ${r.cpuUs!.toFixed(0)} | ${r.loopUs!.toFixed(0)} | ${r.errors} |`,
  );
}
server.kill("SIGTERM");
await server.status;
await Deno.remove(dir, { recursive: true });
