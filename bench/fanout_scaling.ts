/**
 * Fan-out cost per step from 1,000 to 100,000 steps (issue 17, goal 3): the fan-out shape of
 * bench/_engine_shapes.ts (N independent `create_messages` steps joined by one `put_blob`), each
 * size in its own process, warm runs after a cold one. Reports wall and CPU µs per step, the
 * ratio of each size's cost to the 1,000-step one (target: within 1.3× up to 100,000), and the
 * share of the timed wall time spent in garbage-collection pauses (V8 `--trace-gc`; target below
 * 20% on the 100,000-step shape). `--also DIR` runs the same children from another checkout
 * (e.g. `main` exported to DIR), interleaved size by size: before and after in one run.
 * `--shape chain` times the chain shape instead (N steps, each reading the previous one's output).
 *
 * ```sh
 * deno run -A bench/fanout_scaling.ts [--sizes 1000,10000,100000] [--runs 5] [--also DIR] \
 *   [--shape fanout|chain]
 * ```
 * @module
 */
import { Engine } from "../src/execution/engine.ts";
import { benchConfig, chainFlow, fanOutFlow } from "./_engine_shapes.ts";

const args = Deno.args;
const opt = (name: string, dflt: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const SIZES = opt("sizes", "1000,10000,100000").split(",").map(Number);
const RUNS = Number(opt("runs", "5"));
const SHAPE = opt("shape", "fanout");
if (SHAPE !== "fanout" && SHAPE !== "chain") {
  throw new Error(`--shape: fanout or chain, not ${SHAPE}`);
}
const MARK = "@@fanout_scaling";

function cpuMs(): number {
  const f = Deno.readTextFileSync("/proc/self/stat").split(") ")[1].split(" ");
  return (Number(f[11]) + Number(f[12])) * 10;
}

interface Sample {
  steps: number;
  /** warm runs: µs per step, wall and CPU */
  wallUs: number[];
  cpuUs: number[];
}

async function child(n: number): Promise<void> {
  const flow = SHAPE === "chain" ? chainFlow(n) : fanOutFlow(n);
  const engine = await Engine.create(benchConfig(false));
  const gc = (globalThis as { gc?: () => void }).gc;
  try {
    const first = await engine.run(flow, { prompt: "hello" });
    if (first.outcome !== "success") throw new Error(`run failed: ${JSON.stringify(first)}`);
    const steps = SHAPE === "chain" ? n : n + 1;
    const s: Sample = { steps, wallUs: [], cpuUs: [] };
    for (let i = 0; i < RUNS; i++) {
      gc?.();
      const c = cpuMs();
      const t = performance.now();
      console.log(`${MARK} start ${t}`);
      await engine.run(flow, { prompt: "hello" });
      const ms = performance.now() - t;
      const cpu = cpuMs() - c;
      console.log(`${MARK} end ${t + ms}`);
      s.wallUs.push(ms * 1000 / steps);
      s.cpuUs.push(cpu * 1000 / steps);
    }
    gc?.(); // the anchor that closes the last timed run (see gcShare)
    console.log(`${MARK} result ${JSON.stringify(s)}`);
  } finally {
    await engine.close();
  }
}

/**
 * GC pause ms inside the timed runs of a child's `--trace-gc` output, and the timed ms. V8 prints
 * its trace through its own buffered stream, with timestamps on its own clock (tens to hundreds of
 * ms off `performance.now()`), so the runs are found by anchors instead: the child forces a full
 * GC (`gc()`, reason "testing") right before each timed run and once after the last, and the
 * pauses between two consecutive forced GCs belong to the run between them (the forced GCs
 * themselves are outside every run and not counted).
 */
function gcShare(out: string): { gcMs: number; timedMs: number } {
  // V8's lines and ours can share a line (two writers on one stdout): match anywhere
  let timedMs = 0;
  let start = 0;
  for (const m of out.matchAll(new RegExp(`${MARK} (start|end) ([\\d.]+)`, "g"))) {
    if (m[1] === "start") start = Number(m[2]);
    else timedMs += Number(m[2]) - start;
  }
  let gcMs = 0;
  let anchors = 0;
  // "[pid:0x..]  1234 ms: Scavenge 12.3 (14.5) -> 11.2 (15.5) MB, pooled: 0 MB, 1.23 / 0.00 ms
  //  (average mu = 0.9, current mu = 0.9) allocation failure; ..."
  const gcLine =
    /\]\s+\d+ ms: [^\n]*?MB, (?:pooled: [\d.]+ MB, )?([\d.]+) \/ [\d.]+ ms [^)\n]*\) ?([a-z]*)/g;
  for (const m of out.matchAll(gcLine)) {
    if (m[2] === "testing") anchors++;
    else if (anchors >= 1 && anchors <= RUNS) gcMs += Number(m[1]);
  }
  return { gcMs, timedMs };
}

if (args.includes("--child")) {
  await child(Number(opt("child", "1000")));
} else {
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const self = import.meta.filename ?? new URL(import.meta.url).pathname;
  // --also DIR: the same children from another checkout (its engine, this file copied there),
  // interleaved with these, size by size
  const also = args.includes("--also") ? opt("also", "").replace(/\/?$/, "/") : "";
  const trees: [string, string][] = [["this tree", self]];
  if (also !== "") {
    const copy = `${also}bench/fanout_scaling.ts`;
    await Deno.copyFile(self, copy);
    trees.push([also, copy]);
  }
  const rows: { tree: string; s: Sample; gc: number }[] = [];
  for (const n of SIZES) {
    for (const [tree, file] of trees) {
      const out = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          "--v8-flags=--expose-gc,--trace-gc",
          file,
          "--child",
          String(n),
          "--runs",
          String(RUNS),
          "--shape",
          SHAPE,
        ],
        stderr: "inherit",
      }).output();
      const text = new TextDecoder().decode(out.stdout);
      if (!out.success) {
        console.error(text.slice(-2000));
        Deno.exit(1);
      }
      const s = JSON.parse(new RegExp(`${MARK} result (\\{.*\\})`).exec(text)![1]) as Sample;
      const g = gcShare(text);
      rows.push({ tree, s, gc: g.gcMs / g.timedMs });
    }
  }
  console.log(
    `${
      SHAPE === "chain" ? "chain" : "fan-out"
    } scaling, warm medians of ${RUNS} runs per size (load ${
      Deno.loadavg().map((x) => x.toFixed(1)).join(" ")
    })`,
  );
  console.log(
    "| tree | steps | wall µs/step | CPU µs/step | wall ÷ smallest | CPU ÷ smallest | GC pauses |",
  );
  console.log("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
  for (const r of rows) {
    const base = rows.find((b) => b.tree === r.tree)!;
    const w = median(r.s.wallUs);
    const c = median(r.s.cpuUs);
    console.log(
      `| ${r.tree} | ${r.s.steps} | ${w.toFixed(2)} | ${c.toFixed(2)} | ${
        (w / median(base.s.wallUs)).toFixed(2)
      } | ${(c / median(base.s.cpuUs)).toFixed(2)} | ${(r.gc * 100).toFixed(0)}% |`,
    );
  }
}
