/**
 * `stepflow visualize` rendering time (issue 15): graph + layout + SVG (and Mermaid for
 * comparison) for examples/hello and for generated flows of 50 and 300 steps where every step
 * reads the flow input, the step before it and the one three before (long edges: the worst
 * case of a layered layout). Results in docs/performance.md.
 *
 * ```sh
 * deno bench -A bench/visualize_bench.ts
 * ```
 * @module
 */
import { loadFlowFile } from "../src/flow/load.ts";
import type { Flow } from "../src/flow/model.ts";
import { renderFlow } from "../src/visualize/render.ts";

/** `n` steps; step i reads the input, step i-1 and step i-3; the output reads every 10th. */
function denseFlow(n: number): Flow {
  const steps = [];
  for (let i = 0; i < n; i++) {
    const input: Record<string, unknown> = { x: { $from: { workflow: "input" }, path: "x" } };
    if (i > 0) input.prev = { $from: { step: `s${i - 1}` }, path: "out" };
    if (i > 2) input.prev3 = { $from: { step: `s${i - 3}` } };
    steps.push({ id: `s${i}`, component: "/builtin/x", input });
  }
  const output: Record<string, unknown> = {};
  for (let i = 0; i < n; i += 10) output[`o${i}`] = { $from: { step: `s${i}` }, path: "r" };
  return {
    schema: "https://stepflow.org/schemas/v1/flow.json",
    name: `dense-${n}`,
    steps,
    output,
  } as unknown as Flow;
}

const hello = await loadFlowFile(new URL("../examples/hello/flow.yaml", import.meta.url).pathname);
const dense50 = denseFlow(50);
const dense300 = denseFlow(300);

Deno.bench("hello: mermaid", { group: "hello" }, () => {
  renderFlow(hello, { format: "mermaid" });
});
Deno.bench("hello: svg", { group: "hello", baseline: true }, () => {
  renderFlow(hello, { format: "svg" });
});
Deno.bench("hello: svg, nested flows expanded", { group: "hello" }, () => {
  renderFlow(hello, { format: "svg", expandNested: true });
});
Deno.bench("50 dense steps: svg", { group: "dense" }, () => {
  renderFlow(dense50, { format: "svg" });
});
Deno.bench("300 dense steps: svg", { group: "dense", n: 3, warmup: 1 }, () => {
  renderFlow(dense300, { format: "svg" });
});
