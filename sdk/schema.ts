/**
 * Component schemas: a zod schema or a JSON Schema object. Both are listed as JSON Schema
 * (`components/list`) and both validate the input before the handler runs; a failure names
 * the field (`input.text: expected string, received number`).
 * @module
 */
import { z } from "zod";
import { Ajv2020 } from "ajv/dist/2020.js";

/** A zod schema, or a JSON Schema (draft 2020-12) object. */
export type SchemaLike = z.ZodType | Record<string, unknown>;

/** A checked schema: its JSON Schema form and a validator. */
export interface CompiledSchema {
  jsonSchema: Record<string, unknown>;
  /** Returns the (possibly transformed) value, or throws {@linkcode SchemaViolation}. */
  validate(value: unknown): unknown;
}

/** The value does not match its schema; `field` is the path (`input.a.b`, `input[2]`). */
export class SchemaViolation extends Error {
  override name = "SchemaViolation";
  constructor(readonly field: string, readonly problem: string) {
    super(`${field}: ${problem}`);
  }
}

let ajv: Ajv2020 | undefined;

function isZod(s: SchemaLike): s is z.ZodType {
  return typeof (s as { safeParse?: unknown }).safeParse === "function";
}

function fieldPath(root: string, parts: readonly PropertyKey[]): string {
  let out = root;
  for (const p of parts) {
    out += typeof p === "number" ? `[${p}]` : `.${String(p)}`;
  }
  return out;
}

/** Compiles a schema (zod or JSON Schema) for listing and validation. */
export function compileSchema(schema: SchemaLike, root = "input"): CompiledSchema {
  if (isZod(schema)) {
    const jsonSchema = z.toJSONSchema(schema, {
      unrepresentable: "any",
      io: root === "input" ? "input" : "output", // a field with a default is optional on input
    }) as Record<
      string,
      unknown
    >;
    delete jsonSchema.$schema;
    return {
      jsonSchema,
      validate(value) {
        const r = schema.safeParse(value);
        if (r.success) return r.data;
        const issue = r.error.issues[0];
        throw new SchemaViolation(fieldPath(root, issue.path), issue.message);
      },
    };
  }
  ajv ??= new Ajv2020({ strict: false, allErrors: false });
  const check = ajv.compile(schema);
  return {
    jsonSchema: schema,
    validate(value) {
      if (check(value)) return value;
      const e = check.errors![0];
      const parts = e.instancePath.split("/").slice(1).map((p) =>
        /^\d+$/.test(p) ? Number(p) : p.replace(/~1/g, "/").replace(/~0/g, "~")
      );
      if (e.keyword === "required") {
        parts.push((e.params as { missingProperty: string }).missingProperty);
      }
      const problem = e.keyword === "required" ? "is required" : e.message ?? "is invalid";
      throw new SchemaViolation(fieldPath(root, parts), problem);
    },
  };
}
