/**
 * The Plugin interface: how the engine reaches components (built-ins, step services, MCP
 * servers, mocks). One plugin instance serves every run of an engine.
 *
 * Outcomes: `execute` returns a FlowResult. A `failed` result is a business failure that the
 * step's `onError` handles. Throwing a {@linkcode PluginError} means the plugin could not run the
 * component at all (stepflow 0.8: aborts the run with code 500; mock "No behavior defined", bad
 * builtin input). Step services and MCP return `failed` for worker errors and crashes (better
 * than 0.8, see docs/protocol.md), so `onError` can handle them.
 * @module
 */
import type { z } from "zod";
import type { JsonObject, JsonValue } from "../json/exact_json.ts";
import type { ComponentInfoSchema } from "../protocol/methods.ts";
import type { FlowResult } from "../core/flow_result.ts";
import type { Logger } from "../log.ts";

/**
 * A component as listed by a plugin (stepflow 0.8 `ComponentInfo`, snake_case on the wire): the
 * protocol's schema (src/protocol/methods.ts) is its one definition.
 */
export type ComponentInfo = z.infer<typeof ComponentInfoSchema>;

/** A blob: content-addressed JSON data or a flow. */
export interface Blob {
  data: JsonValue;
  blobType: "data" | "flow";
}

/** Batch status as `flows/get_batch` reports it (snake_case wire shapes, 0.8 §3.2). */
export interface BatchDetails {
  batch_id: string;
  flow_id: string;
  flow_name?: string;
  total_runs: number;
  status: "running" | "cancelled";
  created_at: string;
  completed_runs: number;
  running_runs: number;
  failed_runs: number;
  cancelled_runs: number;
  paused_runs: number;
  completed_at?: string;
}

/** One batch item's status and, when asked, its result. */
export interface BatchOutputInfo {
  batch_input_index: number;
  status: "running" | "completed" | "failed" | "cancelled" | "paused";
  result?: FlowResult;
}

/** Options of a nested run started by a component ({@linkcode EngineServices.evaluateFlow}). */
export interface NestedRunOptions {
  /** Step overrides of the nested run (§1.7). */
  overrides?: JsonValue;
  /** The parent run (default: the run the services belong to). */
  parentRunId?: string;
  /** Cancels the nested run (default: it follows the parent run). */
  signal?: AbortSignal;
  /** The parent's step that starts the run (`ctx.stepId`): part of the nested run's key. */
  stepId?: string;
  /** The item or iteration index within that step (map items, iterate rounds). */
  item?: number;
}

/**
 * What the engine offers to components while they run (the worker→engine methods of the
 * protocol: `blobs/put`, `blobs/get`, `flows/evaluate`, `flows/get_metadata`,
 * `flows/submit_batch`, `flows/get_batch`).
 */
export interface EngineServices {
  /** Stores a blob; returns its id (64 lowercase hex, SHA-256 of the compact JSON). */
  putBlob(data: JsonValue, blobType: "data" | "flow"): Promise<string>;
  /** Reads a blob. @throws {Error} `Blob not found: <id>` for an unknown id. */
  getBlob(blobId: string): Promise<Blob>;
  /** Runs a stored flow blob as a nested run and returns its FlowResult. */
  evaluateFlow(flowId: string, input: JsonValue, options?: NestedRunOptions): Promise<FlowResult>;
  /** Flow metadata and, with `stepId`, that step's metadata. */
  getMetadata(
    flowId: string,
    stepId?: string,
  ): Promise<{ flow_metadata: JsonObject; step_metadata?: JsonObject | null }>;
  /**
   * Starts a batch of runs of a stored flow; returns at once. `stepId`: the parent's step that
   * submits it (each run's key is `<parentRunId>/<stepId>/<index>`).
   */
  submitBatch(
    flowId: string,
    inputs: JsonValue[],
    options?: { overrides?: JsonValue; maxConcurrency?: number; stepId?: string },
  ): Promise<{ batch_id: string; total_runs: number }>;
  /** A batch's status; `wait` waits until no run is running; `includeResults` adds outputs. */
  getBatch(
    batchId: string,
    options?: { wait?: boolean; includeResults?: boolean },
  ): Promise<{ details: BatchDetails; outputs?: BatchOutputInfo[] | null }>;
  /**
   * Human in the loop (`/builtin/wait_for`, issue 12): takes the oldest pending signal `name` of
   * this run for step `stepId` (or the one that step took before: a re-executed step gets the
   * same signal), waiting for one while the run is `paused`. Resolves with the signal, or
   * `undefined` once `timeoutMs` has passed since the step first waited (across resumes).
   * Undefined on engine services not tied to a run.
   * @throws the abort reason when `signal` is aborted (the run cancelled).
   */
  waitForSignal?(
    name: string,
    options: { stepId: string; signal: AbortSignal; timeoutMs?: number },
  ): Promise<{ id: number; data: JsonValue } | undefined>;
}

/** Given to a plugin once, before any call. */
export interface PluginInitContext {
  /** The plugin's name in the config (`plugins.<name>`). */
  name: string;
  /** Directory relative paths resolve against (config `workingDirectory`). */
  workingDirectory: string;
  /** Engine services for calls that do not belong to a running step. */
  engine: EngineServices;
  /** Logger tagged with the plugin name. */
  log: Logger;
  /**
   * The largest step output the engine accepts, bytes of compact JSON (config `maxOutputSize`):
   * a plugin stops reading an answer (a worker's line, an HTTP body, a file) that passes it.
   * @default no limit
   */
  maxOutputBytes?: number;
}

/** Given to each `execute` call. */
export interface ExecuteContext {
  /** Run id (hyphenated UUID). */
  runId: string;
  /** Flow id (64-hex blob id of the flow). */
  flowId: string;
  /** The step being executed. */
  stepId: string;
  /** 1-based attempt number (stepflow 0.8: 2 after a worker restart; more with retries). */
  attempt: number;
  /** Aborted when the step times out or the run is cancelled; plugins stop waiting then. */
  signal: AbortSignal;
  /** Engine services scoped to this run (nested flows run as children of it). */
  engine: EngineServices;
  /** Step timeout in ms, when one is set (plugins may pass it on, e.g. MCP request timeout). */
  timeoutMs?: number;
  /**
   * True when the engine retries this step itself (`onError: {action: retry}`): a plugin then
   * returns a transport failure at once instead of retrying internally (stepflow 0.8's one
   * retry after a worker restart), so attempt numbers are never sent twice.
   */
  engineRetries?: boolean;
  /**
   * Reports progress of a long call (e.g. the streamed tokens of a chat completion) as a
   * `step_progress` event of the run, for run observers (the progress line, the service's event
   * stream). Absent when nobody listens: call it as `ctx.progress?.(data)`.
   */
  progress?: (data: JsonObject) => void;
}

/**
 * Limits a plugin applies to its own calls, so the engine does not apply them again. The MCP
 * plugin enforces both: its timeout restarts on progress notifications and a call that runs out
 * of time is cancelled on the server (docs/mcp.md).
 */
export interface PluginEnforcement {
  /**
   * The plugin applies the call timeout: the step's `timeout` (given as
   * {@linkcode ExecuteContext.timeoutMs}) and the plugin's own default (its config `timeout`).
   */
  timeout?: boolean;
  /** The plugin limits its calls in flight (its config `maxConcurrency`). */
  concurrency?: boolean;
}

/** A source of components. */
export interface Plugin {
  /** The config name (`plugins.<name>`). */
  readonly name: string;
  /** The config type (`builtin`, `stepflow`, `mcp`, `mock`). */
  readonly type: string;
  /** What the plugin enforces itself (see {@linkcode PluginEnforcement}); none by default. */
  readonly enforces?: PluginEnforcement;
  /**
   * True when calls have no effect outside the engine and give the same result when made again
   * (built-ins, mocks), or a function saying it per component (a plugin whose components differ):
   * such a step may start before the results it reads are committed to the state store, since
   * after a crash it is simply run again. Steps of other plugins and components (step services,
   * MCP tools, model calls: side effects) start only once every result of the run so far is
   * committed. Read once per routed component. Default false.
   */
  readonly replayable?: boolean | ((component: string) => boolean);
  /** Starts the plugin (spawns a worker, connects). Called once. @throws on a fatal start failure. */
  init(ctx: PluginInitContext): Promise<void>;
  /** Every component this plugin offers. */
  listComponents(): Promise<ComponentInfo[]>;
  /**
   * Runs `component` (the routed name, e.g. `/eval`) on `input`.
   * @returns the outcome; `failed` for business failures.
   * @throws {PluginError} when the component cannot be run at all.
   */
  execute(component: string, input: JsonValue, ctx: ExecuteContext): Promise<FlowResult>;
  /** Stops the plugin: closes workers and connections; safe to call twice. */
  close(): Promise<void>;
}
