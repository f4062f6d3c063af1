/**
 * zod schemas for JSON values as the engine reads them (with exact raw numbers), shared by the
 * flow, config and protocol models.
 * @module
 */
import { z } from "zod";
import { isRawNumber, type JsonValue, toNumber } from "./exact_json.ts";

/** Any JSON value (templates, literals, schemas); may hold raw numbers (src/json/exact_json.ts). */
export const JsonValueSchema = z.custom<JsonValue>(() => true, "expected a JSON value")
  .describe("Any JSON value");

/**
 * `schema` for a number as written in a file: `2.0`, `1.50` or `1e3` are parsed as exact raw
 * numbers (to keep their text), which zod would not see as numbers; they are converted first.
 */
export function fileNumber<T extends z.ZodType>(schema: T) {
  return z.preprocess((v) => isRawNumber(v) ? toNumber(v) : v, schema);
}
