/**
 * The engine: plugins, router and state store of one config, and runs of flows on them.
 *
 * ```ts ignore
 * const engine = await Engine.create(loadedConfig);
 * try {
 *   const result = await engine.run(flow, { topic: "stepflow" });
 * } finally {
 *   await engine.close();
 * }
 * ```
 * @module
 */
import type { Flow } from "../flow/model.ts";
import type { LoadedConfig } from "../config/model.ts";
import { isJsonObject, type JsonObject, type JsonValue } from "../json/exact_json.ts";
import { failedFromExecutionError, type FlowResult } from "../flow/flow_result.ts";
import { describeError, ExecutionError } from "../errors.ts";
import type {
  BatchDetails,
  BatchOutputInfo,
  Blob,
  EngineServices,
  Plugin,
} from "../plugins/plugin.ts";
import { createPlugin } from "../plugins/registry.ts";
import "../plugins/all.ts";
import { logger, redactLogs } from "../log.ts";
import type { StateStore } from "../state/store.ts";
import { nowRfc3339, storeFailedResult } from "../state/store.ts";
import { openStateStore } from "../state/create.ts";
import { compileFlow } from "./compile.ts";
import { executeFlow, type StepRunner } from "./executor.ts";
import { applyOverrides } from "./overrides.ts";
import {
  type ComponentResolver,
  makeScope,
  type RoutedComponent,
  type RunContext,
} from "./run_context.ts";
import { runStep } from "./run_step.ts";
import { BatchManager } from "./batch.ts";
import { childSignal } from "./abort_fanout.ts";
import { flowBlob, flowFromJson, flowToJson } from "./flow_id.ts";
import { Router, type RouteTarget } from "../config/router.ts";
import {
  DEFAULT_MAX_OUTPUT_BYTES,
  forgetRun,
  limitSteps,
  type PluginLimits,
  pluginLimitsOf,
  type RunLimits,
} from "./step_call.ts";
import { Limiter } from "./limiter.ts";
import { parseDuration } from "./duration.ts";
import { runTimeoutReason } from "./timeout.ts";
import { redactingRunner, type Redactor, runRedactor } from "./secrets.ts";

/** A flow as loaded from a file (src/flow/load.ts): the model plus where it came from. */
export interface FlowLike {
  flow: Flow;
}

/** Options of {@linkcode Engine.create}. */
export interface EngineOptions {
  /** Use this store instead of the config's `stateStore`. The engine closes it. */
  store?: StateStore;
  /** Runs each step; {@linkcode runStep} by default (issue 5 wraps it with retries/timeouts). */
  stepRunner?: StepRunner;
  /**
   * Cancels {@linkcode Engine.create} while plugins start (Ctrl-C during a slow handshake): the
   * plugins started so far and the ones still starting are closed (their processes stopped), and
   * `create` rejects with the signal's reason.
   */
  signal?: AbortSignal;
}

/** Options of {@linkcode Engine.run}. */
export interface RunOptions {
  /** Run variables (§1.8); `$from: {variable}` reads them. */
  variables?: Record<string, JsonValue> | ReadonlyMap<string, JsonValue>;
  /** Step overrides (§1.7). */
  overrides?: JsonValue;
  /** Cancels the run: in-flight steps are told to stop and the result is `failed` (410). */
  signal?: AbortSignal;
  /** Run id to use (hyphenated UUID); a new one by default. */
  runId?: string;
  /** The run that started this one (nested runs). */
  parentRunId?: string;
  /**
   * Most steps of this run in flight at once (issue 5): a positive integer; default the config's
   * `maxConcurrency`, else no limit (0.8).
   */
  maxConcurrency?: number;
  /**
   * A limit on the whole run in ms (issue 5): when it passes, running steps are cancelled and the
   * result is `failed` with code 524 (`RUN_TIMEOUT`). Default: the config's `runTimeout` for
   * top-level runs; nested runs end with their parent.
   */
  timeoutMs?: number;
}

const log = logger("engine");

/**
 * Most levels of nested runs (`eval`, `map`, `iterate`, `flows/evaluate`, batches) under one
 * top-level run. Deeper runs fail at once instead of recursing until memory runs out.
 */
export const MAX_NESTING_DEPTH = 64;

/** Run options the engine passes to nested runs. */
interface InternalRunOptions extends RunOptions {
  /** 0 for a top-level run, parent's + 1 for a nested one. */
  depth?: number;
  /** The secrets of the parent run (its nested runs redact them too). */
  secrets?: Redactor;
}

/** Plugins, router and state store of one config; runs flows. */
export class Engine {
  readonly config: LoadedConfig;
  readonly store: StateStore;
  /** Plugins by config name, in config order. */
  readonly plugins: ReadonlyMap<string, Plugin>;
  #resolver: ComponentResolver;
  #stepRunner: StepRunner;
  #pluginLimits: Map<string, PluginLimits>;
  #batches: BatchManager;
  #flowsById = new Map<string, Flow>();
  #registered = new WeakSet<Flow>();
  #closed = false;
  #services: EngineServices;

  private constructor(
    config: LoadedConfig,
    store: StateStore,
    plugins: Map<string, Plugin>,
    router: Router,
    options: EngineOptions,
  ) {
    this.config = config;
    this.store = store;
    this.plugins = plugins;
    this.#stepRunner = limitSteps(options.stepRunner ?? runStep);
    this.#pluginLimits = pluginLimitsOf(config.config);
    this.#batches = new BatchManager(store);
    // Routed components by the router's answer: the router returns the same RouteTarget object
    // for a component whose route does not depend on the input.
    const byTarget = new WeakMap<RouteTarget, RoutedComponent>();
    this.#resolver = {
      resolve: (component: string, input: JsonValue): RoutedComponent => {
        const r = router.resolve(component, input);
        let routed = byTarget.get(r);
        if (routed === undefined) {
          const plugin = plugins.get(r.plugin);
          if (!plugin) throw new Error(`Route for ${component} names unknown plugin '${r.plugin}'`);
          routed = { plugin, component: r.component };
          byTarget.set(r, routed);
        }
        return routed;
      },
    };
    this.#services = this.#makeServices(undefined, undefined, 0);
  }

  /**
   * Creates the state store and starts every plugin of `config` (in parallel).
   * @throws {Error} when a plugin cannot be created or started (the others are closed first), or
   * the state store cannot be opened.
   */
  static async create(config: LoadedConfig, options: EngineOptions = {}): Promise<Engine> {
    const store = options.store ??
      await openStateStore(config.config.stateStore, config.workingDirectory);
    const plugins = new Map<string, Plugin>();
    let router: Router;
    try {
      router = new Router(config.config);
      for (const [name, pc] of Object.entries(config.config.plugins ?? {})) {
        plugins.set(name, createPlugin(name, pc));
      }
    } catch (e) {
      await store.close();
      throw e;
    }
    const engine = new Engine(config, store, plugins, router, options);
    const signal = options.signal;
    if (signal?.aborted) {
      await engine.close();
      throw signal.reason;
    }
    const started = Promise.allSettled(
      [...plugins.values()].map((p) =>
        p.init({
          name: p.name,
          workingDirectory: config.workingDirectory,
          engine: engine.#services,
          log: logger(p.name),
          maxOutputBytes: config.config.maxOutputSize ?? DEFAULT_MAX_OUTPUT_BYTES,
        })
      ),
    );
    let onAbort: (() => void) | undefined;
    const aborted = new Promise<"aborted">((resolve) => {
      onAbort = () => resolve("aborted");
      signal?.addEventListener("abort", onAbort, { once: true });
    });
    const results = await Promise.race([started, aborted]);
    if (onAbort) signal?.removeEventListener("abort", onAbort);
    if (results === "aborted") {
      // close() stops the workers whose handshake is still in flight; their init then rejects.
      await engine.close();
      throw signal!.reason;
    }
    const failures = results.flatMap((r, i) =>
      r.status === "rejected"
        ? [`plugin '${[...plugins.keys()][i]}': ${describeError(r.reason)}`]
        : []
    );
    if (failures.length > 0) {
      await engine.close();
      throw new Error(`Failed to start plugins: ${failures.join("; ")}`);
    }
    return engine;
  }

  /** Engine services not tied to a run (what plugins get at init). */
  get services(): EngineServices {
    return this.#services;
  }

  /**
   * Runs `flow` on `input` and returns its FlowResult. Never throws for problems of the flow or
   * its steps: those become `failed` results (code 500 with `data.stack`, 400 for bad overrides).
   * The run and its step results are recorded in the state store.
   */
  async run(
    flow: Flow | FlowLike,
    input: JsonValue,
    options: RunOptions = {},
  ): Promise<FlowResult> {
    const f: Flow = isFlowLike(flow) ? flow.flow : flow;
    const runId = options.runId ?? crypto.randomUUID();
    const flowId = this.#registerFlow(f);
    this.store.createRun({
      runId,
      flowId,
      flowName: f.name,
      status: "running",
      input,
      overrides: options.overrides,
      variables: variablesObject(options.variables),
      createdAt: nowRfc3339(),
      parentRunId: options.parentRunId,
    });
    const depth = (options as InternalRunOptions).depth ?? 0;
    // Secrets (`is_secret` in the flow's schemas) are redacted from logs and failed results
    // while the run lasts (src/execution/secrets.ts).
    const secrets = runRedactor(
      f,
      input,
      options.variables instanceof Map
        ? options.variables
        : Object.entries(options.variables ?? {}),
      (options as InternalRunOptions).secrets,
    );
    const stopRedacting = secrets ? redactLogs(secrets) : undefined;
    let result: FlowResult;
    try {
      result = depth > MAX_NESTING_DEPTH
        ? failedFromExecutionError(
          new ExecutionError(`Nested flows are more than ${MAX_NESTING_DEPTH} deep`, [{
            error: `Nested flows are more than ${MAX_NESTING_DEPTH} deep`,
            attachments: [
              `Run ${runId} of flow ${flowId} was not started: does a flow evaluate itself without end?`,
            ],
          }]),
        )
        : await this.#execute(f, flowId, runId, input, options, depth, secrets);
    } finally {
      stopRedacting?.();
    }
    if (secrets) result = secrets.redactResult(result);
    const stored = this.store.completeRun(
      runId,
      result.outcome === "success" ? "completed" : "failed",
      result,
    );
    // Never report a result whose run state was not stored (issue 10): a top-level run waits for
    // its last commit, which also fails when any earlier write of the run (or of its nested runs,
    // committed before it) failed.
    if (stored !== undefined && options.parentRunId === undefined) {
      try {
        await stored;
      } catch (e) {
        return storeFailedResult(e);
      }
    }
    return result;
  }

  async #execute(
    flow: Flow,
    flowId: string,
    runId: string,
    input: JsonValue,
    options: RunOptions,
    depth: number,
    secrets?: Redactor,
  ): Promise<FlowResult> {
    let compiled;
    try {
      compiled = compileFlow(applyOverrides(flow, options.overrides));
    } catch (e) {
      if (e instanceof ExecutionError) return failedFromExecutionError(e);
      throw e;
    }
    // Follows options.signal (a parent run's): one listener per parent however many runs follow it.
    const link = childSignal(options.signal);
    const controller = link.controller;
    const limits = this.#runLimits(options);
    const runTimeoutMs = options.timeoutMs ??
      (options.parentRunId === undefined && this.config.config.runTimeout !== undefined
        ? parseDuration(this.config.config.runTimeout, { what: "runTimeout" })
        : undefined);
    const runTimer = runTimeoutMs !== undefined
      ? setTimeout(() => controller.abort(runTimeoutReason(runTimeoutMs)), runTimeoutMs)
      : undefined;
    const variables = options.variables instanceof Map
      ? options.variables
      : new Map(Object.entries(options.variables ?? {}));
    const results: (FlowResult | undefined)[] = new Array(compiled.steps.length);
    const run: RunContext = {
      runId,
      flowId,
      compiled,
      input,
      variables,
      results,
      scope: makeScope(compiled, input, results, variables),
      signal: controller.signal,
      services: this.#makeServices(runId, controller.signal, depth, secrets),
      resolver: this.#resolver,
      store: this.store,
      log,
      limits,
    };
    try {
      const runner = secrets ? redactingRunner(this.#stepRunner, secrets) : this.#stepRunner;
      return await executeFlow(run, (reason) => controller.abort(reason), runner);
    } finally {
      forgetRun(runId);
      if (runTimer !== undefined) clearTimeout(runTimer);
      link.dispose();
    }
  }

  /** The limits of one run (issue 5): steps in flight, output size, per-plugin limits. */
  #runLimits(options: RunOptions): RunLimits {
    const max = options.maxConcurrency ?? this.config.config.maxConcurrency;
    const limits: RunLimits = { plugin: (name) => this.#pluginLimits.get(name) };
    if (max !== undefined) limits.steps = new Limiter(max);
    if (this.config.config.maxOutputSize !== undefined) {
      limits.maxOutputBytes = this.config.config.maxOutputSize;
    }
    return limits;
  }

  /** Stores `flow` as a flow blob and returns its id (also remembering the parsed flow). */
  storeFlow(flow: Flow): string {
    return this.#registerFlow(flow);
  }

  /**
   * The id of `flow`, storing it as a flow blob the first time this engine sees the flow object
   * (so workers can ask for its metadata and a stored run names a stored flow, as in 0.8).
   */
  #registerFlow(flow: Flow): string {
    if (this.#registered.has(flow)) return flowBlob(flow).id;
    const { id, json } = flowBlob(flow);
    if (!this.#flowsById.has(id)) {
      this.store.putBlob(json ?? flowToJson(flow), "flow", id);
      this.#flowsById.set(id, flow);
    }
    this.#registered.add(flow);
    return id;
  }

  /**
   * The flow stored under `flowId`.
   * @throws {Error} `Not found: flow with ID '<id>'` when no flow blob has that id.
   */
  async getFlow(flowId: string): Promise<Flow> {
    const known = this.#flowsById.get(flowId);
    if (known) return known;
    const blob = await this.store.getBlob(flowId);
    if (!blob || blob.blobType !== "flow") throw new Error(`Not found: flow with ID '${flowId}'`);
    const flow = flowFromJson(blob.data);
    this.#flowsById.set(flowId, flow);
    return flow;
  }

  #makeServices(
    runId: string | undefined,
    signal: AbortSignal | undefined,
    depth: number,
    secrets?: Redactor,
  ): EngineServices {
    return new RunServices(
      this,
      this.#batches,
      runId,
      signal,
      runId === undefined ? 0 : depth + 1,
      secrets,
    );
  }

  /** Stops every plugin and closes the state store; safe to call twice. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const results = await Promise.allSettled([...this.plugins.values()].map((p) => p.close()));
    for (const r of results) {
      if (r.status === "rejected") log.warn(`closing a plugin failed: ${describeError(r.reason)}`);
    }
    await this.store.close();
  }
}

/**
 * The engine services of one run (or, without a run id, of the engine): one small object per run,
 * methods on the prototype. Nested runs it starts are children of its run.
 */
class RunServices implements EngineServices {
  constructor(
    readonly engine: Engine,
    readonly batches: BatchManager,
    readonly runId: string | undefined,
    readonly signal: AbortSignal | undefined,
    /** Depth of the runs this one starts. */
    readonly nested: number,
    /** The run's secrets, redacted in the runs it starts too. */
    readonly secrets?: Redactor,
  ) {}

  putBlob(data: JsonValue, blobType: "data" | "flow"): Promise<string> {
    if (blobType === "flow") {
      let flow: Flow;
      try {
        flow = flowFromJson(data);
      } catch (e) {
        return Promise.reject(new Error(`Invalid flow blob: ${describeError(e)}`, { cause: e }));
      }
      return Promise.resolve(this.engine.storeFlow(flow));
    }
    return Promise.resolve(this.engine.store.putBlob(data, "data"));
  }

  async getBlob(blobId: string): Promise<Blob> {
    const b = await this.engine.store.getBlob(blobId);
    if (!b) throw new Error(`Blob not found: ${blobId}`);
    return { data: b.data, blobType: b.blobType };
  }

  async evaluateFlow(
    flowId: string,
    input: JsonValue,
    options: { overrides?: JsonValue; parentRunId?: string; signal?: AbortSignal } = {},
  ): Promise<FlowResult> {
    const flow = await this.engine.getFlow(flowId);
    const o: InternalRunOptions = {
      overrides: options.overrides,
      parentRunId: options.parentRunId ?? this.runId,
      signal: options.signal ?? this.signal,
      depth: this.nested,
      secrets: this.secrets,
    };
    return await this.engine.run(flow, input, o);
  }

  async getMetadata(
    flowId: string,
    stepId?: string,
  ): Promise<{ flow_metadata: JsonObject; step_metadata?: JsonObject | null }> {
    const flow = await this.engine.getFlow(flowId);
    const flowMetadata = (isJsonObject(flow.metadata) ? flow.metadata : {}) as JsonObject;
    if (stepId === undefined) return { flow_metadata: flowMetadata };
    const step = (flow.steps ?? []).find((s) => s.id === stepId);
    if (!step) throw new Error(`Not found: step with ID '${stepId}'`);
    return {
      flow_metadata: flowMetadata,
      step_metadata: (isJsonObject(step.metadata) ? step.metadata : {}) as JsonObject,
    };
  }

  async submitBatch(
    flowId: string,
    inputs: JsonValue[],
    options: { overrides?: JsonValue; maxConcurrency?: number } = {},
  ): Promise<{ batch_id: string; total_runs: number }> {
    const flow = await this.engine.getFlow(flowId);
    return this.batches.submit(
      flowId,
      flow.name,
      inputs,
      (input, itemRunId) => {
        const o: InternalRunOptions = {
          runId: itemRunId,
          parentRunId: this.runId,
          signal: this.signal,
          overrides: options.overrides,
          depth: this.nested,
          secrets: this.secrets,
        };
        return this.engine.run(flow, input, o);
      },
      options.maxConcurrency,
    );
  }

  getBatch(
    batchId: string,
    options?: { wait?: boolean; includeResults?: boolean },
  ): Promise<{ details: BatchDetails; outputs?: BatchOutputInfo[] | null }> {
    return this.batches.get(batchId, options);
  }
}

/** Run variables as the state store keeps them (undefined when there are none). */
function variablesObject(
  v: Record<string, JsonValue> | ReadonlyMap<string, JsonValue> | undefined,
): Record<string, JsonValue> | undefined {
  if (v === undefined) return undefined;
  const o = v instanceof Map ? Object.fromEntries(v) : v as Record<string, JsonValue>;
  return Object.keys(o).length > 0 ? o : undefined;
}

function isFlowLike(f: Flow | FlowLike): f is FlowLike {
  return !("schema" in f) && "flow" in f;
}
