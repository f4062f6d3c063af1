/**
 * The config's shape checked by the zod model (src/config/model.ts): the value it gives, or the
 * {@linkcode ShapeError} that names every problem. src/config/load_file.ts's `parseConfigValue`
 * uses it when its zod-free reader declines a value; it is loaded then (src/core/lazy_check.ts),
 * or up front by src/config/load.ts (the library API).
 * @module
 */
import type { JsonValue } from "../json/exact_json.ts";
import type { SourceMap } from "../core/diagnostics.ts";
import { type Config, ConfigSchema } from "./model.ts";
import { zodToLoadError } from "../flow/shape_errors.ts";

/**
 * The config model's reading of `value` (mock `behaviors` already turned into lists).
 * @throws {ShapeError} naming the first problem's JSON path and position.
 */
export function zodConfigCheck(value: JsonValue, source?: SourceMap): Config {
  const result = ConfigSchema.safeParse(value);
  if (!result.success) throw zodToLoadError(result.error, value, source, "config");
  return result.data;
}
