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
 * The life of one run is in run_lifecycle.ts, component routing in component_resolver.ts, option
 * types in run_options.ts, plugin start in plugin_start.ts. This file is the `Engine` class, the
 * library's public API (most of it docstrings of its methods); the checks of what callers pass
 * are in api_checks.ts.
 * @module
 */
import { IdMap, IdSet } from "../core/id_map.ts";
import type { Flow } from "../flow/model.ts";
import type { LoadedConfig } from "../config/model.ts";
import { Router } from "../config/router.ts";
import type { JsonValue } from "../json/exact_json.ts";
import type { FlowResult } from "../core/flow_result.ts";
import { describeError, RunNotResumableError, UsageError } from "../errors.ts";
import { interruptedResult } from "../state/store_error.ts";
import type { EngineServices, Plugin } from "../plugins/plugin.ts";
import { createPlugin } from "../plugins/registry.ts";
import { logger } from "../log.ts";
import type { RunRecord, StateStore } from "../state/store.ts";
import { isFinished, nowRfc3339, StoreError } from "../state/store.ts";
import { openStateStore } from "../state/create.ts";
import type { ComponentResolver, StepRunner } from "./run_context.ts";
import { BatchManager } from "./batch.ts";
import { flowBlob, flowFromJson, flowToJson } from "./flow_id.ts";
import { withChecks } from "../core/lazy_check.ts";
import {
  DEFAULT_MAX_OUTPUT_BYTES,
  MAX_NESTING_DEPTH,
  pluginLimitsOf,
  type RunBudget,
} from "./limits.ts";
import type { RunObserver } from "./observers.ts";
import { type NestedRunStart, RunServices, type ServicesHost } from "./run_services.ts";
import { type OneStepHost, oneStepOf, runOneStep } from "./single_step.ts";
import { startPlugins } from "./plugin_start.ts";
import { SignalWaits } from "./signal_wait.ts";
import { flowHasSecrets, type Redactor } from "./secrets.ts";
import type { EngineOptions, FlowLike, RunHandle, RunOptions } from "./run_options.ts";
import { componentResolver } from "./component_resolver.ts";
import { loadPluginTypes } from "./plugin_types.ts";
import { type InternalRunOptions, type RunHost, runLimits } from "./run_lifecycle.ts";
import { startRun } from "./run_handle.ts";
import {
  checkJsonValues,
  checkLoadedConfig,
  checkRunOptions,
  describeKind,
  flowOf,
  isFlowLike,
} from "./api_checks.ts";
import {
  loadResumeState,
  nestedRunKey,
  resumedRunLimits,
  type ResumeMode,
  resumeModeOf,
  type ResumeOptions,
  type ResumeState,
  runOptionsToStore,
  wasInterrupted,
} from "./resume.ts";

export { MAX_NESTING_DEPTH } from "./limits.ts";
export type { RunEvent, RunObserver } from "./observers.ts";
export type { StepGate, StepRunner } from "./run_context.ts";

export type { EngineOptions, FlowLike, RunHandle, RunOptions } from "./run_options.ts";
export type { ResumeMode, ResumeOptions } from "./resume.ts";

const log = logger("engine");

/** Most parsed flows an engine keeps by id (the store has them all; see `Engine.getFlow`). */
export const FLOW_CACHE_SIZE = 1_000;

/** Why an evicted flow is gone and what to do (engine.getFlow's error). */
function evictedFlowText(store: StateStore): string {
  const max = (store as { maxFlows?: number }).maxFlows;
  return `it was evicted from the in-memory state store, which keeps the ${
    max ?? "configured number of"
  } flows stored or used last (stateStore.maxFlows) and the flows of the runs it holds; store ` +
    "it again (engine.storeFlow, or run it), raise maxFlows, or keep every flow in a durable " +
    "store (stateStore: {type: sqlite} or {type: postgres})";
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
  /**
   * Parsed flows by id, the {@linkcode FLOW_CACHE_SIZE} used last (the store keeps them all:
   * before, this kept every distinct flow an engine ever ran, ~4 KB each, so a long-lived service
   * or library process grew without bound).
   */
  #flowsById = new Map<string, Flow>();
  #registered = new WeakSet<Flow>();
  #observers = new Set<RunObserver>();
  #closed = false;
  #services: EngineServices;
  #waits: SignalWaits;
  /** Top-level runs executing in this engine (a resume of one of them is refused). */
  #executing = new IdSet();
  /** The top-level runs started and not yet ended, by run id (`close` cancels them). */
  #live = new IdMap<RunHandle>();
  #oneStep: OneStepHost;
  #host: RunHost;
  #servicesHost?: ServicesHost;

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
    this.#resolver = componentResolver(router, plugins, pluginLimitsOf(config.config, plugins));
    runOptionsToStore(config, {}); // the config file's SHA-256 as loaded, stored with each run
    this.#services = this.#makeServices(undefined, undefined, 0, undefined);
    this.#oneStep = {
      store,
      resolver: this.#resolver,
      log,
      observers: () => this.#observers,
      registerFlow: (flow) => this.#registerFlow(flow),
      services: (runId, signal, depth, budget) => this.#makeServices(runId, signal, depth, budget),
      limits: () => runLimits(this.config, {}),
    };
    this.#host = {
      config,
      store,
      resolver: this.#resolver,
      log,
      stepRunner: this.#stepRunner,
      observers: () => this.#observers,
      executing: this.#executing,
      registerFlow: (flow) => this.#registerFlow(flow),
      services: (runId, signal, depth, budget, secrets, resumeMode) =>
        this.#makeServices(runId, signal, depth, budget, secrets, resumeMode),
    };
  }

  /**
   * Creates the state store and starts every plugin of `config` (in parallel).
   * @throws {PluginStartError} when plugins cannot start (each failure with its plugin and cause;
   * the others are closed first); an error when a plugin cannot be created or the state store
   * cannot be opened.
   */
  static async create(config: LoadedConfig, options: EngineOptions = {}): Promise<Engine> {
    checkLoadedConfig(config);
    const pluginConfigs = Object.entries(config.config.plugins ?? {});
    await loadPluginTypes(pluginConfigs.map(([, pc]) => pc.type));
    const store = options.store ??
      await openStateStore(config.config.stateStore, config.workingDirectory);
    if (store.readOnly) {
      // every run would fail at its first commit (507): say so before anything runs
      if (!options.store) await store.close();
      const where = (store as { path?: string }).path;
      throw new StoreError(
        `the state store${where ? ` (SQLite database '${where}')` : ""} is opened read-only ` +
          "(mode=ro): runs cannot be recorded in it; drop '?mode=ro' from its URL (a read-only " +
          "store can be read with 'stepflow runs list' and 'runs show')",
        where ?? "",
      );
    }
    const plugins = new Map<string, Plugin>();
    let router: Router;
    let engine: Engine;
    try {
      router = new Router(config.config);
      for (const [name, pc] of pluginConfigs) {
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
    if (observer === null || typeof observer !== "object") {
      // (was: accepted, then a warning for every event of every run)
      throw new TypeError(
        `engine.observe: an observer must be an object with methods such as runStarted(event), got ${
          describeKind(observer)
        }`,
      );
    }
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
    try {
      return this.start(flow, input, options).result;
    } catch (e) {
      return Promise.reject(e); // bad options, a closed engine: a rejection, as from an async API
    }
  }

  /**
   * Starts a run of `flow` on `input` and returns its handle at once: its id, its result, a way
   * to cancel it, the steps in flight, and when its record is stored (src/execution/run_handle.ts).
   */
  start(flow: Flow | FlowLike, input: JsonValue, options: RunOptions = {}): RunHandle {
    checkRunOptions(options);
    if (options.parentRunId !== undefined) {
      // a nested run (its parent is cancelled by close, and it with it)
      return startRun(this.#host, isFlowLike(flow) ? flow.flow : flow, input, options);
    }
    this.#checkOpen("start a run");
    const f = flowOf(flow);
    checkJsonValues(input, options.variables);
    const live = this.#live;
    if (options.runId !== undefined && live.has(options.runId)) {
      // (before: both ran as one record, their step results mixed, the last one's result kept)
      throw new UsageError(
        `RunOptions.runId: run ${options.runId} is already executing in this engine; give each run its own id (or none: a new one is made)`,
      );
    }
    const o = options as InternalRunOptions;
    const given = options.runId;
    const handle = startRun(
      this.#host,
      f,
      input,
      options,
      // a new run under a given id: the store is asked first (a run claimed from the queue or
      // resumed exists already, legitimately; an id its caller just made needs no look: the
      // read waits for a commit)
      given !== undefined && o.resume === undefined && o.existing !== true && o.newRunId !== true
        ? this.#checkNewRunId(given, f, input)
        : undefined,
    );
    const runId = handle.runId;
    live.set(runId, handle);
    const ended = () => {
      if (live.get(runId) === handle) live.delete(runId);
    };
    (handle as { result: Promise<FlowResult> }).result = handle.result.then((r) => {
      ended();
      // The engine was closed while the run was going: its steps failed on the stopped plugins
      // or the closed store (500, -32603, 507, as it happened), and the store marked it
      // interrupted; it is told what the store says.
      return this.#closed && r.outcome === "failed"
        ? interruptedResult(runId, "the engine was closed (engine.close()) before the run finished")
        : r;
    }, (e) => {
      ended();
      throw e;
    });
    return handle;
  }

  /**
   * Resolves when `runId` may name a new top-level run: the store had no run with it, or only
   * the service's own `queued` record of it (started now under its id). A database store takes
   * the id in one atomic statement ({@linkcode StateStore.claimRunId}): of two engines given the
   * same new id at the same instant, one runs and the other gets this error (before, both looked
   * the id up, found nothing, and ran as one record, their step results mixed).
   * @throws {UsageError} (rejects) when the store has a run with that id (finished, or executed
   * by another engine). Before: the new run silently replaced that run's record (input, status,
   * result) and its step results mixed with the old run's. A store that cannot be read or
   * written does not stop the run here: its record's write then fails it (507).
   */
  async #checkNewRunId(runId: string, flow: Flow, input: JsonValue): Promise<void> {
    const store = this.store;
    const old = store.claimRunId === undefined
      ? await store.getRun(runId).catch(() => undefined)
      : await store.claimRunId({
        runId,
        flowId: this.#registerFlow(flow),
        flowName: flow.name,
        input,
        createdAt: nowRfc3339(),
      }).catch(() => undefined);
    if (old === undefined || (old.status === "queued" && store.claimRunId === undefined)) return;
    const again = old.status !== "completed" && old.parentRunId === undefined
      ? `; to continue it, resume it: engine.resume('${runId}') (stepflow resume ${runId})`
      : "";
    throw new UsageError(
      `RunOptions.runId: run ${runId} is already in the state store (${old.status}${
        old.parentRunId !== undefined ? `, nested in run ${old.rootRunId ?? old.parentRunId}` : ""
      }); a run id names one run: give each run its own id (or none: a new one is made)${again}`,
    );
  }

  /**
   * @throws {UsageError} `the engine is closed` once {@linkcode Engine.close} was called (a
   * closed engine's plugins are stopped and its store closed: a run there failed with "step
   * service is closed" or "statement has been finalized").
   */
  #checkOpen(what: string): void {
    if (this.#closed) {
      throw new UsageError(
        `cannot ${what}: the engine is closed (engine.close() was called); create a new one with Engine.create`,
      );
    }
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
   * @throws {UsageError} when the engine is closed.
   * @throws {Error} when its flow cannot be read from the store.
   */
  async resume(runId: string, options: ResumeOptions = {}): Promise<RunHandle> {
    this.#checkOpen(`resume run ${runId}`);
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
    let limits; // the run's stored timeout (what is left of it) and limits, unless given
    try {
      prepared = await this.#prepareResume(record, mode, options.claimed === true);
      limits = await resumedRunLimits(this.store, record, options);
    } catch (e) {
      this.#executing.delete(runId);
      throw e;
    }
    const { flow, state } = prepared;
    const o: InternalRunOptions = { runId, resume: state, ...limits };
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

  /** Stores `flow` as a flow blob and returns its id (also remembering the parsed flow). */
  storeFlow(flow: Flow): string {
    return this.#registerFlow(flow);
  }

  /**
   * The id of `flow`, storing it as a flow blob the first time this engine sees the flow object
   * (so workers can ask for its metadata and a stored run names a stored flow, as in 0.8).
   */
  #registerFlow(flow: Flow): string {
    // (an in-memory store evicts flows no run uses: `maxFlows`; such a flow is stored again)
    const store = this.store;
    if (this.#registered.has(flow)) {
      const id = flowBlob(flow).id;
      if (store.hasBlob === undefined || store.hasBlob(id)) return id;
    }
    const { id, json } = flowBlob(flow);
    if (!this.#flowsById.has(id) || store.hasBlob?.(id) === false) {
      this.store.putBlob(json ?? flowToJson(flow), "flow", id);
      this.#cacheFlow(id, flow);
    }
    this.#registered.add(flow);
    return id;
  }

  /**
   * The flow stored under `flowId`.
   * @throws {Error} `Not found: flow with ID '<id>'` when no flow blob has that id; for a flow the
   * in-memory store evicted (`maxFlows`), the message says so and how to keep flows.
   */
  async getFlow(flowId: string): Promise<Flow> {
    const known = this.#flowsById.get(flowId);
    const store = this.store;
    if (known && (store.hasBlob === undefined || store.hasBlob(flowId))) {
      this.#cacheFlow(flowId, known); // (used last)
      return known;
    }
    if (known) this.#flowsById.delete(flowId); // the in-memory store evicted it
    const blob = await store.getBlob(flowId);
    if (!blob || blob.blobType !== "flow") {
      throw new Error(
        `Not found: flow with ID '${flowId}'${
          store.flowEvicted?.(flowId) ? `: ${evictedFlowText(store)}` : ""
        }`,
      );
    }
    const flow = await withChecks(() => flowFromJson(blob.data));
    this.#cacheFlow(flowId, flow);
    return flow;
  }

  /** Remembers `flow` as the flow used last; forgets the one used longest ago past the size. */
  #cacheFlow(id: string, flow: Flow): void {
    const cache = this.#flowsById;
    cache.delete(id);
    cache.set(id, flow);
    if (cache.size > FLOW_CACHE_SIZE) cache.delete(cache.keys().next().value!);
  }

  #makeServices(
    runId: string | undefined,
    signal: AbortSignal | undefined,
    depth: number,
    budget: RunBudget | undefined,
    secrets?: Redactor,
    resumeMode?: ResumeMode,
  ): EngineServices {
    // one host per engine (issue 17: not four closures per map item)
    const host = this.#servicesHost ??= {
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
        // (checked above; not copied: an object per map item)
        return runOneStep(
          this.#oneStep,
          flow,
          one,
          input,
          o as NestedRunStart & { parentRunId: string; budget: RunBudget },
        );
      }
    }
    return this.run(flow, input, o as InternalRunOptions);
  }

  /**
   * Stops every plugin and closes the state store; safe to call twice. The engine stops as if
   * its process stopped: runs still going are interrupted, the store keeps what they committed
   * (a durable store marks them interrupted, resumable with `engine.resume` or `stepflow resume`)
   * and their result here is `failed`, code 503 (`RUN_INTERRUPTED`), saying so. Afterwards `run`,
   * `start` and `resume` throw a {@linkcode UsageError}. (Before: such a run was told 507 "cannot
   * store run state ...: database is not open ... recorded failed with this error", which the
   * store did not do, and a run started after close ran on the closed store and failed inside a
   * step with "statement has been finalized".)
   */
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
