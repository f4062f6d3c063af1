/**
 * A JSON value in a few words, for error messages ("a mapping", `the string "x"`).
 * @module
 */
import { isJsonObject, type JsonValue } from "./exact_json.ts";

/** `v` in a few words: "nothing", "null", "a list", "a mapping", `the string "..."` (60 chars). */
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
