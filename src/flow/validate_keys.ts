/**
 * The names and keys a flow is written with (src/flow/validate.ts): unknown keys of references
 * and of the test section (with "did you mean"), reference paths naming a field the schema of
 * what they read does not list, step ids that do not exist (a close one suggested), and YAML
 * brace syntax or complex keys where text was meant.
 * @module
 */
import {
  isJsonObject,
  isNumber,
  isRawNumber,
  type JsonValue,
  stringifyJson,
} from "../json/exact_json.ts";
import type { Diagnostic, DiagnosticCollector, SourceMap } from "../core/diagnostics.ts";
import type { DocumentSourceMap } from "../core/document.ts";
import { editDistance } from "../core/suggest.ts";
import type { CompiledRef } from "./template.ts";
import {
  HEALTH_CHECK_KEYS,
  ON_SKIP_KEYS,
  REF_KEYS,
  suggestKey,
  TEST_CASE_KEYS,
  TEST_KEYS,
  TEST_SERVER_KEYS,
} from "./keys.ts";

type Path = (string | number)[];

/** Unknown keys of every reference object in the template at `at` (even invalid ones). */
export function checkRefKeys(c: DiagnosticCollector, t: JsonValue | undefined, at: Path): void {
  if (Array.isArray(t)) {
    t.forEach((x, i) => checkRefKeys(c, x, [...at, i]));
    return;
  }
  if (!isJsonObject(t)) return;
  if (Object.hasOwn(t, "$from")) {
    c.unknownKeys(t, at, REF_KEYS, "a reference");
    checkPathDots(c, t.path, [...at, "path"]);
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
  if (Object.hasOwn(t, "$literal")) {
    // `{$literal: x, note: y}` is x: the other keys are dropped, as a reference's are
    c.unknownKeys(t, at, ["$literal"], "a $literal");
    return;
  }
  for (const k of Object.keys(t)) checkRefKeys(c, t[k], [...at, k]);
}

/**
 * A warning when a reference's path names a field the JSON Schema of what it reads (a step's
 * `outputSchema`, the flow's `inputSchema`) does not list.
 */
export function checkFieldAccess(
  c: DiagnosticCollector,
  ref: CompiledRef,
  stepName: string,
  schema: JsonValue | undefined,
): void {
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
}

/**
 * The first field of `segments` that `schema` (a JSON Schema) lists no property for, when the
 * schema at that point lists properties; undefined when the path fits or cannot be checked.
 */
export function missingField(
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

/** "did you mean" a defined step id close to `target`, or undefined. */
export function suggestStep(target: string, ids: string[]): string | undefined {
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

/**
 * Unknown keys of the test section (servers, health checks, cases), and the diagnostics of its
 * inline config (`test.config`, `test.stepflow_config`) from `checkTestConfig`, when given.
 */
export function checkTestSection(
  raw: Record<string, JsonValue>,
  c: DiagnosticCollector,
  source: SourceMap | undefined,
  checkTestConfig?: (value: JsonValue, source: SourceMap | undefined, prefix: Path) => Diagnostic[],
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
  if (!checkTestConfig) return;
  for (const key of ["config", "stepflow_config"]) {
    const cfg = test[key];
    if (cfg === undefined || cfg === null) continue;
    const src = (source as Partial<DocumentSourceMap> | undefined)?.at?.(["test", key]);
    c.out.push(...checkTestConfig(cfg, src, ["test", key]));
  }
}

/**
 * YAML brace syntax where text was meant: `user_prompt: {{ name }}` is a mapping whose key is
 * the mapping `{name: null}` (an error: stepflow 0.8 cannot even load it, and the component
 * would get a mapping); `{name}` is the mapping `{name: null}` (a warning). Any other mapping or
 * list used as a key is an error too. The inline test config is skipped (mock `behaviors` use
 * complex keys on purpose).
 */
export function checkBraces(
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
 * Schema fields (`inputSchema`, `outputSchema`, `variables`, a step's `inputSchema` and
 * `outputSchema`) that are not a JSON Schema (a mapping, or `true`/`false`): the engine ignores
 * them, so a flow whose `variables: 7` was meant as a schema would otherwise be told only that it
 * "has no variables schema".
 */
export function checkSchemaFields(
  c: DiagnosticCollector,
  raw: JsonValue,
  steps: readonly JsonValue[],
): void {
  const check = (obj: JsonValue, at: Path, keys: readonly string[]) => {
    if (!isJsonObject(obj)) return;
    for (const k of keys) {
      const v = obj[k];
      if (v === undefined || v === null || typeof v === "boolean" || isJsonObject(v)) continue;
      c.add(
        "warning",
        "invalid_schema",
        `'${k}' must be a JSON Schema (a mapping such as {type: object}), got ${describe(v)}; ` +
          `it is ignored`,
        [...at, k],
        { hint: "write a mapping, e.g. {type: object, properties: {...}}, or remove the key" },
      );
    }
  };
  check(raw, [], ["inputSchema", "outputSchema", "variables"]);
  steps.forEach((s, i) => check(s, ["steps", i], ["inputSchema", "outputSchema"]));
}

/**
 * A `skipIf` that is a constant (no reference): a literal string such as `"$.skip"` is truthy, so
 * the step is always skipped; `false`/`0`/`""` never skip it. Either way the condition reads
 * nothing, which was rarely meant.
 */
export function checkConstantSkipIf(
  c: DiagnosticCollector,
  skipIf: JsonValue | undefined,
  hasRef: boolean,
  at: Path,
  stepId: string,
): void {
  if (skipIf === undefined || skipIf === null || hasRef) return;
  // stepflow 0.8's truthiness: false, 0, 0.0 and "" are falsy, everything else truthy
  const always = !(skipIf === false || skipIf === "" ||
    (isNumber(skipIf) && Number(stringifyJson(skipIf)) === 0));
  const looksLikePath = typeof skipIf === "string" && /^\$[.[]/.test(skipIf);
  c.add(
    "warning",
    "constant_skip_if",
    `skipIf of step '${stepId}' is a constant (${describe(skipIf)}), not a reference: the step is ${
      always ? "always skipped" : "never skipped"
    }`,
    at,
    {
      hint: looksLikePath
        ? `a path is read only in a reference: skipIf: {$from: {workflow: input}, path: "${skipIf}"}`
        : "read a value with a reference, e.g. skipIf: {$from: {workflow: input}, path: skip}",
    },
  );
}

function describe(v: JsonValue): string {
  if (Array.isArray(v)) return "a list";
  if (typeof v === "string") return `the string ${JSON.stringify(v)}`;
  if (typeof v === "boolean") return `${v}`;
  if (v === null) return "null";
  if (isNumber(v)) return `the number ${stringifyJson(v)}`;
  return "a mapping";
}

/**
 * A warning for `..` in a reference path: JSONPath's recursive descent (`$..name`) does not exist
 * in stepflow 0.8, which skips empty names: `$..name` reads `$.name`, only at the top.
 */
function checkPathDots(c: DiagnosticCollector, path: JsonValue | undefined, at: Path): void {
  if (typeof path !== "string") return;
  // quoted names (`$['a..b']`) are names, not separators
  if (!path.replace(/\[(["']).*?\1\]/g, "").includes("..")) return;
  c.add(
    "warning",
    "path_dots",
    `Path '${path}' has '..': there is no recursive descent here (stepflow 0.8 skips the empty ` +
      `name, so '$..a' reads '$.a')`,
    at,
    { hint: `write the whole path, e.g. '${path.replace(/\.\.+/g, ".")}'` },
  );
}
