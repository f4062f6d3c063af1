/**
 * Issue 17, goal 4: loading a flow written in YAML against the same flow in JSON.
 *
 * `deno run -A bench/yaml_load.ts [--sizes 1000,10000,20000] [--rounds 5] [--no-package]`
 *
 * For each size, two shapes (a chain: each step reads the previous one; a fan-out: every step
 * reads the workflow input and the output collects them all), written as a user writes them
 * (block mappings and sequences, flow-style references, quoted paths, a folded description). Each
 * round loads the flow with `loadFlowText` (parse with positions + the flow model) as
 *
 * - YAML: the default path (the fast reader for the common subset),
 * - YAML through the `yaml` package only (how every YAML file loaded before: the "before"),
 * - JSON (jsonc-parser with positions),
 *
 * interleaved, and prints each median and the ratios to JSON measured in the same run.
 * @module
 */
import { parseDocument } from "../src/core/document.ts";
import { loadFlowText, parseFlowValue } from "../src/flow/load.ts";
import { FLOW_SCHEMA_URL } from "../src/flow/model.ts";
import { readYamlFast } from "../src/core/yaml_fast.ts";
import { rawNumber } from "../src/json/exact_json.ts";

const args = Deno.args;
function opt(name: string, dflt: string): string {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
}
const sizes = opt("sizes", "1000,10000,20000").split(",").map(Number);
const rounds = Number(opt("rounds", "5"));
const withPackage = !args.includes("--no-package");

function chain(n: number): { yaml: string; json: string } {
  let yaml = `schema: ${FLOW_SCHEMA_URL}\nname: chain\ndescription: >\n  A chain of ${n} steps,\n` +
    `  each reading the previous one.\nsteps:\n`;
  const steps = [];
  for (let i = 0; i < n; i++) {
    const prev = i === 0
      ? "{ $from: { workflow: input }, path: prompt }"
      : `{ $from: { step: s${i - 1} }, path: "$.messages[0].content" }`;
    yaml += `  - id: s${i} # step ${i}\n    component: /builtin/create_messages\n    input:\n` +
      `      user_prompt: ${prev}\n      n: ${i}.0\n`;
    steps.push({
      id: `s${i}`,
      component: "/builtin/create_messages",
      input: {
        user_prompt: i === 0
          ? { $from: { workflow: "input" }, path: "prompt" }
          : { $from: { step: `s${i - 1}` }, path: "$.messages[0].content" },
        n: rawNumber(`${i}.0`),
      },
    });
  }
  yaml += `output: { $from: { step: s${n - 1} } }\n`;
  const json = JSON.stringify(
    {
      schema: FLOW_SCHEMA_URL,
      name: "chain",
      description: `A chain of ${n} steps, each reading the previous one.\n`,
      steps,
      output: { $from: { step: `s${n - 1}` } },
    },
    null,
    2,
  );
  return { yaml, json };
}

function fanOut(n: number): { yaml: string; json: string } {
  let yaml = `schema: ${FLOW_SCHEMA_URL}\nname: fan-out\nsteps:\n`;
  const steps = [];
  const output: Record<string, unknown> = {};
  let out = "output:\n";
  for (let i = 0; i < n; i++) {
    yaml += `  - id: s${i}\n    component: /builtin/create_messages\n    input:\n` +
      `      system_instructions: "You are helper ${i}."\n` +
      `      user_prompt:\n        $from: { workflow: input }\n        path: "$.prompts[${i}]"\n`;
    steps.push({
      id: `s${i}`,
      component: "/builtin/create_messages",
      input: {
        system_instructions: `You are helper ${i}.`,
        user_prompt: { $from: { workflow: "input" }, path: `$.prompts[${i}]` },
      },
    });
    out += `  r${i}: { $from: { step: s${i} }, path: messages }\n`;
    output[`r${i}`] = { $from: { step: `s${i}` }, path: "messages" };
  }
  yaml += out;
  const json = JSON.stringify({ schema: FLOW_SCHEMA_URL, name: "fan-out", steps, output }, null, 2);
  return { yaml, json };
}

function viaPackage(text: string): void {
  const doc = parseDocument(text, "yaml", "flow.yaml", { yamlPackageOnly: true });
  parseFlowValue(doc.value, doc.source, "flow.yaml");
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
}

function time(f: () => void): number {
  const t0 = performance.now();
  f();
  return performance.now() - t0;
}

console.log(
  `YAML vs JSON flow loading (loadFlowText), ${rounds} rounds interleaved, medians in ms; ` +
    `load average ${Deno.loadavg().map((x) => x.toFixed(1)).join(" ")}`,
);
console.log(
  "| shape    | steps  | YAML KB | JSON ms | YAML ms | YAML ÷ JSON |" +
    (withPackage ? " yaml package only ms | package ÷ JSON |" : ""),
);
console.log(
  "| -------- | ------ | ------- | ------- | ------- | ----------- |" +
    (withPackage ? " -------------------- | -------------- |" : ""),
);
for (const n of sizes) {
  for (const [shape, make] of [["chain", chain], ["fan-out", fanOut]] as const) {
    const { yaml, json } = make(n);
    if (!readYamlFast(yaml)) throw new Error(`${shape} ${n}: the fast reader declined the flow`);
    // warm up (and check that both read the same flow)
    const a = loadFlowText(yaml, { file: "flow.yaml" });
    const b = loadFlowText(json, { file: "flow.json" });
    if (JSON.stringify(a.raw) !== JSON.stringify(b.raw)) {
      throw new Error(`${shape} ${n}: YAML and JSON differ`);
    }
    const tj: number[] = [];
    const ty: number[] = [];
    const tp: number[] = [];
    for (let r = 0; r < rounds; r++) {
      tj.push(time(() => loadFlowText(json, { file: "flow.json" })));
      ty.push(time(() => loadFlowText(yaml, { file: "flow.yaml" })));
      if (withPackage) tp.push(time(() => viaPackage(yaml)));
    }
    const j = median(tj);
    const y = median(ty);
    let row = `| ${shape.padEnd(8)} | ${String(n).padStart(6)} | ${
      (yaml.length / 1024).toFixed(0).padStart(7)
    } | ${j.toFixed(1).padStart(7)} | ${y.toFixed(1).padStart(7)} | ${
      (y / j).toFixed(2).padStart(10)
    }× |`;
    if (withPackage) {
      const p = median(tp);
      row += ` ${p.toFixed(1).padStart(20)} | ${(p / j).toFixed(2).padStart(13)}× |`;
    }
    console.log(row);
  }
}
