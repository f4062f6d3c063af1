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
 * One concept, kept whole (over 400 lines): the checks of one flow share the flow's id table and
 * dependency edges while they walk it once; keys are in keys.ts, retry settings in
 * policy_diagnostics.ts, config-dependent checks in src/config/preflight.ts.
 * @module
 */
import { isJsonObject, isRawNumber, type JsonValue } from "../json/exact_json.ts";
import { FlowLoadError } from "../errors.ts";
import {
  type Diagnostic,
  DiagnosticCollector,
  type DiagnosticLevel,
  type SourceMap,
} from "../core/diagnostics.ts";
import type { DocumentSourceMap } from "../core/document.ts";
import { editDistance } from "../core/suggest.ts";
import { FLOW_SCHEMA_URL, type Step } from "./model.ts";
import { type LoadedFlow, parseFlowValue } from "./load.ts";
import {
  type CompiledRef,
  type CompiledTemplate,
  compileTemplate,
  forEachRef,
  TemplateError,
} from "./template.ts";
import {
  EXAMPLE_KEYS,
  FLOW_KEYS,
  HEALTH_CHECK_KEYS,
  ON_ERROR_KEYS,
  ON_SKIP_KEYS,
  REF_KEYS,
  STEP_KEYS,
  suggestKey,
  TEST_CASE_KEYS,
  TEST_KEYS,
  TEST_SERVER_KEYS,
} from "./keys.ts";
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
  /** True if step `from` depends, directly or not, on step `to`. */
  const dependsOn = (from: string, to: string): boolean => {
    const seen = new Set<string>();
    const stack = [...(directDeps.get(from) ?? [])];
    while (stack.length > 0) {
      const s = stack.pop()!;
      if (s === to) return true;
      if (seen.has(s)) continue;
      seen.add(s);
      for (const d of directDeps.get(s) ?? []) stack.push(d);
    }
    return false;
  };
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
      c.add("fatal", "invalid_reference", `Invalid reference expression: ${e.message}`, [...e.at]);
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
      if (ref.path && idx !== undefined) fieldAccess(ref, target, flow.steps[idx].outputSchema);
    } else if (ref.base.type === "input") {
      if (ref.path) fieldAccess(ref, "workflow_input", flow.inputSchema);
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

  const fieldAccess = (ref: CompiledRef, stepName: string, schema: JsonValue | undefined) => {
    if (schema !== undefined && schema !== null) {
      const missing = missingField(schema, ref.path!.segments);
      if (missing) {
        const what = stepName === "workflow_input"
          ? "the flow's inputSchema"
          : `the outputSchema of step '${stepName}'`;
        c.add(
          "warning",
          "unknown_field",
          `Field '${missing.field}' of path '${ref.path!.text}' is not a property in ${what}`,
          [...ref.at],
          {
            hint: suggestKey(missing.field, missing.known) ??
              `properties: ${missing.known.join(", ")}`,
          },
        );
      }
    }
    // stepflow 0.8 also warns "Field access '$.f' on step 's' cannot be validated: no output
    // schema available" for every path whose step has no output schema. That is one warning per
    // reference in most flows, so it hid the warnings that matter: we do not emit it.
  };

  /** Unknown keys of every reference object in the template at `at` (even invalid ones). */
  const checkRefKeys = (t: JsonValue | undefined, at: Path): void => {
    if (Array.isArray(t)) {
      t.forEach((x, i) => checkRefKeys(x, [...at, i]));
      return;
    }
    if (!isJsonObject(t)) return;
    if (Object.hasOwn(t, "$from")) {
      c.unknownKeys(t, at, REF_KEYS, "a reference");
      const from = t.$from;
      const sources = isJsonObject(from)
        ? ["step", "workflow", "variable"].filter((k) => Object.hasOwn(from, k)).length
        : 0;
      // With more than one source the reference is invalid (reported with its compile error).
      if (isJsonObject(from) && sources <= 1) {
        const known = Object.hasOwn(from, "variable")
          ? ["variable", "default"]
          : Object.hasOwn(from, "step")
          ? ["step"]
          : Object.hasOwn(from, "workflow")
          ? ["workflow"]
          : ["workflow", "step", "variable"];
        c.unknownKeys(from, [...at, "$from"], known, "$from");
      }
      const onSkip = t.onSkip;
      if (isJsonObject(onSkip) && typeof onSkip.action === "string") {
        c.unknownKeys(
          onSkip,
          [...at, "onSkip"],
          ON_SKIP_KEYS[onSkip.action] ?? ["action"],
          "onSkip",
        );
      }
      return;
    }
    if (Object.hasOwn(t, "$literal")) return;
    for (const k of Object.keys(t)) checkRefKeys(t[k], [...at, k]);
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
    checkRefKeys(step.input, [...base, "input"]);
    checkRefKeys(step.skipIf, [...base, "skipIf"]);
    const input = compile(step.input, [...base, "input"]);
    if (input) forEachRef(input, (ref) => checkRef({ ref, where: "input", stepIndex: i }, selfId));
    const skipIf = compile(step.skipIf, [...base, "skipIf"]);
    if (skipIf) {
      forEachRef(skipIf, (ref) => checkRef({ ref, where: "skipIf", stepIndex: i }, selfId));
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
        checkRefKeys(step.onError.defaultValue, [...base, "onError", "defaultValue"]);
        const dv = compile(step.onError.defaultValue, [...base, "onError", "defaultValue"]);
        if (dv) {
          forEachRef(dv, (ref) => {
            checkRef({ ref, where: "defaultValue", stepIndex: i }, selfId);
            const target = ref.base.type === "step" ? ref.base.step : undefined;
            if (
              target && target !== selfId && firstIndex.has(target) && !dependsOn(selfId, target)
            ) {
              c.add(
                "warning",
                "untracked_default_reference",
                `onError.defaultValue of step '${selfId}' reads step '${target}', which '${selfId}' ` +
                  `does not depend on: '${target}' may not have run when the default is needed`,
                [...ref.at],
                {
                  hint: `stepflow 0.8 does not order steps by these references; also read ` +
                    `'${target}' in the step's input, or use a literal default`,
                },
              );
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

  checkRefKeys(flow.output, ["output"]);
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

  checkBraces(raw, [], loaded.source as Partial<DocumentSourceMap> | undefined, c);
  checkTestSection(rawObj, c, loaded, hooks);
  if (Array.isArray(rawObj.examples)) {
    rawObj.examples.forEach((e, i) =>
      c.unknownKeys(e, ["examples", i], EXAMPLE_KEYS, "an example")
    );
  }
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

/**
 * YAML brace syntax where text was meant: `user_prompt: {{ name }}` is a mapping whose key is
 * the mapping `{name: null}` (an error: stepflow 0.8 cannot even load it, and the component
 * would get a mapping); `{name}` is the mapping `{name: null}` (a warning). Any other mapping or
 * list used as a key is an error too. The inline test config is skipped (mock `behaviors` use
 * complex keys on purpose).
 */
function checkBraces(
  v: JsonValue,
  at: Path,
  source: Partial<DocumentSourceMap> | undefined,
  c: DiagnosticCollector,
): void {
  if (!source?.braceTemplate || !source.keyValue) return;
  if (Array.isArray(v)) {
    v.forEach((x, i) => checkBraces(x, [...at, i], source, c));
    return;
  }
  if (!isJsonObject(v)) return;
  if (at.length === 2 && at[0] === "test" && (at[1] === "config" || at[1] === "stepflow_config")) {
    return;
  }
  const text = source.braceTemplate(at);
  if (text !== undefined) {
    const doubled = text.startsWith("{{");
    const first = text.replace(/^\{+\s*/, "").split(/[\s,}]/)[0];
    const shape = doubled
      ? `a mapping (with the mapping {${first}: null} as its key)`
      : `the mapping ${text.replace(/(\w+)/g, "$1: null")}`;
    c.add(
      doubled ? "error" : "warning",
      "brace_template",
      `'${text}' is not text: YAML reads it as ${shape}`,
      at,
      {
        hint: `quote it to pass the text ("${text}"; stepflow does not fill in templates in ` +
          `text); to pass a value write {$from: {workflow: input}, path: ${first}}`,
      },
    );
    return;
  }
  for (const k of Object.keys(v)) {
    const key = source.keyValue([...at, k]);
    if (key !== null && typeof key === "object" && !isRawNumber(key)) {
      c.add(
        "error",
        "complex_key",
        `A ${Array.isArray(key) ? "list" : "mapping"} is used as a key (${k}): flow keys are text`,
        [...at, k],
        { hint: "quote the key, or write the entry as 'key: value'", atKey: true },
      );
      continue;
    }
    checkBraces(v[k], [...at, k], source, c);
  }
}

/**
 * The first field of `segments` that `schema` (a JSON Schema) lists no property for, when the
 * schema at that point lists properties; undefined when the path fits or cannot be checked.
 */
function missingField(
  schema: JsonValue,
  segments: readonly (string | number)[],
): { field: string; known: string[] } | undefined {
  let cur: JsonValue | undefined = schema;
  for (const seg of segments) {
    if (!isJsonObject(cur)) return undefined;
    if (typeof seg === "number") {
      cur = isJsonObject(cur.items) ? cur.items : undefined;
      continue;
    }
    const props: JsonValue | undefined = cur.properties;
    if (!isJsonObject(props)) return undefined;
    if (!Object.hasOwn(props, seg)) {
      const extra = cur.additionalProperties;
      if (extra !== undefined && extra !== false) return undefined;
      return { field: seg, known: Object.keys(props) };
    }
    cur = props[seg];
  }
  return undefined;
}

function suggestStep(target: string, ids: string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const id of ids) {
    const d = editDistance(target, id);
    if (d < bestD) {
      bestD = d;
      best = id;
    }
  }
  return best !== undefined && bestD <= Math.floor(target.length / 3)
    ? `did you mean '${best}'?`
    : undefined;
}

function checkTestSection(
  raw: Record<string, JsonValue>,
  c: DiagnosticCollector,
  loaded: LoadedFlow,
  hooks: FlowCheckHooks,
): void {
  const test = raw.test;
  if (!isJsonObject(test)) return;
  c.unknownKeys(test, ["test"], TEST_KEYS, "the test section");
  if (isJsonObject(test.servers)) {
    for (const [name, server] of Object.entries(test.servers)) {
      const at = ["test", "servers", name];
      c.unknownKeys(server, at, TEST_SERVER_KEYS, `test server '${name}'`);
      if (isJsonObject(server)) {
        c.unknownKeys(server.healthCheck, [...at, "healthCheck"], HEALTH_CHECK_KEYS, "healthCheck");
      }
    }
  }
  if (Array.isArray(test.cases)) {
    test.cases.forEach((tc, i) =>
      c.unknownKeys(tc, ["test", "cases", i], TEST_CASE_KEYS, "a test case")
    );
  }
  if (!hooks.checkTestConfig) return;
  for (const key of ["config", "stepflow_config"]) {
    const cfg = test[key];
    if (cfg === undefined || cfg === null) continue;
    const src = (loaded.source as Partial<DocumentSourceMap> | undefined)?.at?.(["test", key]);
    c.out.push(...hooks.checkTestConfig(cfg, src, ["test", key]));
  }
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
