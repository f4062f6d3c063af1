/**
 * The flow's shape checked by the zod model (src/flow/model.ts): the value it gives, or the
 * {@linkcode ShapeError} that names every problem. src/flow/load_file.ts's `parseFlowValue` uses
 * it when its zod-free reader declines a value; it is loaded then (src/core/lazy_check.ts), or up
 * front by src/flow/load.ts (the library API).
 * @module
 */
import type { JsonObject } from "../json/exact_json.ts";
import type { SourceMap } from "../core/diagnostics.ts";
import { type Flow, FlowSchema } from "./model.ts";
import { repair, zodToLoadError } from "./shape_errors.ts";

/**
 * The flow model's reading of `value`.
 * @throws {ShapeError} naming the first problem's JSON path and position.
 */
export function zodFlowCheck(value: JsonObject, source?: SourceMap, file?: string): Flow {
  const result = FlowSchema.safeParse(value);
  if (!result.success) {
    const err = zodToLoadError(result.error, value, source, "flow");
    err.repaired = repair(value, result.error, source, file);
    throw err;
  }
  return result.data;
}
