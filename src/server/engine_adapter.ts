/**
 * The one place the service starts runs on the engine. It gives the service the run handle of
 * CONTRACTS.md (`engine.start(flow, input, options): RunHandle`), which the architecture branch
 * adds to the engine. An engine with `start` is used as is; without it, the handle is built here
 * from `engine.run` and an AbortController.
 * @module
 */
import type { Engine, RunOptions } from "../execution/engine.ts";
import type { Flow } from "../flow/model.ts";
import type { FlowResult } from "../flow/flow_result.ts";
import type { JsonValue } from "../json/exact_json.ts";
import { stepsInFlight } from "../execution/step_call.ts";

type EngineStart = (flow: Flow, input: JsonValue, options: RunOptions) => RunHandle;

/** A started run (CONTRACTS.md `RunHandle`). */
export interface RunHandle {
  runId: string;
  /** The run's FlowResult; never rejects for problems of the flow or its steps. */
  result: Promise<FlowResult>;
  /**
   * Cancels the run: running steps are cancelled (their plugins' AbortSignals fire: step
   * service calls are abandoned, MCP calls get `notifications/cancelled`), no further step
   * starts, and `result` becomes `failed` with code 410.
   */
  cancel(reason?: unknown): void;
  /** Steps running now. `attempt`/`startedAt` are 1/NaN until the engine reports them. */
  inFlight(): { stepId: string; attempt: number; startedAt: number }[];
}

/** Starts `flow` on `input` as run `options.runId`. */
export function startRun(
  engine: Engine,
  flow: Flow,
  input: JsonValue,
  options: RunOptions & { runId: string },
): RunHandle {
  // the engine's own run handles, once it has them (CONTRACTS.md `engine.start`)
  const start = (engine as unknown as { start?: EngineStart }).start;
  if (typeof start === "function") return start.call(engine, flow, input, options);
  const ctrl = new AbortController();
  const runId = options.runId;
  const result = engine.run(flow, input, { ...options, signal: ctrl.signal });
  return {
    runId,
    result,
    cancel: (reason?: unknown) => ctrl.abort(reason ?? new Error("Run was cancelled")),
    inFlight: () =>
      stepsInFlight(runId).map((stepId) => ({ stepId, attempt: 1, startedAt: Number.NaN })),
  };
}
