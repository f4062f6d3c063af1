/**
 * A flow compiled for execution: every template compiled once, each step's policy (timeout,
 * retry, fallback) read once, the dependency graph as index arrays, and the required set
 * (stepflow 0.8 §1.6). Compiled flows are cached per flow object, so running the same flow many
 * times (tests, `map`, batches) compiles it once.
 * @module
 */
import type { ErrorAction, Flow, Step } from "../flow/model.ts";
import { isJsonObject, type JsonValue } from "../json/exact_json.ts";
import {
  type CompiledTemplate,
  compileTemplate,
  referencedSteps,
  TemplateError,
} from "../flow/template.ts";
import { jsonPath } from "../core/diagnostics.ts";
import { elideMiddle } from "../core/elide.ts";
import { parseDuration } from "../core/duration.ts";
import { type ExecutionError, executionError } from "../errors.ts";
import {
  normalizeRetryPolicy,
  type RetryPolicy,
  type RetrySettings,
} from "../flow/retry_policy.ts";

/**
 * A step's error-handling policy, read once when the flow is compiled (extension, issue 5).
 * Plugin limits (a plugin's default timeout and concurrency) are the engine's; they come with the
 * routed component.
 */
export interface StepPolicy {
  /** `onError: {action: retry}` normalised; none = one attempt (stepflow 0.8). */
  retry?: RetryPolicy;
  /** The step's own `timeout`, ms. */
  timeoutMs?: number;
  /** The retry `fallback: {action: useDefault, defaultValue}` template, compiled. */
  fallbackDefault?: CompiledTemplate;
  /** True without retry and timeout: one plain call unless a plugin limit applies. */
  plain: boolean;
  /**
   * Settings that cannot work (the validator reports them first): the error fails the step when
   * it runs, as it always did, not the whole flow at compile time.
   */
  invalid?: ExecutionError;
}

/** One step ready to run. */
export interface CompiledStep {
  /** Position in `flow.steps` (the step index of the state store). */
  index: number;
  id: string;
  /** The component path as written in the flow (before routing). */
  component: string;
  step: Step;
  input: CompiledTemplate;
  skipIf?: CompiledTemplate;
  onError: ErrorAction;
  /** `onError: {action: useDefault, defaultValue}` compiled (not a dependency edge, as in 0.8). */
  errorDefault?: CompiledTemplate;
  /** Timeout, retry and fallback. */
  policy: StepPolicy;
  /** Indices of the distinct steps this one waits for (input and skipIf references). */
  deps: number[];
  /** Indices of required steps that wait for this one. */
  dependents: number[];
  mustExecute: boolean;
  /** In the required set (referenced by `output`, `mustExecute`, or a dependency of those). */
  required: boolean;
}

/** A flow ready to run. */
export interface CompiledFlow {
  flow: Flow;
  steps: CompiledStep[];
  /** Step index by id. */
  indexById: Map<string, number>;
  output: CompiledTemplate;
  /** Indices of required steps with no dependencies (started first). */
  roots: number[];
  /** Number of required steps. */
  requiredCount: number;
  /** Indices of `mustExecute` steps in file order. */
  mustExecute: number[];
  /** Defaults of variables from the flow's `variables` schema (§1.8). */
  variableDefaults: Map<string, JsonValue>;
}

const cache = new WeakMap<Flow, CompiledFlow>();

/**
 * Compiles `flow` (cached per flow object; do not mutate a flow after running it).
 * @throws {ExecutionError} `error analyzing workflow` (code 500) for what validation reports as
 * fatal: duplicate or empty step ids, references to unknown, later or the same step, invalid
 * reference expressions.
 */
export function compileFlow(flow: Flow): CompiledFlow {
  let c = cache.get(flow);
  if (!c) {
    c = compileUncached(flow);
    cache.set(flow, c);
  }
  return c;
}

function analysisError(detail: string): ExecutionError {
  return executionError("error analyzing workflow", { attachments: [detail] });
}

/** The policy of step `index` (see {@linkcode StepPolicy}). */
function compilePolicy(s: Step, index: number, onError: ErrorAction): StepPolicy {
  const policy: StepPolicy = { plain: onError.action !== "retry" && s.timeout === undefined };
  try {
    if (onError.action === "retry") {
      policy.retry = normalizeRetryPolicy(onError as unknown as RetrySettings);
      const f = policy.retry.fallback;
      if (f.action === "useDefault" && f.defaultValue !== undefined) {
        policy.fallbackDefault = compileTemplate(f.defaultValue, [
          "steps",
          index,
          "onError",
          "fallback",
          "defaultValue",
        ]);
      }
    }
    if (s.timeout !== undefined) policy.timeoutMs = parseDuration(s.timeout, { what: "timeout" });
  } catch (e) {
    policy.invalid = executionError(`invalid error handling settings for step '${s.id}'`, {
      cause: e,
      stepId: s.id,
    });
  }
  return policy;
}

function compileAt(t: JsonValue | undefined, at: (string | number)[]): CompiledTemplate {
  try {
    return compileTemplate(t, at);
  } catch (e) {
    if (e instanceof TemplateError) {
      throw analysisError(`${e.message} (at ${elideMiddle(jsonPath(e.at.length ? e.at : at))})`);
    }
    throw e;
  }
}

function compileUncached(flow: Flow): CompiledFlow {
  const steps: CompiledStep[] = [];
  const indexById = new Map<string, number>();
  const flowSteps = flow.steps ?? [];
  for (let i = 0; i < flowSteps.length; i++) {
    const s = flowSteps[i];
    if (!s.id) throw analysisError(`Step ID cannot be empty (at $.steps[${i}].id)`);
    if (indexById.has(s.id)) throw analysisError(`Duplicate step ID: '${s.id}'`);
    const input = compileAt(s.input, ["steps", i, "input"]);
    const skipIf = s.skipIf === undefined ? undefined : compileAt(s.skipIf, ["steps", i, "skipIf"]);
    const onError: ErrorAction = s.onError ?? { action: "fail" };
    const errorDefault = onError.action === "useDefault" && onError.defaultValue !== undefined
      ? compileAt(onError.defaultValue, ["steps", i, "onError", "defaultValue"])
      : undefined;
    const depIds = referencedSteps(input);
    if (skipIf) {
      for (const d of referencedSteps(skipIf)) if (!depIds.includes(d)) depIds.push(d);
    }
    const deps: number[] = [];
    for (const d of depIds) {
      if (d === s.id) throw analysisError(`Step '${s.id}' cannot reference itself`);
      const di = indexById.get(d);
      if (di === undefined) throw analysisError(`Step '${s.id}' references undefined step '${d}'`);
      deps.push(di);
    }
    indexById.set(s.id, i);
    steps.push({
      index: i,
      id: s.id,
      component: s.component,
      step: s,
      input,
      skipIf,
      onError,
      errorDefault,
      policy: compilePolicy(s, i, onError),
      deps,
      dependents: [],
      mustExecute: s.mustExecute === true,
      required: false,
    });
  }
  const output = compileAt(flow.output, ["output"]);
  // Required set: output references and mustExecute steps, closed over dependencies.
  const stack: number[] = [];
  for (const id of referencedSteps(output)) {
    const i = indexById.get(id);
    if (i === undefined) throw analysisError(`Reference to undefined step '${id}'`);
    stack.push(i);
  }
  const mustExecute: number[] = [];
  for (const s of steps) {
    if (s.mustExecute) {
      mustExecute.push(s.index);
      stack.push(s.index);
    }
  }
  let requiredCount = 0;
  while (stack.length > 0) {
    const i = stack.pop()!;
    const s = steps[i];
    if (s.required) continue;
    s.required = true;
    requiredCount++;
    for (const d of s.deps) stack.push(d);
  }
  const roots: number[] = [];
  for (const s of steps) {
    if (!s.required) continue;
    if (s.deps.length === 0) roots.push(s.index);
    for (const d of s.deps) steps[d].dependents.push(s.index);
  }
  return {
    flow,
    steps,
    indexById,
    output,
    roots,
    requiredCount,
    mustExecute,
    variableDefaults: variableDefaults(flow.variables),
  };
}

/**
 * Defaults of the properties of a `variables` schema (stepflow 0.8 §1.8): an explicit `default`;
 * else, when not required, one inferred from `type` (`string` → `""`, `number`/`integer` → `0`,
 * `boolean` → `false`, a type list containing `"null"` → `null`).
 */
export function variableDefaults(schema: JsonValue | undefined): Map<string, JsonValue> {
  const out = new Map<string, JsonValue>();
  if (!isJsonObject(schema) || !isJsonObject(schema.properties)) return out;
  const required = Array.isArray(schema.required) ? schema.required : [];
  for (const [name, prop] of Object.entries(schema.properties)) {
    if (!isJsonObject(prop)) continue;
    if (Object.hasOwn(prop, "default")) {
      out.set(name, prop.default);
      continue;
    }
    if (required.includes(name)) continue;
    const t = prop.type;
    if (t === "string") out.set(name, "");
    else if (t === "number" || t === "integer") out.set(name, 0);
    else if (t === "boolean") out.set(name, false);
    else if (Array.isArray(t) && t.includes("null")) out.set(name, null);
  }
  return out;
}
