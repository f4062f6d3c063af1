/**
 * Secrets of a run and their redaction (stepflow 0.8 §1.8: `is_secret: true` on a property of
 * the `variables` schema "only affects log redaction"; this engine redacts more, see
 * docs/error-handling.md "Secrets").
 *
 * A value is secret when a schema of the flow marks it `is_secret: true`: a property of the
 * `variables` schema (the run's variable, or the property's `default`), of the flow's
 * `inputSchema` (that field of the run input), or of a step's `outputSchema` (that field of the
 * step's output, from when the step has run). Nested objects and arrays are followed through
 * `properties`, `additionalProperties`, `items`, `prefixItems`, `allOf`, `anyOf` and `oneOf`;
 * everything under a secret property is secret. `$ref`s are not followed.
 *
 * What is redacted: every occurrence of a secret string (and of its JSON-escaped form) in log
 * lines, in the message and `data` of failed step and run results (so also what is stored and
 * printed for them) is replaced by `[REDACTED]`. Numbers and booleans marked secret are redacted
 * by their JSON text. Strings shorter than {@linkcode MIN_SECRET_LENGTH} characters are not
 * redacted (they would blank out ordinary words). Successful outputs are never changed.
 * @module
 */
import { isJsonObject, isRawNumber, type JsonValue, setOwn } from "../json/exact_json.ts";
import { failed, type FlowResult } from "../flow/flow_result.ts";
import type { Flow } from "../flow/model.ts";
import type { StepRunner } from "./executor.ts";

/** What a secret is replaced by (stepflow 0.8's text). */
export const REDACTED = "[REDACTED]";

/** Shortest secret that is redacted, in characters. */
export const MIN_SECRET_LENGTH = 4;

/** The schema keyword that marks a value secret (stepflow 0.8). */
const SECRET_KEYWORD = "is_secret";

/** The schemas nesting is followed through at most this deep. */
const MAX_SCHEMA_DEPTH = 64;

/**
 * The secret strings of one run (and of the runs it started): replaces them in text and in the
 * strings of failed results. Values can be added while the run goes on (a step's output).
 */
export class Redactor {
  /** Secret texts, longest first (so a secret containing another is replaced whole). */
  #texts: string[] = [];
  readonly #seen = new Set<string>();

  /** @param parent the secrets of the run that started this one. */
  constructor(parent?: Redactor) {
    if (parent) { for (const t of parent.#texts) this.#addText(t); }
  }

  /** True when there is nothing to redact. */
  get empty(): boolean {
    return this.#texts.length === 0;
  }

  /** Adds the secret leaves of `value` (strings, and numbers/booleans by their JSON text). */
  addValue(value: JsonValue | undefined, depth = 0): void {
    if (value === undefined || value === null || depth > MAX_SCHEMA_DEPTH) return;
    if (typeof value === "string") this.#add(value);
    else if (typeof value === "number" || typeof value === "boolean") this.#add(String(value));
    else if (isRawNumber(value)) this.#add(value.rawJSON);
    else if (Array.isArray(value)) { for (const v of value) this.addValue(v, depth + 1); }
    else for (const k of Object.keys(value)) this.addValue(value[k], depth + 1);
  }

  /** Adds the values of `value` that `schema` marks secret. */
  addBySchema(schema: JsonValue | undefined, value: JsonValue | undefined): void {
    collect(schema, value, this, 0);
  }

  /** `text` with every secret replaced by {@linkcode REDACTED}. */
  redact(text: string): string {
    for (const t of this.#texts) {
      if (text.includes(t)) text = text.split(t).join(REDACTED);
    }
    return text;
  }

  /** A copy of `value` with every secret in its strings (and keys) replaced. */
  redactValue(value: JsonValue, depth = 0): JsonValue {
    if (typeof value === "string") return this.redact(value);
    if (value === null || typeof value !== "object" || isRawNumber(value)) return value;
    if (depth > 1024) return value; // values are bounded far below this (MAX_JSON_DEPTH)
    if (Array.isArray(value)) return value.map((v) => this.redactValue(v, depth + 1));
    const out: Record<string, JsonValue> = {};
    for (const k of Object.keys(value)) {
      setOwn(out, this.redact(k), this.redactValue(value[k], depth + 1));
    }
    return out;
  }

  /** A failed result with its message and data redacted; other results unchanged. */
  redactResult(result: FlowResult): FlowResult {
    if (this.empty || result.outcome !== "failed") return result;
    const { code, message, data } = result.error;
    const m = this.redact(message);
    const d = data === undefined ? undefined : this.redactValue(data);
    if (m === message && (d === undefined || JSON.stringify(d) === JSON.stringify(data))) {
      return result;
    }
    return d === undefined ? failed(code, m) : failed(code, m, d);
  }

  #add(text: string): void {
    if (text.length < MIN_SECRET_LENGTH) return;
    this.#addText(text);
    // as it appears inside JSON text (an input echoed in an error message)
    const escaped = JSON.stringify(text).slice(1, -1);
    if (escaped !== text) this.#addText(escaped);
  }

  #addText(text: string): void {
    if (this.#seen.has(text)) return;
    this.#seen.add(text);
    this.#texts.push(text);
    this.#texts.sort((a, b) => b.length - a.length);
  }
}

function collect(
  schema: JsonValue | undefined,
  value: JsonValue | undefined,
  out: Redactor,
  depth: number,
): void {
  if (!isJsonObject(schema) || value === undefined || depth > MAX_SCHEMA_DEPTH) return;
  if (schema[SECRET_KEYWORD] === true) {
    out.addValue(value);
    return;
  }
  for (const k of ["allOf", "anyOf", "oneOf"]) {
    const subs = schema[k];
    if (Array.isArray(subs)) { for (const s of subs) collect(s, value, out, depth + 1); }
  }
  if (isJsonObject(value)) {
    const props = isJsonObject(schema.properties) ? schema.properties : {};
    const extra = schema.additionalProperties;
    for (const k of Object.keys(value)) {
      if (Object.hasOwn(props, k)) collect(props[k], value[k], out, depth + 1);
      else if (isJsonObject(extra)) collect(extra, value[k], out, depth + 1);
    }
  } else if (Array.isArray(value)) {
    const prefix = Array.isArray(schema.prefixItems) ? schema.prefixItems : [];
    value.forEach((v, i) => {
      if (i < prefix.length) collect(prefix[i], v, out, depth + 1);
      else if (isJsonObject(schema.items)) collect(schema.items, v, out, depth + 1);
    });
  }
}

/** The `default`s of the properties a schema marks secret (used when a variable is not given). */
function collectDefaults(schema: JsonValue | undefined, out: Redactor, depth: number): void {
  if (!isJsonObject(schema) || depth > MAX_SCHEMA_DEPTH) return;
  if (schema[SECRET_KEYWORD] === true) {
    out.addValue(schema.default);
    return;
  }
  if (isJsonObject(schema.properties)) {
    for (const p of Object.values(schema.properties)) collectDefaults(p, out, depth + 1);
  }
}

const secretFlows = new WeakMap<Flow, boolean>();

/** True if any schema of `flow` (variables, input, step outputs) marks something secret. */
export function flowHasSecrets(flow: Flow): boolean {
  let has = secretFlows.get(flow);
  if (has === undefined) {
    const schemas = [flow.variables, flow.inputSchema, ...flow.steps.map((s) => s.outputSchema)];
    has = schemas.some((s) =>
      s !== undefined && s !== null && JSON.stringify(s).includes(`"${SECRET_KEYWORD}"`)
    );
    secretFlows.set(flow, has);
  }
  return has;
}

/**
 * The redactor of a run of `flow`: the parent run's secrets, the secret variables (given, or
 * their schema default) and the secret fields of the input. Undefined when the run has no
 * secrets (then nothing costs anything).
 */
export function runRedactor(
  flow: Flow,
  input: JsonValue,
  variables: Iterable<[string, JsonValue]>,
  parent?: Redactor,
): Redactor | undefined {
  if (!flowHasSecrets(flow)) return parent;
  const r = new Redactor(parent);
  const given: Record<string, JsonValue> = {};
  for (const [k, v] of variables) setOwn(given, k, v);
  r.addBySchema(flow.variables, given);
  collectDefaults(flow.variables, r, 0);
  r.addBySchema(flow.inputSchema, input);
  return r;
}

/**
 * Wraps a step runner for a run with secrets: a step's failure is redacted before it is stored
 * or read, and the fields its `outputSchema` marks secret become secrets of the run.
 */
export function redactingRunner(inner: StepRunner, secrets: Redactor): StepRunner {
  return async (step, run) => {
    const result = await inner(step, run);
    const schema = step.step.outputSchema;
    if (result.outcome === "success" && schema !== undefined && schema !== null) {
      secrets.addBySchema(schema, result.result);
    }
    return secrets.redactResult(result);
  };
}
