/**
 * How late a run timeout and a signal are handled while built-in work keeps the engine busy
 * (issue 10, item 1; target: within 100 ms). The shape is a `/builtin/map` over N items of a
 * one-step flow of `/builtin/create_messages`.
 *
 * 1. In process: `engine.run(flow, input, {timeoutMs: 1000})`; reported: when the result arrived
 *    minus 1000 ms.
 * 2. The CLI: `stepflow run` on the same flow; SIGTERM 1.5 s after the run began; reported: from
 *    the signal to the "SIGTERM: cancelling the run" line, and to the exit.
 *
 *   deno run -A bench/responsiveness.ts [--items 100000,300000] [--runs 3]
 *
 * Results are written down in docs/performance.md.
 * @module
 */
import { Engine } from "../src/execution/engine.ts";
import { parseConfigValue } from "../src/config/load.ts";
import { loadFlowText } from "../src/flow/load.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const args = Deno.args;
const itemCounts =
  (args[args.indexOf("--items") + 1] && args.includes("--items")
    ? args[args.indexOf("--items") + 1]
    : "100000,300000").split(",").map(Number);
const runs = args.includes("--runs") ? Number(args[args.indexOf("--runs") + 1]) : 3;

const FLOW = `schema: https://stepflow.org/schemas/v1/flow.json
name: big_map
description: a map over many built-in items
steps:
  - id: each
    component: /builtin/map
    input:
      items: { $from: { workflow: input }, path: items }
      workflow:
        $literal:
          schema: https://stepflow.org/schemas/v1/flow.json
          name: one
          steps:
            - id: m
              component: /builtin/create_messages
              input: { user_prompt: { $from: { workflow: input } } }
          output: { $from: { step: m } }
output: { $from: { step: each }, path: successful }
`;
const CONFIG = {
  plugins: { builtin: { type: "builtin" } },
  routes: { "/builtin/{*component}": [{ plugin: "builtin" }] },
};

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function inProcess(n: number): Promise<number> {
  const engine = await Engine.create(parseConfigValue(CONFIG, { workingDirectory: ROOT }));
  try {
    const flow = loadFlowText(FLOW, { format: "yaml" });
    const items = Array.from({ length: n }, (_, i) => String(i));
    const t = performance.now();
    const r = await engine.run(flow, { items }, { timeoutMs: 1000 });
    const late = performance.now() - t - 1000;
    if (r.outcome !== "failed" || r.error.code !== 524) {
      throw new Error(`expected RUN_TIMEOUT, got ${JSON.stringify(r).slice(0, 200)}`);
    }
    return late;
  } finally {
    await engine.close();
  }
}

async function cliSigterm(dir: string, n: number): Promise<{ handled: number; exited: number }> {
  await Deno.writeTextFile(
    `${dir}/input.json`,
    JSON.stringify({ items: Array.from({ length: n }, (_, i) => String(i)) }),
  );
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--quiet",
      `${ROOT}main.ts`,
      "run",
      "--flow",
      "flow.yaml",
      "--input",
      "input.json",
      "--verbose",
    ],
    cwd: dir,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let sent = 0;
  let handled = NaN;
  let started!: () => void;
  const running = new Promise<void>((r) => started = r);
  const reading = (async () => {
    const decoder = new TextDecoder();
    let buf = "";
    for await (const chunk of child.stderr) {
      buf += decoder.decode(chunk, { stream: true });
      if (buf.includes("run_id: ")) started();
      if (sent > 0 && Number.isNaN(handled) && buf.includes("SIGTERM: cancelling the run")) {
        handled = performance.now() - sent;
      }
    }
  })();
  await running;
  await new Promise((r) => setTimeout(r, 1500));
  sent = performance.now();
  child.kill("SIGTERM");
  await child.status;
  const exited = performance.now() - sent;
  await reading;
  return { handled, exited };
}

console.log(`responsiveness, Deno ${Deno.version.deno}, load ${Deno.loadavg()[0].toFixed(2)}`);
console.log(
  "| items | timeout lateness (median of %d) | SIGTERM handled after | CLI exit after |",
  runs,
);
console.log("| --- | --- | --- | --- |");
const dir = await Deno.makeTempDir({ prefix: "stepflow_resp_" });
try {
  await Deno.writeTextFile(`${dir}/flow.yaml`, FLOW);
  await Deno.writeTextFile(
    `${dir}/stepflow-config.yml`,
    `plugins:\n  builtin: { type: builtin }\nroutes:\n  "/builtin/{*component}": [{ plugin: builtin }]\n`,
  );
  for (const n of itemCounts) {
    const late: number[] = [];
    const handled: number[] = [];
    const exited: number[] = [];
    for (let i = 0; i < runs; i++) {
      late.push(await inProcess(n));
      const s = await cliSigterm(dir, n);
      handled.push(s.handled);
      exited.push(s.exited);
    }
    console.log(
      `| ${n} | ${median(late).toFixed(0)} ms | ${median(handled).toFixed(0)} ms | ${
        median(exited).toFixed(0)
      } ms |`,
    );
  }
} finally {
  await Deno.remove(dir, { recursive: true });
}
