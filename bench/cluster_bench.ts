/**
 * Scale-out benchmark (issue 14): throughput of I/O-bound runs — each step waits on a step
 * service — with 1, 2 and 3 `stepflow serve` engines sharing one PostgreSQL database.
 *
 *   deno run -A bench/cluster_bench.ts [--pg postgres://...] [--runs 600] [--engines 1,2,3]
 *     [--steps 2] [--wait-ms 100] [--max-concurrent-runs 10] [--repeat 1]
 *
 * Each measurement: a fresh database; N engines started (each with its own step service, the
 * fixture tests/fixtures/workers/cluster_worker.ts, whose `/wait` answers after `--wait-ms`);
 * `--runs` runs of a chain of `--steps` such steps submitted (`wait: false`) round robin to the
 * engines, 50 requests in flight; the time from the first submission until the database says
 * every run completed. Each engine executes at most `--max-concurrent-runs` runs at once, so one
 * engine's throughput is bounded by its run slots × the steps' wait: the measurement says how
 * close N engines get to N times that.
 * @module
 */
import postgres from "postgres";

const args = Deno.args;
const opt = (name: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const num = (name: string, d: number) => Number(opt(name) ?? 0) || d;
const server = opt("--pg") ?? Deno.env.get("STEPFLOW_TEST_PG_URL");
const N = num("--runs", 600);
const STEPS = num("--steps", 2);
const WAIT_MS = num("--wait-ms", 100);
const SLOTS = num("--max-concurrent-runs", 10);
const REPEAT = num("--repeat", 1);
const ENGINES = (opt("--engines") ?? "1,2,3").split(",").map(Number);
const ROOT = new URL("..", import.meta.url).pathname;

if (!server) {
  console.error(
    "bench/cluster_bench.ts needs a server: --pg postgres://... or STEPFLOW_TEST_PG_URL",
  );
  Deno.exit(2);
}

interface Engine {
  url: string;
  child: Deno.ChildProcess;
}

async function startEngine(dir: string, db: string): Promise<Engine> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--quiet",
      `${ROOT}main.ts`,
      "serve",
      "--port",
      "0",
      "--store",
      db,
      "--max-concurrent-runs",
      String(SLOTS),
      "--shutdown-timeout",
      "0",
    ],
    cwd: dir,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`serve exited:\n${text}`);
    text += value;
    const line = text.split("\n").find((l) => l.includes('"listening"'));
    if (line) {
      // keep draining stderr
      (async () => {
        while (!(await reader.read()).done) { /* drain */ }
      })();
      return { url: JSON.parse(line).url, child };
    }
  }
}

async function measure(engines: number): Promise<number> {
  const admin = postgres(server!, { max: 1, onnotice: () => {} });
  const name = `stepflow_cbench_${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
  await admin.unsafe(`CREATE DATABASE ${name}`);
  const u = new URL(server!);
  u.pathname = `/${name}`;
  const db = u.toString();
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(
    `${dir}/stepflow-config.yml`,
    `plugins:
  svc:
    type: stepflow
    command: ${JSON.stringify(Deno.execPath())}
    args: [run, --quiet, -A, ${JSON.stringify(`${ROOT}tests/fixtures/workers/cluster_worker.ts`)}]
routes:
  "/svc/{*component}":
    - plugin: svc
`,
  );
  const list: Engine[] = [];
  const sql = postgres(db, { max: 1, onnotice: () => {} });
  try {
    // one at a time: the first migrates the new database
    list.push(await startEngine(dir, db));
    list.push(
      ...await Promise.all(Array.from({ length: engines - 1 }, () => startEngine(dir, db))),
    );
    const flow = {
      schema: "https://stepflow.org/schemas/v1/flow.json",
      name: "io",
      steps: Array.from({ length: STEPS }, (_, i) => ({
        id: `s${i}`,
        component: "/svc/wait",
        input: i === 0
          ? { ms: WAIT_MS }
          : { ms: { $from: { step: `s${i - 1}` }, path: "$.waited" } },
      })),
      output: { $from: { step: `s${STEPS - 1}` } },
    };
    const post = async (e: Engine, path: string, body: unknown) => {
      const r = await fetch(`${e.url}${path}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      });
      const j = await r.json();
      if (r.status >= 300) throw new Error(`${path}: ${r.status} ${JSON.stringify(j)}`);
      return j;
    };
    const { flowId } = await post(list[0], "/api/v1/flows", { flow });
    // warm-up: each engine's step service answers once
    await Promise.all(list.map((e) => post(e, "/api/v1/runs", { flowId, input: {} })));
    await sql`DELETE FROM runs`;
    const t0 = performance.now();
    let next = 0;
    await Promise.all(Array.from({ length: 50 }, async () => {
      while (next < N) {
        const i = next++;
        await post(list[i % list.length], "/api/v1/runs", { flowId, input: {}, wait: false });
      }
    }));
    for (;;) {
      const [{ done, bad }] = await sql`
        SELECT count(*) FILTER (WHERE status = 'completed')::int AS done,
          count(*) FILTER (WHERE status IN ('failed', 'cancelled'))::int AS bad FROM runs`;
      if (bad > 0) throw new Error(`${bad} run(s) did not complete`);
      if (done >= N) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    const ms = performance.now() - t0;
    const per = await sql`SELECT owner_id, count(*)::int AS n FROM runs GROUP BY owner_id`;
    console.error(
      `  ${engines} engine(s): ${N} runs in ${ms.toFixed(0)} ms; runs per engine: ${
        per.map((r) => r.n).join(", ")
      }`,
    );
    return N / (ms / 1000);
  } finally {
    await sql.end();
    for (const e of list) {
      try {
        e.child.kill("SIGTERM");
      } catch { /* gone */ }
      await e.child.status;
    }
    await admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.end();
    await Deno.remove(dir, { recursive: true });
  }
}

const rows: { engines: number; rps: number[] }[] = [];
for (const n of ENGINES) {
  const rps: number[] = [];
  for (let k = 0; k < REPEAT; k++) rps.push(await measure(n));
  rows.push({ engines: n, rps });
}
const load = (() => {
  try {
    return Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
  } catch {
    return "?";
  }
})();
console.log(
  `Scale-out: ${N} runs of ${STEPS} steps waiting ${WAIT_MS} ms each on a step service, --max-concurrent-runs ${SLOTS} per engine, Deno ${Deno.version.deno}, load ${load}`,
);
console.log("| engines | runs/s | vs 1 engine | ideal (slots × steps' wait) |");
console.log("| ---: | ---: | ---: | ---: |");
const base = Math.max(...rows[0].rps);
for (const r of rows) {
  const best = Math.max(...r.rps);
  const ideal = (r.engines * SLOTS * 1000) / (STEPS * WAIT_MS);
  console.log(
    `| ${r.engines} | ${r.rps.map((x) => x.toFixed(1)).join(", ")} | ${
      (best / base).toFixed(2)
    }x | ${ideal.toFixed(0)} |`,
  );
}
