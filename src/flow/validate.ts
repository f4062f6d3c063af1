/**
 * Flow and config validation (stepflow 0.8 §1.9), returning {@linkcode Diagnostic}s with a level,
 * a JSON path and, when the document came from a file, file:line:col.
 *
 * Levels and messages follow 0.8:
 * - fatal: `Duplicate step ID: 'x'`, `Step ID cannot be empty`, `Step 'x' cannot reference
 *   itself`, `Step 'a' references undefined step 'b'` (also for references to later steps),
 *   `Reference to undefined step 'b'` (output), invalid reference expressions;
 * - error: `Invalid component 'c' in step 's': Component path must start with '/'`, empty
 *   component, undefined variable (when a variables schema exists), invalid literal sub-flow,
 *   `Routing rule N for path 'p' references unknown plugin 'x'`;
 * - warning: `Workflow has no name defined`, `Workflow has no description defined`, `Step 'x' is not
 *   referenced by any other step or workflow output`, `No plugins configured`, `No routing rules
 *   configured`, `Plugin 'p' is not referenced by any routing rule`.
 *
 * Better than 0.8 (which ignores them silently): unknown or misspelt keys are warnings with a
 * "did you mean" hint (`skip` → `skipIf`, `on_error` → `onError`, `stpes` → `steps`); a step
 * component that no route matches is a warning; `onError.defaultValue` references to undefined or
 * later steps are errors.
 * @module
 */
import { isJsonObject, isRawNumber, type JsonValue } from "../json/exact_json.ts";
import { FlowLoadError, ValidationError } from "../errors.ts";
import type { Config, LoadedConfig } from "../config/model.ts";
import { type Diagnostic, type DiagnosticLevel, jsonPath, type SourceMap } from "./diagnostics.ts";
import { FLOW_SCHEMA_URL } from "./model.ts";
import { type LoadedFlow, parseFlowValue } from "./load.ts";
import type { DocumentSourceMap } from "./parse.ts";
import {
  type CompiledRef,
  type CompiledTemplate,
  compileTemplate,
  forEachRef,
  TemplateError,
} from "./template.ts";
import { Router } from "../config/router.ts";
import { parseSqliteUrl } from "../state/sqlite.ts";
import { parsePostgresUrl } from "../state/postgres_url.ts";
import { substituteEnv } from "../config/env.ts";
import { toAnswer } from "../plugins/mock/plugin.ts";
import { dirname } from "node:path";
import { configPolicyDiagnostics, policyDiagnostics } from "../execution/policy_diagnostics.ts";
import { RETRY_SETTING_KEYS } from "../execution/retry_policy.ts";

type Path = (string | number)[];

/** Known keys of each object kind (camelCase, as stepflow 0.8 reads them). */
const FLOW_KEYS = [
  "schema",
  "name",
  "description",
  "version",
  "inputSchema",
  "outputSchema",
  "variables",
  "steps",
  "output",
  "test",
  "examples",
  "metadata",
];
const STEP_KEYS = [
  "id",
  "component",
  "description",
  "input",
  "inputSchema",
  "outputSchema",
  "skipIf",
  "onError",
  "mustExecute",
  "metadata",
  "timeout",
];
const ON_ERROR_KEYS: Record<string, string[]> = {
  fail: ["action"],
  skip: ["action"],
  useDefault: ["action", "defaultValue"],
  retry: [...RETRY_SETTING_KEYS],
};
const REF_KEYS = ["$from", "path", "onSkip"];
const ON_SKIP_KEYS: Record<string, string[]> = {
  skip: ["action"],
  useDefault: ["action", "defaultValue"],
};
const TEST_KEYS = ["servers", "config", "stepflow_config", "cases"];
const TEST_CASE_KEYS = ["name", "description", "input", "output"];
const TEST_SERVER_KEYS = [
  "command",
  "args",
  "env",
  "workingDirectory",
  "portRange",
  "healthCheck",
  "startupTimeoutMs",
  "shutdownTimeoutMs",
];
const HEALTH_CHECK_KEYS = ["path", "timeoutMs", "retryAttempts", "retryDelayMs"];
const EXAMPLE_KEYS = ["name", "description", "input"];

const CONFIG_KEYS = [
  "workingDirectory",
  "plugins",
  "routes",
  "stateStore",
  "maxConcurrency",
  "runTimeout",
  "maxOutputSize",
];
const PLUGIN_KEYS: Record<string, string[]> = {
  builtin: ["type", "openai"],
  stepflow: [
    "type",
    "transport",
    "command",
    "args",
    "env",
    "url",
    "timeout",
    "maxConcurrency",
  ],
  mcp: ["type", "command", "args", "env", "url", "timeout", "maxConcurrency", "output"],
  mock: ["type", "components"],
};
const MOCK_COMPONENT_KEYS = ["description", "input_schema", "output_schema", "behaviors"];
const RULE_KEYS = ["plugin", "conditions", "componentAllow", "componentDeny", "component"];
const CONDITION_KEYS = ["path", "value"];
const STATE_STORE_KEYS: Record<string, string[]> = {
  inMemory: ["type", "maxFinishedRuns", "maxFinishedAge"],
  sqlite: ["type", "databaseUrl", "autoMigrate", "maxConnections"],
  postgres: ["type", "url", "autoMigrate", "maxConnections", "leaseTtl"],
};

/**
 * Keys people write that 0.8 ignores, with what they meant. A string value is the key to suggest
 * (used when it is known in that place); an object gives an explanation instead.
 */
const KEY_ALIASES: Record<string, string | { hint: string }> = {
  skip: "skipIf",
  skip_if: "skipIf",
  if: "skipIf",
  when: "skipIf",
  condition: "skipIf",
  on_error: "onError",
  onerror: "onError",
  error: "onError",
  input_schema: "inputSchema",
  output_schema: "outputSchema",
  must_execute: "mustExecute",
  default_value: "defaultValue",
  default_output: "defaultValue",
  on_skip: "onSkip",
  variables_schema: "variables",
  variablesSchema: "variables",
  state_store: "stateStore",
  database_url: "databaseUrl",
  auto_migrate: "autoMigrate",
  max_connections: "maxConnections",
  working_directory: "workingDirectory",
  component_allow: "componentAllow",
  component_deny: "componentDeny",
  max_concurrency: "maxConcurrency",
  max_retries: "maxRetries",
  port_range: "portRange",
  health_check: "healthCheck",
  startup_timeout_ms: "startupTimeoutMs",
  shutdown_timeout_ms: "shutdownTimeoutMs",
  timeout_ms: "timeoutMs",
  retry_attempts: "retryAttempts",
  retry_delay_ms: "retryDelayMs",
  depends_on: {
    hint: "there is no explicit dependency list: a step runs after every step its input or " +
      "skipIf references with {$from: {step: <id>}}",
  },
  dependsOn: {
    hint: "there is no explicit dependency list: a step runs after every step its input or " +
      "skipIf references with {$from: {step: <id>}}",
  },
  needs: {
    hint: "there is no explicit dependency list: a step runs after every step its input or " +
      "skipIf references with {$from: {step: <id>}}",
  },
  retry: { hint: "write onError: {action: retry, maxRetries: 3}" },
  retries: { hint: "write onError: {action: retry, maxRetries: 3}" },
  $step: { hint: "reference a step with {$from: {step: <id>}, path: ...}" },
  $input: { hint: "reference the input with {$from: {workflow: input}, path: ...}" },
  $template: { hint: "strings are never interpolated in stepflow 0.8 flows" },
};

// ---------------------------------------------------------------------------------------------
// suggestions

/** Optimal-string-alignment distance (Levenshtein plus adjacent transpositions). */
export function editDistance(a: string, b: string): number {
  const d: number[][] = [];
  for (let i = 0; i <= a.length; i++) d.push([i]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        v = Math.min(v, d[i - 2][j - 2] + 1);
      }
      d[i][j] = v;
    }
  }
  return d[a.length][b.length];
}

function normalizeKey(k: string): string {
  return k.replace(/[_\-\s]/g, "").toLowerCase();
}

/**
 * What to tell a user who wrote the unknown key `key` where `known` keys are allowed: a
 * "did you mean" hint, or an explanation, or undefined.
 */
export function suggestKey(key: string, known: readonly string[]): string | undefined {
  const alias = KEY_ALIASES[key];
  if (typeof alias === "string" && known.includes(alias)) return `did you mean '${alias}'?`;
  if (typeof alias === "object") return alias.hint;
  const norm = normalizeKey(key);
  const same = known.find((k) => normalizeKey(k) === norm);
  if (same) return `did you mean '${same}'?`;
  let best: string | undefined;
  let bestD = Infinity;
  for (const k of known) {
    const dist = editDistance(norm, normalizeKey(k));
    if (dist < bestD) {
      bestD = dist;
      best = k;
    }
  }
  const limit = norm.length <= 4 ? 1 : 2;
  if (best !== undefined && bestD <= limit) return `did you mean '${best}'?`;
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// diagnostics collector

class Collector {
  readonly out: Diagnostic[] = [];
  constructor(readonly source: SourceMap | undefined, readonly prefix: Path = []) {}

  add(
    level: DiagnosticLevel,
    code: string,
    message: string,
    path: Path,
    options: { hint?: string; atKey?: boolean } = {},
  ): void {
    const full = [...this.prefix, ...path];
    const d: Diagnostic = { level, code, message, path: jsonPath(full) };
    const src = this.source;
    if (src) {
      const ds = src as Partial<DocumentSourceMap>;
      const pos = options.atKey && ds.keyPositionOf ? ds.keyPositionOf(path) : src.positionOf(path);
      if (pos) d.position = pos;
    }
    if (options.hint) d.hint = options.hint;
    this.out.push(d);
  }

  /** Warns about keys of `obj` (at `path`) that are not in `known`. */
  unknownKeys(
    obj: JsonValue | undefined,
    path: Path,
    known: readonly string[],
    what: string,
  ): void {
    if (!isJsonObject(obj)) return;
    for (const k of Object.keys(obj)) {
      if (known.includes(k)) continue;
      this.add("warning", "unknown_key", `Unknown key '${k}' in ${what} is ignored`, [...path, k], {
        hint: suggestKey(k, known),
        atKey: true,
      });
    }
  }
}

// ---------------------------------------------------------------------------------------------
// flows

/**
 * All diagnostics of a flow (§1.9) and, with `config`, of its routing (`config` may be a
 * {@linkcode Config} or a {@linkcode LoadedConfig}; its own diagnostics come from
 * {@linkcode validateConfig}). With a config, a step component that no route matches, or that
 * its (input-independent) route sends to a mock/builtin plugin lacking it, is a warning.
 */
export function validateFlow(
  loaded: LoadedFlow,
  config?: Config | LoadedConfig,
  options: ValidateOptions = {},
): Diagnostic[] {
  const c = new Collector(loaded.source);
  const cfg = config && "config" in config && "workingDirectory" in config
    ? (config as LoadedConfig).config
    : config as Config | undefined;
  let router: Router | undefined;
  if (cfg) {
    try {
      router = new Router(cfg);
    } catch {
      router = undefined; // validateConfig reports it
    }
  }
  const known = cfg ? componentLister(cfg, options) : undefined;
  checkFlow(loaded, c, router, known);
  return [...c.out, ...policyDiagnostics(loaded.flow, loaded.source)];
}

/**
 * The components of the builtin plugin (stepflow 0.8 §4, plus the `/chat` extension).
 * tests/flow/validate_test.ts checks it against the plugin's own list.
 */
export const BUILTIN_COMPONENT_NAMES: readonly string[] = [
  "/chat",
  "/create_messages",
  "/openai",
  "/eval",
  "/iterate",
  "/load_file",
  "/map",
  "/put_blob",
  "/get_blob",
];

/** Options of {@linkcode validateFlow}. */
export interface ValidateOptions {
  /**
   * The component names a plugin type offers, when known without starting it (`builtin`).
   * Mock components always come from the config.
   * @default the 0.8 list ({@linkcode BUILTIN_COMPONENT_NAMES}) for `builtin`, unknown otherwise
   */
  componentsOfType?: (type: string) => readonly string[] | undefined;
}

/** For a plugin name: the components it is known to offer, or undefined when unknown. */
type ComponentLister = (plugin: string) => { type: string; names: readonly string[] } | undefined;

function componentLister(cfg: Config, options: ValidateOptions): ComponentLister {
  return (plugin) => {
    const p = cfg.plugins?.[plugin];
    if (!p) return undefined;
    if (p.type === "mock") return { type: "mock", names: Object.keys(p.components ?? {}) };
    const names = options.componentsOfType?.(p.type) ??
      (p.type === "builtin" ? BUILTIN_COMPONENT_NAMES : undefined);
    return names ? { type: p.type, names } : undefined;
  };
}

interface RefUse {
  ref: CompiledRef;
  /** Where the template sits (its `at` paths are absolute already). */
  where: "input" | "skipIf" | "defaultValue" | "output";
  stepIndex?: number;
}

function checkFlow(
  loaded: LoadedFlow,
  c: Collector,
  router: Router | undefined,
  known?: ComponentLister,
): void {
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
    } else if (router && !router.match(step.component)) {
      c.add(
        "warning",
        "no_matching_route",
        `No route matches component '${step.component}' of step '${step.id}'`,
        [...base, "component"],
        {
          hint: router.patterns.length === 0
            ? 'the config has no routes: add one, e.g. routes: {"/builtin/{*component}": [{plugin: builtin}]}'
            : `routes are: ${router.patterns.join(", ")}`,
        },
      );
    } else if (router && known) {
      const target = router.resolveStatic(step.component);
      const offered = target ? known(target.plugin) : undefined;
      if (target && offered && !offered.names.includes(target.component)) {
        const close = offered.names.find((n) => editDistance(n, target.component) <= 2);
        c.add(
          "warning",
          "unknown_component",
          `Component '${step.component}' of step '${step.id}' is routed to ${offered.type} ` +
            `plugin '${target.plugin}' as '${target.component}', which it does not offer`,
          [...base, "component"],
          {
            hint: close
              ? `did you mean '${close}'?`
              : offered.names.length
              ? `it offers: ${offered.names.join(", ")}`
              : undefined,
          },
        );
      }
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
        (value, at) => checkSubflow(value, at, loaded, c),
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
  checkTestSection(rawObj, c, loaded);
  if (Array.isArray(rawObj.examples)) {
    rawObj.examples.forEach((e, i) =>
      c.unknownKeys(e, ["examples", i], EXAMPLE_KEYS, "an example")
    );
  }
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
  c: Collector,
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

function checkTestSection(raw: Record<string, JsonValue>, c: Collector, loaded: LoadedFlow): void {
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
  for (const key of ["config", "stepflow_config"]) {
    const cfg = test[key];
    if (cfg === undefined || cfg === null) continue;
    const src = (loaded.source as Partial<DocumentSourceMap> | undefined)?.at?.(["test", key]);
    const diags = validateConfigValue(cfg, src, ["test", key]);
    c.out.push(...diags);
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

function checkSubflow(value: JsonValue, at: Path, parent: LoadedFlow, c: Collector): void {
  const src = (parent.source as Partial<DocumentSourceMap> | undefined)?.at?.(at);
  let sub: LoadedFlow;
  try {
    sub = parseFlowValue(value, src, parent.file);
  } catch (e) {
    if (!(e instanceof FlowLoadError)) throw e;
    c.add("error", "invalid_subflow", `Invalid nested flow: ${stripPosition(e)}`, at);
    return;
  }
  const inner = new Collector(src, at);
  checkFlow(sub, inner, undefined);
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

// ---------------------------------------------------------------------------------------------
// configs

/**
 * Diagnostics of a config (§1.9 config part): unknown plugins in routes (error), conflicting or
 * malformed route patterns (error), stdio/http/MCP plugins missing `command`/`url` (error), no
 * plugins / no routes / unused plugins (warnings), unknown keys (warnings, with suggestions;
 * needs the raw value: `loaded.raw` when the loader kept it).
 * @param source positions (defaults to `loaded.source` when present).
 */
export function validateConfig(
  loaded: LoadedConfig & { raw?: JsonValue; source?: SourceMap },
  source?: SourceMap,
): Diagnostic[] {
  const c = new Collector(source ?? loaded.source);
  checkConfig(loaded.config, loaded.raw, c);
  checkStateStore(loaded, c);
  return [...c.out, ...configPolicyDiagnostics(loaded.config, source ?? loaded.source)];
}

/**
 * A PostgreSQL `url` that is not one is an error here (its message never holds the password).
 * A SQLite `databaseUrl` that cannot work is an error here, with its position, rather than a
 * failure to start the engine: a malformed URL, a file in a directory that does not exist, or a
 * missing file with `mode=rw`/`ro`. What cannot be checked (no read permission) is left to the
 * engine.
 */
function checkStateStore(loaded: LoadedConfig, c: Collector): void {
  const store = loaded.config.stateStore as
    | { type?: string; databaseUrl?: unknown; url?: unknown }
    | undefined;
  if (store?.type === "postgres" && typeof store.url === "string") {
    try {
      parsePostgresUrl(store.url);
    } catch (e) {
      c.add("error", "invalid_state_store", (e as Error).message, ["stateStore", "url"], {
        hint: "e.g. postgres://stepflow:${PGPASSWORD}@db.internal:5432/stepflow",
      });
    }
    return;
  }
  if (store?.type !== "sqlite" || typeof store.databaseUrl !== "string") return;
  const at = ["stateStore", "databaseUrl"];
  let parsed: { path: string; mode: string };
  try {
    parsed = parseSqliteUrl(store.databaseUrl, loaded.workingDirectory);
  } catch (e) {
    c.add("error", "invalid_state_store", (e as Error).message, at);
    return;
  }
  if (parsed.path === ":memory:") return;
  const kind = (p: string) => {
    try {
      return Deno.statSync(p).isDirectory ? "dir" : "file";
    } catch (e) {
      return e instanceof Deno.errors.NotFound ? "missing" : "unknown";
    }
  };
  const dir = dirname(parsed.path);
  const file = kind(parsed.path);
  if (file === "dir") {
    c.add("error", "invalid_state_store", `SQLite database '${parsed.path}' is a directory`, at, {
      hint: "give a file name, e.g. sqlite:runs.db?mode=rwc",
    });
  } else if (file === "missing" && parsed.mode !== "rwc") {
    c.add(
      "error",
      "invalid_state_store",
      `SQLite database '${parsed.path}' does not exist (mode=${parsed.mode} does not create it)`,
      at,
      { hint: "use mode=rwc to create it" },
    );
  } else if (file === "missing" && kind(dir) === "missing") {
    c.add(
      "error",
      "invalid_state_store",
      `SQLite database '${parsed.path}' cannot be created: directory '${dir}' does not exist`,
      at,
      {
        hint:
          "create the directory, or point databaseUrl elsewhere (relative paths are from the config's directory)",
      },
    );
  }
}

/** Validates an inline config value (a flow's `test.config`) at `prefix`. */
function validateConfigValue(value: JsonValue, source: SourceMap | undefined, prefix: Path) {
  const c = new Collector(source, prefix);
  if (!isJsonObject(value)) {
    c.add("error", "invalid_config", "The test config must be a mapping", []);
    return c.out;
  }
  // A light check of the shape without building plugins; full parsing happens in `stepflow test`.
  const plugins = isJsonObject(value.plugins) ? value.plugins : {};
  const routes = isJsonObject(value.routes) ? value.routes : {};
  checkConfig(
    { plugins, routes } as unknown as Config,
    value,
    c,
  );
  return c.out;
}

function checkConfig(config: Config, raw: JsonValue | undefined, c: Collector): void {
  const plugins = config.plugins ?? {};
  const routes = config.routes ?? {};
  const pluginNames = Object.keys(plugins);
  if (pluginNames.length === 0) c.add("warning", "no_plugins", "No plugins configured", []);
  const patterns = Object.keys(routes);
  if (patterns.length === 0) {
    c.add("warning", "no_routes", "No routing rules configured", [], {
      hint:
        'without routes no component can be called; e.g. routes: {"/builtin/{*component}": [{plugin: builtin}]}',
    });
  }
  const used = new Set<string>();
  for (const p of patterns) {
    const rules = routes[p];
    if (!Array.isArray(rules)) continue;
    rules.forEach((rule, i) => {
      const name = isJsonObject(rule as unknown as JsonValue) ? rule.plugin : undefined;
      if (typeof name !== "string") return;
      used.add(name);
      if (!Object.hasOwn(plugins, name)) {
        c.add(
          "error",
          "unknown_plugin",
          `Routing rule ${i} for path '${p}' references unknown plugin '${name}'`,
          ["routes", p, i, "plugin"],
          {
            hint: suggestKey(name, pluginNames) ??
              (pluginNames.length ? `configured plugins: ${pluginNames.join(", ")}` : undefined),
          },
        );
      }
    });
  }
  for (const name of pluginNames) {
    if (!used.has(name)) {
      c.add(
        "warning",
        "unused_plugin",
        `Plugin '${name}' is not referenced by any routing rule`,
        ["plugins", name],
        { hint: `route to it, e.g. "/${name}/{*component}": [{plugin: ${name}}]` },
      );
    }
    const p = plugins[name] as unknown as JsonValue;
    if (!isJsonObject(p)) continue;
    if (p.type === "stepflow" && p.transport !== "http" && !p.command) {
      c.add("error", "missing_command", `Plugin '${name}' (stdio) needs a 'command'`, [
        "plugins",
        name,
      ]);
    }
    if (p.type === "stepflow" && p.transport === "http" && !p.url) {
      c.add("error", "missing_url", `Plugin '${name}' (http) needs a 'url'`, ["plugins", name]);
    }
    if (p.type === "mcp" && !p.command && !p.url) {
      c.add("error", "missing_command", `Plugin '${name}' (mcp) needs a 'command' or a 'url'`, [
        "plugins",
        name,
      ]);
    }
  }
  // Route patterns (conflicts, syntax). Unknown plugins are reported above.
  const known = Object.fromEntries(
    [...pluginNames, ...used].map((n) => [n, { type: "builtin" }]),
  ) as unknown as Config["plugins"];
  try {
    new Router({ plugins: known, routes });
  } catch (e) {
    if (!(e instanceof ValidationError)) throw e;
    c.add("error", "invalid_route", e.message, ["routes"]);
  }
  for (const [name, p] of Object.entries(plugins)) {
    checkPluginEndpoint(name, p, c);
    checkPluginEnvRefs(name, p, c);
  }
  if (raw !== undefined) configUnknownKeys(raw, c);
}

/**
 * A step service or MCP server `url` that is not an http(s) URL: an error here (with its
 * position) instead of a failed step at run time. (A missing `url`/`command` is checked above.)
 */
function checkPluginEndpoint(name: string, p: unknown, c: Collector): void {
  const plugin = p as { type?: string; url?: unknown } | undefined;
  if (plugin?.type !== "stepflow" && plugin?.type !== "mcp") return;
  // `{name.url}` / `{port}` of test servers are filled in later.
  if (typeof plugin.url !== "string" || /[{$]/.test(plugin.url)) return;
  let ok = false;
  try {
    ok = ["http:", "https:"].includes(new URL(plugin.url).protocol);
  } catch {
    // not a URL
  }
  if (!ok) {
    c.add(
      "error",
      "invalid_plugin",
      `Plugin '${name}': url ${JSON.stringify(plugin.url)} is not an http(s) URL`,
      ["plugins", name, "url"],
      { hint: "e.g. url: http://127.0.0.1:8080" },
    );
  }
}

/** A behavior whose `result` the mock plugin cannot use is an error at that result. */
function checkMockBehaviors(
  plugin: string,
  component: string,
  b: JsonValue | undefined,
  c: Collector,
) {
  const entries: [string | number, JsonValue][] = Array.isArray(b)
    ? b.map((x, i) => [i, isJsonObject(x) ? x.result : undefined] as [number, JsonValue])
    : isJsonObject(b)
    ? Object.entries(b)
    : [];
  for (const [key, result] of entries) {
    if (result === undefined) continue;
    const at = ["plugins", plugin, "components", component, "behaviors", key];
    if (typeof key === "number") at.push("result");
    try {
      toAnswer(plugin, component, result);
    } catch (e) {
      c.add("error", "invalid_mock_behavior", (e as Error).message, at);
    }
  }
}

/**
 * `${VAR}` references in a step service's or MCP server's `args` and `env`: a malformed one is an
 * error; an unset variable without a default is a warning (the environment of `validate` may not
 * be the one of the run), both at the exact arg or env entry. Variables this process may not read
 * are not checked.
 */
function checkPluginEnvRefs(name: string, p: unknown, c: Collector): void {
  const plugin = p as { type?: string; args?: unknown; env?: unknown } | undefined;
  if (plugin?.type !== "stepflow" && plugin?.type !== "mcp") return;
  const entries: [(string | number)[], string][] = [];
  if (Array.isArray(plugin.args)) {
    plugin.args.forEach((a, i) => {
      if (typeof a === "string") entries.push([["plugins", name, "args", i], a]);
    });
  }
  if (isJsonObject(plugin.env as JsonValue)) {
    for (const [k, v] of Object.entries(plugin.env as Record<string, unknown>)) {
      if (typeof v === "string") entries.push([["plugins", name, "env", k], v]);
    }
  }
  const unreadable = new Error("unreadable");
  for (const [at, text] of entries) {
    if (!text.includes("${")) continue;
    let unset: string | undefined;
    try {
      substituteEnv(text, (v) => {
        let value: string | undefined;
        try {
          value = Deno.env.get(v);
        } catch {
          throw unreadable;
        }
        if (value === undefined) unset ??= v;
        return value;
      });
    } catch (e) {
      if (e === unreadable) continue;
      if (unset !== undefined) {
        c.add(
          "warning",
          "unset_env",
          `Environment variable '${unset}' is not set (used in ${JSON.stringify(text)})`,
          at,
          {
            hint: `set it before the run, or give a default: \${${unset}:-default}`,
          },
        );
      } else {
        c.add("error", "invalid_env_ref", (e as Error).message, at);
      }
    }
  }
}

function configUnknownKeys(raw: JsonValue, c: Collector): void {
  if (!isJsonObject(raw)) return;
  c.unknownKeys(raw, [], CONFIG_KEYS, "the config");
  if (isJsonObject(raw.plugins)) {
    for (const [name, p] of Object.entries(raw.plugins)) {
      if (!isJsonObject(p) || typeof p.type !== "string") continue;
      const known = PLUGIN_KEYS[p.type];
      if (known) c.unknownKeys(p, ["plugins", name], known, `plugin '${name}'`);
      if (p.type === "mock" && isJsonObject(p.components)) {
        for (const [cn, comp] of Object.entries(p.components)) {
          c.unknownKeys(
            comp,
            ["plugins", name, "components", cn],
            MOCK_COMPONENT_KEYS,
            `mock component '${cn}'`,
          );
          if (isJsonObject(comp)) checkMockBehaviors(name, cn, comp.behaviors, c);
        }
      }
    }
  }
  if (isJsonObject(raw.routes)) {
    for (const [p, rules] of Object.entries(raw.routes)) {
      if (!Array.isArray(rules)) continue;
      rules.forEach((r, i) => {
        c.unknownKeys(r, ["routes", p, i], RULE_KEYS, `routing rule ${i} for '${p}'`);
        if (isJsonObject(r) && Array.isArray(r.conditions)) {
          r.conditions.forEach((cond, j) =>
            c.unknownKeys(cond, ["routes", p, i, "conditions", j], CONDITION_KEYS, "a condition")
          );
        }
      });
    }
  }
  if (isJsonObject(raw.stateStore) && typeof raw.stateStore.type === "string") {
    const known = STATE_STORE_KEYS[raw.stateStore.type];
    if (known) c.unknownKeys(raw.stateStore, ["stateStore"], known, "stateStore");
  }
}
