/**
 * The normalised form of a flow ({@linkcode serializeFlow}): stepflow 0.8's key order and
 * reference paths in `$`-syntax, whose text the flow id (blob id) hashes.
 * @module
 */
import { isJsonObject, type JsonValue, setOwn } from "../json/exact_json.ts";
import type { Flow, Step } from "./model.ts";
import { parsePath } from "./template.ts";

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
