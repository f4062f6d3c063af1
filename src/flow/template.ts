/**
 * Value templates and paths: the stepflow 0.8 expression language (§1.3-§1.5).
 *
 * A template is compiled once ({@linkcode compileTemplate}) into a tree whose reference-free
 * subtrees are precomputed literals, then resolved per run ({@linkcode resolveTemplate}). Data
 * returned by steps is never re-read as a template: only the flow's own text is compiled.
 *
 * stepflow 0.8 semantics kept here:
 * - an object with a key `$from` is a reference `{ $from, path?, onSkip? }` (other keys ignored);
 *   `$from` names one source (`step`, `workflow` or `variable`): more than one is an error here,
 *   where 0.8 silently reads the step;
 *   an object with a key `$literal` is returned verbatim; anything else is walked;
 * - `path` without a leading `$` is one literal key (`"a.b"` is the key `a.b`);
 * - a missing path is an error (not null, not skip);
 * - the first skipped or failed element (depth-first, key order) makes the whole template skipped
 *   or failed; `onSkip: {action: useDefault}` turns a skipped reference into its `defaultValue`
 *   (a literal) or `null`, after (not through) `path`.
 *
 * One concept, kept whole (just over 400 lines): the expression language reads best as one
 * grammar (paths, compile, resolve); tests/flow/template_test.ts covers it.
 * @module
 */
import { isJsonObject, isRawNumber, type JsonValue, setOwn, toNumber } from "../json/exact_json.ts";
import type { FlowResult } from "../core/flow_result.ts";

/** One step of a path: an object key or an array index. */
export type PathSegment = string | number;

/** A parsed path: its segments and its normalised `$`-syntax text (`$.a[0]`). */
export interface ParsedPath {
  segments: PathSegment[];
  text: string;
}

/** A template or path that cannot be compiled or resolved. `at` is where in the template. */
export class TemplateError extends Error {
  override name = "TemplateError";
  constructor(message: string, readonly at: readonly (string | number)[] = []) {
    super(message);
  }
}

/**
 * Parses a path exactly as stepflow 0.8 does (§1.4).
 * @throws {TemplateError} `Invalid character 'x' in JSON path after $ or ']'. Expected '.' or '['`,
 * `Unclosed bracket '[' in path`, `Invalid index 'x' in JSON path. Expected a number or a quoted string.`
 */
export function parsePath(path: string): ParsedPath {
  // a long path is parsed each time, not kept: the cache is bounded in bytes too (before: 300
  // distinct 1 MB paths, e.g. in flows posted to the service, kept 300 MB until 10,000 entries)
  if (path.length > PATH_CACHE_MAX_LENGTH) return parsePathUncached(path);
  let parsed = pathCache.get(path);
  if (parsed === undefined) {
    parsed = parsePathUncached(path);
    if (pathCache.size >= PATH_CACHE_SIZE) pathCache.clear();
    pathCache.set(path, parsed);
  }
  return parsed;
}

/** Parsed paths by text: flows repeat the same few paths many times. Treat results as frozen. */
const pathCache = new Map<string, ParsedPath>();
const PATH_CACHE_SIZE = 10_000;
/** Longest path kept in the cache (characters): at most ~10 MB of paths in all. */
const PATH_CACHE_MAX_LENGTH = 1_000;

function parsePathUncached(path: string): ParsedPath {
  const trimmed = path.trim();
  if (trimmed === "" || trimmed === "$") return { segments: [], text: "$" };
  if (!trimmed.startsWith("$")) return { segments: [path], text: pathText([path]) };
  const segments: PathSegment[] = [];
  let i = 1;
  const s = trimmed;
  while (i < s.length) {
    const c = s[i];
    if (c === ".") {
      let j = i + 1;
      while (j < s.length && s[j] !== "." && s[j] !== "[") j++;
      const name = s.slice(i + 1, j);
      if (name !== "") segments.push(name);
      i = j;
    } else if (c === "[") {
      const close = s.indexOf("]", i + 1);
      if (close < 0) throw new TemplateError("Unclosed bracket '[' in path");
      const inner = s.slice(i + 1, close);
      if (/^[0-9]+$/.test(inner)) {
        segments.push(Number(inner));
      } else if (
        inner.length >= 2 &&
        ((inner[0] === '"' && inner.at(-1) === '"') || (inner[0] === "'" && inner.at(-1) === "'"))
      ) {
        segments.push(inner.slice(1, -1));
      } else {
        throw new TemplateError(
          `Invalid index '${inner}' in JSON path. Expected a number or a quoted string.`,
        );
      }
      i = close + 1;
    } else {
      throw new TemplateError(
        `Invalid character '${c}' in JSON path after $ or ']'. Expected '.' or '['`,
      );
    }
  }
  return { segments, text: pathText(segments) };
}

/** The `$`-syntax text of path segments: `["a", 0, "b c"]` → `$.a[0]["b c"]`. */
export function pathText(segments: readonly PathSegment[]): string {
  let out = "$";
  for (const seg of segments) {
    if (typeof seg === "number") out += `[${seg}]`;
    else if (/^[^.[\]"']+$/.test(seg)) out += `.${seg}`;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}

/**
 * Reads `path` from `value`.
 * @throws {TemplateError} `Undefined field '<path>' in value` when a key or index is missing, or
 * the value at some point is not an object/array (stepflow 0.8: a hard error).
 */
export function applyPath(value: JsonValue, path: ParsedPath): JsonValue {
  let cur: JsonValue = value;
  for (const seg of path.segments) {
    if (typeof seg === "number") {
      if (!Array.isArray(cur) || seg >= cur.length) {
        throw new TemplateError(`Undefined field '${path.text}' in value`);
      }
      cur = cur[seg];
    } else {
      if (
        cur === null || typeof cur !== "object" || Array.isArray(cur) || !Object.hasOwn(cur, seg) ||
        (seg === "rawJSON" && isRawNumber(cur))
      ) {
        throw new TemplateError(`Undefined field '${path.text}' in value`);
      }
      cur = (cur as Record<string, JsonValue>)[seg];
    }
  }
  return cur;
}

/** Where a reference reads from. */
export type RefBase =
  | { type: "input" }
  | { type: "step"; step: string }
  | { type: "variable"; name: string; default?: JsonValue };

/** A compiled reference expression `{ $from, path?, onSkip? }`. */
export interface CompiledRef {
  kind: "ref";
  base: RefBase;
  /** Undefined when the reference has no `path` (whole value). */
  path?: ParsedPath;
  /** `onSkip: {action: useDefault}` → the value to use (null when absent). */
  skipDefault?: { value: JsonValue };
  /** Where this reference sits inside the template (keys and indices). */
  at: (string | number)[];
}

/** A compiled template. */
export type CompiledTemplate =
  | { kind: "literal"; value: JsonValue }
  | CompiledRef
  | { kind: "object"; entries: [string, CompiledTemplate][] }
  | { kind: "array"; items: CompiledTemplate[] };

/**
 * Compiles a template. Subtrees without references become one literal (with `$literal`
 * wrappers removed), so resolving them costs nothing.
 * @throws {TemplateError} for an invalid reference (`$from` not an object, unknown base, bad path,
 * bad `onSkip`), with `at` pointing at it.
 */
export function compileTemplate(
  template: JsonValue | undefined,
  at: (string | number)[] = [],
): CompiledTemplate {
  if (template === undefined) return { kind: "literal", value: null };
  return compile(template, [...at]);
}

/**
 * `at` is a stack (pushed and popped while walking): only references and errors copy it. A
 * reference-free subtree without `$literal` wrappers is returned as the very same value.
 */
function compile(t: JsonValue, at: (string | number)[]): CompiledTemplate {
  if (Array.isArray(t)) {
    const items: CompiledTemplate[] = new Array(t.length);
    let allLiteral = true;
    let same = true;
    for (let i = 0; i < t.length; i++) {
      at.push(i);
      const c = compile(t[i], at);
      at.pop();
      items[i] = c;
      if (c.kind !== "literal") allLiteral = false;
      else if (c.value !== t[i]) same = false;
    }
    if (!allLiteral) return { kind: "array", items };
    if (same) return { kind: "literal", value: t };
    return { kind: "literal", value: items.map((c) => (c as { value: JsonValue }).value) };
  }
  if (!isJsonObject(t)) return { kind: "literal", value: t };
  if (Object.hasOwn(t, "$from")) return compileRef(t, at.slice());
  if (Object.hasOwn(t, "$literal")) return { kind: "literal", value: t.$literal };
  const entries: [string, CompiledTemplate][] = [];
  let allLiteral = true;
  let same = true;
  for (const k of Object.keys(t)) {
    at.push(k);
    const c = compile(t[k], at);
    at.pop();
    if (c.kind !== "literal") allLiteral = false;
    else if (c.value !== t[k]) same = false;
    entries.push([k, c]);
  }
  if (!allLiteral) return { kind: "object", entries };
  if (same) return { kind: "literal", value: t };
  const value: Record<string, JsonValue> = {};
  for (const [k, c] of entries) setOwn(value, k, (c as { value: JsonValue }).value);
  return { kind: "literal", value };
}

/** The keys of `$from` that name where a reference reads from; exactly one must be given. */
const REF_SOURCES = ["step", "workflow", "variable"] as const;

function compileRef(t: Record<string, JsonValue>, at: (string | number)[]): CompiledRef {
  const from = t.$from;
  if (!isJsonObject(from)) {
    const shown = typeof from === "string" ? `string ${JSON.stringify(from)}` : describeType(from);
    throw new TemplateError(`invalid type: ${shown}, expected a map for $from`, [...at, "$from"]);
  }
  const sources = REF_SOURCES.filter((k) => Object.hasOwn(from, k));
  if (sources.length > 1) {
    // stepflow 0.8 silently reads one of them (the step); which one was meant is unknowable.
    throw new TemplateError(
      `$from has both ${sources.map((k) => `'${k}'`).join(" and ")}: a reference reads one ` +
        `source; keep one of them (e.g. {$from: {${sources[0]}: ...}})`,
      [...at, "$from"],
    );
  }
  let base: RefBase;
  if (Object.hasOwn(from, "workflow")) {
    if (from.workflow !== "input") {
      throw new TemplateError(
        `invalid value for $from.workflow: ${
          JSON.stringify(from.workflow)
        }, expected "input" (the only workflow reference)`,
        [...at, "$from", "workflow"],
      );
    }
    base = { type: "input" };
  } else if (Object.hasOwn(from, "step")) {
    if (typeof from.step !== "string") {
      throw new TemplateError(`$from.step must be a string step id`, [...at, "$from", "step"]);
    }
    base = { type: "step", step: from.step };
  } else if (Object.hasOwn(from, "variable")) {
    if (typeof from.variable !== "string") {
      throw new TemplateError(`$from.variable must be a string`, [...at, "$from", "variable"]);
    }
    base = Object.hasOwn(from, "default")
      ? { type: "variable", name: from.variable, default: from.default }
      : { type: "variable", name: from.variable };
  } else {
    throw new TemplateError(
      `$from must have one of 'workflow', 'step' or 'variable' (e.g. {$from: {step: my_step}})`,
      [...at, "$from"],
    );
  }
  const ref: CompiledRef = { kind: "ref", base, at };
  if (Object.hasOwn(t, "path") && t.path !== null) {
    if (typeof t.path !== "string") {
      throw new TemplateError(`path must be a string`, [...at, "path"]);
    }
    try {
      const p = parsePath(t.path);
      if (p.segments.length > 0) ref.path = p;
    } catch (e) {
      throw new TemplateError((e as Error).message, [...at, "path"]);
    }
  }
  if (Object.hasOwn(t, "onSkip") && t.onSkip !== null) {
    const s = t.onSkip;
    if (!isJsonObject(s) || (s.action !== "skip" && s.action !== "useDefault")) {
      throw new TemplateError(
        `onSkip must be {action: skip} or {action: useDefault, defaultValue: ...}`,
        [...at, "onSkip"],
      );
    }
    if (s.action === "useDefault") {
      ref.skipDefault = { value: Object.hasOwn(s, "defaultValue") ? s.defaultValue : null };
    }
  }
  return ref;
}

function describeType(v: JsonValue): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "sequence";
  if (isRawNumber(v) || typeof v === "number") return `number ${JSON.stringify(v)}`;
  if (typeof v === "boolean") return `boolean \`${v}\``;
  return typeof v;
}

/** Calls `fn` for every reference in a compiled template, depth-first in key order. */
export function forEachRef(t: CompiledTemplate, fn: (ref: CompiledRef) => void): void {
  switch (t.kind) {
    case "ref":
      fn(t);
      return;
    case "object":
      for (const [, c] of t.entries) forEachRef(c, fn);
      return;
    case "array":
      for (const c of t.items) forEachRef(c, fn);
      return;
  }
}

/** The distinct step ids a compiled template references, in first-seen order. */
export function referencedSteps(t: CompiledTemplate): string[] {
  const seen = new Set<string>();
  forEachRef(t, (r) => {
    if (r.base.type === "step") seen.add(r.base.step);
  });
  return [...seen];
}

/** What a template reads while it is resolved. */
export interface ResolveScope {
  /** The run input. */
  input: JsonValue;
  /** The result of a step, or undefined if it has none (not run). */
  stepResult(stepId: string): FlowResult | undefined;
  /** A variable given to the run, or undefined. */
  variable(name: string): JsonValue | undefined;
  /** The variables schema default of a variable (§1.8), or undefined. */
  variableDefault(name: string): JsonValue | undefined;
}

/**
 * Resolves a compiled template against a run's state (§1.5).
 * @returns success with the value, or the first skipped / failed outcome met.
 * @throws {TemplateError} for a missing path (`Undefined field '$.x' in value`), an undefined
 * variable (`Undefined variable 'v'`), or a reference to a step with no result.
 */
export function resolveTemplate(t: CompiledTemplate, scope: ResolveScope): FlowResult {
  switch (t.kind) {
    case "literal":
      return { outcome: "success", result: t.value };
    case "ref":
      return resolveRef(t, scope);
    default: {
      const v = resolveValue(t, scope);
      return v instanceof Stop ? v.result : { outcome: "success", result: v };
    }
  }
}

/**
 * The first skipped or failed outcome a template meets while it is resolved. Resolving returns
 * plain values and this only when it stops, instead of a result object around every value (a
 * step's input made three, issue 17); JSON values are never instances of it.
 */
class Stop {
  constructor(readonly result: FlowResult) {}
}

function resolveValue(t: CompiledTemplate, scope: ResolveScope): JsonValue | Stop {
  switch (t.kind) {
    case "literal":
      return t.value;
    case "ref":
      return refValue(t, scope);
    case "array": {
      const items = t.items;
      const out: JsonValue[] = new Array(items.length);
      for (let i = 0; i < items.length; i++) {
        const v = resolveValue(items[i], scope);
        if (v instanceof Stop) return v;
        out[i] = v;
      }
      return out;
    }
    case "object": {
      const entries = t.entries;
      const out: Record<string, JsonValue> = {};
      for (let i = 0; i < entries.length; i++) {
        const e = entries[i];
        const v = resolveValue(e[1], scope);
        if (v instanceof Stop) return v;
        setOwn(out, e[0], v);
      }
      return out;
    }
  }
}

/** A reference's whole result: the step's own result object when it reads a step's whole result. */
function resolveRef(ref: CompiledRef, scope: ResolveScope): FlowResult {
  if (ref.base.type === "step" && !ref.path) {
    const r = stepBase(ref.base.step, ref, scope);
    if (r.outcome === "skipped" && ref.skipDefault) {
      return { outcome: "success", result: ref.skipDefault.value };
    }
    return r;
  }
  const v = refValue(ref, scope);
  return v instanceof Stop ? v.result : { outcome: "success", result: v };
}

function stepBase(stepId: string, ref: CompiledRef, scope: ResolveScope): FlowResult {
  const r = scope.stepResult(stepId);
  if (r === undefined) throw new TemplateError(`Step '${stepId}' has no result yet`, ref.at);
  return r;
}

/** A reference's value, or where it stops (a skipped or failed step: its path is not read). */
function refValue(ref: CompiledRef, scope: ResolveScope): JsonValue | Stop {
  let v: JsonValue | undefined;
  switch (ref.base.type) {
    case "input":
      v = scope.input;
      break;
    case "step": {
      const r = stepBase(ref.base.step, ref, scope);
      if (r.outcome !== "success") {
        return r.outcome === "skipped" && ref.skipDefault ? ref.skipDefault.value : new Stop(r);
      }
      v = r.result;
      break;
    }
    case "variable": {
      const name = ref.base.name;
      v = scope.variable(name);
      if (v === undefined) v = ref.base.default;
      if (v === undefined) v = scope.variableDefault(name);
      if (v === undefined) throw new TemplateError(`Undefined variable '${name}'`, ref.at);
      break;
    }
  }
  if (!ref.path) return v;
  try {
    return applyPath(v, ref.path);
  } catch (e) {
    if (e instanceof TemplateError && e.at.length === 0) {
      throw new TemplateError(e.message, ref.at);
    }
    throw e;
  }
}

/**
 * stepflow 0.8 truthiness for `skipIf`: `false`, `0`, `0.0` and `""` are falsy; everything
 * else, including `null`, `[]` and `{}`, is truthy.
 */
export function isTruthy(v: JsonValue): boolean {
  if (v === false || v === "") return false;
  if (typeof v === "number") return v !== 0;
  if (isRawNumber(v)) return toNumber(v) !== 0;
  return true;
}
