/**
 * The answer of `GET /runs/{runId}/steps`: each step of a run in flow order with its status
 * (stepflow 0.8), and — extensions, for the web UI and other clients — its attempt, when it
 * started and finished, how long it took, and the input it was given.
 *
 * - Status: `completed`/`failed`/`skipped` from the step's stored result; `running` while the
 *   engine runs it; `runnable` when every dependency has finished; else `blocked`. A step that
 *   was running when its run was cancelled (or failed) reads `failed`, without a result: stepflow
 *   0.8 has no `cancelled` step status (its cancel did not stop a run), and `failed` is what its
 *   run's result says (`outcome: failed`, code 410); the run's status says `cancelled`. Steps
 *   recorded with their result only (built-ins, mocks: docs/durability.md) have their start
 *   recorded when the run ends (src/execution/run_context.ts `InFlight.recordCutShort`).
 * - Times come from the run's journal: a step's start from its `step_started` event (journaled
 *   for steps with side effects), else its result's time less its duration (the engine records
 *   how long each step took, from its first attempt's start: `data.durationMs` of
 *   `step_completed`/`step_failed`/`step_skipped`), else — a running step of this service: when
 *   the engine started it (`RunHandle.inFlight()`). Only when none of these is known (a step
 *   running on another engine, a result stored without its duration by an older version) is the
 *   start estimated as the moment its inputs were ready (the run's start, or its last
 *   dependency's result), which is when the scheduler starts a step unless a concurrency limit
 *   holds it back; `durationEstimated: true` says so.
 * - Input: the step's input template resolved against the run's input, variables and stored step
 *   results (with the run's overrides applied), as the engine resolves it — shown for steps that
 *   started or finished. Values marked `is_secret` (variables, input fields, step outputs) are
 *   replaced by `[REDACTED]`.
 * @module
 */
import type { Flow } from "../flow/model.ts";
import type { FlowResult } from "../core/flow_result.ts";
import type { JsonValue } from "../json/exact_json.ts";
import { resolveTemplate } from "../flow/template.ts";
import { type CompiledFlow, compileFlow } from "../execution/compile.ts";
import { applyOverrides } from "../execution/overrides.ts";
import { makeScope } from "../execution/run_context.ts";
import { runRedactor } from "../execution/secrets.ts";
import type { RunEventRecord, RunRecord, StepStatus } from "../state/store.ts";
import type { Service } from "./context.ts";

/** One step in the answer of `GET /runs/{runId}/steps`. */
export interface StepEntry {
  stepIndex: number;
  stepId: string;
  component: string;
  status: StepStatus;
  /** The step's FlowResult, once it finished. */
  result?: FlowResult;
  /** The last attempt started (1 for the first); absent before the step started. */
  attempt?: number;
  /** When the (first attempt of the) step started, RFC 3339. */
  startedAt?: string;
  /** When its result was stored, RFC 3339. */
  completedAt?: string;
  /** How long it took (all attempts), ms; while it runs, how long so far. */
  durationMs?: number;
  /** True when `startedAt`/`durationMs` are estimated (see the module docs). */
  durationEstimated?: boolean;
  /** The input the step was given (secrets redacted); absent before it starts. */
  input?: JsonValue;
}

interface StepTimes {
  startedAt?: string;
  completedAt?: string;
  attempt?: number;
  durationMs?: number;
  /** Its last journal event is a start (a call without its result yet). */
  open?: boolean;
}

/**
 * The steps of stored run `r` of `flow`, keyed by step id in flow order (the run's handle, when
 * this service runs it, tells which steps are running; for a run going on elsewhere — another
 * service on the same database — the journal tells: a step whose start has no result yet is
 * `running`). `statusOnly`: only index, id, component and status (no journal read but for a run
 * going on elsewhere, no input resolved).
 */
export async function runSteps(
  s: Service,
  r: RunRecord,
  flow: Flow,
  options: { statusOnly?: boolean } = {},
): Promise<Record<string, StepEntry>> {
  const statusOnly = options.statusOnly === true;
  const active = s.runs.get(r.runId);
  // was: a step running on another service on the database read `blocked` here (no handle)
  const elsewhere = active === undefined && (r.status === "running" || r.status === "paused");
  // a run that was cancelled or failed: a step it was running then has its start recorded
  // (step_info `failed`, or `running` in a store of an older version) and no result
  const ended = r.status === "cancelled" || r.status === "failed";
  const [stored, events, infos] = await Promise.all([
    s.store.getStepResults(r.runId),
    statusOnly && !elsewhere ? [] : s.store.getEvents({ runId: r.runId }),
    ended ? s.store.getStepInfo(r.runId) : [],
  ]);
  const cut = new Set<number>();
  for (const x of infos) if (x.status === "running" || x.status === "failed") cut.add(x.stepIndex);
  const steps = flow.steps ?? [];
  const results: (FlowResult | undefined)[] = new Array(steps.length);
  for (const sr of stored) results[sr.stepIndex] = sr.result;

  const inFlight = new Map<string, { attempt: number; startedAt: number }>();
  for (const x of active?.inFlight() ?? []) inFlight.set(x.stepId, x);

  let compiled: CompiledFlow | undefined;
  let effective: Flow = flow;
  try {
    effective = applyOverrides(flow, r.overrides);
    compiled = compileFlow(effective);
  } catch {
    compiled = undefined; // the run failed on it; statuses still come from the results
  }

  // times from the journal (of this run only: nested runs have their own steps)
  const times: StepTimes[] = steps.map(() => ({}));
  let runStartedAt: string | undefined;
  for (const e of events) {
    if (e.runId !== r.runId) continue;
    if (e.type === "run_started" || e.type === "run_resumed") runStartedAt ??= e.at;
    if (e.stepIndex === undefined || e.stepIndex < 0 || e.stepIndex >= steps.length) continue;
    const t = times[e.stepIndex];
    if (e.type === "step_started") {
      t.startedAt ??= e.at;
      t.open = true;
      if (e.attempt !== undefined) t.attempt = Math.max(t.attempt ?? 1, e.attempt);
    } else if (isStepResultEvent(e)) {
      t.open = false;
      t.completedAt = e.at;
      if (e.attempt !== undefined) t.attempt = Math.max(t.attempt ?? 1, e.attempt);
      const d = (e.data as { durationMs?: unknown } | undefined)?.durationMs;
      if (typeof d === "number") t.durationMs = d;
    }
  }
  runStartedAt ??= r.createdAt;

  let redact: ((v: JsonValue) => JsonValue) | undefined;
  let scope: ReturnType<typeof makeScope> | undefined;
  if (compiled && !statusOnly) {
    const variables = new Map(Object.entries(r.variables ?? {}));
    scope = makeScope(compiled, r.input, results, variables);
    const secrets = runRedactor(effective, r.input, variables);
    if (secrets) {
      compiled.steps.forEach((st, i) => {
        const res = results[i];
        if (res?.outcome === "success" && st.step.outputSchema != null) {
          secrets.addBySchema(st.step.outputSchema, res.result);
        }
      });
      redact = (v) => secrets.redactValue(v);
    }
  }

  const now = Date.now();
  const out: Record<string, StepEntry> = {};
  steps.forEach((step, i) => {
    const result = results[i];
    let running = inFlight.get(step.id);
    const t = times[i];
    if (running === undefined && elsewhere && result === undefined && t.open === true) {
      const at = t.startedAt === undefined ? NaN : Date.parse(t.startedAt);
      running = { attempt: t.attempt ?? 1, startedAt: at };
    }
    const deps = compiled?.steps[i]?.deps;
    let status: StepStatus;
    if (result) {
      status = result.outcome === "success"
        ? "completed"
        : result.outcome === "skipped"
        ? "skipped"
        : "failed";
    } else if (ended && (running || cut.has(i))) {
      status = "failed"; // running when its run was cancelled or failed: no result
    } else if (running) status = "running";
    else if (active?.state === "running" && deps?.every((d) => results[d] !== undefined)) {
      status = "runnable";
    } else status = "blocked";

    const entry: StepEntry = { stepIndex: i, stepId: step.id, component: step.component, status };
    out[step.id] = entry;
    if (statusOnly) return;
    if (result) entry.result = result;
    let startedAt = t.startedAt;
    if (startedAt === undefined && t.completedAt !== undefined && t.durationMs !== undefined) {
      // the recorded duration runs from the step's start to its stored result
      const end = Date.parse(t.completedAt);
      if (Number.isFinite(end)) startedAt = new Date(end - t.durationMs).toISOString();
    }
    if (startedAt === undefined && running && Number.isFinite(running.startedAt)) {
      startedAt = new Date(running.startedAt).toISOString();
    }
    let estimated = false;
    if (startedAt === undefined && (result || running) && deps) {
      // the scheduler starts a step when its last dependency's result is stored
      startedAt = runStartedAt;
      for (const d of deps) {
        const at = times[d].completedAt;
        if (at !== undefined && at > startedAt) startedAt = at;
      }
      estimated = true;
    }
    if (result || running) {
      entry.attempt = Math.max(t.attempt ?? 1, running?.attempt ?? 1);
      if (startedAt !== undefined) entry.startedAt = startedAt;
      if (t.completedAt !== undefined) entry.completedAt = t.completedAt;
      let duration = t.durationMs;
      if (duration === undefined && startedAt !== undefined) {
        const end = t.completedAt !== undefined ? Date.parse(t.completedAt) : now;
        if (result === undefined || t.completedAt !== undefined) {
          duration = Math.max(0, end - Date.parse(startedAt));
        }
      }
      if (duration !== undefined) {
        entry.durationMs = duration;
        if (estimated && t.durationMs === undefined) entry.durationEstimated = true;
      }
      const input = compiled && scope ? stepInput(compiled, i, scope) : undefined;
      if (input !== undefined) entry.input = redact ? redact(input) : input;
    }
  });
  return out;
}

function isStepResultEvent(e: RunEventRecord): boolean {
  return e.type === "step_completed" || e.type === "step_failed" || e.type === "step_skipped";
}

/** The resolved input of step `i`, or undefined when it cannot be resolved (yet). */
function stepInput(
  compiled: CompiledFlow,
  i: number,
  scope: ReturnType<typeof makeScope>,
): JsonValue | undefined {
  const st = compiled.steps[i];
  if (!st) return undefined;
  try {
    const r = resolveTemplate(st.input, scope);
    return r.outcome === "success" ? r.result : undefined;
  } catch {
    return undefined; // a dependency has no result (the step was skipped or the run failed)
  }
}
