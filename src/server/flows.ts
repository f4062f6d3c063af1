/**
 * Flows in the service (stepflow 0.8 `POST /flows`, `GET /flows/{id}`): validating a flow sent as
 * JSON, its diagnostics and analysis in 0.8's shapes, and storing it as a flow blob.
 * @module
 */
import type { Engine } from "../execution/engine.ts";
import type { Flow } from "../flow/model.ts";
import { parseFlowValue, ShapeError } from "../flow/load.ts";
import { validateFlow } from "../config/preflight.ts";
import type { Diagnostic } from "../core/diagnostics.ts";
import { compileTemplate, forEachRef, pathText, TemplateError } from "../flow/template.ts";
import type { CompiledTemplate } from "../flow/template.ts";
import { flowToJson } from "../execution/flow_id.ts";
import { FlowLoadError } from "../errors.ts";
import type { JsonObject, JsonValue } from "../json/exact_json.ts";

/** A diagnostic as 0.8 sends it (plus `code`, `hint` and `position` when known). */
export interface ApiDiagnostic {
  /** 0.8: the message kind, `{type: "<camelCase kind>"}`. */
  message: { type: string };
  level: "fatal" | "error" | "warning";
  text: string;
  /** JSON path of the problem (`$.steps[0].input`). */
  path: string;
  ignore: boolean;
  code?: string;
  hint?: string;
}

/** 0.8 `Diagnostics`. */
export interface ApiDiagnostics {
  diagnostics: ApiDiagnostic[];
  numFatal: number;
  numError: number;
  numWarning: number;
}

/** 0.8 `StoreFlowResponse`: `flowId` and `analysis` are absent when a fatal diagnostic was found. */
export interface StoreFlowAnswer {
  flowId?: string;
  analysis?: JsonObject;
  diagnostics: ApiDiagnostics;
}

/**
 * Validates `value` as a flow (with the engine's config: routes and plugins) and stores it unless
 * a diagnostic is fatal (as 0.8 does; errors are reported but the flow is stored).
 */
export function storeFlow(engine: Engine, value: JsonValue): StoreFlowAnswer {
  let flow: Flow;
  let diagnostics: Diagnostic[];
  try {
    const loaded = parseFlowValue(value);
    flow = loaded.flow;
    diagnostics = validateFlow(loaded, engine.config);
  } catch (e) {
    if (!(e instanceof FlowLoadError)) throw e;
    // the shape is wrong: one fatal diagnostic per problem, each naming where
    // (`$.steps[1]: missing required key 'id'`), as `stepflow validate` lists them
    if (e instanceof ShapeError && e.problems.length > 0) {
      return { diagnostics: toApiDiagnostics(e.problems) };
    }
    const m = /^Invalid flow: (\$\S*): (.*)$/s.exec(e.message);
    return {
      diagnostics: toApiDiagnostics([{
        level: "fatal",
        code: "invalid_flow",
        message: m ? m[2] : e.message,
        path: m ? m[1] : "$",
      }]),
    };
  }
  const api = toApiDiagnostics(diagnostics);
  if (api.numFatal > 0) return { diagnostics: api };
  const flowId = engine.storeFlow(flow);
  return { flowId, analysis: analyzeFlow(flow, flowId), diagnostics: api };
}

/** Diagnostics in 0.8's shape, with the counts. */
export function toApiDiagnostics(ds: readonly Diagnostic[]): ApiDiagnostics {
  const out: ApiDiagnostics = { diagnostics: [], numFatal: 0, numError: 0, numWarning: 0 };
  for (const d of ds) {
    if (d.level === "fatal") out.numFatal++;
    else if (d.level === "error") out.numError++;
    else out.numWarning++;
    const a: ApiDiagnostic = {
      message: { type: camel(d.code ?? "diagnostic") },
      level: d.level,
      text: d.message,
      path: d.path,
      ignore: false,
    };
    if (d.code) a.code = d.code;
    if (d.hint) a.hint = d.hint;
    out.diagnostics.push(a);
  }
  return out;
}

function camel(code: string): string {
  return code.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
}

/**
 * 0.8's `FlowAnalysis` of a flow: `{flowId, flow, steps: {<id>: {inputDepends, skipIfDepend}},
 * outputDepends}`, where a value's dependencies are `{object: {<field>: [Dependency]}}` for an
 * object template, else `{other: [Dependency]}`, and a Dependency is `{flowInput: {field}}` or
 * `{stepOutput: {stepId, field, optional}}`.
 */
export function analyzeFlow(flow: Flow, flowId: string): JsonObject {
  const steps: JsonObject = {};
  for (const s of flow.steps ?? []) {
    let skipIf: JsonValue = null;
    if (s.skipIf !== undefined) {
      const deps = dependencies(s.skipIf);
      skipIf = deps.length > 0 ? deps[0] : null;
    }
    steps[s.id] = { inputDepends: valueDependencies(s.input), skipIfDepend: skipIf };
  }
  return {
    flowId,
    flow: flowToJson(flow),
    steps,
    outputDepends: valueDependencies(flow.output),
  };
}

function compiled(t: JsonValue | undefined): CompiledTemplate | undefined {
  try {
    return compileTemplate(t);
  } catch (e) {
    if (e instanceof TemplateError) return undefined; // reported as a diagnostic
    throw e;
  }
}

function dependenciesOf(c: CompiledTemplate | undefined): JsonValue[] {
  const out: JsonValue[] = [];
  const seen = new Set<string>();
  if (!c) return out;
  forEachRef(c, (r) => {
    const field = r.path && r.path.segments.length > 0 ? pathText(r.path.segments) : null;
    let dep: JsonValue;
    if (r.base.type === "input") dep = { flowInput: { field } };
    else if (r.base.type === "step") {
      dep = { stepOutput: { stepId: r.base.step, field, optional: r.skipDefault !== undefined } };
    } else return; // variables are not dependencies in 0.8's analysis
    const key = JSON.stringify(dep);
    if (!seen.has(key)) {
      seen.add(key);
      out.push(dep);
    }
  });
  return out;
}

function dependencies(t: JsonValue | undefined): JsonValue[] {
  return dependenciesOf(compiled(t));
}

function valueDependencies(t: JsonValue | undefined): JsonValue {
  const c = compiled(t);
  if (c?.kind === "object") {
    const fields: JsonObject = {};
    for (const [k, v] of c.entries) fields[k] = dependenciesOf(v);
    return { object: fields };
  }
  return { other: dependenciesOf(c) };
}

/** 0.8 `get_all_examples`: the flow's `examples`, then test cases whose name is not taken. */
export function allExamples(flow: Flow): JsonValue[] {
  const out: JsonObject[] = [];
  for (const e of flow.examples ?? []) {
    const x: JsonObject = { name: e.name };
    if (e.description !== undefined) x.description = e.description;
    x.input = e.input;
    out.push(x);
  }
  for (const c of flow.test?.cases ?? []) {
    if (out.some((e) => e.name === c.name)) continue;
    const x: JsonObject = { name: c.name };
    if (c.description !== undefined) x.description = c.description;
    x.input = c.input;
    out.push(x);
  }
  return out;
}
