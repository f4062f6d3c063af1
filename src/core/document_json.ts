/**
 * The JSON and JSONC reader that uses `jsonc-parser`'s `parseTree` (positions and number texts),
 * for `.jsonc` files and for the JSON the fast path (document_base.ts) declines: every syntax
 * error (with file:line:col and a hint), duplicate keys, deep nesting. `.json` allows neither
 * comments nor trailing commas; `.jsonc` allows both. Imported on demand by document_base.ts's
 * `parseDocumentAsync`, statically by document.ts.
 * @module
 */
import {
  type Node as JsonNode,
  type ParseError,
  parseTree,
  printParseErrorCode,
} from "jsonc-parser";
import { type JsonValue, rawNumber, setOwn } from "../json/exact_json.ts";
import {
  type Converted,
  type LineTable,
  MAX_DEPTH,
  type SourceNode,
  tooDeep,
} from "./document_lines.ts";

/**
 * Reads a JSON (or, with `jsonc`, JSONC) document.
 * @throws {FlowLoadError} with file:line:col for syntax errors, duplicate keys and deep nesting.
 */
export function readJson(text: string, jsonc: boolean, lines: LineTable): Converted {
  return convertJson(text, jsonc, lines);
}

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
