/**
 * The state of one run while it executes: input, variables, step results so far, and the
 * services steps use (routing, plugins, the state store, nested runs).
 * @module
 */
import type { JsonValue } from "../json/exact_json.ts";
import type { FlowResult } from "../core/flow_result.ts";
import type { ResolveScope } from "../flow/template.ts";
import type { EngineServices, Plugin } from "../plugins/plugin.ts";
import type { StateStore } from "../state/store.ts";
import type { Logger } from "../log.ts";
import type { CompiledFlow } from "./compile.ts";
import type { RunLimits } from "./step_call.ts";

/** A routed component: the plugin and the name the plugin knows it by (e.g. `/eval`). */
export interface RoutedComponent {
  plugin: Plugin;
  component: string;
}

/** Routes a step's component path (§2.3). */
export interface ComponentResolver {
  /**
   * The plugin and plugin-side component name for `component` given the resolved step `input`.
   * @throws {Error} `No matching rule found for component: /x` and other routing errors.
   */
  resolve(component: string, input: JsonValue): RoutedComponent;
}

/** Everything a step of one run needs. */
export interface RunContext {
  /** Hyphenated UUID. */
  runId: string;
  /** 64-hex blob id of the (original, un-overridden) flow. */
  flowId: string;
  compiled: CompiledFlow;
  input: JsonValue;
  /** Variables given to the run (§1.8). */
  variables: ReadonlyMap<string, JsonValue>;
  /** Results by step index; undefined until the step finishes. */
  results: (FlowResult | undefined)[];
  /** What templates read (input, results, variables). */
  scope: ResolveScope;
  /** Aborted when the run ends early (a step error) or is cancelled. */
  signal: AbortSignal;
  /** Engine services scoped to this run (blobs, nested flows, batches). */
  services: EngineServices;
  resolver: ComponentResolver;
  store: StateStore;
  log: Logger;
  /** Retry/timeout/concurrency limits of this run (issue 5, src/execution/step_call.ts). */
  limits?: RunLimits;
}

/** Builds the template scope of a run. */
export function makeScope(
  compiled: CompiledFlow,
  input: JsonValue,
  results: (FlowResult | undefined)[],
  variables: ReadonlyMap<string, JsonValue>,
): ResolveScope {
  const index = compiled.indexById;
  const defaults = compiled.variableDefaults;
  return {
    input,
    stepResult(stepId: string): FlowResult | undefined {
      const i = index.get(stepId);
      return i === undefined ? undefined : results[i];
    },
    variable: (name: string) => variables.get(name),
    variableDefault: (name: string) => defaults.get(name),
  };
}
