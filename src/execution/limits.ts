/**
 * The engine's limits (extension; docs/error-handling.md lists them all):
 * - per plugin: a default call timeout and most calls in flight (config `plugins.<p>.timeout`,
 *   `maxConcurrency`), unless the plugin enforces them itself ({@linkcode PluginEnforcement});
 * - per run: steps in flight, the largest step output;
 * - per top-level run, shared with all its nested runs: most steps started
 *   ({@linkcode DEFAULT_MAX_RUN_STEPS}) and most nested runs ({@linkcode DEFAULT_MAX_NESTED_RUNS}),
 *   besides the nesting depth ({@linkcode MAX_NESTING_DEPTH}). A flow that maps or evaluates
 *   itself without end is stopped with `RUN_LIMIT` (508) before it exhausts memory.
 * @module
 */
import type { Config } from "../config/model.ts";
import { parseDuration } from "../core/duration.ts";
import { Limiter } from "../core/limiter.ts";
import type { Plugin, PluginEnforcement } from "../plugins/plugin.ts";

/** Limits of calls to one plugin that the engine applies (config `timeout`, `maxConcurrency`). */
export interface PluginLimits {
  /** Calls in flight on the plugin. */
  limiter?: Limiter;
  /** Default timeout of a call, ms, for steps without their own. */
  timeoutMs?: number;
}

/** Default `maxOutputSize`: 64 MiB of compact JSON per step output. */
export const DEFAULT_MAX_OUTPUT_BYTES = 64 * 1024 * 1024;

/**
 * Most levels of nested runs (`eval`, `map`, `iterate`, `flows/evaluate`, batches) under one
 * top-level run. Deeper runs fail at once instead of recursing until memory runs out.
 */
export const MAX_NESTING_DEPTH = 64;

/** Default `maxNestedRuns`: nested runs under one top-level run, at any depth. */
export const DEFAULT_MAX_NESTED_RUNS = 100_000;

/** Default `maxRunSteps`: steps started by one top-level run and its nested runs. */
export const DEFAULT_MAX_RUN_STEPS = 1_000_000;

/**
 * Per-plugin limits from a config: `timeout` and `maxConcurrency` of every plugin that has them,
 * except what the plugin enforces itself (`plugin.enforces`).
 * @throws {RangeError} for an invalid `timeout` (validation rejects it earlier).
 */
export function pluginLimitsOf(
  config: Config,
  plugins: ReadonlyMap<string, Plugin>,
): Map<string, PluginLimits> {
  const out = new Map<string, PluginLimits>();
  for (const [name, pc] of Object.entries(config.plugins ?? {})) {
    const enforces: PluginEnforcement = plugins.get(name)?.enforces ?? {};
    const c = pc as { timeout?: unknown; maxConcurrency?: number };
    const limits: PluginLimits = {};
    if (c.timeout !== undefined && !enforces.timeout) {
      limits.timeoutMs = parseDuration(c.timeout, { what: `plugins.${name}.timeout` });
    }
    if (c.maxConcurrency !== undefined && !enforces.concurrency) {
      limits.limiter = new Limiter(c.maxConcurrency);
    }
    if (limits.timeoutMs !== undefined || limits.limiter) out.set(name, limits);
  }
  return out;
}

/** Why a run was stopped by its budget (the abort reason of the top-level run). */
export class RunLimitError extends Error {
  override name = "RunLimitError";
  constructor(
    message: string,
    /** The limit's config key. */
    readonly limit: "maxRunSteps" | "maxNestedRuns",
    readonly value: number,
  ) {
    super(message);
  }
}

/**
 * What a top-level run and all its nested runs may still start: counts of steps and nested runs
 * against their limits. Going over aborts the top-level run with a {@linkcode RunLimitError}.
 */
export class RunBudget {
  steps = 0;
  runs = 0;
  #exceeded = false;

  constructor(
    readonly maxRunSteps: number,
    readonly maxNestedRuns: number,
    /** Aborts the top-level run. */
    readonly stop: (reason: RunLimitError) => void,
    /** The top-level run's id. */
    readonly rootRunId: string,
  ) {}

  /** Counts one step start; false (and the run stopped) when it goes over `maxRunSteps`. */
  addStep(): boolean {
    if (++this.steps <= this.maxRunSteps) return true;
    this.#over(
      new RunLimitError(
        `The run started more than ${this.maxRunSteps} steps (counting its nested runs) and was ` +
          `stopped: does a flow map or evaluate itself without end? (raise maxRunSteps in the ` +
          `config if the run really needs more)`,
        "maxRunSteps",
        this.maxRunSteps,
      ),
    );
    return false;
  }

  /** Counts one nested run; false (and the run stopped) when it goes over `maxNestedRuns`. */
  addRun(): boolean {
    if (++this.runs <= this.maxNestedRuns) return true;
    this.#over(
      new RunLimitError(
        `The run started more than ${this.maxNestedRuns} nested runs and was stopped: does a ` +
          `flow map or evaluate itself without end? (raise maxNestedRuns in the config if the ` +
          `run really needs more)`,
        "maxNestedRuns",
        this.maxNestedRuns,
      ),
    );
    return false;
  }

  #over(reason: RunLimitError): void {
    if (this.#exceeded) return;
    this.#exceeded = true;
    this.stop(reason);
  }
}
