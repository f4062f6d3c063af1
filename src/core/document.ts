/**
 * Parsing flow and config documents (YAML, JSON, JSONC) into JSON values while keeping
 * the source position of every node, exact numbers and YAML complex keys: the synchronous
 * {@linkcode parseDocument}, with both package readers imported. The model, the positions and the
 * fast readers are in document_base.ts (described there); the readers that use the `yaml` and
 * `jsonc-parser` packages in document_yaml.ts and document_json.ts. Code on the path of a
 * `stepflow run` uses document_base.ts's `parseDocumentAsync` instead, which imports a package
 * only when a document needs it (issue 17, goal 5: cold start).
 * @module
 */
import {
  type DocumentFormat,
  type DocumentReaders,
  type ParsedDocument,
  type ParseOptions,
  parseWith,
} from "./document_base.ts";
import { readYaml } from "./document_yaml.ts";
import { readJson } from "./document_json.ts";

export {
  type DocumentFormat,
  type DocumentSourceMap,
  formatFromPath,
  MAX_ALIAS_EXPANSION,
  MAX_DEPTH,
  type ParsedDocument,
  parseDocumentAsync,
  type ParseOptions,
} from "./document_base.ts";

const READERS: DocumentReaders = { yaml: readYaml, json: readJson };

/**
 * Parses `text` as `format`, keeping positions. YAML in the common subset (block and flow
 * collections, one-line scalars, block scalars, no anchors or tags) and JSON that `JSON.parse`
 * accepts are read by a fast reader of our own; anything else, and every document with an error,
 * by the `yaml` package or `jsonc-parser`.
 * @param file the file name used in positions and messages (as the user gave it).
 * A leading byte-order mark (U+FEFF) is skipped.
 * @throws {FlowLoadError} with file:line:col for syntax errors, duplicate keys (naming both lines),
 * alias bombs and recursive aliases.
 */
export function parseDocument(
  text: string,
  format: DocumentFormat,
  file?: string,
  options: ParseOptions = {},
): ParsedDocument {
  return parseWith(text, format, file, options, READERS)!;
}
