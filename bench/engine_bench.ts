/**
 * `deno bench` entries for the engine: one run of a 10,000-step chain and of a 10,000-step
 * fan-out (+1 join) of built-in steps, next to the same shapes as plain async no-op calls.
 * Steps per second and peak RSS: `deno run -A bench/engine_report.ts` (docs/performance.md).
 * @module
 */
import { Engine } from "../src/execution/engine.ts";
import { benchConfig, chainFloor, chainFlow, fanOutFloor, fanOutFlow } from "./_engine_shapes.ts";

const N = 10_000;
const engine = await Engine.create(benchConfig());
const chain = chainFlow(N);
const fanOut = fanOutFlow(N);
// Compile both flows before timing.
await engine.run(chain, { prompt: "hello" });
await engine.run(fanOut, { prompt: "hello" });

Deno.bench("engine: 10,000-step chain", { group: "chain", baseline: false }, async () => {
  await engine.run(chain, { prompt: "hello" });
});
Deno.bench("floor: 10,000 chained async no-ops", { group: "chain", baseline: true }, async () => {
  await chainFloor(N);
});
Deno.bench("engine: 10,000-step fan-out + join", { group: "fanout" }, async () => {
  await engine.run(fanOut, { prompt: "hello" });
});
Deno.bench("floor: 10,001 parallel async no-ops", { group: "fanout", baseline: true }, async () => {
  await fanOutFloor(N + 1);
});

globalThis.addEventListener("unload", () => {
  engine.close();
});
