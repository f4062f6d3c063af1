/**
 * What every document reader shares (src/core/document_base.ts, document_yaml.ts,
 * document_json.ts): the line/column table that turns offsets into file:line:col, the source
 * tree's node, and the limits on nesting and alias expansion.
 * @module
 */
import { type JsonValue, MAX_JSON_DEPTH } from "../json/exact_json.ts";
import { FlowLoadError, type SourcePosition } from "../errors.ts";

/** The deepest nesting of mappings and lists accepted (deeper documents are rejected). */
export const MAX_DEPTH = MAX_JSON_DEPTH;

/** The most nodes alias expansion may add to a YAML document (in total) before it is rejected. */
export const MAX_ALIAS_EXPANSION = 100_000;

/** One node of the source tree (offsets into the text). */
export interface SourceNode {
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

/** A converted node: its value and its source tree. */
export interface Converted {
  value: JsonValue;
  source: SourceNode;
}

/** The error for a document nested deeper than {@linkcode MAX_DEPTH}. */
export function tooDeep(lines: LineTable, offset = 0): FlowLoadError {
  return lines.error(
    `The document is nested more than ${MAX_DEPTH} levels deep: flatten it`,
    offset,
  );
}

// ---------------------------------------------------------------------------------------------
// positions

/** Line starts of a text: offsets to 1-based line and column (UTF-16 code units). */
export class LineTable {
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
