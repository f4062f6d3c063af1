/**
 * Run observers: what happens in runs, as events (`engine.observe(observer)`). The journal of
 * durable runs, the CLI's progress line, the service's event stream and metrics are observers.
 *
 * Cost: the engine looks once per run whether anyone observes; without observers no event object
 * is built and no step pays more than one `undefined` check. An observer that throws is logged
 * and never breaks a run.
 * @module
 */
import type { JsonObject } from "../json/exact_json.ts";
import type { FlowResult } from "../core/flow_result.ts";
import { describeError } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { RunStatus } from "../state/store.ts";

/** A run began (also nested runs: `parentRunId`, `runKey`). `at` is ms since the epoch. */
export interface RunStartedEvent {
  type: "run_started";
  runId: string;
  flowId: string;
  flowName?: string;
  parentRunId?: string;
  /** The top-level run this one belongs to (itself for a top-level run). */
  rootRunId: string;
  /** Deterministic key of a nested run: `<parentRunId>/<stepId>[/<item>]`. */
  runKey?: string;
  at: number;
}

/** A step attempt began (attempt 1, then once per retry). */
export interface StepStartedEvent {
  type: "step_started";
  runId: string;
  stepId: string;
  stepIndex: number;
  /** The component path as written in the flow. */
  component: string;
  attempt: number;
  at: number;
}

/** A component reported progress of a long call (`ExecuteContext.progress`). */
export interface StepProgressEvent {
  type: "step_progress";
  runId: string;
  stepId: string;
  data: JsonObject;
  at: number;
}

/** A step's result was recorded (committed to the state store). */
export interface StepFinishedEvent {
  type: "step_finished";
  runId: string;
  stepId: string;
  stepIndex: number;
  outcome: FlowResult["outcome"];
  /** From the step's start (its first attempt) to its recorded result, ms. */
  durationMs: number;
  at: number;
  result: FlowResult;
}

/** A run ended with its result. */
export interface RunFinishedEvent {
  type: "run_finished";
  runId: string;
  status: RunStatus;
  result: FlowResult;
  at: number;
}

/** Any run event. */
export type RunEvent =
  | RunStartedEvent
  | StepStartedEvent
  | StepProgressEvent
  | StepFinishedEvent
  | RunFinishedEvent;

/**
 * Receives run events; every method is optional. `onEvent` receives every event (after the
 * method for its type). Methods are called synchronously, in order, on the engine's hot path:
 * queue slow work (a database write) instead of doing it inline.
 */
export interface RunObserver {
  runStarted?(event: RunStartedEvent): void;
  stepStarted?(event: StepStartedEvent): void;
  stepProgress?(event: StepProgressEvent): void;
  stepFinished?(event: StepFinishedEvent): void;
  runFinished?(event: RunFinishedEvent): void;
  onEvent?(event: RunEvent): void;
}

const METHOD = {
  run_started: "runStarted",
  step_started: "stepStarted",
  step_progress: "stepProgress",
  step_finished: "stepFinished",
  run_finished: "runFinished",
} as const;

/** The observers of one run (a snapshot taken when it started). */
export class RunEvents {
  constructor(
    readonly runId: string,
    readonly observers: readonly RunObserver[],
    readonly log: Logger,
  ) {}

  /** Delivers `event` to every observer; one that throws is logged and skipped. */
  emit(event: RunEvent): void {
    const method = METHOD[event.type];
    for (const o of this.observers) {
      try {
        (o[method] as ((e: RunEvent) => void) | undefined)?.(event);
        o.onEvent?.(event);
      } catch (e) {
        this.log.warn(`a run observer failed on ${event.type}: ${describeError(e)}`);
      }
    }
  }

  /** `run_finished` with the run's end status (completed, or failed for any other outcome). */
  finished(result: FlowResult): void {
    const status = result.outcome === "success" ? "completed" : "failed";
    this.emit({ type: "run_finished", runId: this.runId, status, result, at: Date.now() });
  }

  /** `ExecuteContext.progress` of one step. */
  progressOf(stepId: string): (data: JsonObject) => void {
    return (data) =>
      this.emit({ type: "step_progress", runId: this.runId, stepId, data, at: Date.now() });
  }
}
