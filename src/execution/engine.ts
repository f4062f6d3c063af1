/**
 * The engine: plugins, router and state store of one config, and runs of flows on them.
 *
 * ```ts ignore
 * const engine = await Engine.create(loadedConfig);
 * try {
 *   const result = await engine.run(flow, { topic: "stepflow" });
 *   // or: const handle = engine.start(flow, input); handle.inFlight(); handle.cancel();
 * } finally {
 *   await engine.close();
 * }
 * ```
 *
 * One concept, kept whole (over 400 lines, half of it JSDoc): the life of a run from start to
 * stored result; option types are in run_options.ts, plugin start in plugin_start.ts.
 * @module
 */
import type { Flow } from "../flow/model.ts";
import type { LoadedConfig } from "../config/model.ts";
import { Router, type RouteTarget } from "../config/router.ts";
import type { JsonValue } from "../json/exact_json.ts";
import { failedFromExecutionError, type FlowResult } from "../core/flow_result.ts";
import { type ChildSignal, childSignal } from "../core/abort.ts";
import { parseDuration } from "../core/duration.ts";
import { Limiter } from "../core/limiter.ts";
import { onNextTurn, setDeadline, turnDue } from "../core/turn.ts";
import { describeError, ExecutionError, executionError, RunNotResumableError } from "../errors.ts";
import type { EngineServices, Plugin } from "../plugins/plugin.ts";
import { createPlugin } from "../plugins/registry.ts";
import "../plugins/all.ts";
import { logger, redactLogs } from "../log.ts";
import type { RunRecord, StateStore } from "../state/store.ts";
import { isFinished, nowRfc3339, storeFailedResult } from "../state/store.ts";
import { openStateStore } from "../state/create.ts";
import { compileFlow } from "./compile.ts";
import { cancelled, executeFlow } from "./scheduler.ts";
import { applyOverrides } from "./overrides.ts";
import {
  type ComponentResolver,
  InFlight,
  makeScope,
  type RoutedComponent,
  type RunContext,
  type RunLimits,
  type RunOrigin,
  type StepRunner,
} from "./run_context.ts";
import { BatchManager } from "./batch.ts";
import { flowBlob, flowFromJson, flowToJson } from "./flow_id.ts";
import {
  DEFAULT_MAX_NESTED_RUNS,
  DEFAULT_MAX_OUTPUT_BYTES,
  DEFAULT_MAX_RUN_STEPS,
  MAX_NESTING_DEPTH,
  type PluginLimits,
  pluginLimitsOf,
  RunBudget,
} from "./limits.ts";
import { runTimeoutReason } from "./timeout.ts";
import { RunEvents, type RunObserver } from "./observers.ts";
import { type NestedRunStart, RunServices } from "./run_services.ts";
import { type OneStepHost, oneStepOf, runOneStep } from "./single_step.ts";
import { startPlugins } from "./plugin_start.ts";
import { SignalWaits } from "./signal_wait.ts";
import { flowHasSecrets, type Redactor, runRedactor } from "./secrets.ts";
import type { EngineOptions, FlowLike, RunHandle, RunOptions } from "./run_options.ts";
import {
  applyResumeMode,
  loadResumeState,
  nestedRunKey,
  type ResumeMode,
  resumeModeOf,
  type ResumeOptions,
  type ResumeState,
  wasInterrupted,
} from "./resume.ts";

export { MAX_NESTING_DEPTH } from "./limits.ts";
export type { RunEvent, RunObserver } from "./observers.ts";
export type { StepGate, StepRunner } from "./run_context.ts";

export type { EngineOptions, FlowLike, RunHandle, RunOptions } from "./run_options.ts";
export type { ResumeMode, ResumeOptions } from "./resume.ts";

const log = logger("engine");

/** Run options the engine passes to nested runs. */
interface InternalRunOptions extends RunOptions {
  /** 0 for a top-level run, parent's + 1 for a nested one. */
  depth?: number;
  /** The top-level run's budget (nested runs). */
  budget?: RunBudget;
  /** The secrets of the parent run (its nested runs redact them too). */
  secrets?: Redactor;
  parentStepId?: string;
  item?: number;
  /** Resume this (existing) run from its committed state instead of creating it. */
  resume?: ResumeState;
  /** The parent run is resumed: look this nested run up by its key first. */
  resumeMode?: ResumeMode;
}

/** Plugins, router and state store of one config; runs flows. */
export class Engine {
  readonly config: LoadedConfig;
  readonly store: StateStore;
  /** Plugins by config name, in config order. */
  readonly plugins: ReadonlyMap<string, Plugin>;
  #resolver: ComponentResolver;
  #stepRunner?: StepRunner;
  #batches: BatchManager;
  #flowsById = new Map<string, Flow>();
  #registered = new WeakSet<Flow>();
  #observers = new Set<RunObserver>();
  #closed = false;
  #services: EngineServices;
  #waits: SignalWaits;
  /** Top-level runs executing in this engine (a resume of one of them is refused). */
  #executing = new Set<string>();
  #oneStep: OneStepHost;

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
    this.#stepRunner = options.stepRunner;
    this.#batches = new BatchManager(store);
    this.#waits = new SignalWaits(store, log);
    const limits: Map<string, PluginLimits> = pluginLimitsOf(config.config, plugins);
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
          const rp = plugin.replayable;
          routed = {
            plugin,
            component: r.component,
            replayable: typeof rp === "function" ? rp.call(plugin, r.component) : rp === true,
          };
          const pl = limits.get(plugin.name);
          if (pl !== undefined) routed.limits = pl;
          byTarget.set(r, routed);
        }
        return routed;
      },
    };
    this.#services = this.#makeServices(undefined, undefined, 0, undefined);
    this.#oneStep = {
      store,
      resolver: this.#resolver,
      log,
      observers: () => this.#observers,
      registerFlow: (flow) => this.#registerFlow(flow),
      services: (runId, signal, depth, budget) => this.#makeServices(runId, signal, depth, budget),
      limits: () => this.#runLimits({}),
    };
  }

  /**
   * Creates the state store and starts every plugin of `config` (in parallel).
   * @throws {PluginStartError} when plugins cannot start (each failure with its plugin and cause;
   * the others are closed first); an error when a plugin cannot be created or the state store
   * cannot be opened.
   */
  static async create(config: LoadedConfig, options: EngineOptions = {}): Promise<Engine> {
    const store = options.store ??
      await openStateStore(config.config.stateStore, config.workingDirectory);
    const plugins = new Map<string, Plugin>();
    let router: Router;
    let engine: Engine;
    try {
      router = new Router(config.config);
      for (const [name, pc] of Object.entries(config.config.plugins ?? {})) {
        plugins.set(name, createPlugin(name, pc));
      }
      engine = new Engine(config, store, plugins, router, options);
    } catch (e) {
      await store.close();
      throw e;
    }
    const signal = options.signal;
    if (signal?.aborted) {
      await engine.close();
      throw signal.reason;
    }
    try {
      await startPlugins(plugins, {
        workingDirectory: config.workingDirectory,
        engine: engine.#services,
        maxOutputBytes: config.config.maxOutputSize ?? DEFAULT_MAX_OUTPUT_BYTES,
      }, signal);
    } catch (e) {
      // close() stops the workers whose handshake is still in flight; their init then rejects.
      await engine.close();
      throw e;
    }
    return engine;
  }

  /**
   * Tells the steps of run `runId` waiting in `/builtin/wait_for` that a signal was stored (by
   * this process: they look at once; signals stored by other processes are seen within
   * `SIGNAL_POLL_MS`).
   */
  notifySignal(runId: string): void {
    this.#waits.notify(runId);
  }

  /** Engine services not tied to a run (what plugins get at init). */
  get services(): EngineServices {
    return this.#services;
  }

  /**
   * Registers a run observer: it receives the events of every run (top-level and nested) that
   * starts afterwards. Returns the function that removes it.
   */
  observe(observer: RunObserver): () => void {
    this.#observers.add(observer);
    return () => {
      this.#observers.delete(observer);
    };
  }

  /**
   * Runs `flow` on `input` and returns its FlowResult: `start(...).result`. Never throws for
   * problems of the flow or its steps: those become `failed` results (code 500 with `data.stack`,
   * 400 for bad overrides). The run and its step results are recorded in the state store.
   */
  run(flow: Flow | FlowLike, input: JsonValue, options: RunOptions = {}): Promise<FlowResult> {
    return this.start(flow, input, options).result;
  }

  /**
   * Starts a run of `flow` on `input` and returns its handle at once: its id, its result, a way
   * to cancel it, and the steps in flight.
   */
  start(flow: Flow | FlowLike, input: JsonValue, options: RunOptions = {}): RunHandle {
    const f: Flow = isFlowLike(flow) ? flow.flow : flow;
    const runId = options.runId ?? crypto.randomUUID();
    let run: RunContext | undefined;
    let link: ChildSignal | undefined;
    let cancelledEarly: { reason: unknown } | undefined;
    const go = () => {
      // Follows options.signal (a parent run's): one listener per parent however many runs
      // follow it.
      const l = link = childSignal(options.signal);
      if (cancelledEarly) l.controller.abort(cancelledEarly.reason);
      return this.#run(f, input, runId, options as InternalRunOptions, l.controller, (r) => run = r)
        .finally(() => l.dispose());
    };
    // Nested runs of a large map start here: when the run has kept the event loop busy, the
    // start waits for a turn, so timers and signals come first (src/core/turn.ts).
    const result = turnDue()
      ? new Promise<FlowResult>((resolve, reject) => onNextTurn(() => go().then(resolve, reject)))
      : go();
    return {
      runId,
      result,
      cancel: (reason?: unknown) => {
        if (link) link.controller.abort(reason);
        else cancelledEarly ??= { reason };
      },
      inFlight: () => run?.inFlight.list() ?? [],
    };
  }

  /**
   * Continues run `runId` from its committed state in this engine's store (issue 12): steps with
   * a committed result are not executed again, steps started but not finished run again with
   * `attempt + 1`, nested runs are found by their key; `from: "failed"` re-drives a failed or
   * cancelled run from its failed steps, keeping its successful results
   * (src/execution/resume.ts). The run is claimed first (`store.claimRun`), so two engines never
   * both resume it. Resolves once the run has started again.
   * @throws {RunNotResumableError} for an unknown, completed or nested run, or one another live
   * engine executes.
   * @throws {Error} when its flow cannot be read from the store.
   */
  async resume(runId: string, options: ResumeOptions = {}): Promise<RunHandle> {
    const record = await this.store.getRun(runId);
    if (record === undefined) {
      throw new RunNotResumableError(
        `no run ${runId} in the state store (${this.store.kind}); a run can be resumed only from the store that recorded it (--store)`,
        runId,
        "unknown",
      );
    }
    if (record.parentRunId !== undefined) {
      throw new RunNotResumableError(
        `run ${runId} is a nested run of run ${
          record.rootRunId ?? record.parentRunId
        }: resume that run (its nested runs resume with it)`,
        runId,
        "nested",
      );
    }
    if (this.#executing.has(runId)) {
      throw new RunNotResumableError(
        `run ${runId} is executing in this engine; it can be resumed once it stopped`,
        runId,
        "owned",
      );
    }
    const mode = resumeModeOf(record, options.from);
    // reserved while it is prepared: a second resume of it meanwhile is refused
    this.#executing.add(runId);
    let prepared;
    try {
      prepared = await this.#prepareResume(record, mode, options.claimed === true);
    } catch (e) {
      this.#executing.delete(runId);
      throw e;
    }
    const { flow, state } = prepared;
    const o: InternalRunOptions = { runId, resume: state };
    if (record.variables !== undefined) o.variables = record.variables;
    if (record.overrides !== undefined && record.overrides !== null) o.overrides = record.overrides;
    if (options.signal !== undefined) o.signal = options.signal;
    if (options.gate !== undefined) o.gate = options.gate;
    return this.start(flow, record.input, o);
  }

  /** Claims `record` for this engine and reads its flow and committed state. */
  async #prepareResume(
    record: RunRecord,
    mode: ResumeMode,
    claimed = false,
  ): Promise<{ flow: Flow; state: ResumeState }> {
    const claim = claimed ? { claimed: true as const } : await this.store.claimRun(record.runId);
    if (!claim.claimed) {
      const who = claim.reason === "owned" && claim.owner
        ? ` (pid ${claim.owner.pid ?? "?"}${claim.owner.host ? ` on ${claim.owner.host}` : ""})`
        : "";
      throw new RunNotResumableError(
        claim.reason === "unknown"
          ? `no run ${record.runId} in the state store`
          : `run ${record.runId} is being executed by another engine${who}; it can be resumed once that engine stopped`,
        record.runId,
        claim.reason,
      );
    }
    const flow = await this.getFlow(record.flowId);
    const state = await loadResumeState(this.store, record, flow, mode);
    return { flow, state };
  }

  /**
   * A nested run: in a resumed parent, the run with the same key is looked up first; a completed
   * one gives its stored result, an unfinished one is resumed, a failed one is given as it is
   * (`interrupted`) or re-driven (`failed`).
   */
  async #runNested(flow: Flow, input: JsonValue, o: InternalRunOptions): Promise<FlowResult> {
    const mode = o.resumeMode;
    if (mode !== undefined && o.parentRunId !== undefined && o.parentStepId !== undefined) {
      const found = await this.store.findRunByKey(
        nestedRunKey(o.parentRunId, o.parentStepId, o.item),
      );
      if (found !== undefined) {
        if (found.status === "completed" && found.result !== undefined) return found.result;
        if (
          mode === "interrupted" && isFinished(found.status) && !wasInterrupted(found) &&
          found.result !== undefined
        ) {
          return found.result;
        }
        const { state } = await this.#prepareResume(found, mode);
        const again: InternalRunOptions = { ...o, runId: found.runId, resume: state };
        return await this.run(flow, found.input, again);
      }
    }
    return await this.#nested(flow, input, o as NestedRunStart); // not run before: a fresh run
  }

  async #run(
    flow: Flow,
    input: JsonValue,
    runId: string,
    options: InternalRunOptions,
    controller: AbortController,
    started: (run: RunContext) => void,
  ): Promise<FlowResult> {
    const flowId = this.#registerFlow(flow);
    const depth = options.depth ?? 0;
    const topLevel = options.parentRunId === undefined;
    if (topLevel) this.#executing.add(runId);
    const origin = originOf(options);
    // Not awaited: the store commits writes in order, so a later commit of this run (a step
    // result, its completion) fails when this one did (src/state/store.ts). A run claimed from
    // the queue exists already.
    if (options.resume !== undefined) {
      // claimed already (engine.resume): running again
      this.store.setRunStatus(runId, "running");
    } else if (!options.existing) {
      this.store.createRun({
        runId,
        flowId,
        flowName: flow.name,
        status: "running",
        input,
        overrides: options.overrides,
        variables: variablesObject(options.variables),
        createdAt: nowRfc3339(),
        parentRunId: options.parentRunId,
        ...(origin?.runKey !== undefined
          ? { runKey: origin.runKey }
          : options.runKey !== undefined && options.parentRunId === undefined
          ? { runKey: options.runKey }
          : {}),
        ...(options.debugMode === true && options.parentRunId === undefined
          ? { debugMode: true }
          : {}),
      });
    }
    const budget = options.budget ?? this.#budget(options, controller, runId);
    const events = this.#observers.size > 0
      ? new RunEvents(runId, [...this.#observers], log)
      : undefined;
    events?.emit({
      type: "run_started",
      runId,
      flowId,
      ...(flow.name !== undefined ? { flowName: flow.name } : {}),
      ...(options.parentRunId !== undefined ? { parentRunId: options.parentRunId } : {}),
      rootRunId: budget.rootRunId,
      ...(origin?.runKey !== undefined ? { runKey: origin.runKey } : {}),
      at: Date.now(),
    });
    // Secrets (`is_secret` in the flow's schemas) are redacted from logs and failed results
    // while the run lasts (src/execution/secrets.ts).
    const secrets = runRedactor(
      flow,
      input,
      options.variables instanceof Map
        ? options.variables
        : Object.entries(options.variables ?? {}),
      options.secrets,
    );
    const stopRedacting = secrets ? redactLogs(secrets) : undefined;
    let result: FlowResult;
    try {
      if (depth > MAX_NESTING_DEPTH) {
        const top = `Nested flows are more than ${MAX_NESTING_DEPTH} deep`;
        result = failedFromExecutionError(executionError(top, {
          attachments: [
            `Run ${runId} of flow ${flowId} was not started: does a flow evaluate itself without end?`,
          ],
        }));
      } else if (options.budget !== undefined && !budget.addRun()) {
        result = cancelled(controller.signal.reason);
      } else {
        result = await this.#execute(flow, flowId, runId, input, options, depth, {
          controller,
          budget,
          events,
          origin,
          secrets,
          started,
        });
      }
    } finally {
      stopRedacting?.();
    }
    if (secrets) result = secrets.redactResult(result);
    const status = result.outcome === "success" ? "completed" : "failed";
    const stored = this.store.completeRun(runId, status, result);
    // Never report a result whose run state was not stored (issue 10): a top-level run waits for
    // its last commit, which also fails when any earlier write of the run (or of its nested runs,
    // committed before it) failed.
    if (stored !== undefined && options.parentRunId === undefined) {
      try {
        await stored;
      } catch (e) {
        result = storeFailedResult(e);
      }
    }
    if (topLevel) this.#executing.delete(runId);
    events?.emit({ type: "run_finished", runId, status, result, at: Date.now() });
    return result;
  }

  /** The budget of a top-level run; going over it aborts the run. */
  #budget(options: RunOptions, controller: AbortController, runId: string): RunBudget {
    const c = this.config.config;
    return new RunBudget(
      options.maxRunSteps ?? c.maxRunSteps ?? DEFAULT_MAX_RUN_STEPS,
      options.maxNestedRuns ?? c.maxNestedRuns ?? DEFAULT_MAX_NESTED_RUNS,
      (reason) => controller.abort(reason),
      runId,
    );
  }

  async #execute(
    flow: Flow,
    flowId: string,
    runId: string,
    input: JsonValue,
    options: InternalRunOptions,
    depth: number,
    parts: {
      controller: AbortController;
      budget: RunBudget;
      events?: RunEvents;
      origin?: RunOrigin;
      secrets?: Redactor;
      started: (run: RunContext) => void;
    },
  ): Promise<FlowResult> {
    let compiled;
    try {
      compiled = compileFlow(applyOverrides(flow, options.overrides));
    } catch (e) {
      if (e instanceof ExecutionError) return failedFromExecutionError(e);
      throw e;
    }
    const { controller, budget } = parts;
    const runTimeoutMs = options.timeoutMs ??
      (options.parentRunId === undefined && this.config.config.runTimeout !== undefined
        ? parseDuration(this.config.config.runTimeout, { what: "runTimeout" })
        : undefined);
    // A deadline, not a plain timer: busy built-in work cannot keep it from firing (core/turn.ts).
    const cancelTimer = runTimeoutMs !== undefined
      ? setDeadline(runTimeoutMs, () => controller.abort(runTimeoutReason(runTimeoutMs)))
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
      services: this.#makeServices(
        runId,
        controller.signal,
        depth,
        budget,
        parts.secrets,
        options.resume?.mode,
      ),
      resolver: this.#resolver,
      store: this.store,
      log,
      inFlight: new InFlight(compiled.steps),
      budget,
      limits: this.#runLimits(options),
    };
    if (parts.events !== undefined) run.events = parts.events;
    if (options.gate !== undefined) run.gate = options.gate;
    if (this.#stepRunner !== undefined) run.runner = this.#stepRunner;
    if (parts.origin !== undefined) run.origin = parts.origin;
    if (parts.secrets !== undefined) run.secrets = parts.secrets;
    if (options.resume !== undefined) run.resume = applyResumeMode(compiled, options.resume);
    parts.started(run);
    try {
      return await executeFlow(run, (reason) => controller.abort(reason));
    } finally {
      cancelTimer?.();
    }
  }

  /** The limits of one run (issue 5): steps in flight, output size. */
  #runLimits(options: RunOptions): RunLimits | undefined {
    const max = options.maxConcurrency ?? this.config.config.maxConcurrency;
    const maxOutput = this.config.config.maxOutputSize;
    if (max === undefined && maxOutput === undefined) return undefined;
    const limits: RunLimits = {};
    if (max !== undefined) limits.steps = new Limiter(max);
    if (maxOutput !== undefined) limits.maxOutputBytes = maxOutput;
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
    budget: RunBudget | undefined,
    secrets?: Redactor,
    resumeMode?: ResumeMode,
  ): EngineServices {
    const host = {
      store: this.store,
      waits: this.#waits,
      storeFlow: (flow: Flow) => this.storeFlow(flow),
      getFlow: (flowId: string) => this.getFlow(flowId),
      runNested: (flow: Flow, input: JsonValue, o: NestedRunStart) =>
        o.resumeMode === undefined
          ? this.#nested(flow, input, o)
          : this.#runNested(flow, input, o as InternalRunOptions),
    };
    return new RunServices(
      host,
      this.#batches,
      runId,
      signal,
      runId === undefined ? 0 : depth + 1,
      budget,
      secrets,
      resumeMode,
    );
  }

  /**
   * A nested run: a one-step flow skips the scheduler (src/execution/single_step.ts: same
   * records, events and semantics), any other goes through {@linkcode Engine.run}.
   */
  #nested(flow: Flow, input: JsonValue, o: NestedRunStart): Promise<FlowResult> {
    if (
      o.parentRunId !== undefined && o.budget !== undefined && o.secrets === undefined &&
      (o.overrides === undefined || o.overrides === null) && this.#stepRunner === undefined &&
      o.depth <= MAX_NESTING_DEPTH && !flowHasSecrets(flow)
    ) {
      const one = oneStepOf(flow);
      if (one !== undefined) {
        return runOneStep(this.#oneStep, flow, one, input, {
          ...o,
          parentRunId: o.parentRunId,
          budget: o.budget,
        });
      }
    }
    return this.run(flow, input, o as InternalRunOptions);
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

/** Where a nested run comes from, with its deterministic key when its step is known. */
function originOf(options: InternalRunOptions): RunOrigin | undefined {
  if (options.parentRunId === undefined) return undefined;
  const origin: RunOrigin = { parentRunId: options.parentRunId };
  if (options.parentStepId !== undefined) {
    origin.stepId = options.parentStepId;
    origin.runKey = `${options.parentRunId}/${options.parentStepId}`;
    if (options.item !== undefined) {
      origin.item = options.item;
      origin.runKey += `/${options.item}`;
    }
  }
  return origin;
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
