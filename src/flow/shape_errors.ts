/**
 * Shape errors of flows and configs: a zod error turned into a {@linkcode ShapeError} whose
 * message names the first problem (JSON path, file:line:col, what was expected and found, a hint
 * for common slips) and whose `problems` list every one; and the flow repaired without its wrong
 * optional keys, so that the other checks can still run on it (src/flow/load.ts).
 * @module
 */
import type { z } from "zod";
import { isJsonObject, type JsonValue, setOwn } from "../json/exact_json.ts";
import { FlowLoadError, type SourcePosition } from "../errors.ts";
import { type Diagnostic, jsonPath, type SourceMap } from "../core/diagnostics.ts";
import { elideMiddle } from "../core/elide.ts";
import type { DocumentSourceMap } from "../core/document.ts";
import { FLOW_SCHEMA_URL, FlowSchema, type LoadedFlow } from "./model.ts";
import { describeValue } from "../json/describe.ts";

export { describeValue };

/**
 * A flow or config whose shape is wrong. The message names the first problem (JSON path and
 * position); `problems` has every problem the schema check found, one fatal diagnostic each
 * (code `invalid_flow` / `invalid_config`), and `repaired`, when given, is the flow without the
 * optional keys that were wrong, for the checks that need a flow model (references, ids): see
 * {@linkcode parseFlowValue}.
 */
export class ShapeError extends FlowLoadError {
  /** The flow without its wrong optional keys (when they were all optional), and those keys. */
  repaired?: { loaded: LoadedFlow; removed: string[] };
  constructor(
    message: string,
    position: SourcePosition | undefined,
    readonly problems: Diagnostic[],
  ) {
    super(message, position);
  }
}

/**
 * Turns a zod error into a {@linkcode ShapeError} for its first issue (the one most useful to
 * fix first), with the JSON path and the source position; every issue is in its `problems`.
 */
export function zodToLoadError(
  error: z.ZodError,
  value: JsonValue,
  source: SourceMap | undefined,
  what: "flow" | "config",
): ShapeError {
  const problems = error.issues.map((issue) => {
    const path = issue.path.filter((s): s is string | number => typeof s !== "symbol");
    let text = describeIssue(issue, path, value, what);
    const brace = (source as Partial<DocumentSourceMap> | undefined)?.braceTemplate?.(path);
    if (brace !== undefined && issue.code === "invalid_type") {
      text += ` (YAML reads ${brace} as a mapping: quote it, "${brace}", to write text)`;
    }
    const d: Diagnostic = {
      level: "fatal",
      code: `invalid_${what}`,
      message: text,
      path: jsonPath(path),
    };
    const position = source?.positionOf(path);
    if (position) d.position = position;
    return d;
  });
  const first = problems[0];
  const more = problems.length > 1
    ? ` (and ${problems.length - 1} more problem(s): stepflow validate lists them all)`
    : "";
  // The zod error is restated (first issue, with path and position); it is not kept as `cause`
  // because describeError would print its JSON dump. A long path is elided here: `problems`
  // has it whole.
  return new ShapeError(
    `Invalid ${what}: ${elideMiddle(first.path)}: ${first.message}${more}`,
    first.position,
    problems,
  );
}

/**
 * The flow without the optional keys its shape problems are at (`timeout: banana`,
 * `onError: {action: explode}`), so that the other checks can still run on it; undefined when a
 * problem is a missing or wrong required key, a list item, a step `id` or `steps` itself (the
 * other checks would report its consequences, not new problems). Keys are removed from copies of
 * the containers on their paths; list indices do not move, so positions stay right.
 */
export function repair(
  value: JsonValue,
  error: z.ZodError,
  source: SourceMap | undefined,
  file: string | undefined,
): ShapeError["repaired"] {
  let current = value;
  let issues = error.issues;
  const removed: string[] = [];
  for (let round = 0; round < 4; round++) {
    for (const issue of issues) {
      let path = issue.path.filter((s): s is string | number => typeof s !== "symbol");
      // a missing key (e.g. a union's `action`): remove its owner instead
      if (valueAt(current, path) === undefined) path = path.slice(0, -1);
      const key = path.at(-1);
      if (typeof key !== "string" || key === "id" || (path.length === 1 && key === "steps")) {
        return undefined;
      }
      if (!removed.includes(jsonPath(path))) removed.push(jsonPath(path));
      current = withoutKey(current, path);
    }
    const again = FlowSchema.safeParse(current);
    if (again.success) {
      const loaded: LoadedFlow = { flow: again.data, raw: current };
      if (source) loaded.source = source;
      if (file !== undefined) loaded.file = file;
      return { loaded, removed };
    }
    issues = again.error.issues;
  }
  return undefined;
}

/** `root` with the key at `path` removed; the containers on the path are copied. */
function withoutKey(root: JsonValue, path: readonly (string | number)[]): JsonValue {
  if (path.length === 0) return root;
  const [head, ...rest] = path;
  if (Array.isArray(root) && typeof head === "number" && head < root.length) {
    const copy = root.slice();
    copy[head] = withoutKey(root[head], rest);
    return copy;
  }
  if (!isJsonObject(root) || typeof head !== "string" || !Object.hasOwn(root, head)) return root;
  const copy: Record<string, JsonValue> = {};
  for (const [k, v] of Object.entries(root)) {
    if (k === head && rest.length === 0) continue;
    setOwn(copy, k, k === head ? withoutKey(v, rest) : v);
  }
  return copy;
}

function valueAt(root: JsonValue, path: readonly (string | number)[]): JsonValue | undefined {
  let cur: JsonValue | undefined = root;
  for (const seg of path) {
    if (Array.isArray(cur) && typeof seg === "number") cur = cur[seg];
    else if (isJsonObject(cur) && typeof seg === "string" && Object.hasOwn(cur, seg)) {
      cur = cur[seg];
    } else return undefined;
  }
  return cur;
}

function describeIssue(
  issue: z.core.$ZodIssue,
  path: (string | number)[],
  root: JsonValue,
  what: string,
): string {
  const actual = valueAt(root, path);
  const last = path.at(-1);
  switch (issue.code) {
    case "invalid_type":
      if (actual === undefined) {
        // `<<: *defaults` is not applied (YAML 1.2, as stepflow 0.8): the key it was to bring
        const parent = valueAt(root, path.slice(0, -1));
        if (isJsonObject(parent) && Object.hasOwn(parent, "<<")) {
          return `missing required key '${String(last)}' (YAML merge keys '<<' are not applied: ` +
            `write the keys out)`;
        }
        return `missing required key '${String(last)}'${requiredHint(path, what)}`;
      }
      if (last === "onError" && typeof actual === "string") {
        return `expected a mapping such as {action: ${actual}}, got ${describeValue(actual)}`;
      }
      if (
        (issue.expected === "number" || issue.expected === "int") &&
        describeValue(actual).startsWith("the number ") &&
        !Number.isFinite(Number(JSON.stringify(actual)))
      ) {
        // A number too large for a double (1e400) reads as Infinity.
        return `the number ${JSON.stringify(actual)} is out of range: give a finite number`;
      }
      return `expected ${article(issue.expected)}, got ${describeValue(actual)}`;
    case "invalid_value": {
      const allowed = issue.values.map((v) => JSON.stringify(v)).join(", ");
      if (actual === undefined && last === "schema") {
        return `missing required key 'schema'${requiredHint(path, what)}`;
      }
      if (actual === undefined) return `missing required key '${String(last)}' (one of ${allowed})`;
      if (last === "schema") {
        return `must be "${FLOW_SCHEMA_URL}" (stepflow flow format v1), got ${
          describeValue(actual)
        }`;
      }
      return `expected one of ${allowed}, got ${describeValue(actual)}`;
    }
    case "invalid_union": {
      const disc = (issue as { discriminator?: string }).discriminator ??
        (typeof last === "string" && (last === "action" || last === "type") ? last : "action");
      const at = last === disc ? path.slice(0, -1) : path;
      const inner = valueAt(root, [...at, disc]);
      const owner = at.at(-1);
      if (owner === "onError" || owner === "onSkip" || disc === "action") {
        // `fallback` (after retries run out) cannot itself retry.
        const options = owner === "onSkip"
          ? "skip, useDefault"
          : owner === "fallback"
          ? "fail, skip, useDefault"
          : "fail, skip, useDefault, retry";
        return inner === undefined
          ? `missing '${disc}' (one of ${options})`
          : `unknown ${disc} ${shortValue(inner)} (expected one of ${options})`;
      }
      if (disc === "type") {
        return inner === undefined ? `missing 'type'` : `unknown type ${shortValue(inner)}`;
      }
      return issue.message;
    }
    case "too_small":
    case "too_big": {
      const i = issue as {
        origin?: string;
        minimum?: unknown;
        maximum?: unknown;
        inclusive?: boolean;
      };
      if (i.origin === "number" && actual !== undefined) {
        const bound = issue.code === "too_small" ? i.minimum : i.maximum;
        const rel = issue.code === "too_small"
          ? (i.inclusive ? "at least" : "greater than")
          : (i.inclusive ? "at most" : "less than");
        return `must be ${rel} ${String(bound)}, got ${describeValue(actual)}`;
      }
      return `${issue.message}${actual !== undefined ? `, got ${describeValue(actual)}` : ""}`;
    }
    case "invalid_format":
      return `${issue.message}${actual !== undefined ? `, got ${describeValue(actual)}` : ""}`;
    default:
      return issue.message;
  }
}

function shortValue(v: JsonValue): string {
  return typeof v === "string" ? JSON.stringify(v) : describeValue(v);
}

function requiredHint(path: (string | number)[], what: string): string {
  if (what !== "flow") return "";
  if (path.length === 1 && path[0] === "schema") {
    return ` (add 'schema: ${FLOW_SCHEMA_URL}' at the top)`;
  }
  if (path.length === 3 && path[0] === "steps" && path[2] === "id") {
    return " (every step needs a unique 'id')";
  }
  if (path.length === 3 && path[0] === "steps" && path[2] === "component") {
    return " (e.g. 'component: /builtin/eval')";
  }
  return "";
}

function article(type: string): string {
  if (type === "array") return "a list";
  if (type === "object" || type === "record" || type === "map") return "a mapping";
  if (type === "int") return "a whole number";
  return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`;
}
