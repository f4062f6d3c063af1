/**
 * JSON Schema checks for MCP tools: a tool's `inputSchema` before a call (so a mismatch fails the
 * step with a message naming the field) and its `outputSchema` after it (handed to the SDK client
 * as its `jsonSchemaValidator`).
 *
 * Tool schemas come from servers in several drafts (zod-to-json-schema writes draft-07, newer SDK
 * servers write 2020-12 or none). One Ajv instance per draft is compiled lazily; `$schema` decides,
 * default draft-07 (what the MCP SDK itself assumes). Values may hold exact raw numbers
 * (`JSON.rawJSON`), which Ajv does not see as numbers: they are converted to plain numbers for the
 * check only (the value sent stays exact).
 * @module
 */
import { Ajv } from "ajv";
import { Ajv2020 } from "ajv/dist/2020.js";
import type { ErrorObject, ValidateFunction } from "ajv";
import type { JsonSchemaType, JsonSchemaValidator, jsonSchemaValidator } from "./_sdk.ts";
import { isJsonObject, isRawNumber, toNumber } from "../../json/exact_json.ts";

/** A compiled check: `undefined` when `value` matches, else a one-line description. */
export type SchemaCheck = (value: unknown) => string | undefined;

let ajv07: Ajv | undefined;
let ajv2020: Ajv2020 | undefined;

function ajvFor(schema: unknown): Ajv | Ajv2020 {
  const draft = isJsonObject(schema) && typeof schema.$schema === "string" ? schema.$schema : "";
  const opts = { strict: false, allErrors: false, validateSchema: false, validateFormats: false };
  if (draft.includes("2020-12") || draft.includes("2019-09")) {
    return ajv2020 ??= new Ajv2020(opts);
  }
  return ajv07 ??= new Ajv(opts);
}

/** A copy of `value` with raw numbers made plain, or `value` itself when it holds none. */
function plainNumbers(value: unknown): unknown {
  if (isRawNumber(value)) return toNumber(value);
  if (Array.isArray(value)) {
    let out: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const v = plainNumbers(value[i]);
      if (v !== value[i]) (out ??= value.slice())[i] = v;
    }
    return out ?? value;
  }
  if (value !== null && typeof value === "object") {
    let out: Record<string, unknown> | undefined;
    const obj = value as Record<string, unknown>;
    for (const k of Object.keys(obj)) {
      const v = plainNumbers(obj[k]);
      if (v !== obj[k]) (out ??= { ...obj })[k] = v;
    }
    return out ?? value;
  }
  return value;
}

/** `/a/0/b` → `a[0].b`; `` → `(input)`. */
function fieldName(instancePath: string, extra?: string): string {
  const parts = instancePath.split("/").slice(1).map((p) =>
    p.replace(/~1/g, "/").replace(/~0/g, "~")
  );
  if (extra !== undefined) parts.push(extra);
  if (parts.length === 0) return "(input)";
  return parts.map((p, i) => /^\d+$/.test(p) ? `[${p}]` : i === 0 ? p : `.${p}`).join("");
}

/** One line for an Ajv error, naming the field: `field 'a' must be number (got "x")`. */
export function describeSchemaError(e: ErrorObject, value: unknown): string {
  const params = e.params as Record<string, unknown>;
  if (e.keyword === "required") {
    return `field '${fieldName(e.instancePath, String(params.missingProperty))}' is required`;
  }
  if (e.keyword === "additionalProperties") {
    return `field '${
      fieldName(e.instancePath, String(params.additionalProperty))
    }' is not allowed by the schema`;
  }
  let got = value;
  for (const p of e.instancePath.split("/").slice(1)) {
    got = got !== null && typeof got === "object"
      ? (got as Record<string, unknown>)[p.replace(/~1/g, "/").replace(/~0/g, "~")]
      : undefined;
  }
  let shown = JSON.stringify(got) ?? "undefined";
  if (shown.length > 80) shown = shown.slice(0, 77) + "...";
  const allowed = e.keyword === "enum" && Array.isArray(params.allowedValues)
    ? `: ${params.allowedValues.map((v) => JSON.stringify(v)).join(", ")}`
    : "";
  return `field '${fieldName(e.instancePath)}' ${
    e.message ?? "is invalid"
  }${allowed} (got ${shown})`;
}

/**
 * Compiles `schema` into a {@linkcode SchemaCheck}. A schema that Ajv cannot compile gives a check
 * that accepts everything (the server stays the judge) and `compileError` says why.
 */
export function compileSchemaCheck(schema: unknown): { check: SchemaCheck; compileError?: string } {
  if (!isJsonObject(schema) && typeof schema !== "boolean") return { check: () => undefined };
  let validate: ValidateFunction;
  try {
    validate = ajvFor(schema).compile(plainNumbers(schema) as object);
  } catch (err) {
    return {
      check: () => undefined,
      compileError: err instanceof Error ? err.message : String(err),
    };
  }
  return {
    check: (value) => {
      const plain = plainNumbers(value);
      if (validate(plain)) return undefined;
      const e = validate.errors?.[0];
      return e ? describeSchemaError(e, plain) : "does not match the schema";
    },
  };
}

/** The SDK client's `jsonSchemaValidator`, built on {@linkcode compileSchemaCheck}. */
export const mcpJsonSchemaValidator: jsonSchemaValidator = {
  getValidator<T>(schema: JsonSchemaType): JsonSchemaValidator<T> {
    const { check } = compileSchemaCheck(schema);
    return (input: unknown) => {
      const problem = check(input);
      return problem === undefined
        ? { valid: true, data: input as T, errorMessage: undefined }
        : { valid: false, data: undefined, errorMessage: problem };
    };
  },
};
