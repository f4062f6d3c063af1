/**
 * Helpers for engine tests: a config with builtin + mock plugins, flows from YAML text.
 * @module
 */
import { Engine } from "../../src/execution/engine.ts";
import { parseConfigValue } from "../../src/config/load.ts";
import { type LoadedFlow, loadFlowText } from "../../src/flow/load.ts";
import type { JsonValue } from "../../src/json/exact_json.ts";
import type { FlowResult } from "../../src/core/flow_result.ts";

/** A config value with the builtin plugin (`/builtin/{*component}`) and a mock plugin. */
export function testConfig(
  mockComponents: Record<string, JsonValue> = {},
  extra: Record<string, JsonValue> = {},
) {
  return parseConfigValue({
    plugins: {
      builtin: { type: "builtin" },
      mock: { type: "mock", components: mockComponents },
    },
    routes: {
      "/builtin/{*component}": [{ plugin: "builtin" }],
      "/mock/{component}": [{ plugin: "mock" }],
    },
    ...extra,
  }, { workingDirectory: Deno.cwd() });
}

/** A mock component answering `behaviors` ([input, FlowResult] pairs). */
export function mockComponent(behaviors: [JsonValue, JsonValue][]): JsonValue {
  return { behaviors: behaviors.map(([input, result]) => ({ input, result })) };
}

/** Parses flow YAML (the `schema:` line is added). */
export function flow(yaml: string): LoadedFlow {
  return loadFlowText(`schema: https://stepflow.org/schemas/v1/flow.json\n${yaml}`, {
    format: "yaml",
    file: "test.yaml",
  });
}

/** Runs `f` on `input` with a fresh engine. */
export async function runOnce(
  f: LoadedFlow,
  input: JsonValue,
  mockComponents: Record<string, JsonValue> = {},
  options: Parameters<Engine["run"]>[2] = {},
): Promise<FlowResult> {
  const engine = await Engine.create(testConfig(mockComponents));
  try {
    return await engine.run(f, input, options);
  } finally {
    await engine.close();
  }
}
