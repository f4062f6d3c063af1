/**
 * Flow validation (stepflow 0.8 §1.9): the checks that need nothing but the flow, returning
 * {@linkcode Diagnostic}s with a level, a JSON path and, when the flow came from a file,
 * file:line:col. Checks that need a config (routes, the components of plugins, a `test.config`)
 * are hooks filled in by src/config/preflight.ts.
 *
 * Levels and messages follow 0.8:
 * - fatal: `Duplicate step ID: 'x'`, `Step ID cannot be empty`, `Step 'x' cannot reference
 *   itself`, `Step 'a' references undefined step 'b'` (also for references to later steps),
 *   `Reference to undefined step 'b'` (output), invalid reference expressions;
 * - error: `Invalid component 'c' in step 's': Component path must start with '/'`, empty
 *   component, undefined variable (when a variables schema exists), invalid literal sub-flow;
 * - warning: `Workflow has no name defined`, `Workflow has no description defined`, `Step 'x' is not
 *   referenced by any other step or workflow output`.
 *
 * Better than 0.8 (which ignores them silently): unknown or misspelt keys are warnings with a
 * "did you mean" hint (`skip` → `skipIf`, `on_error` → `onError`, `stpes` → `steps`);
 * `onError.defaultValue` references to undefined or later steps are errors.
 *
 * The walk here keeps the flow's id table and dependency edges; the checks of how the flow is
 * written (unknown keys, fields, step-id suggestions, YAML braces) are in validate_keys.ts, the
 * key catalogs in keys.ts, retry settings in policy_diagnostics.ts, config-dependent checks in
 * src/config/preflight.ts.
 * @module
 */
import { StepReach } from "./reach.ts";
import { isJsonObject, type JsonValue } from "../json/exact_json.ts";
import { FlowLoadError } from "../errors.ts";
import {
  type Diagnostic,
  DiagnosticCollector,
  type DiagnosticLevel,
  type SourceMap,
} from "../core/diagnostics.ts";
import type { DocumentSourceMap } from "../core/document.ts";
import type { Step } from "./model.ts";
import { FLOW_SCHEMA_URL } from "./fast_model.ts";
import { type LoadedFlow, parseFlowValue } from "./load_file.ts";
import {
  type CompiledRef,
  type CompiledTemplate,
  compileTemplate,
  forEachRef,
  TemplateError,
} from "./template.ts";
import { EXAMPLE_KEYS, FLOW_KEYS, ON_ERROR_KEYS, STEP_KEYS, suggestKey } from "./keys.ts";
import {
  checkBraces,
  checkConstantSkipIf,
  checkFieldAccess,
  checkRefKeys,
  checkSchemaFields,
  checkTestSection,
  suggestStep,
} from "./validate_keys.ts";
import { policyDiagnostics } from "./policy_diagnostics.ts";

type Path = (string | number)[];

/** Checks of a flow that need more than the flow (src/config/preflight.ts provides them). */
export interface FlowCheckHooks {
  /**
   * Checks the component of step `index` (its path is known to start with `/`), e.g. that a route
   * matches it; reports through `c` at `["steps", index, "component"]`.
   */
  checkComponent?(step: Step, index: number, c: DiagnosticCollector): void;
  /** Diagnostics of an inline config (`test.config`, `test.stepflow_config`) at `prefix`. */
  checkTestConfig?(value: JsonValue, source: SourceMap | undefined, prefix: Path): Diagnostic[];
}

/**
 * The diagnostics of a flow on its own (§1.9): ids, components, references, variables, literal
 * sub-flows, unknown keys, retry/timeout settings. `hooks` add the checks that need a config.
 */
export function checkFlowDiagnostics(loaded: LoadedFlow, hooks: FlowCheckHooks = {}): Diagnostic[] {
  const c = new DiagnosticCollector(loaded.source, [], suggestKey);
  checkFlow(loaded, c, hooks);
  return [...c.out, ...policyDiagnostics(loaded.flow, loaded.source)];
}

interface RefUse {
  ref: CompiledRef;
  /** Where the template sits (its `at` paths are absolute already). */
  where: "input" | "skipIf" | "defaultValue" | "output";
  stepIndex?: number;
}

function checkFlow(loaded: LoadedFlow, c: DiagnosticCollector, hooks: FlowCheckHooks): void {
  const { flow, raw } = loaded;
  const rawObj = isJsonObject(raw) ? raw : {};
  c.unknownKeys(raw, [], FLOW_KEYS, "the flow");
  // A misspelt `steps` key leaves the flow without steps: say so where references fail.
  const stepsTypo = Object.hasOwn(rawObj, "steps")
    ? undefined
    : Object.keys(rawObj).find((k) =>
      !FLOW_KEYS.includes(k) && suggestKey(k, FLOW_KEYS) === "did you mean 'steps'?"
    );
  const noStepsHint = stepsTypo === undefined
    ? undefined
    : `the flow has no 'steps': is '${stepsTypo}' a misspelling of 'steps'?`;
  if (!flow.name) c.add("warning", "no_name", "Workflow has no name defined", []);
  if (!flow.description) {
    c.add("warning", "no_description", "Workflow has no description defined", []);
  }

  const rawSteps = Array.isArray(rawObj.steps) ? rawObj.steps : [];
  const firstIndex = new Map<string, number>();
  /** Steps each step reads in its input and skipIf (the dependency edges, stepflow 0.8 §1.6). */
  const directDeps = new Map<string, string[]>();
  /**
   * `onError.defaultValue` references to an earlier step, checked once every step's edges are
   * known ({@linkcode StepReach}: a walk per reference was quadratic in the steps).
   */
  const defaultReads: { selfId: string; target: string; at: Path }[] = [];
  const referenced = new Set<string>();
  const variablesSchema = isJsonObject(flow.variables) ? flow.variables : undefined;
  const variableProps = variablesSchema && isJsonObject(variablesSchema.properties)
    ? variablesSchema.properties
    : undefined;

  const compile = (t: JsonValue | undefined, at: Path): CompiledTemplate | undefined => {
    if (t === undefined) return undefined;
    try {
      return compileTemplate(t, at);
    } catch (e) {
      if (!(e instanceof TemplateError)) throw e;
      // every invalid reference of the template, not only the first (one fix, one run each)
      const all = referenceErrors(t, at);
      for (const err of all.length > 0 ? all : [e]) {
        c.add(
          "fatal",
          "invalid_reference",
          `Invalid reference expression: ${err.message}`,
          [...err.at],
        );
      }
      // the steps it names still count as referenced: one bad reference must not also produce
      // "Step 'x' is not referenced" warnings for the steps it (and its neighbours) read
      addRawStepTargets(t, referenced);
      return undefined;
    }
  };

  const checkRef = (use: RefUse, selfId?: string): void => {
    const { ref } = use;
    const refPath = [...ref.at];
    if (ref.base.type === "step") {
      const target = ref.base.step;
      referenced.add(target);
      const idx = firstIndex.get(target);
      const stepIndex = use.stepIndex;
      if (use.where === "output") {
        if (idx === undefined) {
          c.add("fatal", "undefined_step", `Reference to undefined step '${target}'`, refPath, {
            hint: noStepsHint ?? suggestStep(target, [...firstIndex.keys()]),
          });
        }
      } else if (selfId !== undefined && target === selfId) {
        c.add("fatal", "self_reference", `Step '${selfId}' cannot reference itself`, refPath);
      } else if (idx === undefined) {
        const later = flow.steps.findIndex((s, i) => s.id === target && i > (stepIndex ?? -1));
        const level: DiagnosticLevel = use.where === "defaultValue" ? "error" : "fatal";
        c.add(
          level,
          "undefined_step",
          `Step '${selfId}' references undefined step '${target}'`,
          refPath,
          {
            hint: later >= 0
              ? `'${target}' is defined later (steps[${later}]): a step may only reference earlier steps; move it up`
              : suggestStep(target, [...firstIndex.keys()]),
          },
        );
      }
      if (ref.path && idx !== undefined) {
        checkFieldAccess(c, ref, target, flow.steps[idx].outputSchema);
      }
    } else if (ref.base.type === "input") {
      if (ref.path) checkFieldAccess(c, ref, "workflow_input", flow.inputSchema);
    } else {
      const name = ref.base.name;
      if (!variablesSchema) {
        c.add(
          "warning",
          "missing_variable_schema",
          `Variable '${name}' is referenced but the flow has no variables schema`,
          refPath,
          { hint: "declare it under 'variables: {type: object, properties: {...}}'" },
        );
      } else if (
        ref.base.default === undefined && (!variableProps || !Object.hasOwn(variableProps, name))
      ) {
        c.add("error", "undefined_variable", `Undefined variable '${name}'`, refPath, {
          hint: "declare it in the flow's 'variables' schema or give the reference a 'default'",
        });
      }
    }
  };

  flow.steps.forEach((step, i) => {
    const base: Path = ["steps", i];
    const rawStep = rawSteps[i];
    c.unknownKeys(rawStep, base, STEP_KEYS, `step '${step.id}'`);
    if (step.id === "") {
      c.add("fatal", "empty_step_id", "Step ID cannot be empty", [...base, "id"]);
    } else if (firstIndex.has(step.id)) {
      const first = firstIndex.get(step.id)!;
      const pos = loaded.source?.positionOf(["steps", first, "id"]);
      c.add("fatal", "duplicate_step_id", `Duplicate step ID: '${step.id}'`, [...base, "id"], {
        hint: `first used by steps[${first}]${
          pos ? ` at line ${pos.line}` : ""
        }; step ids must be unique`,
      });
    }
    // component
    if (step.component === "") {
      c.add(
        "error",
        "empty_component",
        `Step '${step.id}' has an empty component`,
        [...base, "component"],
        { hint: "name a component such as '/builtin/eval'" },
      );
    } else if (!step.component.startsWith("/")) {
      c.add(
        "error",
        "invalid_component",
        `Invalid component '${step.component}' in step '${step.id}': Component path must start with '/'`,
        [...base, "component"],
        { hint: `did you mean '/${step.component}'?` },
      );
    } else {
      hooks.checkComponent?.(step, i, c);
    }
    // references
    const selfId = step.id;
    checkRefKeys(c, step.input, [...base, "input"]);
    checkRefKeys(c, step.skipIf, [...base, "skipIf"]);
    const input = compile(step.input, [...base, "input"]);
    if (input) forEachRef(input, (ref) => checkRef({ ref, where: "input", stepIndex: i }, selfId));
    const skipIf = compile(step.skipIf, [...base, "skipIf"]);
    if (skipIf) {
      let refs = 0;
      forEachRef(skipIf, (ref) => {
        refs++;
        checkRef({ ref, where: "skipIf", stepIndex: i }, selfId);
      });
      checkConstantSkipIf(c, step.skipIf, refs > 0, [...base, "skipIf"], step.id);
    }
    if (step.id !== "" && !directDeps.has(step.id)) {
      const deps = new Set<string>();
      for (const t of [input, skipIf]) {
        if (t) forEachRef(t, (r) => r.base.type === "step" && deps.add(r.base.step));
      }
      directDeps.set(step.id, [...deps]);
    }
    if (step.onError) {
      const rawOnError = isJsonObject(rawStep) ? rawStep.onError : undefined;
      const known = ON_ERROR_KEYS[step.onError.action];
      if (known) c.unknownKeys(rawOnError, [...base, "onError"], known, "onError");
      if (step.onError.action === "useDefault" && step.onError.defaultValue !== undefined) {
        checkRefKeys(c, step.onError.defaultValue, [...base, "onError", "defaultValue"]);
        const dv = compile(step.onError.defaultValue, [...base, "onError", "defaultValue"]);
        if (dv) {
          forEachRef(dv, (ref) => {
            checkRef({ ref, where: "defaultValue", stepIndex: i }, selfId);
            const target = ref.base.type === "step" ? ref.base.step : undefined;
            if (target && target !== selfId && firstIndex.has(target)) {
              defaultReads.push({ selfId, target, at: [...ref.at] });
            }
          });
        }
      }
    }
    // literal sub-flows in the input
    if (step.input !== undefined) {
      findSubflows(
        step.input,
        [...base, "input"],
        (value, at) => checkSubflow(value, at, loaded, c, hooks),
      );
    }
    if (step.id !== "" && !firstIndex.has(step.id)) firstIndex.set(step.id, i);
  });
  if (defaultReads.length > 0) {
    const reach = new StepReach(directDeps);
    for (const { selfId, target, at } of defaultReads) {
      if (reach.dependsOn(selfId, target)) continue;
      c.add(
        "warning",
        "untracked_default_reference",
        `onError.defaultValue of step '${selfId}' reads step '${target}', which '${selfId}' ` +
          `does not depend on: '${target}' may not have run when the default is needed`,
        at,
        {
          hint: `stepflow 0.8 does not order steps by these references; also read ` +
            `'${target}' in the step's input, or use a literal default`,
        },
      );
    }
  }

  checkRefKeys(c, flow.output, ["output"]);
  const output = compile(flow.output, ["output"]);
  if (output) forEachRef(output, (ref) => checkRef({ ref, where: "output" }));

  flow.steps.forEach((step, i) => {
    if (step.id === "" || referenced.has(step.id) || step.mustExecute) return;
    if (firstIndex.get(step.id) !== i) return;
    c.add(
      "warning",
      "unreferenced_step",
      `Step '${step.id}' is not referenced by any other step or workflow output`,
      ["steps", i],
      { hint: "it will not run: reference it from 'output' or set 'mustExecute: true'" },
    );
  });

  checkSchemaFields(c, raw, rawSteps);
  checkBraces(raw, [], loaded.source as Partial<DocumentSourceMap> | undefined, c);
  checkTestSection(rawObj, c, loaded.source, hooks.checkTestConfig);
  if (Array.isArray(rawObj.examples)) {
    rawObj.examples.forEach((e, i) =>
      c.unknownKeys(e, ["examples", i], EXAMPLE_KEYS, "an example")
    );
  }
}

/** The error of each reference of template `t` (at `at`) that does not compile, in order. */
function referenceErrors(t: JsonValue, at: Path): TemplateError[] {
  const out: TemplateError[] = [];
  const walk = (v: JsonValue, here: Path) => {
    if (Array.isArray(v)) {
      v.forEach((x, i) => walk(x, [...here, i]));
      return;
    }
    if (!isJsonObject(v) || Object.hasOwn(v, "$literal")) return;
    if (Object.hasOwn(v, "$from")) {
      try {
        compileTemplate(v, here);
      } catch (e) {
        if (e instanceof TemplateError) out.push(e);
        else throw e;
      }
      return;
    }
    for (const k of Object.keys(v)) walk(v[k], [...here, k]);
  };
  walk(t, at);
  return out;
}

/**
 * Adds to `out` the step ids named by `{$from: {step: ID}}` objects anywhere in the template `t`
 * (not inside `$literal`), whether or not the rest of the reference is valid.
 */
function addRawStepTargets(t: JsonValue | undefined, out: Set<string>): void {
  if (Array.isArray(t)) {
    for (const x of t) addRawStepTargets(x, out);
    return;
  }
  if (!isJsonObject(t) || Object.hasOwn(t, "$literal")) return;
  if (Object.hasOwn(t, "$from")) {
    const from = t.$from;
    if (isJsonObject(from) && typeof from.step === "string") out.add(from.step);
    return;
  }
  for (const k of Object.keys(t)) addRawStepTargets(t[k], out);
}

/** Calls `fn` for every object in a template (including inside `$literal`) that is a flow. */
function findSubflows(v: JsonValue, at: Path, fn: (v: JsonValue, at: Path) => void): void {
  if (Array.isArray(v)) {
    v.forEach((x, i) => findSubflows(x, [...at, i], fn));
    return;
  }
  if (!isJsonObject(v)) return;
  if (v.schema === FLOW_SCHEMA_URL) {
    fn(v, at);
    return;
  }
  for (const k of Object.keys(v)) findSubflows(v[k], [...at, k], fn);
}

function checkSubflow(
  value: JsonValue,
  at: Path,
  parent: LoadedFlow,
  c: DiagnosticCollector,
  hooks: FlowCheckHooks,
): void {
  const src = (parent.source as Partial<DocumentSourceMap> | undefined)?.at?.(at);
  let sub: LoadedFlow;
  try {
    sub = parseFlowValue(value, src, parent.file);
  } catch (e) {
    if (!(e instanceof FlowLoadError)) throw e;
    c.add("error", "invalid_subflow", `Invalid nested flow: ${stripPosition(e)}`, at);
    return;
  }
  const inner = new DiagnosticCollector(src, at, suggestKey);
  // nested flows: their own checks, without routing (they run on the parent's config) or test
  // sections (not run by `stepflow test`)
  checkFlow(sub, inner, { checkTestConfig: hooks.checkTestConfig });
  for (const d of inner.out) {
    if (d.level === "fatal" || d.level === "error") {
      c.out.push({
        ...d,
        level: "error",
        code: "invalid_subflow",
        message: `Nested flow: ${d.message}`,
      });
    } else if (d.code === "unknown_key") {
      c.out.push(d);
    }
  }
}

function stripPosition(e: FlowLoadError): string {
  return e.position ? e.message.replace(/^\S+:\d+:\d+: /, "") : e.message;
}
