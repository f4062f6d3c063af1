/**
 * What the progress line costs a run: the 10,000-step chain and fan-out of built-ins
 * (bench/_engine_shapes.ts) run on one engine in rounds of three, in a rotated order so a drift
 * of the machine's speed hits all: without an observer (`--quiet`), with an observer that has no
 * methods (what emitting the events costs the engine), and with the progress line of a terminal
 * (src/cli/progress.ts: counting every event, redrawn 10 times a second into a sink that counts
 * the bytes). Prints the median CPU time per run (user + system of the process: on a shared
 * machine far steadier than wall time) of each and the medians of the per-round ratios to quiet.
 *
 *   deno run -A --v8-flags=--expose-gc bench/progress_overhead.ts [--steps 10000] [--rounds 15]
 * @module
 */
import { cpuUsage } from "node:process";
import { Engine } from "../src/execution/engine.ts";
import { RunProgress } from "../src/cli/progress.ts";
import { benchConfig, chainFlow, fanOutFlow } from "./_engine_shapes.ts";

const args = Deno.args;
const arg = (name: string, dflt: number) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const steps = arg("--steps", 10_000);
const rounds = arg("--rounds", 15);

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const gc = () => (globalThis as { gc?: () => void }).gc?.();

for (const shape of ["chain", "fanout"] as const) {
  const flow = shape === "chain" ? chainFlow(steps) : fanOutFlow(steps);
  const engine = await Engine.create(benchConfig());
  let bytes = 0;
  let frames = 0;
  const progress = new RunProgress({
    mode: "tty",
    write: (s) => {
      bytes += s.length;
      frames++;
    },
    columns: () => 120,
    color: true,
    hook: false,
  });
  type Mode = "quiet" | "noop" | "progress";
  const noop = {}; // an observer with no methods: what the engine pays to emit events at all
  const once = async (mode: Mode) => {
    gc();
    const unobserve = mode === "quiet"
      ? undefined
      : engine.observe(mode === "noop" ? noop : progress);
    if (mode === "progress") progress.begin({ totalSteps: flow.steps.length });
    const c = cpuUsage();
    const r = await engine.run(flow, { prompt: "hello" });
    const used = cpuUsage(c);
    const ms = (used.user + used.system) / 1000;
    progress.end();
    unobserve?.();
    if (r.outcome !== "success") throw new Error(`run failed: ${JSON.stringify(r)}`);
    return ms;
  };
  const modes: Mode[] = ["quiet", "noop", "progress"];
  for (const m of modes) await once(m); // warm-up: every path compiled
  const times: Record<Mode, number[]> = { quiet: [], noop: [], progress: [] };
  const ratios: Record<Mode, number[]> = { quiet: [], noop: [], progress: [] };
  for (let i = 0; i < rounds; i++) {
    const t: Partial<Record<Mode, number>> = {};
    // each round in a rotated order, so none always runs first
    for (let k = 0; k < modes.length; k++) {
      const m = modes[(i + k) % modes.length];
      t[m] = await once(m);
    }
    for (const m of modes) {
      times[m].push(t[m]!);
      ratios[m].push(t[m]! / t.quiet!);
    }
  }
  const show = (xs: number[], digits: number) =>
    `${median(xs).toFixed(digits)} (${Math.min(...xs).toFixed(digits)}–${
      Math.max(...xs).toFixed(digits)
    })`;
  console.log(
    `${shape} ${steps}, ${rounds} rounds: CPU ms per run: quiet ${show(times.quiet, 1)}, ` +
      `no-op observer ${show(times.noop, 1)}, progress ${show(times.progress, 1)}; ` +
      `ratio to quiet: no-op ${show(ratios.noop, 3)}, progress ${show(ratios.progress, 3)}; ` +
      `${frames} frames, ${bytes} bytes drawn`,
  );
  await engine.close();
}
