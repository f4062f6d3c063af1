/**
 * Parsing flow and config documents (YAML, JSON, JSONC) into {@linkcode JsonValue}s while keeping
 * the source position of every node, exact numbers and YAML complex keys.
 *
 * - YAML goes through the `yaml` package's document API (`parseDocument`), and the nodes are
 *   converted here (not with `toJS`) so that each value's position, each number's source text
 *   (`15.0`, `9007199254740993` stay exact via `rawNumber`) and each non-string key survive.
 *   Documents in the common subset are read first by `yaml_fast.ts` (same values and positions,
 *   ~10× faster); it declines everything else and every error, which the package then reports.
 * - JSON and JSONC go through `jsonc-parser`'s `parseTree` (positions and number texts). `.json`
 *   allows neither comments nor trailing commas; `.jsonc` allows both.
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
 * One concept, kept whole (over 400 lines): one source-position model for the three formats
 * (YAML node ranges, JSONC offsets, line/column tables) that every reader shares.
 * @module
 */
import {
  isAlias,
  isMap,
  isPair,
  isScalar,
  isSeq,
  type Node as YamlNode,
  parseDocument as parseYamlDocument,
  Scalar,
  visit,
  type YAMLError,
} from "yaml";
import {
  type Node as JsonNode,
  type ParseError,
  parseTree,
  printParseErrorCode,
} from "jsonc-parser";
import {
  type JsonValue,
  MAX_JSON_DEPTH,
  rawNumber,
  setOwn,
  stringifyJson,
} from "../json/exact_json.ts";
import { FlowLoadError, type SourcePosition } from "../errors.ts";
import type { SourceMap } from "./diagnostics.ts";
import { readYamlFast } from "./yaml_fast.ts";

/** The formats a flow or config file can be written in. */
export type DocumentFormat = "yaml" | "json" | "jsonc";

/** A parsed document: its value and where each node came from. */
export interface ParsedDocument {
  value: JsonValue;
  source: DocumentSourceMap;
}

/** The deepest nesting of mappings and lists accepted (deeper documents are rejected). */
export const MAX_DEPTH = MAX_JSON_DEPTH;

/** The most nodes alias expansion may add to a YAML document (in total) before it is rejected. */
export const MAX_ALIAS_EXPANSION = 100_000;

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

/** One node of the source tree (offsets into the text). */
interface SourceNode {
  /** Offset of the value. */
  start: number;
  /** Offset of the key (for mapping entries). */
  keyStart?: number;
  /** The original key when it was not a string. */
  keyValue?: JsonValue;
  children?: Map<string | number, SourceNode>;
  /** True for a sequence (children keyed by index). */
  isSeq?: boolean;
  /** A mapping entry written without a value (`{name}`, `? name`): its value is null. */
  noValue?: boolean;
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
}

/**
 * Parses `text` as `format`, keeping positions. YAML in the common subset (block and flow
 * collections, one-line scalars, block scalars, no anchors or tags) is read by a fast reader of
 * our own; anything else, and every document with an error, by the `yaml` package.
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
  // A byte-order mark (written by some Windows editors and tools) is not part of the document.
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const lines = new LineTable(text, file);
  let root: Converted;
  try {
    root = format === "yaml"
      ? (options.yamlPackageOnly ? undefined : readYamlFast(text)) ??
        new YamlConverter(text, lines).run()
      : convertJson(text, format === "jsonc", lines);
  } catch (e) {
    if (e instanceof RangeError) throw tooDeep(lines);
    throw e;
  }
  return { value: root.value, source: new TreeSourceMap(root.source, lines, file) };
}

function tooDeep(lines: LineTable, offset = 0): FlowLoadError {
  return lines.error(
    `The document is nested more than ${MAX_DEPTH} levels deep: flatten it`,
    offset,
  );
}

// ---------------------------------------------------------------------------------------------
// positions

class LineTable {
  readonly #starts: number[] = [0];
  constructor(text: string, readonly file?: string) {
    for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 10) this.#starts.push(i + 1);
  }
  /** 1-based line and column of an offset (UTF-16 code units). */
  position(offset: number): SourcePosition {
    let lo = 0;
    let hi = this.#starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.#starts[mid] <= offset) lo = mid;
      else hi = mid - 1;
    }
    const pos: SourcePosition = { line: lo + 1, col: offset - this.#starts[lo] + 1 };
    if (this.file !== undefined) pos.file = this.file;
    return pos;
  }
  error(message: string, offset: number, cause?: unknown): FlowLoadError {
    return new FlowLoadError(message, this.position(offset), cause ? { cause } : undefined);
  }
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

const JSON_NUMBER = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$/;

// ---------------------------------------------------------------------------------------------
// YAML

interface Converted {
  value: JsonValue;
  source: SourceNode;
}

interface Anchor {
  node: YamlNode;
  done?: Converted & { size: number };
}

const YAML_HINTS: Partial<Record<string, string>> = {
  MISSING_CHAR: "check that every '{' has a matching '}' and every '[' a matching ']'",
  BAD_INDENT:
    "check the indentation, and that every '{' has a matching '}' and every '[' a matching ']'",
  MULTIPLE_DOCS: "a flow or config file holds one YAML document: remove the extra '---'",
  TAB_AS_INDENT: "indent with spaces, not tabs",
  BLOCK_AS_IMPLICIT_KEY: "put a space after ':' or quote the key",
  MULTILINE_IMPLICIT_KEY: "a key must fit on one line: quote it or add the missing ':'",
  BAD_ALIAS: "define the anchor (&name) before using the alias (*name)",
  UNEXPECTED_TOKEN: "check the line for a stray character or a missing quote",
};

class YamlConverter {
  readonly #anchors = new Map<string, Anchor>();
  #aliasBudget = MAX_ALIAS_EXPANSION;
  #depth = 0;

  constructor(readonly text: string, readonly lines: LineTable) {}

  run(): Converted {
    const doc = parseYamlDocument(this.text, {
      // Duplicate keys are detected during conversion, which names both lines.
      uniqueKeys: false,
      prettyErrors: true,
      strict: true,
    });
    const errors = doc.errors.filter((e) => !isSpuriousMapComment(e));
    if (errors.length > 0) throw this.#yamlError(errors[0]);
    if (doc.contents === null) return { value: null, source: { start: 0 } };
    return this.#node(doc.contents as YamlNode);
  }

  #yamlError(e: YAMLError): FlowLoadError {
    if (e.message.includes("Maximum call stack size exceeded")) {
      return tooDeep(this.lines, e.pos[0]);
    }
    const unclosed = this.#unclosedFlowCollection(e.pos[0]);
    if (unclosed) {
      const end = this.lines.position(e.pos[0]);
      return this.lines.error(
        `YAML syntax error: this flow ${unclosed.kind} is not closed (expected '${unclosed.close}' ` +
          `before line ${end.line}, column ${end.col}): add the missing '${unclosed.close}'`,
        unclosed.start,
      );
    }
    let msg = e.message.split("\n")[0];
    const at = msg.search(/ at line \d+, column \d+:?$/);
    if (at >= 0) msg = msg.slice(0, at);
    const hint = YAML_HINTS[e.code];
    // The library error is restated in full, so it is not kept as `cause` (describeError
    // would print it twice, with its multi-line excerpt).
    return this.lines.error(`YAML syntax error: ${msg}${hint ? ` — ${hint}` : ""}`, e.pos[0]);
  }

  /** The innermost flow mapping/sequence opened before `offset` and never closed. */
  #unclosedFlowCollection(
    offset: number,
  ): { kind: string; close: string; start: number } | undefined {
    const doc = parseYamlDocument(this.text, { keepSourceTokens: true, uniqueKeys: false });
    let found: { kind: string; close: string; start: number } | undefined;
    visit(doc, {
      Map: (_, n) => check(n, "mapping", "}", "flow-map-end"),
      Seq: (_, n) => check(n, "sequence", "]", "flow-seq-end"),
    });
    function check(n: YamlNode, kind: string, close: string, endType: string): void {
      const node = n as YamlNode & { flow?: boolean; srcToken?: { end?: { type: string }[] } };
      if (!node.flow || !node.range || node.range[0] >= offset) return;
      if (node.srcToken?.end?.some((t) => t.type === endType)) return;
      if (!found || node.range[0] > found.start) found = { kind, close, start: node.range[0] };
    }
    return found;
  }

  #start(node: YamlNode | null | undefined, fallback: number): number {
    return node?.range ? node.range[0] : fallback;
  }

  #node(node: YamlNode): Converted {
    if (isAlias(node)) return this.#alias(node);
    const anchorName = (node as { anchor?: string }).anchor;
    let anchor: Anchor | undefined;
    if (anchorName) {
      anchor = { node };
      this.#anchors.set(anchorName, anchor);
    }
    if (++this.#depth > MAX_DEPTH) throw tooDeep(this.lines, this.#start(node, 0));
    const out = this.#convert(node);
    this.#depth--;
    if (anchor) anchor.done = { ...out, size: countNodes(out.value) };
    return out;
  }

  #alias(node: YamlNode & { source: string }): Converted {
    const start = this.#start(node, 0);
    const anchor = this.#anchors.get(node.source);
    if (!anchor) {
      throw this.lines.error(
        `YAML alias '*${node.source}' refers to no anchor (define '&${node.source}' before using it)`,
        start,
      );
    }
    if (!anchor.done) {
      throw this.lines.error(
        `YAML alias '*${node.source}' refers to a node that contains it (recursive alias)`,
        start,
      );
    }
    this.#aliasBudget -= anchor.done.size;
    if (this.#aliasBudget < 0) {
      throw this.lines.error(
        `YAML aliases expand to more than ${MAX_ALIAS_EXPANSION} nodes (an alias bomb?): ` +
          `write the data out or use fewer nested aliases`,
        start,
      );
    }
    return { value: deepCopy(anchor.done.value), source: anchor.done.source };
  }

  #convert(node: YamlNode): Converted {
    const start = this.#start(node, 0);
    if (isScalar(node)) return { value: this.#scalar(node), source: { start } };
    if (isSeq(node)) {
      const value: JsonValue[] = [];
      const children = new Map<string | number, SourceNode>();
      node.items.forEach((item, i) => {
        const c = item === null || item === undefined
          ? { value: null, source: { start } }
          : this.#node(item as YamlNode);
        value.push(c.value);
        children.set(i, c.source);
      });
      return { value, source: { start, children, isSeq: true } };
    }
    if (isMap(node)) {
      const value: Record<string, JsonValue> = {};
      const children = new Map<string | number, SourceNode>();
      for (const pair of node.items) {
        if (!isPair(pair)) continue;
        const keyNode = pair.key as YamlNode | null;
        const valueNode = pair.value as YamlNode | null;
        const keyStart = this.#start(keyNode, start);
        const { name, original } = this.#key(keyNode);
        const prev = children.get(name);
        if (prev) {
          const first = this.lines.position(prev.keyStart ?? prev.start);
          throw this.lines.error(
            `Duplicate key '${name}' (first defined at line ${first.line}, column ${first.col}): ` +
              `remove one of them`,
            keyStart,
          );
        }
        const c: { value: JsonValue; source: SourceNode } =
          valueNode === null || valueNode === undefined
            ? { value: null, source: { start: keyStart, noValue: true } }
            : this.#node(valueNode);
        setOwn(value, name, c.value);
        const src: SourceNode = { ...c.source, keyStart };
        if (original !== undefined) src.keyValue = original;
        children.set(name, src);
      }
      return { value, source: { start, children } };
    }
    throw this.lines.error(`Unsupported YAML node`, start);
  }

  /** The string name of a key and, when it is not a string, its value. */
  #key(keyNode: YamlNode | null): { name: string; original?: JsonValue } {
    if (keyNode === null || keyNode === undefined) return { name: "", original: null };
    if (isScalar(keyNode) && !isAlias(keyNode)) {
      if (typeof keyNode.value === "string") return { name: keyNode.value };
      const original = this.#scalar(keyNode);
      const src = (keyNode as Scalar & { source?: string }).source;
      return { name: src ?? stringifyJson(original), original };
    }
    // Complex key (mapping, sequence, alias): its compact JSON text names it.
    const c = this.#node(keyNode);
    return { name: stringifyJson(c.value), original: c.value };
  }

  #scalar(node: Scalar): JsonValue {
    const v = node.value;
    if (v === null || v === undefined) return null;
    if (typeof v === "string" || typeof v === "boolean") return v;
    if (typeof v === "number") {
      const src = (node as Scalar & { source?: string }).source;
      if (node.type === Scalar.PLAIN && src !== undefined && JSON_NUMBER.test(src)) {
        return rawNumber(src) as JsonValue;
      }
      if (!Number.isFinite(v)) {
        throw this.lines.error(
          `The number '${src ?? v}' has no JSON form (infinite or NaN): quote it to make a string`,
          this.#start(node, 0),
        );
      }
      return v;
    }
    if (typeof v === "bigint") return rawNumber(String(v)) as JsonValue;
    // Other tagged values (!!binary, timestamps): use the source text.
    const src = (node as Scalar & { source?: string }).source;
    return src ?? String(v);
  }
}

/**
 * The `yaml` package (2.9.1) reports `IMPOSSIBLE: Map comment with trailing content` when a
 * flow collection is used as an implicit block-map key after a value that ends a line (eemeli/yaml
 * issue #646) — exactly the mock plugin's `{ input: "a" }:` keys. The document it builds is
 * right (a spurious empty CST item is the only problem), so that one error is ignored.
 */
function isSpuriousMapComment(e: YAMLError): boolean {
  return e.code === "IMPOSSIBLE" && e.message.startsWith("Map comment with trailing content");
}

function countNodes(v: JsonValue): number {
  if (Array.isArray(v)) {
    let n = 1;
    for (const x of v) n += countNodes(x);
    return n;
  }
  if (v !== null && typeof v === "object" && !("rawJSON" in v)) {
    let n = 1;
    for (const k of Object.keys(v)) n += countNodes((v as Record<string, JsonValue>)[k]);
    return n;
  }
  return 1;
}

function deepCopy(v: JsonValue): JsonValue {
  if (Array.isArray(v)) return v.map(deepCopy);
  if (v !== null && typeof v === "object" && !("rawJSON" in v)) {
    const out: Record<string, JsonValue> = {};
    for (const k of Object.keys(v)) setOwn(out, k, deepCopy((v as Record<string, JsonValue>)[k]));
    return out;
  }
  return v;
}

// ---------------------------------------------------------------------------------------------
// JSON / JSONC

const JSON_HINTS: Partial<Record<string, string>> = {
  CloseBraceExpected: "check that every '{' has a matching '}' and entries are separated by ','",
  CloseBracketExpected: "check that every '[' has a matching ']' and items are separated by ','",
  CommaExpected: "separate entries with ','",
  ColonExpected: "put ':' between a key and its value",
  PropertyNameExpected: "keys must be double-quoted strings (and .json allows no trailing comma)",
  ValueExpected: "a value is missing (.json allows no trailing comma; use .jsonc for that)",
  InvalidCommentToken: "comments are not allowed in .json files: use .jsonc or .yaml",
  InvalidSymbol: "check for a stray character or a single-quoted string",
  EndOfFileExpected: "a file holds one JSON value",
};

function convertJson(text: string, jsonc: boolean, lines: LineTable): Converted {
  const errors: ParseError[] = [];
  const tree = parseTree(text, errors, {
    disallowComments: !jsonc,
    allowTrailingComma: jsonc,
    allowEmptyContent: false,
  });
  if (errors.length > 0) {
    const e = errors[0];
    const code = printParseErrorCode(e.error);
    const hint = JSON_HINTS[code];
    throw lines.error(
      `${jsonc ? "JSONC" : "JSON"} syntax error: ${describeJsonError(code)}${
        hint ? ` — ${hint}` : ""
      }`,
      e.offset,
    );
  }
  if (!tree) return { value: null, source: { start: 0 } };
  return jsonNode(tree, text, lines, 0);
}

function describeJsonError(code: string): string {
  return code.replace(/([a-z])([A-Z])/g, "$1 $2").toLowerCase();
}

function jsonNode(node: JsonNode, text: string, lines: LineTable, depth: number): Converted {
  const start = node.offset;
  if (depth > MAX_DEPTH) throw tooDeep(lines, start);
  switch (node.type) {
    case "object": {
      const value: Record<string, JsonValue> = {};
      const children = new Map<string | number, SourceNode>();
      for (const prop of node.children ?? []) {
        const [k, v] = prop.children ?? [];
        if (!k) continue;
        const name = String(k.value);
        const prev = children.get(name);
        if (prev) {
          const first = lines.position(prev.keyStart ?? prev.start);
          throw lines.error(
            `Duplicate key '${name}' (first defined at line ${first.line}, column ${first.col}): ` +
              `remove one of them`,
            k.offset,
          );
        }
        const c = v
          ? jsonNode(v, text, lines, depth + 1)
          : { value: null, source: { start: k.offset } };
        setOwn(value, name, c.value);
        children.set(name, { ...c.source, keyStart: k.offset });
      }
      return { value, source: { start, children } };
    }
    case "array": {
      const value: JsonValue[] = [];
      const children = new Map<string | number, SourceNode>();
      (node.children ?? []).forEach((item, i) => {
        const c = jsonNode(item, text, lines, depth + 1);
        value.push(c.value);
        children.set(i, c.source);
      });
      return { value, source: { start, children, isSeq: true } };
    }
    case "number":
      return {
        value: rawNumber(text.slice(node.offset, node.offset + node.length)) as JsonValue,
        source: { start },
      };
    case "string":
    case "boolean":
      return { value: node.value, source: { start } };
    case "null":
      return { value: null, source: { start } };
    default:
      throw lines.error(`Unexpected JSON node '${node.type}'`, start);
  }
}
