/**
 * Loading flows: file → {@linkcode parseDocument} (positions, exact numbers) → the zod
 * {@linkcode FlowSchema} → {@linkcode LoadedFlow}. Shape errors name the JSON path and the
 * file:line:col. Semantic checks (references, ids, unknown keys) are in `validate.ts`.
 *
 * Shape errors are built in src/flow/shape_errors.ts; the normalised flow whose text the flow id
 * hashes ({@linkcode serializeFlow}) in src/flow/serialize.ts. Both are re-exported here, as is
 * {@linkcode LoadedFlow} (src/flow/model.ts), for the callers that load flows. Loading a file
 * ({@linkcode loadFlowFile}) and checking a parsed value ({@linkcode parseFlowValue}) are in
 * src/flow/load_file.ts, re-exported here: that module parses with `parseDocumentAsync`, which
 * imports the `yaml` and `jsonc-parser` packages only when a file needs them (the CLI imports it
 * directly); {@linkcode loadFlowText} here is synchronous and imports both, and this module
 * loads the flow's zod model, which the CLI's `run` loads only when its zod-free reader declines
 * a flow (src/flow/fast_model.ts).
 * @module
 */
import type { LoadedFlow } from "./model.ts";
import { type DocumentFormat, formatFromPath, parseDocument } from "../core/document.ts";
import { parseFlowValue as parseValue, useZodFlowCheck } from "./load_file.ts";
import { zodFlowCheck } from "./shapes_zod.ts";
import { loneSurrogateError, type SourceMap } from "../core/diagnostics.ts";
import { FlowLoadError } from "../errors.ts";
import type { JsonValue } from "../json/exact_json.ts";
import { findLoneSurrogate } from "../json/lone_surrogate.ts";

// The library API is synchronous: the zod model is loaded with it (src/core/lazy_check.ts).
useZodFlowCheck(zodFlowCheck);

export type { LoadedFlow } from "./model.ts";
export { ShapeError } from "./shape_errors.ts";
export { serializeFlow } from "./serialize.ts";
export { isFlowDocument, loadFlowFile, readText } from "./load_file.ts";

/**
 * Checks a parsed flow value (a flow document's value, or an object built in JavaScript) against
 * the flow model and gives the {@linkcode LoadedFlow}. A value without `source` (not parsed from
 * text here, where the reader refuses them: src/core/document_base.ts) is first checked for
 * strings and keys holding a lone UTF-16 surrogate, which a store would keep as U+FFFD (a flow
 * name or step id read back changed; stepflow 0.8's parser refuses them).
 * @throws {FlowLoadError} naming the JSON path (`$.steps[0].id holds a lone UTF-16 surrogate
 *   ...`), or what is wrong with the flow's shape.
 */
export function parseFlowValue(value: JsonValue, source?: SourceMap, file?: string): LoadedFlow {
  if (source === undefined) {
    const found = findLoneSurrogate(value);
    if (found !== undefined) {
      const where = file === undefined ? "" : `${file}: `;
      throw new FlowLoadError(`${where}${loneSurrogateError(found).text}`);
    }
  }
  return parseValue(value, source, file);
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
  return parseValue(doc.value, doc.source, options.file);
}
