/**
 * Parsing flow and config documents (YAML, JSON, JSONC) into {@linkcode JsonValue}s while keeping
 * the source position of every node, exact numbers and YAML complex keys.
 *
 * - YAML goes through the `yaml` package's document API (`parseDocument`), and the nodes are
 *   converted in document_yaml.ts (not with `toJS`) so that each value's position, each number's source text
 *   (`15.0`, `9007199254740993` stay exact via `rawNumber`) and each non-string key survive.
 *   Documents in the common subset are read first by `yaml_fast.ts` (same values and positions,
 *   ~10× faster); it declines everything else and every error, which the package then reports.
 * - JSON that `JSON.parse` accepts is read by the same fast reader (JSON is YAML); JSONC, and
 *   JSON with an error, duplicate keys or deep nesting, go through `jsonc-parser`'s `parseTree`
 *   (positions and number texts) in document_json.ts. `.json` allows neither comments nor
 *   trailing commas; `.jsonc` allows both.
 * - Duplicate keys are an error naming both lines (YAML and JSON alike).
 * - Alias expansion is bounded ({@linkcode MAX_ALIAS_EXPANSION} nodes in total), so an alias bomb
 *   ("billion laughs") is rejected in microseconds.
 *
 * **Complex and non-string keys.** A JSON object's keys are strings. A YAML mapping key that is
 * not a string scalar (a mapping such as the mock plugin's `{ input: "a" }:`, a sequence, a number,
 * a boolean, null) becomes the string key: its compact JSON text for a mapping or sequence
 * (`{"input":"a"}`), its source text for a scalar (`1`, `true`, `~`). The original key value is
 * kept in the source map: {@linkcode DocumentSourceMap.keyValue} returns it for the path of that
 * entry (the config loader reads mock `behaviors` this way). For string keys it returns undefined.
 *
 * Loading: this module does not import the `yaml` and `jsonc-parser` packages. The fast readers
 * (YAML in the common subset; JSON that `JSON.parse` accepts, read by the same reader) need
 * neither, and {@linkcode parseDocumentAsync} imports the package's reader (document_yaml.ts,
 * document_json.ts) the first time a document needs it: a `stepflow run` whose files are all
 * in the subset never loads them (issue 17, goal 5: cold start). document.ts offers the
 * synchronous {@linkcode parseDocument} with both readers imported.
 * @module
 */
import type { JsonValue } from "../json/exact_json.ts";
import { FlowLoadError, type SourcePosition } from "../errors.ts";
import { loneSurrogateError, type SourceMap } from "./diagnostics.ts";
import { findLoneSurrogate, mayHoldLoneSurrogate } from "../json/lone_surrogate.ts";
import { readYamlFast } from "./yaml_fast.ts";
import { type Converted, LineTable, type SourceNode, tooDeep } from "./document_lines.ts";

export { MAX_ALIAS_EXPANSION, MAX_DEPTH } from "./document_lines.ts";
/** The formats a flow or config file can be written in. */
export type DocumentFormat = "yaml" | "json" | "jsonc";

/** A parsed document: its value and where each node came from. */
export interface ParsedDocument {
  value: JsonValue;
  source: DocumentSourceMap;
}

/** A source map with key positions and original (non-string) key values. */
export interface DocumentSourceMap extends SourceMap {
  /** Position of the key of the entry at `path` (last segment a key); the value's otherwise. */
  keyPositionOf(path: readonly (string | number)[]): SourcePosition | undefined;
  /**
   * The original value of the key of the entry at `path` when it was not a string in the file
   * (a YAML complex key, a number, a boolean, null); undefined for string keys.
   */
  keyValue(path: readonly (string | number)[]): JsonValue | undefined;
  /**
   * The keys of the mapping at `path` in file order (JS objects put integer-like keys first),
   * or undefined when `path` is not a mapping of the document.
   */
  keysOf(path: readonly (string | number)[]): string[] | undefined;
  /** A source map for the subtree at `prefix` (paths relative to it, positions unchanged). */
  at(prefix: readonly (string | number)[]): DocumentSourceMap;
  /**
   * When the mapping at `path` was written as a text template in brace syntax, YAML read it as
   * a mapping, not as text: `{{ name }}` (a mapping whose only key is the mapping `{name:
   * null}`) or `{name}` (keys without values). Returns that text (`"{{ name }}"`, `"{name}"`),
   * else undefined.
   */
  braceTemplate(path: readonly (string | number)[]): string | undefined;
}

/**
 * The format of a file from its extension: `.yaml`/`.yml` → yaml, `.json` → json, `.jsonc` → jsonc.
 * @throws {FlowLoadError} `Unrecognized file extension` for anything else (stepflow 0.8 wording).
 */
export function formatFromPath(path: string): DocumentFormat {
  const lower = path.toLowerCase();
  if (lower.endsWith(".yaml") || lower.endsWith(".yml")) return "yaml";
  if (lower.endsWith(".jsonc")) return "jsonc";
  if (lower.endsWith(".json")) return "json";
  throw new FlowLoadError(
    `Unrecognized file extension for '${path}': use .yaml, .yml, .json or .jsonc`,
  );
}

/** Options of {@linkcode parseDocument}. */
export interface ParseOptions {
  /**
   * Read YAML with the `yaml` package only, never with the fast reader for the common subset
   * (`yaml_fast.ts`; both give the same values and positions — tests compare them).
   */
  yamlPackageOnly?: boolean;
  /**
   * Read JSON with `jsonc-parser` only, never with the fast reader (same values and positions —
   * tests compare them).
   */
  jsonPackageOnly?: boolean;
}

/**
 * Parses `text` as `format`, keeping positions. YAML in the common subset (block and flow
 * collections, one-line scalars, block scalars, no anchors or tags) is read by a fast reader of
 * our own; anything else, and every document with an error, by the `yaml` package.
 * @param file the file name used in positions and messages (as the user gave it).
 * A leading byte-order mark (U+FEFF) is skipped.
 * @throws {FlowLoadError} with file:line:col for syntax errors, duplicate keys (naming both lines),
 * alias bombs and recursive aliases.
/**
 * The readers that use the packages: `yaml` (document_yaml.ts) and `jsonc-parser`
 * (document_json.ts). A reader throws {@linkcode FlowLoadError} with file:line:col.
 */
export interface DocumentReaders {
  yaml?: (text: string, lines: LineTable) => Converted;
  json?: (text: string, jsonc: boolean, lines: LineTable) => Converted;
}

/**
 * Parses `text` with the fast readers, else with `readers`. Returns undefined when the document
 * needs a reader that `readers` lacks (nothing is thrown then).
 * @param fast false to skip the fast readers (they declined `text` already).
 * @throws {FlowLoadError} as {@linkcode parseDocumentAsync}.
 */
export function parseWith(
  text: string,
  format: DocumentFormat,
  file: string | undefined,
  options: ParseOptions,
  readers: DocumentReaders,
  fast = true,
): ParsedDocument | undefined {
  // A byte-order mark (written by some Windows editors and tools) is not part of the document.
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  let root: Converted | undefined;
  let lines: LineTable | undefined;
  try {
    if (format === "yaml") {
      if (fast && !options.yamlPackageOnly) root = readYamlFast(text);
      if (root === undefined && readers.yaml) {
        root = readers.yaml(text, lines = new LineTable(text, file));
      }
    } else {
      if (fast && !options.jsonPackageOnly) root = readJsonFast(text);
      if (root === undefined && readers.json) {
        root = readers.json(text, format === "jsonc", lines = new LineTable(text, file));
      }
    }
  } catch (e) {
    if (e instanceof RangeError) throw tooDeep(lines ?? new LineTable(text, file));
    throw e;
  }
  if (root === undefined) return undefined;
  const source = new TreeSourceMap(root.source, lines ?? new LineTable(text, file), file);
  if (mayHoldLoneSurrogate(text)) {
    // stored, such a string would read back changed (U+FFFD): refused where it is written
    const found = findLoneSurrogate(root.value);
    if (found) {
      const { at, text } = loneSurrogateError(found);
      throw new FlowLoadError(text, source.positionOf(at));
    }
  }
  return { value: root.value, source };
}

/**
 * JSON that `JSON.parse` accepts (so strict JSON: no comments, no trailing commas, no single
 * quotes), read by the YAML fast reader: JSON is YAML, and the reader gives the same values (every
 * number exact as written) and positions as `jsonc-parser` (tests/core/document_lazy_test.ts
 * compares them). It declines duplicate keys and deep nesting, which `jsonc-parser` then reports.
 */
function readJsonFast(text: string): Converted | undefined {
  try {
    JSON.parse(text);
  } catch {
    return undefined;
  }
  return readYamlFast(text);
}

/** The package readers loaded so far (by {@linkcode parseDocumentAsync}). */
const loaded: DocumentReaders = {};

/**
 * Parses `text` as `format`, keeping positions, as document.ts's `parseDocument` does (same
 * values, positions and errors), importing the `yaml` or `jsonc-parser` reader only when the
 * fast readers decline the document.
 * @param file the file name used in positions and messages (as the user gave it).
 * @throws {FlowLoadError} with file:line:col for syntax errors, duplicate keys (naming both lines),
 * alias bombs and recursive aliases.
 */
export async function parseDocumentAsync(
  text: string,
  format: DocumentFormat,
  file?: string,
  options: ParseOptions = {},
): Promise<ParsedDocument> {
  const done = parseWith(text, format, file, options, loaded);
  if (done) return done;
  if (format === "yaml") loaded.yaml ??= (await import("./document_yaml.ts")).readYaml;
  else loaded.json ??= (await import("./document_json.ts")).readJson;
  return parseWith(text, format, file, options, loaded, false)!;
}

class TreeSourceMap implements DocumentSourceMap {
  constructor(
    readonly root: SourceNode,
    readonly lines: LineTable,
    readonly file?: string,
  ) {}

  #find(path: readonly (string | number)[]): { node: SourceNode; exact: boolean } {
    let node = this.root;
    for (const seg of path) {
      const next = node.children?.get(seg);
      if (!next) return { node, exact: false };
      node = next;
    }
    return { node, exact: true };
  }

  positionOf(path: readonly (string | number)[]): SourcePosition {
    return this.lines.position(this.#find(path).node.start);
  }

  keyPositionOf(path: readonly (string | number)[]): SourcePosition {
    const { node, exact } = this.#find(path);
    return this.lines.position(exact && node.keyStart !== undefined ? node.keyStart : node.start);
  }

  keyValue(path: readonly (string | number)[]): JsonValue | undefined {
    const { node, exact } = this.#find(path);
    return exact ? node.keyValue : undefined;
  }

  keysOf(path: readonly (string | number)[]): string[] | undefined {
    const { node, exact } = this.#find(path);
    if (!exact || !node.children || node.isSeq) return undefined;
    return [...node.children.keys()] as string[];
  }

  at(prefix: readonly (string | number)[]): DocumentSourceMap {
    return new TreeSourceMap(this.#find(prefix).node, this.lines, this.file);
  }

  braceTemplate(path: readonly (string | number)[]): string | undefined {
    const { node, exact } = this.#find(path);
    if (!exact || !node.children || node.isSeq || node.children.size === 0) return undefined;
    const entries = [...node.children.entries()];
    if (!entries.every(([, c]) => c.noValue)) return undefined;
    const [name, only] = entries[0];
    if (entries.length === 1 && only.keyValue !== undefined) {
      // `{{ name }}`: the key is the mapping {name: null}
      const inner = only.keyValue;
      if (
        inner === null || typeof inner !== "object" || Array.isArray(inner) ||
        !Object.values(inner).every((v) => v === null)
      ) return undefined;
      const keys = Object.keys(inner);
      return keys.length > 0 ? `{{ ${keys.join(", ")} }}` : undefined;
    }
    if (entries.some(([, c]) => c.keyValue !== undefined)) return undefined;
    return name === undefined ? undefined : `{${entries.map(([k]) => k).join(", ")}}`;
  }
}
