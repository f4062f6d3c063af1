/**
 * `/builtin/map` over a step service (issue 17, goal 1): 10,000 items, `max_concurrency: 16`,
 * each item flow one step calling the SDK worker's `/echo` (tests/fixtures/workers/sdk_worker.ts),
 * against the floor measured in the same run: a bare newline-JSON echo process (stdio) or a bare
 * keep-alive echo server (HTTP) driven with 16 requests in flight, each carrying the same
 * execute request the engine sends.
 *
 * ```sh
 * deno run -A bench/map_stepservice.ts [--items 10000] [--concurrency 16] [--rounds 5] [--warmup 1] [--no-http]
 * ```
 *
 * Also over stdio: the item calls through the stepflow plugin alone (no engine; the transport's
 * share of the map's cost), and the same map whose item flow has a second step nothing needs: its item runs
 * go through the scheduler, as every item run did before one-step item flows skipped it (issue
 * 17), so the before/after of that change is measured in the same run.
 *
 * Each round times every contender once, in turn (floor, map, scheduled, plugin calls; stdio then
 * HTTP), after `--warmup` rounds (default 1); the report gives items/s per round and the ratio map ÷
 * floor of each round, then the medians. Results go in docs/performance.md.
 *
 * Each contender's page faults per item in this process are shown too (`pf`, Linux): while the
 * engines' heap grows toward its steady size (their stores keep the last runs' item runs, see
 * src/state/memory.ts), each new heap page is faulted in, and a fault costs 12-20 µs on the VM
 * these figures come from. Many warm-up rounds (`--warmup 40`) measure the steady state of a
 * long-lived process; few measure a young one (a CLI run).
 * @module
 */
import { Engine } from "../src/execution/engine.ts";
import { parseConfigValue } from "../src/config/load.ts";
import { loadFlowText } from "../src/flow/load.ts";
import { cpuNow, type Floor, inFlight, listenUrl, stdioFloor } from "./_stdio_floor.ts";
import { StepflowPlugin } from "../src/plugins/stepflow/plugin.ts";
import type { StepflowPluginConfig } from "../src/config/model.ts";
import type { EngineServices } from "../src/plugins/plugin.ts";
import type { Logger } from "../src/log.ts";
import type { JsonValue } from "../src/json/exact_json.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const WORKERS = `${ROOT}tests/fixtures/workers`;

function arg(name: string, dflt: string): string {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 ? Deno.args[i + 1] : dflt;
}
const ITEMS = Number(arg("items", "10000"));
const CONC = Number(arg("concurrency", "16"));
const ROUNDS = Number(arg("rounds", "5"));
const WARMUP = Number(arg("warmup", "1"));
const HTTP = !Deno.args.includes("--no-http");
const denoEnv = { HOME: Deno.env.get("HOME") ?? "/root" };

const runId = crypto.randomUUID();
/** The execute request the engine sends for item `i` (same fields, same size). */
function request(i: number): { id: string; text: string } {
  const id = crypto.randomUUID();
  const text = JSON.stringify({
    jsonrpc: "2.0",
    id,
    method: "components/execute",
    params: {
      component: "/echo",
      input: { x: i },
      attempt: 1,
      observability: { run_id: runId, flow_id: "9f".repeat(32), step_id: "call" },
    },
  });
  return { id, text };
}

/** The HTTP floor: bare keep-alive POSTs to an echo server in another process. */
async function httpFloor(): Promise<Floor> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", "--allow-net=127.0.0.1", `${ROOT}bench/protocol_echo_http.ts`],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const url = await listenUrl(child);
  const call = async (i: number) => {
    const r = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: request(i).text,
    });
    JSON.parse(await r.text());
  };
  return {
    run: (n, k) => inFlight(n, k, call),
    stop: async () => {
      child.kill("SIGTERM");
      await child.status;
    },
  };
}

const FLOW = `schema: https://stepflow.org/schemas/v1/flow.json
steps:
  - id: each
    component: /builtin/map
    input:
      workflow:
        $literal:
          schema: https://stepflow.org/schemas/v1/flow.json
          steps:
            - id: call
              component: /w/echo
              input: { $from: { workflow: input } }
__EXTRA__
          output: { $from: { step: call } }
      items: { $from: { workflow: input }, path: items }
      max_concurrency: ${CONC}
output: { $from: { step: each }, path: successful }
`;

/**
 * A second step nothing needs (never run) sends each item run through the scheduler, as every
 * item run went before one-step item flows skipped it: the "before" of the same run.
 */
const UNUSED_STEP = `
            - id: unused
              component: /builtin/create_messages
              input: { user_prompt: never run }`;

async function mapContender(
  plugin: Record<string, JsonValue>,
  after?: () => Promise<void>,
  scheduled = false,
) {
  const config = parseConfigValue({
    plugins: { builtin: { type: "builtin" }, w: plugin },
    routes: {
      "/builtin/{*component}": [{ plugin: "builtin" }],
      "/w/{component}": [{ plugin: "w" }],
    },
  }, { workingDirectory: WORKERS });
  const engine = await Engine.create(config);
  const flow = loadFlowText(FLOW.replace("__EXTRA__", scheduled ? UNUSED_STEP : ""), {
    format: "yaml",
    file: "map_stepservice.yaml",
  });
  const items = Array.from({ length: ITEMS }, (_, i) => ({ x: i }));
  return {
    run: async () => {
      const r = await engine.run(flow, { items } as unknown as JsonValue);
      if (r.outcome !== "success" || r.result !== ITEMS) {
        throw new Error(`map failed: ${JSON.stringify(r).slice(0, 500)}`);
      }
    },
    stop: async () => {
      await engine.close();
      await after?.();
    },
  };
}

interface Timed {
  /** items/s */
  rate: number;
  /** CPU µs per item in this process (the engine, or the floor's driver). */
  cpuHere: number;
  /** CPU µs per item in the child processes (the worker, or the echo). */
  cpuChildren: number;
  /** Page faults per item in this process. */
  faults: number;
}

/** Minor page faults of this process so far (Linux; 0 elsewhere). */
function minorFaults(): number {
  try {
    return Number(Deno.readTextFileSync("/proc/self/stat").split(") ")[1].split(" ")[7]);
  } catch {
    return 0;
  }
}

async function timed(f: () => Promise<void>): Promise<Timed> {
  const c0 = cpuNow();
  const f0 = minorFaults();
  const a = performance.now();
  await f();
  const ms = performance.now() - a;
  const faults = (minorFaults() - f0) / ITEMS;
  const c1 = cpuNow();
  let children = 0;
  for (const [pid, v] of c1) if (pid !== "self") children += v - (c0.get(pid) ?? v);
  return {
    rate: ITEMS / (ms / 1000),
    cpuHere: (c1.get("self")! - c0.get("self")!) * 1000 / ITEMS,
    cpuChildren: children * 1000 / ITEMS,
    faults,
  };
}

const sFloor = stdioFloor(request);
const sMap = await mapContender({
  type: "stepflow",
  command: Deno.execPath(),
  args: ["run", "--quiet", "sdk_worker.ts"],
  env: denoEnv,
});
const sSched = await mapContender(
  {
    type: "stepflow",
    command: Deno.execPath(),
    args: ["run", "--quiet", "sdk_worker.ts"],
    env: denoEnv,
  },
  undefined,
  true,
);
/**
 * The stepflow plugin alone over stdio: the item's `components/execute` calls with 16 in flight,
 * no engine around them (each call with a fresh abort signal, as a map item's step has). The
 * part of the map's cost that is the transport; the rest is the engine's item runs.
 */
async function pluginContender(): Promise<Floor> {
  const plugin = new StepflowPlugin("w", {
    type: "stepflow",
    transport: "stdio",
    command: Deno.execPath(),
    args: ["run", "--quiet", "sdk_worker.ts"],
    env: denoEnv,
  } as StepflowPluginConfig);
  const quiet: Logger = {
    error: (m) => console.error(m),
    warn: (m) => console.error(m),
    info: () => {},
    debug: () => {},
    enabled: () => false,
  };
  await plugin.init({
    name: "w",
    workingDirectory: WORKERS,
    engine: {} as EngineServices,
    log: quiet,
  });
  const call = async (i: number) => {
    const r = await plugin.execute("/echo", { x: i }, {
      runId: crypto.randomUUID(),
      flowId: "9f".repeat(32),
      stepId: "call",
      attempt: 1,
      signal: new AbortController().signal,
      engine: {} as EngineServices,
    });
    if (r.outcome !== "success") throw new Error(`plugin call failed: ${JSON.stringify(r)}`);
  };
  return { run: (n, k) => inFlight(n, k, call), stop: () => plugin.close() };
}

const sPlugin = await pluginContender();
let hFloor: Floor | undefined;
let hMap: Awaited<ReturnType<typeof mapContender>> | undefined;
if (HTTP) {
  hFloor = await httpFloor();
  const hw = new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", "-A", "sdk_worker.ts", "--http", "--port", "0"],
    cwd: WORKERS,
    stdout: "null",
    stderr: "piped",
  }).spawn();
  hMap = await mapContender(
    { type: "stepflow", transport: "http", url: await listenUrl(hw) },
    async () => {
      hw.kill("SIGTERM");
      await hw.status;
    },
  );
}

const rows: { sf: Timed; sp: Timed; sm: Timed; ss: Timed; hf?: Timed; hm?: Timed }[] = [];
for (let round = 1 - WARMUP; round <= ROUNDS; round++) {
  const sf = await timed(() => sFloor.run(ITEMS, CONC));
  const sm = await timed(sMap.run);
  const ss = await timed(sSched.run);
  const sp = await timed(() => sPlugin.run(ITEMS, CONC));
  const row: (typeof rows)[number] = { sf, sp, sm, ss };
  if (hFloor && hMap) {
    row.hf = await timed(() => hFloor!.run(ITEMS, CONC));
    row.hm = await timed(hMap.run);
  }
  if (round > 0) rows.push(row); // rounds up to 0 warm up
}
await sFloor.stop();
await sMap.stop();
await sSched.stop();
await sPlugin.stop();
await hFloor?.stop();
await hMap?.stop();

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const k = (t: Timed) => `${(t.rate / 1000).toFixed(1)}k`.padStart(6);
const cpu = (t: Timed) =>
  `${t.cpuHere.toFixed(0).padStart(3)}+${t.cpuChildren.toFixed(0).padEnd(3)}`;
const load = Deno.loadavg().map((x) => x.toFixed(1)).join(" ");
console.log(
  `map over a step service: ${ITEMS} items, max_concurrency ${CONC}; items/s and CPU µs per ` +
    `item (this process + children) (load ${load})`,
);
console.log(
  `round  stdio floor        plugin calls       ratio  stdio map          ratio  scheduled items    ratio${
    HTTP ? "  http floor         http map           ratio" : ""
  }`,
);
rows.forEach((r, i) => {
  let line = `${String(i + 1).padStart(5)}  ${k(r.sf)} ${cpu(r.sf)}  ${k(r.sp)} ${cpu(r.sp)}  ${
    (r.sp.rate / r.sf.rate).toFixed(2)
  }   ${k(r.sm)} ${cpu(r.sm)}  ${(r.sm.rate / r.sf.rate).toFixed(2)}   ${k(r.ss)} ${cpu(r.ss)}  ${
    (r.ss.rate / r.sf.rate).toFixed(2)
  }`;
  if (r.hf !== undefined) {
    line += `   ${k(r.hf)} ${cpu(r.hf)}  ${k(r.hm!)} ${cpu(r.hm!)}  ${
      (r.hm!.rate / r.hf.rate).toFixed(2)
    }`;
  }
  console.log(line);
});
const medCpu = (f: (r: (typeof rows)[number]) => Timed) =>
  `${median(rows.map((r) => f(r).cpuHere)).toFixed(0)} + ${
    median(rows.map((r) => f(r).cpuChildren)).toFixed(0)
  } µs`;
console.log(
  `median CPU per item (this process + children): stdio floor ${medCpu((r) => r.sf)}, ` +
    `plugin calls ${medCpu((r) => r.sp)}, map ${medCpu((r) => r.sm)}, scheduled ${
      medCpu((r) => r.ss)
    }${HTTP ? `; http floor ${medCpu((r) => r.hf!)}, http map ${medCpu((r) => r.hm!)}` : ""}`,
);
const medFaults = (f: (r: (typeof rows)[number]) => Timed) =>
  median(rows.map((r) => f(r).faults)).toFixed(2);
console.log(
  `median page faults per item in this process: stdio floor ${
    medFaults((r) => r.sf)
  }, plugin calls ${medFaults((r) => r.sp)}, map ${medFaults((r) => r.sm)}, scheduled ${
    medFaults((r) => r.ss)
  }${
    HTTP ? `; http floor ${medFaults((r) => r.hf!)}, http map ${medFaults((r) => r.hm!)}` : ""
  } (after ${WARMUP} warm-up round${WARMUP === 1 ? "" : "s"})`,
);
const cpuRatio = (m: Timed, f: Timed) => (f.cpuHere + f.cpuChildren) / (m.cpuHere + m.cpuChildren);
let summary = `median ratio ÷ floor: plugin calls alone ${
  median(rows.map((r) => r.sp.rate / r.sf.rate)).toFixed(2)
}x items/s, ${median(rows.map((r) => cpuRatio(r.sp, r.sf))).toFixed(2)}x CPU; map: stdio ${
  median(rows.map((r) => r.sm.rate / r.sf.rate)).toFixed(2)
}x items/s (target >= 0.8), ${
  median(rows.map((r) => cpuRatio(r.sm, r.sf))).toFixed(2)
}x CPU; scheduled item runs ${median(rows.map((r) => r.ss.rate / r.sf.rate)).toFixed(2)}x, ${
  median(rows.map((r) => cpuRatio(r.ss, r.sf))).toFixed(2)
}x CPU; one-step path ÷ scheduled: ${
  median(rows.map((r) => r.sm.rate / r.ss.rate)).toFixed(2)
}x items/s`;
if (HTTP) {
  summary += `; http ${median(rows.map((r) => r.hm!.rate / r.hf!.rate)).toFixed(2)}x items/s, ${
    median(rows.map((r) => cpuRatio(r.hm!, r.hf!))).toFixed(2)
  }x CPU`;
}
console.log(summary);
console.log(
  "(CPU ratio: floor CPU per item ÷ map CPU per item, both processes; 1 = as cheap as the floor)",
);
