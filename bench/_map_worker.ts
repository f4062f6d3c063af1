/**
 * The engine and flow of bench/map_rounds.ts and bench/map_kept.ts: `/builtin/map` over the SDK
 * worker's `/echo` (tests/fixtures/workers/sdk_worker.ts) through a stdio step service.
 * @module
 */
import { Engine } from "../src/execution/engine.ts";
import { parseConfigValue } from "../src/config/load.ts";
import { loadFlowText } from "../src/flow/load.ts";
import type { LoadedFlow } from "../src/flow/model.ts";

const ROOT = new URL("..", import.meta.url).pathname;

/** An engine with the built-ins and the SDK worker as step service `w` (`/w/{component}`). */
export function mapEngine(): Promise<Engine> {
  return Engine.create(parseConfigValue({
    plugins: {
      builtin: { type: "builtin" },
      w: {
        type: "stepflow",
        command: Deno.execPath(),
        args: ["run", "--quiet", "sdk_worker.ts"],
        env: { HOME: Deno.env.get("HOME") ?? "/root" },
      },
    },
    routes: {
      "/builtin/{*component}": [{ plugin: "builtin" }],
      "/w/{component}": [{ plugin: "w" }],
    },
  }, { workingDirectory: `${ROOT}tests/fixtures/workers` }));
}

/**
 * A flow mapping its input's `items` through `/w/echo` with `max_concurrency: concurrency`; the
 * item flow has one step, or two (the second echoing the first) with `twoSteps`. Output: how
 * many items succeeded.
 */
export function mapFlow(concurrency: number, twoSteps = false): LoadedFlow {
  const last = twoSteps
    ? `
            - { id: call2, component: /w/echo, input: { $from: { step: call } } }
          output: { $from: { step: call2 } }`
    : `
          output: { $from: { step: call } }`;
  return loadFlowText(
    `schema: https://stepflow.org/schemas/v1/flow.json
steps:
  - id: m
    component: /builtin/map
    input:
      items: { $from: { workflow: input }, path: items }
      max_concurrency: ${concurrency}
      workflow:
        $literal:
          schema: https://stepflow.org/schemas/v1/flow.json
          steps:
            - { id: call, component: /w/echo, input: { $from: { workflow: input } } }${last}
output: { $from: { step: m }, path: successful }
`,
    { format: "yaml", file: "map.yaml" },
  );
}
