/**
 * The state of one run while it executes: input, variables, step results so far, the steps in
 * flight, and the services steps use (routing, plugins, the state store, nested runs, limits,
 * observers). The engine builds it; the scheduler and the step pipeline read it.
 * @module
 */
import type { JsonValue } from "../json/exact_json.ts";
import type { FlowResult } from "../core/flow_result.ts";
import { CANCELLED } from "../core/error_codes.ts";
import type { RunStatus } from "../state/store.ts";
import type { Clock } from "../core/clock.ts";
import type { Limiter } from "../core/limiter.ts";
import type { ResolveScope } from "../flow/template.ts";
import type { EngineServices, Plugin } from "../plugins/plugin.ts";
import type { StateStore } from "../state/store.ts";
import type { Logger } from "../log.ts";
import type { CompiledFlow, CompiledStep } from "./compile.ts";
import type { RunEvents } from "./observers.ts";
import type { PluginLimits, RunBudget } from "./limits.ts";
import type { Redactor } from "./secrets.ts";
import type { ResumeState } from "./resume.ts";

/**
 * A routed component: the plugin, the name the plugin knows it by (e.g. `/eval`), and the limits
 * the engine applies to calls of that plugin (none when it has none, or enforces them itself).
 */
export interface RoutedComponent {
  plugin: Plugin;
  component: string;
  limits?: PluginLimits;
  /** Calls can be made again without harm (`Plugin.replayable` for this component). */
  replayable: boolean;
}

/** Routes a step's component path (§2.3). */
export interface ComponentResolver {
  /**
   * The plugin and plugin-side component name for `component` given the resolved step `input`.
   * @throws {Error} `No matching rule found for component: /x` and other routing errors.
   */
  resolve(component: string, input: JsonValue): RoutedComponent;
}

/** The limits of one run (see docs/error-handling.md). */
export interface RunLimits {
  /** Steps in flight in this run (`--max-concurrency`, config `maxConcurrency`). */
  steps?: Limiter;
  /** Largest step output in bytes of compact JSON. @default DEFAULT_MAX_OUTPUT_BYTES */
  maxOutputBytes?: number;
  /** Fake time for tests. @default realClock */
  clock?: Clock;
  /** Random source for jitter (tests). @default Math.random */
  random?: () => number;
}

/** Runs the stages of one step before its record (a test seam: see `EngineOptions.stepRunner`). */
export type StepRunner = (step: CompiledStep, run: RunContext) => Promise<FlowResult>;

/**
 * Decides when a ready step may start (debug mode, human-in-the-loop): `undefined` = now, a
 * promise = when it resolves (a rejection fails the run).
 */
export type StepGate = (step: CompiledStep) => Promise<void> | undefined;

/** Where a nested run comes from (eval, map, iterate, `flows/evaluate`, batches). */
export interface RunOrigin {
  parentRunId: string;
  /** The step of the parent run that started this run, when known. */
  stepId?: string;
  /** The item (map, batch) or iteration (iterate) index. */
  item?: number;
  /** Deterministic key: `<parentRunId>/<stepId>[/<item>]` (when the step is known). */
  runKey?: string;
}

/**
 * The status a run ends with, from its result: `completed` on success, `cancelled` when it
 * failed with the cancel code (410) because its `signal` aborted, else `failed`.
 */
export function endStatus(result: FlowResult, signal: AbortSignal): RunStatus {
  return result.outcome === "success"
    ? "completed"
    : result.outcome === "failed" && result.error.code === CANCELLED && signal.aborted
    ? "cancelled"
    : "failed";
}

/** The steps of a run in flight: started (past any concurrency wait), not yet recorded. */
export class InFlight {
  /** Start time (ms since the epoch) by step index; 0 when not in flight. */
  readonly startedAt: StepNumbers;
  /** Current attempt by step index. */
  readonly attempt: StepNumbers;
  /**
   * 1 by step index for the steps whose start was recorded in the store (steps with side
   * effects: the pipeline's `startedCall`); made on the first. A run that ends without completing
   * records the start of its other steps in flight (src/execution/run_lifecycle.ts `endRun`).
   * Numbers, not a `Set`: a map item's one-step table is reused, and a `Set`'s `clear()` made a
   * new hash table per item (3.5% of a stdio map's samples, wave 11).
   */
  recorded: StepNumbers | undefined = undefined;

  constructor(readonly steps: readonly CompiledStep[]) {
    // Plain arrays for small flows: a typed array's buffer costs ~1 µs to make, which a run of a
    // one-step flow pays per run (issue 17). Typed ones for large flows: their numbers are
    // outside the garbage-collected heap, which a plain array grown to 100,000 zeros is not
    // (its growth was 50 bytes a step of a fan-out, and the young collections copied it).
    const n = steps.length;
    this.startedAt = stepNumbers(n);
    this.attempt = stepNumbers(n);
  }

  /**
   * A run ending without completing (cancelled, failed) while steps are in flight: the start of
   * each one the store was not told of (a step without side effects — a built-in such as
   * `/builtin/wait_for` or `/builtin/map`, a mock — is recorded with its result only) is recorded
   * now, with its real start time and attempt, so that the store's end of the run marks it
   * `failed` as it does the others (`GET /runs/{id}/steps`, `stepflow runs show`: it was running
   * when the run ended, not `blocked`). Best effort: a write the store refuses changes nothing for
   * the run. Only on that path (run_lifecycle.ts `endRun`, and a one-step nested run's end in
   * single_step.ts): a completed run has no step in flight.
   * @param results the run's step results by step index (a step with one is not in flight).
   */
  recordCutShort(
    store: StateStore,
    runId: string,
    results: readonly (FlowResult | undefined)[] | undefined,
  ): void {
    const recorded = this.recorded;
    for (let i = 0; i < this.startedAt.length; i++) {
      const at = this.startedAt[i];
      if (at === 0 || recorded?.[i] === 1 || results?.[i] !== undefined) continue;
      const step = this.steps[i];
      try {
        const write = store.recordStepStarted(runId, {
          stepIndex: i,
          stepId: step.id,
          component: step.component,
          attempt: Math.max(1, this.attempt[i]),
          at: new Date(at).toISOString(),
        });
        write?.catch(() => {});
      } catch {
        // a closed store: the run's end says what happened
      }
    }
  }

  /** Step id, attempt and start time of every step in flight, in step order. */
  list(): { stepId: string; attempt: number; startedAt: number }[] {
    const out: { stepId: string; attempt: number; startedAt: number }[] = [];
    for (let i = 0; i < this.startedAt.length; i++) {
      if (this.startedAt[i] !== 0) {
        out.push({
          stepId: this.steps[i].id,
          attempt: this.attempt[i],
          startedAt: this.startedAt[i],
        });
      }
    }
    return out;
  }
}

/** Numbers by step index: a plain array for a small flow, a typed one for a large one. */
export type StepNumbers = number[] | Float64Array;

/** Flows of this many steps or more keep their in-flight numbers in typed arrays. */
const TYPED_FROM = 1024;

/**
 * `n` zeros by step index: a plain array for a small flow (a typed array's buffer is made through
 * V8's runtime, ~1 µs, which a small run pays per table), a typed one for a large flow.
 */
export function stepNumbers(n: number): StepNumbers {
  return n < TYPED_FROM ? zeros(n) : new Float64Array(n);
}

/** `n` zeros in a packed array (`new Array(n)` is holey, and a dictionary from 100k up). */
function zeros(n: number): number[] {
  const a: number[] = [];
  for (let i = 0; i < n; i++) a.push(0);
  return a;
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
  /** Results by step index; undefined until the step's result is recorded. */
  results: (FlowResult | undefined)[];
  /** What templates read (input, results, variables). */
  scope: ResolveScope;
  /** Aborted when the run ends early (a step error, a limit) or is cancelled. */
  signal: AbortSignal;
  /** Engine services scoped to this run (blobs, nested flows, batches). */
  services: EngineServices;
  resolver: ComponentResolver;
  store: StateStore;
  log: Logger;
  /** Steps in flight, attempt and start time (the run handle's `inFlight()`). */
  inFlight: InFlight;
  /** Limits shared by this run and its nested runs (steps, nested runs). */
  budget: RunBudget;
  /** Retry/timeout/concurrency limits of this run. */
  limits?: RunLimits;
  /** Observers of this run; undefined when nobody observes. */
  events?: RunEvents;
  /** Waits before a ready step starts; undefined = steps start at once. */
  gate?: StepGate;
  /** Replaces the stages before the record stage (tests). */
  runner?: StepRunner;
  /** Where a nested run comes from; undefined for a top-level run. */
  origin?: RunOrigin;
  /**
   * The latest store write of this run's step results that is not known to be committed yet
   * (stores that commit in groups return a promise; commits happen in order, so this one
   * settling means every earlier one did). Undefined when everything is committed.
   */
  commit?: Promise<void>;
  /**
   * The first failure of a store write of this run's step results (set when its commit
   * rejects; the run's end reports it even when the run had finished by then).
   */
  storeError?: unknown;
  /** The run's secrets (src/execution/secrets.ts); undefined when it has none. */
  secrets?: Redactor;
  /**
   * A resumed run (src/execution/resume.ts): its committed results, replayed instead of
   * executed, and the attempts its steps reached. Undefined for a new run.
   */
  resume?: ResumeState;
}

/** The attempt number before a step's first attempt in this run: 0, or the one reached before. */
export function attemptBase(run: RunContext, index: number): number {
  return run.resume === undefined ? 0 : run.resume.attempts[index] ?? 0;
}

/**
 * The template scope of a run: one object with its methods on the prototype (a map item's run
 * made an object and three closures, issue 17).
 */
class RunScope implements ResolveScope {
  constructor(
    readonly compiled: CompiledFlow,
    readonly input: JsonValue,
    readonly results: (FlowResult | undefined)[],
    readonly variables: ReadonlyMap<string, JsonValue>,
  ) {}

  stepResult(stepId: string): FlowResult | undefined {
    const i = this.compiled.indexById.get(stepId);
    return i === undefined ? undefined : this.results[i];
  }

  variable(name: string): JsonValue | undefined {
    return this.variables.get(name);
  }

  variableDefault(name: string): JsonValue | undefined {
    return this.compiled.variableDefaults.get(name);
  }
}

/** The variables of a run given none (shared, never written). */
export const NO_VARIABLES: ReadonlyMap<string, JsonValue> = new Map();

/** Builds the template scope of a run. */
export function makeScope(
  compiled: CompiledFlow,
  input: JsonValue,
  results: (FlowResult | undefined)[],
  variables: ReadonlyMap<string, JsonValue>,
): ResolveScope {
  return new RunScope(compiled, input, results, variables);
}
