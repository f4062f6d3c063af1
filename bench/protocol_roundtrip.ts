/**
 * Protocol benchmark (issue 3), in one run:
 * 1. stdio: median round trip of a no-op `components/execute` through the stepflow plugin to an
 *    SDK worker, against the floor: a bare newline-JSON echo process over the same kind of pipe,
 *    driven the way the plugin reads and writes (BYOB reader into a reused buffer + line
 *    splitter, stream writer).
 *    Also a whole engine step: `engine.run()` of a one-step flow calling the same `/noop` (what a
 *    flow's step costs: the run, the step pipeline, the state store, the plugin call).
 * 2. HTTP: the same through the HTTP transport to an SDK worker (`--http`), against a bare
 *    keep-alive loopback POST to an echo server in another process.
 *    The four contenders run interleaved in blocks, so load changes hit them alike.
 * 3. Throughput over stdio with 64 calls in flight, against the floor with 64 in flight
 *    (bench/_stdio_floor.ts), three rounds interleaved (issue 17 target: ≥ 0.9× the floor).
 * 4. The cost of exact-number parsing on an execute response line: `JSON.parse` against
 *    `parseMessage` (used by the peer) and `parseJson` (reviver on every value).
 *
 * Run: `deno run -A bench/protocol_roundtrip.ts` (`BENCH_N` calls each, default 20000).
 * Results are written down in docs/protocol.md.
 * @module
 */
import { StepflowPlugin } from "../src/plugins/stepflow/plugin.ts";
import type { StepflowPluginConfig } from "../src/config/model.ts";
import type { EngineServices, ExecuteContext } from "../src/plugins/plugin.ts";
import { LineSplitter } from "../src/protocol/line_splitter.ts";
import { parseJson } from "../src/json/exact_json.ts";
import { parseMessage } from "../src/protocol/parse_message.ts";
import type { Logger } from "../src/log.ts";
import { cpuNow, listenUrl, stdioFloor as pipelinedFloor } from "./_stdio_floor.ts";
import { Engine } from "../src/execution/engine.ts";
import { parseConfigValue } from "../src/config/load.ts";
import { loadFlowText } from "../src/flow/load.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const WORKERS = `${ROOT}tests/fixtures/workers`;
const N = Number(Deno.env.get("BENCH_N") ?? 20_000);
const WARMUP = 2_000;
const BLOCK = 20;

const quiet: Logger = {
  error: (m) => console.error(m),
  warn: (m) => console.error(m),
  info: () => {},
  debug: () => {},
  enabled: () => false,
};
const noEngine = {} as EngineServices;
const ctx: ExecuteContext = {
  runId: "0193a1b2-0000-7000-8000-000000000001",
  flowId: "9f".repeat(32),
  stepId: "noop",
  attempt: 1,
  signal: new AbortController().signal,
  engine: noEngine,
};
const denoEnv = { HOME: Deno.env.get("HOME") ?? "/root" };

/** A typical execute request line (what the plugin sends for the no-op). */
const LINE = JSON.stringify({
  jsonrpc: "2.0",
  id: crypto.randomUUID(),
  method: "components/execute",
  params: {
    component: "/noop",
    input: {},
    attempt: 1,
    observability: { run_id: ctx.runId, flow_id: ctx.flowId, step_id: ctx.stepId },
  },
}) + "\n";

interface Contender {
  call(): Promise<unknown>;
  stop(): Promise<void>;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/**
 * CPU µs per call between two {@linkcode cpuNow} readings: [this process, the children]. Only
 * one child works in a throughput round (the floor's echo or the plugin's worker); the others
 * idle.
 */
function cpuPerCall(
  a: Map<string, number>,
  b: Map<string, number>,
  calls: number,
): [number, number] {
  let children = 0;
  for (const [pid, v] of b) if (pid !== "self") children += v - (a.get(pid) ?? v);
  return [(b.get("self")! - a.get("self")!) * 1000 / calls, children * 1000 / calls];
}

/** Times `n` sequential calls of each contender, interleaved in blocks. Medians in µs. */
async function timeInterleaved(n: number, cs: Contender[]): Promise<number[]> {
  for (const c of cs) for (let i = 0; i < WARMUP; i++) await c.call();
  const samples: number[][] = cs.map(() => []);
  for (let done = 0; done < n; done += BLOCK) {
    for (const [k, c] of cs.entries()) {
      for (let i = 0; i < BLOCK; i++) {
        const a = performance.now();
        await c.call();
        samples[k].push(performance.now() - a);
      }
    }
  }
  return samples.map((s) => median(s) * 1000);
}

/** The stdio floor: the bare echo, driven as the plugin drives a worker. */
function stdioFloor(): Contender {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", `${ROOT}bench/protocol_echo_stdio.ts`],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
    clearEnv: true,
    env: denoEnv,
  }).spawn();
  const writer = child.stdin.getWriter();
  const reader = child.stdout.getReader({ mode: "byob" });
  const lines = new LineSplitter();
  let waiting: (() => void) | undefined;
  const pump = (async () => {
    let buf = new Uint8Array(1 << 16);
    for (;;) {
      const { value, done } = await reader.read(buf);
      if (done || !value) return;
      lines.push(value, (l) => {
        JSON.parse(l);
        waiting?.();
      });
      buf = new Uint8Array(value.buffer);
    }
  })();
  const bytes = new TextEncoder().encode(LINE);
  return {
    call: () => {
      const p = new Promise<void>((r) => waiting = r);
      writer.write(bytes);
      return p;
    },
    stop: async () => {
      await writer.close();
      await pump;
      await child.status;
    },
  };
}

/** The HTTP floor: a bare keep-alive POST to an echo server in another process. */
async function httpFloor(): Promise<Contender> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", "--allow-net=127.0.0.1", `${ROOT}bench/protocol_echo_http.ts`],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const url = await listenUrl(child);
  return {
    call: async () => {
      const r = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: LINE,
      });
      JSON.parse(await r.text());
    },
    stop: async () => {
      child.kill("SIGTERM");
      await child.status;
    },
  };
}

async function pluginContender(
  config: Partial<StepflowPluginConfig>,
  after?: () => Promise<void>,
): Promise<Contender & { plugin: StepflowPlugin }> {
  const plugin = new StepflowPlugin("bench", {
    type: "stepflow",
    args: [],
    env: {},
    ...config,
  } as StepflowPluginConfig);
  await plugin.init({ name: "bench", workingDirectory: WORKERS, engine: noEngine, log: quiet });
  return {
    plugin,
    call: () => plugin.execute("/noop", {}, ctx),
    stop: async () => {
      await plugin.close();
      await after?.();
    },
  };
}

async function throughput(p: StepflowPlugin, inFlight: number, total: number): Promise<number> {
  let next = 0;
  const worker = async () => {
    while (next < total) {
      next++;
      const r = await p.execute("/noop", {}, ctx);
      if (r.outcome !== "success") throw new Error(JSON.stringify(r));
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker)); // warm-up round
  next = 0;
  const a = performance.now();
  await Promise.all(Array.from({ length: inFlight }, worker));
  return total / ((performance.now() - a) / 1000);
}

function parseCost(): { plain: number; fast: number; exact: number } {
  const line = JSON.stringify({
    jsonrpc: "2.0",
    id: crypto.randomUUID(),
    result: { output: { words: 176, mean: 4.56, keywords: [{ word: "coast", count: 3 }] } },
  });
  const n = 200_000;
  const run = (f: (s: string) => unknown) => {
    for (let i = 0; i < 20_000; i++) f(line);
    const a = performance.now();
    for (let i = 0; i < n; i++) f(line);
    return (performance.now() - a) / n * 1e6; // ns
  };
  return { plain: run(JSON.parse), fast: run(parseMessage), exact: run(parseJson) };
}

const sFloor = stdioFloor();
const sOurs = await pluginContender({
  transport: "stdio",
  command: Deno.execPath(),
  args: ["run", "--quiet", "sdk_worker.ts"],
  env: denoEnv,
});
const hFloor = await httpFloor();
const hw = new Deno.Command(Deno.execPath(), {
  args: ["run", "--quiet", "-A", "sdk_worker.ts", "--http", "--port", "0"],
  cwd: WORKERS,
  stdout: "null",
  stderr: "piped",
}).spawn();
const hOurs = await pluginContender({ transport: "http", url: await listenUrl(hw) }, async () => {
  hw.kill("SIGTERM");
  await hw.status;
});

/** A whole engine step: a one-step flow calling the SDK worker's `/noop` over stdio. */
async function engineStep(): Promise<Contender> {
  const engine = await Engine.create(parseConfigValue({
    plugins: {
      w: {
        type: "stepflow",
        command: Deno.execPath(),
        args: ["run", "--quiet", "sdk_worker.ts"],
        env: denoEnv,
      },
    },
    routes: { "/w/{component}": [{ plugin: "w" }] },
  }, { workingDirectory: WORKERS }));
  const flow = loadFlowText(
    `schema: https://stepflow.org/schemas/v1/flow.json
steps:
  - { id: noop, component: /w/noop, input: {} }
output: { $from: { step: noop } }
`,
    { format: "yaml", file: "noop.yaml" },
  );
  return {
    call: async () => {
      const r = await engine.run(flow, {});
      if (r.outcome !== "success") throw new Error(JSON.stringify(r));
    },
    stop: () => engine.close(),
  };
}
const sStep = await engineStep();

const [floorStdio, oursStdio, floorHttp, oursHttp, stepStdio] = await timeInterleaved(N, [
  sFloor,
  sOurs,
  hFloor,
  hOurs,
  sStep,
]);
const TPUT_N = Number(Deno.env.get("BENCH_TPUT_N") ?? 100_000);
const pipelined = pipelinedFloor(() => {
  const id = crypto.randomUUID();
  return { id, text: LINE.trimEnd().replace(/"id":"[^"]*"/, `"id":"${id}"`) };
});
await pipelined.run(TPUT_N / 10, 64); // warm-up
const tputs: number[] = [];
const floorTputs: number[] = [];
/** CPU µs per call: [this process, child processes] of each round, floor and plugin. */
const floorCpu: [number, number][] = [];
const oursCpu: [number, number][] = [];
for (let round = 0; round < 3; round++) {
  let c0 = cpuNow();
  const a = performance.now();
  await pipelined.run(TPUT_N, 64);
  floorTputs.push(TPUT_N / ((performance.now() - a) / 1000));
  floorCpu.push(cpuPerCall(c0, cpuNow(), TPUT_N));
  c0 = cpuNow();
  tputs.push(await throughput(sOurs.plugin, 64, TPUT_N));
  oursCpu.push(cpuPerCall(c0, cpuNow(), 2 * TPUT_N)); // throughput() runs a warm-up round too
}
await pipelined.stop();
const tput = median(tputs);
const tputRatio = median(tputs.map((t, i) => t / floorTputs[i]));
for (const c of [sFloor, sOurs, hFloor, hOurs, sStep]) await c.stop();
const pc = parseCost();

const fmt = (x: number) => x.toFixed(1).padStart(7);
const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}x floor`;
console.log(`protocol round trip, median of ${N} sequential calls each, interleaved (µs)`);
console.log(`  stdio  floor (bare newline-JSON echo) ${fmt(floorStdio)}`);
console.log(
  `  stdio  plugin call (execute, no step) ${fmt(oursStdio)}   ${ratio(oursStdio, floorStdio)}`,
);
console.log(
  `  stdio  engine step (one-step flow run)  ${fmt(stepStdio)}   ${ratio(stepStdio, floorStdio)}`,
);
console.log(`  http   floor (bare keep-alive POST)   ${fmt(floorHttp)}`);
console.log(
  `  http   no-op components/execute       ${fmt(oursHttp)}   ${ratio(oursHttp, floorHttp)}`,
);
console.log(
  `throughput, stdio, 64 in flight: ${Math.round(tput)} executes/s; floor ${
    Math.round(median(floorTputs))
  }/s; ratio ${tputRatio.toFixed(2)}x floor (median of 3 interleaved rounds)`,
);
const cpuText = (c: [number, number]) => `${c[0].toFixed(1)} + ${c[1].toFixed(1)}`;
console.log(
  `  CPU µs per call (this process + children), by round: floor ${
    floorCpu.map(cpuText).join(", ")
  }; plugin ${oursCpu.map(cpuText).join(", ")} (load ${
    Deno.loadavg().map((x) => x.toFixed(1)).join(" ")
  })`,
);
console.log(
  `parse one execute response line: JSON.parse ${pc.plain.toFixed(0)} ns, parseMessage ${
    pc.fast.toFixed(0)
  } ns, parseJson ${pc.exact.toFixed(0)} ns`,
);
