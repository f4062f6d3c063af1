/**
 * The one place the service starts runs on the engine: `engine.start()` and its run handle
 * (`runId`, `result`, `cancel()`, `inFlight()`).
 * @module
 */
import type { Engine, ResumeMode, RunHandle, RunOptions } from "../execution/engine.ts";
import type { ResumeOptions } from "../execution/resume.ts";
import type { InternalRunOptions } from "../execution/run_lifecycle.ts";
import type { ResumedGate, ResumeGate } from "./run_model.ts";
import type { Flow } from "../flow/model.ts";
import type { JsonValue } from "../json/exact_json.ts";
import { RunNotResumableError } from "../errors.ts";
import { ApiError } from "./api_error.ts";
import type { ServiceStore } from "./store_adapter.ts";

export type { RunHandle } from "../execution/engine.ts";

/**
 * Starts `flow` on `input` as run `options.runId`, an id this service made (a new UUID, its
 * queued record stored under it at most): the engine does not look it up in the store first.
 */
export function startRun(
  engine: Engine,
  flow: Flow,
  input: JsonValue,
  options: RunOptions & { runId: string },
): RunHandle {
  const o: InternalRunOptions = { ...options, newRunId: true };
  return engine.start(flow, input, o);
}

/**
 * Continues stored run `runId` (`engine.resume`: claimed first, so two engines never both
 * resume it).
 * @throws {RunNotResumableError} for an unknown, completed or nested run, or one another live
 * engine executes.
 */
export function resumeRun(engine: Engine, runId: string, from?: ResumeMode): Promise<RunHandle> {
  return engine.resume(runId, from === undefined ? {} : { from });
}

/**
 * {@linkcode resumeRun} for the service: also reads the run's flow id, and puts a debug run back
 * under its gate (`gateFor`). `claimed`: this engine claimed the run already (not claimed again).
 * @throws {ApiError} 404 for an unknown run; 409 when it is completed, nested, or executed by
 * another live engine.
 */
export async function resumeStoredRun(
  engine: Engine,
  store: ServiceStore,
  runId: string,
  from?: ResumeMode,
  gateFor?: ResumeGate,
  claimed?: boolean,
): Promise<{ flowId: string; handle: RunHandle; held?: ResumedGate }> {
  let held: ResumedGate | undefined;
  try {
    const record = await store.getRun(runId);
    held = record?.debugMode && gateFor !== undefined ? await gateFor(record) : undefined;
    const options: ResumeOptions = from === undefined ? {} : { from };
    if (held !== undefined) options.gate = held.gate;
    if (claimed === true) options.claimed = true;
    const handle = await engine.resume(runId, options);
    return { flowId: record?.flowId ?? "", handle, ...(held !== undefined ? { held } : {}) };
  } catch (e) {
    held?.cancel();
    if (e instanceof RunNotResumableError) {
      throw new ApiError(e.reason === "unknown" ? 404 : 409, e.message);
    }
    throw e;
  }
}
