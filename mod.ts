/**
 * Stepflow as a library: load a flow, build an engine from a config, run the flow.
 *
 * ```ts ignore
 * import { Engine, loadConfigForFlow, loadFlow } from "./mod.ts";
 *
 * const flow = await loadFlow("examples/hello/flow.yaml");
 * const engine = await Engine.create(await loadConfigForFlow({ flowPath: "examples/hello/flow.yaml" }));
 * try {
 *   const result = await engine.run(flow, { topic: "stepflow" });
 *   if (result.outcome === "success") console.log(result.result);
 * } finally {
 *   await engine.close();
 * }
 * ```
 *
 * Or in one call, finding the config as `stepflow run` does:
 * `await runFlow("examples/hello/flow.yaml", { topic: "stepflow" })`. To draw a flow:
 * `renderFlow(flow, { format: "svg" })` (or `"mermaid"`, `"dot"`). As a REST service (stepflow
 * 0.8's API, docs/server.md): `Deno.serve(createServer(engine).fetch)`, or `listen(engine, { port })`.
 *
 * Outside this repo, import the self-contained bundle `dist/mod.js` (`deno task bundle`), which
 * needs no `deno.json` (README: "As a library").
 * @module
 */
import { type LoadedFlow, loadFlowFile, loadFlowText, parseFlowValue } from "./src/flow/load.ts";
import type { DocumentFormat } from "./src/core/document.ts";
import { Engine, type RunOptions } from "./src/execution/engine.ts";
import {
  defaultConfig,
  loadConfigFile,
  loadConfigForFlow,
  parseConfigValue,
} from "./src/config/load.ts";
import type { LoadedConfig } from "./src/config/model.ts";
import type { Flow } from "./src/flow/model.ts";
import type { JsonValue } from "./src/json/exact_json.ts";
import type { FlowResult } from "./src/core/flow_result.ts";

export { Engine } from "./src/execution/engine.ts";
export type {
  EngineOptions,
  FlowLike,
  ResumeMode,
  ResumeOptions,
  RunHandle,
  RunOptions,
} from "./src/execution/engine.ts";
export { loadFlowFile, loadFlowText, parseFlowValue, serializeFlow } from "./src/flow/load.ts";
export type { LoadedFlow } from "./src/flow/load.ts";
export {
  defaultConfig,
  findConfig,
  loadConfigFile,
  loadConfigForFlow,
  parseConfigValue,
} from "./src/config/load.ts";
export type { Config, LoadedConfig } from "./src/config/model.ts";
export type { Flow, Step } from "./src/flow/model.ts";
export type {
  FlowError,
  FlowFailed,
  FlowResult,
  FlowSkipped,
  FlowSuccess,
} from "./src/core/flow_result.ts";
export { jsonEquals, parseJson, stringifyJson } from "./src/json/exact_json.ts";
export type { JsonValue } from "./src/json/exact_json.ts";
export { validateConfig, validateFlow } from "./src/config/preflight.ts";
export type { Diagnostic } from "./src/core/diagnostics.ts";
export {
  ExecutionError,
  FlowLoadError,
  PluginError,
  ProtocolError,
  RunNotResumableError,
  TransportError,
  UsageError,
  ValidationError,
} from "./src/errors.ts";
export type { EngineServices, ExecuteContext, Plugin } from "./src/plugins/plugin.ts";
export { registerPluginType } from "./src/plugins/registry.ts";
export {
  CANCELLED,
  ERROR_CODES,
  OUTPUT_TOO_LARGE,
  RUN_TIMEOUT,
  TIMEOUT,
  TRANSPORT_FAILED,
} from "./src/core/error_codes.ts";
export type { ErrorCodeInfo, FailureCategory } from "./src/core/error_codes.ts";
export { formatDuration, parseDuration } from "./src/core/duration.ts";
export { blobId } from "./src/state/blob_id.ts";
export { renderFlow, VISUALIZE_FORMATS } from "./src/visualize/render.ts";
export type { RenderFlowOptions, VisualizeFormat } from "./src/visualize/render.ts";
export { buildFlowGraph } from "./src/visualize/graph.ts";
export type {
  BuildGraphOptions,
  FlowGraph,
  GraphCluster,
  GraphEdge,
  GraphEdgeKind,
  GraphNode,
  GraphNodeKind,
} from "./src/visualize/graph.ts";
export { renderMermaid } from "./src/visualize/mermaid.ts";
export { renderDot } from "./src/visualize/dot.ts";
export { renderLayoutSvg, renderSvg } from "./src/visualize/svg.ts";
export type { SvgOptions } from "./src/visualize/svg.ts";
export { layoutGraph } from "./src/visualize/layout.ts";
export type { GraphLayout } from "./src/visualize/layout.ts";
export { statusClass, stepClass } from "./src/visualize/labels.ts";
export { createServer, SERVICE_VERSION } from "./src/server/server.ts";
export type { ServerOptions, StepflowServer } from "./src/server/server.ts";
export { listen } from "./src/server/listen.ts";
export type { ListeningService, ListenOptions } from "./src/server/listen.ts";
export type {
  ClaimedRun,
  ClaimOptions,
  EngineRecord,
  LeaseRenewal,
  StateStore,
} from "./src/state/store.ts";
export { openStateStore } from "./src/state/create.ts";

/**
 * Loads a flow from a file path, or from text when `options.text` is true.
 * @param source a path (`.yaml`, `.yml`, `.json`, `.jsonc`) or, with `text: true`, the flow text.
 * @param options.format the text's format (default yaml, which also reads JSON).
 * @throws {FlowLoadError} with file:line:col when the flow cannot be read or parsed.
 * @throws {TypeError} when `source` is not a string.
 */
export async function loadFlow(
  source: string,
  options: { text?: boolean; format?: DocumentFormat; file?: string } = {},
): Promise<LoadedFlow> {
  if (typeof source !== "string") {
    // (was: "Cannot read properties of undefined (reading 'charCodeAt')" for text)
    throw new TypeError(
      `loadFlow: source must be a file path or, with {text: true}, the flow's text; got ${
        source === null ? "null" : typeof source
      }`,
    );
  }
  if (options.text) return loadFlowText(source, { format: options.format, file: options.file });
  return await loadFlowFile(source);
}

/**
 * Builds a {@linkcode LoadedConfig} from a config object (as in `stepflow-config.yml`).
 * @param workingDirectory where relative paths resolve. @default Deno.cwd()
 * @throws {FlowLoadError} when the value is not a valid config.
 */
export function configFromValue(
  value: JsonValue,
  workingDirectory: string = Deno.cwd(),
): LoadedConfig {
  return parseConfigValue(value, { workingDirectory });
}

/**
 * Runs a flow once on a fresh engine (started and closed around the run).
 *
 * ```ts ignore
 * const result = await runFlow("flow.yaml", { who: "Ada" }); // config found as `stepflow run` does
 * ```
 *
 * @param flow a flow file path (`.yaml`, `.yml`, `.json`, `.jsonc`), a flow from
 *   {@linkcode loadFlow}, or a flow object (as in a flow file; it is validated first).
 * @param options.config a {@linkcode LoadedConfig}, a config object (as in
 *   `stepflow-config.yml`) or a config file path. Default, for a flow
 *   read from a file: the config `stepflow run` would find (next to the flow, then in the current
 *   directory); otherwise, or when there is none, 0.8's default config: the builtin plugin with
 *   **no routes** (every step then fails with `No matching rule found for component`).
 * @returns the FlowResult (problems of the flow's steps are `failed` results, not throws).
 * @throws {FlowLoadError} when the flow or config cannot be read or is not a valid flow/config
 *   (the message names the JSON path, e.g. `$.steps: expected a list, got the number 5`).
 * @throws {TypeError} when `flow` is neither a path nor an object.
 * @throws {Error} when the engine cannot start (a plugin fails to start).
 */
export async function runFlow(
  flow: Flow | LoadedFlow | string,
  input: JsonValue,
  options: RunOptions & { config?: LoadedConfig | { [key: string]: JsonValue } | string } = {},
): Promise<FlowResult> {
  const loaded = typeof flow === "string" ? await loadFlowFile(flow) : checkedFlow(flow);
  const file = "file" in loaded && typeof loaded.file === "string" ? loaded.file : undefined;
  const given = options.config;
  const config = typeof given === "string"
    ? await loadConfigFile(given)
    : given !== undefined
    ? (isLoadedConfig(given) ? given : configFromValue(given))
    : (file !== undefined ? await loadConfigForFlow({ flowPath: file }) : defaultConfig());
  const engine = await Engine.create(config);
  try {
    return await engine.run(loaded, input, options);
  } finally {
    await engine.close();
  }
}

/**
 * A flow given to {@linkcode runFlow} as an object: a {@linkcode LoadedFlow} as it is, anything
 * else checked against the flow model (a plain object from JavaScript may be anything).
 */
function checkedFlow(flow: Flow | LoadedFlow): Flow | LoadedFlow {
  if (flow === null || typeof flow !== "object" || Array.isArray(flow)) {
    throw new TypeError(
      `runFlow: flow must be a flow file path, a flow from loadFlow(), or a flow object; got ${
        flow === null ? "null" : Array.isArray(flow) ? "an array" : typeof flow
      }`,
    );
  }
  if (!("schema" in flow) && "flow" in flow) return flow;
  return parseFlowValue(flow as unknown as JsonValue);
}

function isLoadedConfig(c: LoadedConfig | { [key: string]: JsonValue }): c is LoadedConfig {
  return c !== null && typeof c === "object" && "config" in c && "workingDirectory" in c;
}
