/**
 * Strict input checks for built-ins (stepflow 0.8 parses built-in inputs with serde). A wrong
 * shape is a {@linkcode BuiltinError} `INVALID_INPUT`, which the builtin plugin turns into a
 * failed step result (0.8 aborts the run instead).
 * @module
 */
import {
  isJsonObject,
  isNumber,
  type JsonObject,
  type JsonValue,
  stringifyJson,
  toNumber,
} from "../../json/exact_json.ts";
import { BuiltinError } from "./_failure.ts";

/** A BuiltinError `INVALID_INPUT`: `Invalid input for <component>: <detail>`. */
export function invalidInput(component: string, detail: string): BuiltinError {
  return new BuiltinError("INVALID_INPUT", `Invalid input for ${component}: ${detail}`);
}

/** The input as an object. @throws {BuiltinError} when it is not one. */
export function objectInput(component: string, input: JsonValue): JsonObject {
  if (!isJsonObject(input)) {
    throw invalidInput(component, `expected an object, got ${typeName(input)}`);
  }
  return input;
}

/** A required string field. @throws {BuiltinError} when missing or not a string. */
export function requireString(component: string, o: JsonObject, key: string): string {
  const v = o[key];
  if (typeof v !== "string") {
    throw invalidInput(
      component,
      v === undefined
        ? `missing field \`${key}\``
        : `\`${key}\` must be a string, got ${typeName(v)}`,
    );
  }
  return v;
}

/** An optional string field (absent or null → undefined). @throws {BuiltinError} otherwise. */
export function optionalString(component: string, o: JsonObject, key: string): string | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "string") {
    throw invalidInput(component, `\`${key}\` must be a string, got ${typeName(v)}`);
  }
  return v;
}

/** An optional non-negative integer field. @throws {BuiltinError} otherwise. */
export function optionalUint(
  component: string,
  o: JsonObject,
  key: string,
  min: 0 | 1 = 0,
): number | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (!isNumber(v) || !Number.isInteger(toNumber(v)) || toNumber(v) < min) {
    // a number is shown as written (-1, 1.5): "got a number" does not say what is wrong with it
    const got = isNumber(v) ? stringifyJson(v) : typeName(v);
    const what = min === 1
      ? "a positive integer (leave it out for no limit)"
      : "a non-negative integer";
    throw invalidInput(component, `\`${key}\` must be ${what}, got ${got}`);
  }
  return toNumber(v);
}

/** A required field of any value. @throws {BuiltinError} when missing. */
export function requireField(component: string, o: JsonObject, key: string): JsonValue {
  if (!Object.hasOwn(o, key)) throw invalidInput(component, `missing field \`${key}\``);
  return o[key];
}

/** A short type name for messages. */
export function typeName(v: JsonValue | undefined): string {
  if (v === undefined) return "nothing";
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (isNumber(v)) return "a number";
  return typeof v === "object" ? "an object" : `a ${typeof v}`;
}
