/**
 * The checks of what a JavaScript caller gives the engine's API (src/execution/engine.ts), where
 * nothing checks types: run options, the flow, the input and variables, the config. Each wrong
 * value gets an error naming the option or the JSON path and what is expected, instead of a
 * TypeError from deep inside the engine.
 * @module
 */
import { MAX_DURATION_MS } from "../core/duration.ts";
import type { Flow } from "../flow/model.ts";
import type { LoadedConfig } from "../config/model.ts";
import { type JsonValue, notJsonAt } from "../json/exact_json.ts";
import { findLoneSurrogate } from "../json/lone_surrogate.ts";
import { loneSurrogateError } from "../core/diagnostics.ts";
import type { FlowLike, RunOptions } from "./run_options.ts";

/**
 * `timeoutMs` and `maxConcurrency` as the engine can use them. A library caller's mistake
 * (`timeoutMs: NaN` ran without a limit, `-1` "timed out after -1ms", `maxConcurrency: 0` threw
 * the limiter's RangeError without naming the option).
 * @throws {RangeError} naming the option and the value (also `maxNestedRuns` and `maxRunSteps`
 *   that are not positive integers); {TypeError} for a `signal` that is not an AbortSignal and
 *   `variables` that are not an object or a Map.
 */
export function checkRunOptions(options: RunOptions): void {
  const t = options.timeoutMs;
  if (t !== undefined && !(typeof t === "number" && t > 0 && t <= MAX_DURATION_MS)) {
    throw new RangeError(
      `RunOptions.timeoutMs must be a number of ms greater than 0 and at most ${MAX_DURATION_MS}, got ${
        String(t)
      }`,
    );
  }
  if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) {
    throw new TypeError(
      "RunOptions.signal must be an AbortSignal (e.g. new AbortController().signal)",
    );
  }
  for (const key of ["maxNestedRuns", "maxRunSteps"] as const) {
    const v = options[key];
    if (v !== undefined && !(Number.isSafeInteger(v) && v >= 1)) {
      // (before: NaN stopped the run with "started more than NaN steps", -1 was no limit)
      throw new RangeError(`RunOptions.${key} must be a positive integer, got ${String(v)}`);
    }
  }
  const vars = options.variables;
  if (
    vars !== undefined &&
    !(vars instanceof Map || (vars !== null && typeof vars === "object" && !Array.isArray(vars)))
  ) {
    // (before: ignored, and a step reading `$from: {variable: x}` failed as if x were not given)
    throw new TypeError(
      `RunOptions.variables must be an object of variable names (or a Map), got ${
        describeKind(vars)
      }`,
    );
  }
  const m = options.maxConcurrency;
  if (m !== undefined && !(Number.isInteger(m) && m >= 1)) {
    throw new RangeError(
      `RunOptions.maxConcurrency must be a positive integer, got ${String(m)}`,
    );
  }
}

export function isFlowLike(f: Flow | FlowLike): f is FlowLike {
  return !("schema" in f) && "flow" in f;
}

/**
 * A top-level run's input and variables are JSON (a JavaScript caller may pass anything). Before:
 * `undefined`, a function or a Symbol failed the store's group commit ("Provided value cannot be
 * bound to SQLite parameter 5"), which failed with 507 every run of the engine in that commit and
 * made the service unhealthy; a cycle threw "Converting circular structure to JSON"; `NaN` was
 * stored as `null`.
 * @throws {TypeError} naming the value and the JSON path.
 */
export function checkJsonValues(input: JsonValue, variables: RunOptions["variables"]): void {
  const bad = notJsonAt(input);
  if (bad !== undefined) {
    throw new TypeError(`engine.run/start: the input must be a JSON value; input${bad.slice(1)}`);
  }
  if (variables === undefined || variables === null || typeof variables !== "object") return;
  const entries = variables instanceof Map ? variables.entries() : Object.entries(variables);
  for (const [name, value] of entries) {
    const b = notJsonAt(value);
    if (b !== undefined) {
      throw new TypeError(
        `RunOptions.variables: each variable must be a JSON value; variable '${name}'${b.slice(1)}`,
      );
    }
  }
}

/**
 * `Engine.create`'s config: a {@linkcode LoadedConfig}. A config object as in
 * `stepflow-config.yml` (a natural mistake) threw "Cannot read properties of undefined (reading
 * 'plugins')".
 * @throws {TypeError} saying how to make one.
 */
export function checkLoadedConfig(config: LoadedConfig): void {
  const c = config as unknown;
  if (
    c !== null && typeof c === "object" && "config" in c && "workingDirectory" in c &&
    (c as { config: unknown }).config !== null &&
    typeof (c as { config: unknown }).config === "object"
  ) return;
  const raw = c !== null && typeof c === "object" && ("plugins" in c || "routes" in c);
  throw new TypeError(
    `Engine.create takes a loaded config (configFromValue(object), loadConfigFile(path), ` +
      `loadConfigForFlow({flowPath}) or defaultConfig()), got ${
        raw
          ? "a config object as in stepflow-config.yml: pass configFromValue(it)"
          : describeKind(c)
      }`,
  );
}

/**
 * The flow of a top-level run, checked for the shape the engine walks (a JavaScript caller may
 * pass anything: `null` threw "Cannot use 'in' operator to search for 'schema' in null", `{steps:
 * 5}` threw "flow.steps.map is not a function").
 * @throws {TypeError} saying what is expected and where (`$.steps[2]`); a plain object of
 * unknown quality is checked fully by `parseFlowValue` (mod.ts), which `runFlow` uses.
 */
export function flowOf(given: Flow | FlowLike): Flow {
  const what = "engine.run/start: flow must be a Flow (parseFlowValue(), loadFlow().flow) or a " +
    "loaded flow (loadFlow())";
  if (given === null || typeof given !== "object" || Array.isArray(given)) {
    throw new TypeError(`${what}; got ${describeKind(given)}`);
  }
  const flow = isFlowLike(given) ? given.flow : given;
  if (flow === null || typeof flow !== "object" || Array.isArray(flow)) {
    throw new TypeError(`${what}; its .flow is ${describeKind(flow)}`);
  }
  const steps = (flow as { steps?: unknown }).steps;
  if (!Array.isArray(steps)) {
    throw new TypeError(`${what}; $.steps is ${describeKind(steps)}, not a list of steps`);
  }
  for (let i = 0; i < steps.length; i++) {
    const s = steps[i];
    if (s === null || typeof s !== "object" || Array.isArray(s)) {
      throw new TypeError(`${what}; $.steps[${i}] is ${describeKind(s)}, not a step object`);
    }
  }
  return flow;
}

/** Flow objects found free of lone surrogates ({@linkcode checkFlowStrings}). */
const wellFormedFlows = new WeakSet<object>();

/**
 * The strings of a top-level run's flow (names, ids, components, literals; keys too) are Unicode
 * text: a lone UTF-16 surrogate (`"\ud800"` without its pair) would be stored as U+FFFD (SQLite,
 * PostgreSQL), so a flow name or step id read back differs from the flow's. A flow parsed from
 * text is refused such strings where it is read (src/core/document_base.ts); one built as an
 * object by a library caller was not checked. Walked once per flow object (a run of a flow
 * already seen costs one WeakSet look-up): the engine takes a flow object as unchanging (its
 * flow id is cached the same way, src/execution/flow_id.ts).
 * @throws {TypeError} naming the JSON path (`$.steps[0].id`).
 */
export function checkFlowStrings(flow: Flow): void {
  if (wellFormedFlows.has(flow)) return;
  const found = findLoneSurrogate(flow);
  if (found !== undefined) {
    throw new TypeError(
      `engine.run/start: the flow's ${loneSurrogateError(found, "key in ").text}`,
    );
  }
  wellFormedFlows.add(flow);
}

export function describeKind(v: unknown): string {
  return v === null
    ? "null"
    : Array.isArray(v)
    ? "an array"
    : v === undefined
    ? "missing"
    : typeof v === "object"
    ? "an object"
    : `a ${typeof v}`;
}
