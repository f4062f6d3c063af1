/**
 * Loading flows: file → {@linkcode parseDocument} (positions, exact numbers) → the zod
 * {@linkcode FlowSchema} → {@linkcode LoadedFlow}. Shape errors name the JSON path and the
 * file:line:col. Semantic checks (references, ids, unknown keys) are in `validate.ts`.
 *
 * Also {@linkcode serializeFlow}: the normalised flow in stepflow 0.8's key order, whose text the
 * flow id (blob id) hashes.
 * @module
 */
import type { z } from "zod";
import { isJsonObject, type JsonValue, setOwn } from "../json/exact_json.ts";
import { FlowLoadError, type SourcePosition } from "../errors.ts";
import { type Diagnostic, jsonPath, type SourceMap } from "../core/diagnostics.ts";
import { type Flow, FLOW_SCHEMA_URL, FlowSchema, type Step } from "./model.ts";
import {
  type DocumentFormat,
  type DocumentSourceMap,
  formatFromPath,
  parseDocument,
} from "../core/document.ts";
import { parsePath } from "./template.ts";
import { decodeUtf8 } from "../core/utf8.ts";

/** A flow with the document it came from. */
export interface LoadedFlow {
  /** The validated model (values keep raw numbers). */
  flow: Flow;
  /** The document as parsed (unknown keys included), for diagnostics. */
  raw: JsonValue;
  /** Positions of the document's nodes, when it came from text. */
  source?: SourceMap;
  /** The file it came from, as the user named it. */
  file?: string;
}

/**
 * Reads and parses a flow file (`.yaml`, `.yml`, `.json`, `.jsonc`).
 * @throws {FlowLoadError} if the file cannot be read, has an unknown extension, is not valid
 * YAML/JSON (with file:line:col), or does not have the shape of a flow (with the JSON path).
 */
export async function loadFlowFile(path: string): Promise<LoadedFlow> {
  // Read first: a missing file or a directory is named as such, whatever its extension.
  const text = await readText(path, "flow");
  const format = formatFromPath(path);
  return loadFlowText(text, { format, file: path });
}

/**
 * Parses flow text.
 * @param options.format default: from `options.file`'s extension, else `yaml` (YAML also reads JSON).
 * @throws {FlowLoadError} as {@linkcode loadFlowFile}.
 */
export function loadFlowText(
  text: string,
  options: { format?: DocumentFormat; file?: string } = {},
): LoadedFlow {
  const format = options.format ?? (options.file ? formatFromPath(options.file) : "yaml");
  const doc = parseDocument(text, format, options.file);
  return parseFlowValue(doc.value, doc.source, options.file);
}

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
 * Checks a parsed value against the flow model.
 * @throws {ShapeError} naming the first problem's JSON path and position, e.g.
 * `$.steps[1]: missing required key 'id'`, with every problem found in `problems`.
 */
export function parseFlowValue(value: JsonValue, source?: SourceMap, file?: string): LoadedFlow {
  if (!isJsonObject(value)) {
    throw new FlowLoadError(
      `A flow must be a mapping with 'schema: ${FLOW_SCHEMA_URL}' and 'steps', got ${
        describeValue(value)
      }`,
      source?.positionOf([]) ?? (file ? { file, line: 1, col: 1 } : undefined),
    );
  }
  const result = FlowSchema.safeParse(value);
  if (!result.success) {
    const err = zodToLoadError(result.error, value, source, "flow");
    err.repaired = repair(value, result.error, source, file);
    throw err;
  }
  const loaded: LoadedFlow = { flow: result.data, raw: value };
  if (source) loaded.source = source;
  if (file !== undefined) loaded.file = file;
  return loaded;
}

/** True if `value` is a flow document: a mapping whose `schema` is the flow schema URL (§7). */
export function isFlowDocument(value: JsonValue): boolean {
  return isJsonObject(value) && value.schema === FLOW_SCHEMA_URL;
}

/**
 * Reads a UTF-8 text file (a byte-order mark is dropped), turning I/O errors into a
 * {@linkcode FlowLoadError} that names the file.
 * @throws {FlowLoadError} also when the file is not valid UTF-8 (with file:line:col).
 */
export async function readText(path: string, what: string): Promise<string> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new FlowLoadError(`Cannot read ${what} file '${path}': no such file`);
    }
    if (e instanceof Deno.errors.NotCapable) {
      // the cause keeps Deno's text, from which the CLI names the exact --allow-read flag
      throw new FlowLoadError(
        `Cannot read ${what} file '${path}': permission denied (run with --allow-read)`,
        undefined,
        { cause: e },
      );
    }
    if (e instanceof Deno.errors.PermissionDenied) {
      throw new FlowLoadError(
        `Cannot read ${what} file '${path}': the file system denies access (check its owner and mode)`,
      );
    }
    if (e instanceof Deno.errors.IsADirectory) {
      throw new FlowLoadError(
        `Cannot read ${what} file '${path}': it is a directory; give the ${what} file inside it`,
      );
    }
    throw new FlowLoadError(
      `Cannot read ${what} file '${path}': ${(e as Error).message}`,
      undefined,
      {
        cause: e,
      },
    );
  }
  return decodeUtf8(bytes, path);
}

// ---------------------------------------------------------------------------------------------
// zod errors → FlowLoadError

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
  // because describeError would print its JSON dump.
  return new ShapeError(
    `Invalid ${what}: ${first.path}: ${first.message}${more}`,
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
function repair(
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

/** A short description of a value for messages: `a list`, `the string "x"`, `null`. */
export function describeValue(v: JsonValue | undefined): string {
  if (v === undefined) return "nothing";
  if (v === null) return "null";
  if (Array.isArray(v)) return "a list";
  if (isJsonObject(v)) return "a mapping";
  if (typeof v === "string") {
    return `the string ${JSON.stringify(v.length > 60 ? v.slice(0, 57) + "..." : v)}`;
  }
  if (typeof v === "boolean") return `the boolean ${v}`;
  return `the number ${JSON.stringify(v)}`;
}

// ---------------------------------------------------------------------------------------------
// serialisation

/**
 * The normalised JSON form of a flow, as stepflow 0.8 serialises it: keys in the order `schema,
 * name, description, version, inputSchema, outputSchema, variables, steps, output, test, examples,
 * metadata`; absent fields, empty `steps`, null `output` and empty `metadata` omitted; every
 * reference's `path` written in `$`-syntax (`name` → `$.name`). The flow id is the blob id of
 * this value.
 *
 * Steps are written as 0.8's `Step` struct serialises: `id, component, inputSchema, outputSchema`
 * (both always, `null` when absent), then `skipIf`, `onError`, `input` (omitted when null),
 * `mustExecute` (each only when given), `metadata` (when not empty); this engine's extensions
 * `description` and `timeout` last. References keep only `$from, path, onSkip` (0.8 drops
 * other keys).
 */
export function serializeFlow(flow: Flow): JsonValue {
  const out: Record<string, JsonValue> = { schema: flow.schema };
  put(out, "name", flow.name);
  put(out, "description", flow.description);
  put(out, "version", flow.version);
  put(out, "inputSchema", flow.inputSchema);
  put(out, "outputSchema", flow.outputSchema);
  put(out, "variables", flow.variables);
  if (flow.steps.length > 0) out.steps = flow.steps.map(serializeStep);
  if (flow.output !== undefined && flow.output !== null) {
    out.output = normalizeTemplate(flow.output);
  }
  if (flow.test !== undefined) out.test = stripUndefined(flow.test as unknown as JsonValue);
  if (flow.examples !== undefined) {
    out.examples = stripUndefined(flow.examples as unknown as JsonValue);
  }
  if (flow.metadata && Object.keys(flow.metadata).length > 0) out.metadata = flow.metadata;
  return out;
}

function serializeStep(step: Step): JsonValue {
  const out: Record<string, JsonValue> = { id: step.id, component: step.component };
  // stepflow 0.8 always writes both schemas (null when absent).
  out.inputSchema = step.inputSchema ?? null;
  out.outputSchema = step.outputSchema ?? null;
  if (step.skipIf !== undefined) out.skipIf = normalizeTemplate(step.skipIf);
  if (step.onError !== undefined) {
    const e = stripUndefined(step.onError as unknown as JsonValue) as Record<string, JsonValue>;
    if (step.onError.action === "useDefault" && e.defaultValue !== undefined) {
      e.defaultValue = normalizeTemplate(e.defaultValue);
    }
    out.onError = e;
  }
  if (step.input !== undefined && step.input !== null) out.input = normalizeTemplate(step.input);
  if (step.mustExecute !== undefined) out.mustExecute = step.mustExecute;
  if (step.metadata && Object.keys(step.metadata).length > 0) out.metadata = step.metadata;
  // Extensions (not in 0.8) come last.
  put(out, "description", step.description);
  if (step.timeout !== undefined) out.timeout = step.timeout;
  return out;
}

function put(out: Record<string, JsonValue>, key: string, v: JsonValue | undefined): void {
  if (v !== undefined) out[key] = v;
}

function stripUndefined(v: JsonValue): JsonValue {
  if (Array.isArray(v)) return v.map(stripUndefined);
  if (isJsonObject(v)) {
    const out: Record<string, JsonValue> = {};
    for (const k of Object.keys(v)) if (v[k] !== undefined) out[k] = stripUndefined(v[k]);
    return out;
  }
  return v;
}

/**
 * A template with every reference's `path` in `$`-syntax (stepflow 0.8 §1.3); `$literal`
 * contents are left alone. Paths that do not parse are left as written (validation reports them).
 */
export function normalizeTemplate(t: JsonValue): JsonValue {
  if (Array.isArray(t)) return t.map(normalizeTemplate);
  if (!isJsonObject(t)) return t;
  if (Object.hasOwn(t, "$from")) {
    const out: Record<string, JsonValue> = { $from: t.$from };
    if (typeof t.path === "string") {
      try {
        out.path = parsePath(t.path).text;
      } catch {
        out.path = t.path; // invalid: validation reports it
      }
    } else if (t.path !== undefined && t.path !== null) {
      out.path = t.path;
    }
    if (t.onSkip !== undefined && t.onSkip !== null) out.onSkip = t.onSkip;
    return out;
  }
  if (Object.hasOwn(t, "$literal")) return t;
  const out: Record<string, JsonValue> = {};
  for (const k of Object.keys(t)) {
    setOwn(out, k, normalizeTemplate(t[k]));
  }
  return out;
}
