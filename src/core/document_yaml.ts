/**
 * The YAML reader that uses the `yaml` package's document model, for the documents the fast
 * reader (yaml_fast.ts) declines: anchors and aliases (with a bounded expansion), tags, complex
 * keys, multi-line scalars, and every syntax error, reported with file:line:col and a hint.
 * Imported on demand by document_base.ts's `parseDocumentAsync`, statically by document.ts.
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
import { type JsonValue, rawNumber, setOwn, stringifyJson } from "../json/exact_json.ts";
import type { FlowLoadError } from "../errors.ts";
import {
  type Converted,
  type LineTable,
  MAX_ALIAS_EXPANSION,
  MAX_DEPTH,
  type SourceNode,
  tooDeep,
} from "./document_lines.ts";

/**
 * Reads a YAML document with the `yaml` package.
 * @throws {FlowLoadError} with file:line:col for syntax errors, duplicate keys, alias bombs and
 * recursive aliases; RangeError when the package's recursion overflows.
 */
export function readYaml(text: string, lines: LineTable): Converted {
  return new YamlConverter(text, lines).run();
}

const JSON_NUMBER = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$/;

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
    // advice to the library's programmer, not to someone writing a flow
    msg = msg.replace(/; please use YAML\.parseAllDocuments\(\)/, "");
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
