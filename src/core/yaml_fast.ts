/**
 * A fast reader for the subset of YAML that flows and configs are written in, producing the same
 * values and source positions as the `yaml` package's document model (as converted by
 * `document.ts`), about ten times faster.
 *
 * The subset: block mappings and sequences (compact `- key: value` items included), plain scalars
 * on one line, single- and double-quoted scalars on one line, literal and folded block scalars
 * (`|`, `|-`, `>`, `>-`), flow mappings and sequences (over several lines too), comments. Plain
 * scalars resolve by the YAML 1.2 core schema (null, booleans, numbers kept exact as written).
 *
 * Anything outside it — anchors, aliases, tags, explicit or complex keys, non-string keys,
 * multi-line plain or quoted scalars, directives and document markers, tabs, CR line ends,
 * numbers that are not JSON numbers (`0x1F`, `+1`, `.inf`), duplicate keys, every syntax error —
 * makes {@linkcode readYamlFast} return undefined, and the caller parses with the `yaml` package,
 * which gives the full semantics and the error messages. The reader never decides that a
 * document is wrong; it only declines. tests/core/yaml_fast_test.ts compares both readers on every
 * YAML file of the project and the conformance suite, on edge cases and on random documents.
 *
 * One concept, kept whole (over 400 lines): one reader for one grammar subset.
 * @module
 */
import { type JsonValue, rawNumber, setOwn } from "../json/exact_json.ts";

/** One node of the source tree (offsets into the text); the shape `document.ts` uses. */
export interface FastSourceNode {
  start: number;
  keyStart?: number;
  children?: Map<string | number, FastSourceNode>;
  isSeq?: boolean;
}

/** A value with its source tree. */
export interface FastConverted {
  value: JsonValue;
  source: FastSourceNode;
}

/** Thrown inside the reader to decline the document (its stack says where: see `declineReason`). */
class Decline extends Error {}

const JSON_NUMBER = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$/;
/** Core-schema numbers (int, octal, hex, float, inf, nan): a plain scalar matching one is a number. */
const CORE_NUMBER =
  /^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+|[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.nan|\.NaN|\.NAN)$/;
const CORE_NULL = /^(?:~|[Nn]ull|NULL)$/;
/** Characters the reader leaves to the `yaml` package wherever they occur. */
// deno-lint-ignore no-control-regex
const UNSUPPORTED_CHARS = /[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\ufeff]/;
/** Directives and document markers. */
const DOCUMENT_MARKERS = /^(?:---|\.\.\.|%)/m;

const SPACE = 32;
const NL = 10;
const HASH = 35;
const COLON = 58;
const DASH = 45;
const COMMA = 44;
const LBRACKET = 91;
const RBRACKET = 93;
const LBRACE = 123;
const RBRACE = 125;
const SQUOTE = 39;
const DQUOTE = 34;

/** Max nesting before the reader declines (the `yaml` path reports too-deep documents). */
const MAX_FAST_DEPTH = 256;

/**
 * Reads `text` (no byte-order mark) if it is in the supported subset.
 * @returns the value and its source tree, or undefined when the document is outside the subset
 * or has any error (parse it with the `yaml` package then).
 */
export function readYamlFast(text: string): FastConverted | undefined {
  if (UNSUPPORTED_CHARS.test(text) || DOCUMENT_MARKERS.test(text)) return undefined;
  try {
    return new Reader(text).document();
  } catch (e) {
    if (e instanceof Decline || e instanceof RangeError) return undefined;
    throw e;
  }
}

/**
 * Why {@linkcode readYamlFast} declines `text` (the reader's line that declined), or undefined
 * when it reads it. For tests and for widening the subset.
 */
export function declineReason(text: string): string | undefined {
  if (UNSUPPORTED_CHARS.test(text)) return "unsupported characters (tab, CR, control)";
  if (DOCUMENT_MARKERS.test(text)) return "directive or document marker";
  try {
    new Reader(text).document();
    return undefined;
  } catch (e) {
    if (!(e instanceof Decline || e instanceof RangeError)) throw e;
    return (e.stack ?? "").split("\n").slice(1, 3).join(" <- ").trim();
  }
}

class Reader {
  #pos = 0;
  #lineStart = 0;
  #depth = 0;
  readonly #len: number;

  constructor(readonly text: string) {
    this.#len = text.length;
  }

  document(): FastConverted {
    this.#skipBlank();
    if (this.#pos >= this.#len) throw new Decline(); // empty document
    const root = this.#blockNode(this.#pos - this.#lineStart, -1);
    this.#skipBlank();
    if (this.#pos < this.#len) throw new Decline();
    return root;
  }

  // ---------------------------------------------------------------------------------------------
  // whitespace

  /**
   * Skips spaces, comments and line ends up to the next content character (or the end); the
   * column of that character is `#pos - #lineStart`.
   */
  #skipBlank(): void {
    const t = this.text;
    let p = this.#pos;
    while (p < this.#len) {
      const c = t.charCodeAt(p);
      if (c === SPACE) p++;
      else if (c === NL) {
        p++;
        this.#lineStart = p;
      } else if (c === HASH) {
        // a comment must follow a space or start a line
        if (p > this.#lineStart && t.charCodeAt(p - 1) !== SPACE && t.charCodeAt(p - 1) !== NL) {
          break;
        }
        const nl = t.indexOf("\n", p);
        p = nl < 0 ? this.#len : nl;
      } else break;
    }
    this.#pos = p;
  }

  /** After a value on a line: only spaces and a comment may follow before the line end. */
  #endOfLine(): void {
    const t = this.text;
    let p = this.#pos;
    while (p < this.#len && t.charCodeAt(p) === SPACE) p++;
    if (p < this.#len) {
      const c = t.charCodeAt(p);
      if (c === HASH && p > this.#pos) {
        const nl = t.indexOf("\n", p);
        p = nl < 0 ? this.#len : nl;
      } else if (c !== NL) throw new Decline();
    }
    this.#pos = p;
  }

  // ---------------------------------------------------------------------------------------------
  // block context

  /** A node starting at the current position (column `col`) inside a block at `parentCol`. */
  #blockNode(col: number, parentCol: number): FastConverted {
    if (++this.#depth > MAX_FAST_DEPTH) throw new Decline();
    const t = this.text;
    const c = t.charCodeAt(this.#pos);
    let out: FastConverted;
    if (c === DASH && this.#isSpaceOrEnd(this.#pos + 1)) out = this.#blockSeq(col);
    else if (this.#keyEnd() >= 0) out = this.#blockMap(col);
    else {
      out = this.#inlineValue(parentCol);
    }
    this.#depth--;
    return out;
  }

  #isSpaceOrEnd(p: number): boolean {
    if (p >= this.#len) return true;
    const c = this.text.charCodeAt(p);
    return c === SPACE || c === NL;
  }

  /**
   * If a mapping key starts at the current position: the offset just after its ':' (the key is
   * `text.slice(#pos, keyEnd - 1)` trimmed, or a quoted scalar), else -1.
   */
  #keyEnd(): number {
    const t = this.text;
    const p = this.#pos;
    const c = t.charCodeAt(p);
    if (c === DQUOTE || c === SQUOTE) {
      const end = this.#quotedEnd(p);
      if (end < 0) return -1;
      if (t.charCodeAt(end) === COLON && this.#isSpaceOrEnd(end + 1)) return end + 1;
      return -1;
    }
    if (isIndicator(c) || c === DASH) return -1;
    for (let i = p; i < this.#len; i++) {
      const ch = t.charCodeAt(i);
      if (ch === NL) return -1;
      if (ch === COLON && this.#isSpaceOrEnd(i + 1)) return i + 1;
      if (ch === HASH && t.charCodeAt(i - 1) === SPACE) return -1;
    }
    return -1;
  }

  #blockSeq(col: number): FastConverted {
    const t = this.text;
    const start = this.#pos;
    const value: JsonValue[] = [];
    const children = new Map<string | number, FastSourceNode>();
    for (;;) {
      // at '-' in column col
      this.#pos++;
      const item = this.#afterIndicator(col, true);
      children.set(value.length, item.source);
      value.push(item.value);
      this.#skipBlank();
      if (this.#pos >= this.#len) break;
      const c = this.#pos - this.#lineStart;
      if (c < col) break;
      if (c > col) throw new Decline();
      if (!(t.charCodeAt(this.#pos) === DASH && this.#isSpaceOrEnd(this.#pos + 1))) break;
    }
    return { value, source: { start, children, isSeq: true } };
  }

  /**
   * The value after a `-` (`seqItem`) or a key's `:` of a block collection at `col` (the position
   * is just after the indicator). An empty value is left to the `yaml` package.
   */
  #afterIndicator(col: number, seqItem: boolean): FastConverted {
    const t = this.text;
    let p = this.#pos;
    while (p < this.#len && t.charCodeAt(p) === SPACE) p++;
    this.#pos = p;
    const c = p < this.#len ? t.charCodeAt(p) : NL;
    if (c === NL || c === HASH) {
      // value on the next lines
      this.#skipBlank();
      if (this.#pos >= this.#len) throw new Decline(); // empty value
      const next = this.#pos - this.#lineStart;
      if (next > col) return this.#blockNode(next, col);
      // a sequence may sit at its key's column
      if (
        !seqItem && next === col && t.charCodeAt(this.#pos) === DASH &&
        this.#isSpaceOrEnd(this.#pos + 1)
      ) {
        if (++this.#depth > MAX_FAST_DEPTH) throw new Decline();
        const seq = this.#blockSeq(col);
        this.#depth--;
        return seq;
      }
      throw new Decline(); // an empty value
    }
    // a mapping cannot start on its key's line (`a: b: c`); a compact one can follow '- '
    return seqItem ? this.#blockNode(p - this.#lineStart, col) : this.#inlineValue(col);
  }

  #blockMap(col: number): FastConverted {
    const t = this.text;
    const start = this.#pos;
    const value: Record<string, JsonValue> = {};
    const children = new Map<string | number, FastSourceNode>();
    for (;;) {
      const keyStart = this.#pos;
      const keyEnd = this.#keyEnd();
      if (keyEnd < 0) throw new Decline();
      const name = this.#keyName(keyStart, keyEnd - 1);
      if (children.has(name)) throw new Decline(); // duplicate: the yaml path names both lines
      this.#pos = keyEnd;
      const c = this.#afterIndicator(col, false);
      setOwn(value, name, c.value);
      const src = c.source;
      children.set(name, { ...src, keyStart });
      this.#skipBlank();
      if (this.#pos >= this.#len) break;
      const next = this.#pos - this.#lineStart;
      if (next < col) break;
      if (next > col) throw new Decline();
      if (t.charCodeAt(this.#pos) === DASH && this.#isSpaceOrEnd(this.#pos + 1)) break;
    }
    return { value, source: { start, children } };
  }

  /** The name of the key in `[from, colon)`: a quoted scalar or a plain string. */
  #keyName(from: number, colon: number): string {
    const t = this.text;
    const c = t.charCodeAt(from);
    if (c === DQUOTE || c === SQUOTE) {
      const end = this.#quotedEnd(from);
      // only spaces between the closing quote and ':'
      if (end !== colon) throw new Decline();
      return this.#quoted(from, end);
    }
    let e = colon;
    while (e > from && t.charCodeAt(e - 1) === SPACE) e--;
    const raw = t.slice(from, e);
    if (raw.length === 0 || raw === "<<") throw new Decline();
    if (typeof resolvePlain(raw) !== "string") throw new Decline(); // non-string keys keep their value
    return raw;
  }

  /** A value on the current line (scalar, flow collection or block scalar). */
  #inlineValue(parentCol: number): FastConverted {
    const t = this.text;
    const p = this.#pos;
    const c = t.charCodeAt(p);
    if (c === LBRACE || c === LBRACKET) {
      const out = this.#flowCollection(parentCol);
      this.#endOfLine();
      return out;
    }
    if (c === DQUOTE || c === SQUOTE) {
      const end = this.#quotedEnd(p);
      if (end < 0) throw new Decline();
      const value = this.#quoted(p, end);
      this.#pos = end;
      this.#endOfLine();
      return { value, source: { start: p } };
    }
    if (c === 124 /* | */ || c === 62 /* > */) return this.#blockScalar(parentCol);
    if (isIndicator(c) || (c === DASH && this.#isSpaceOrEnd(p + 1))) throw new Decline();
    // plain scalar to the end of the line or a comment
    let e = p;
    for (; e < this.#len; e++) {
      const ch = t.charCodeAt(e);
      if (ch === NL) break;
      if (ch === HASH && t.charCodeAt(e - 1) === SPACE) break;
      if (ch === COLON && this.#isSpaceOrEnd(e + 1)) throw new Decline();
    }
    let end = e;
    while (end > p && t.charCodeAt(end - 1) === SPACE) end--;
    this.#pos = end;
    this.#endOfLine();
    return { value: resolvePlain(t.slice(p, end)), source: { start: p } };
  }

  // ---------------------------------------------------------------------------------------------
  // block scalars

  #blockScalar(parentCol: number): FastConverted {
    const t = this.text;
    const start = this.#pos;
    const folded = t.charCodeAt(start) === 62;
    let p = start + 1;
    let chomp: "clip" | "strip" = "clip";
    const h = t.charCodeAt(p);
    if (h === DASH) {
      chomp = "strip";
      p++;
    } else if (h === 43 /* + */) throw new Decline();
    this.#pos = p;
    const hc = t.charCodeAt(p);
    if (p < this.#len && hc !== SPACE && hc !== NL) throw new Decline(); // indentation indicator
    this.#endOfLine();
    if (this.#pos >= this.#len) throw new Decline();
    // this.#pos is at the line end of the header
    p = this.#pos + 1;
    const lines: string[] = [];
    let indent = -1;
    let lastContent = -1;
    let afterLast = p;
    while (p < this.#len) {
      const nl = t.indexOf("\n", p);
      if (nl < 0) throw new Decline(); // no final line end: left to the yaml package
      let s = p;
      while (s < nl && t.charCodeAt(s) === SPACE) s++;
      const spaces = s - p;
      if (s === nl) {
        // an empty (or all-space) line
        if (indent >= 0 && spaces > indent) throw new Decline();
        lines.push("");
        p = nl + 1;
        continue;
      }
      if (indent < 0) {
        if (spaces <= parentCol) throw new Decline(); // empty block scalar
        indent = spaces;
        if (lines.length > 0) throw new Decline(); // leading empty lines
      } else if (spaces < indent) break;
      if (folded && spaces > indent) throw new Decline(); // more-indented lines keep their breaks
      lines.push(t.slice(p + indent, nl));
      lastContent = lines.length - 1;
      p = nl + 1;
      afterLast = p;
    }
    if (lastContent < 0) throw new Decline();
    // trailing empty lines belong to the scalar (clip and strip drop them): the position goes to
    // the line after the last content line, where #skipBlank passes over them
    this.#pos = afterLast;
    this.#lineStart = afterLast;
    let value: string;
    if (!folded) value = lines.slice(0, lastContent + 1).join("\n");
    else {
      value = "";
      let empties = 0;
      for (let i = 0; i <= lastContent; i++) {
        if (lines[i] === "") {
          empties++;
          continue;
        }
        if (i > 0) value += empties > 0 ? "\n".repeat(empties) : " ";
        empties = 0;
        value += lines[i];
      }
    }
    if (chomp === "clip") value += "\n";
    return { value, source: { start } };
  }

  // ---------------------------------------------------------------------------------------------
  // flow context

  /**
   * Skips spaces, line ends and comments inside a flow collection. A continuation line must be
   * indented more than the enclosing block collection (`parentCol`); a closing bracket may sit at
   * its column.
   */
  #flowBlank(parentCol: number): void {
    const before = this.#lineStart;
    this.#skipBlank();
    if (this.#pos >= this.#len) throw new Decline();
    if (this.#lineStart !== before) {
      const col = this.#pos - this.#lineStart;
      if (col < parentCol) throw new Decline();
      if (col === parentCol) {
        const c = this.text.charCodeAt(this.#pos);
        if (c !== RBRACKET && c !== RBRACE) throw new Decline();
      }
    }
  }

  #flowCollection(parentCol: number): FastConverted {
    if (++this.#depth > MAX_FAST_DEPTH) throw new Decline();
    const t = this.text;
    const start = this.#pos;
    const isSeq = t.charCodeAt(start) === LBRACKET;
    const close = isSeq ? RBRACKET : RBRACE;
    this.#pos++;
    const children = new Map<string | number, FastSourceNode>();
    let out: FastConverted;
    if (isSeq) {
      const value: JsonValue[] = [];
      for (;;) {
        this.#flowBlank(parentCol);
        if (t.charCodeAt(this.#pos) === close) break;
        const item = this.#flowNode(parentCol);
        children.set(value.length, item.source);
        value.push(item.value);
        this.#flowBlank(parentCol);
        const c = t.charCodeAt(this.#pos);
        if (c === COMMA) this.#pos++;
        else if (c !== close) throw new Decline(); // a pair in a sequence, or a syntax error
      }
      out = { value, source: { start, children, isSeq: true } };
    } else {
      const value: Record<string, JsonValue> = {};
      for (;;) {
        this.#flowBlank(parentCol);
        if (t.charCodeAt(this.#pos) === close) break;
        const keyStart = this.#pos;
        const k0 = t.charCodeAt(keyStart);
        const name = this.#flowKey();
        if (children.has(name)) throw new Decline();
        // ':' then a space or line end, then a value; after a quoted key the value may follow
        // the ':' at once (YAML 1.2 "adjacent value" of a JSON-like key: `{"a":1}`, JSON)
        if (
          t.charCodeAt(this.#pos) !== COLON ||
          (k0 !== DQUOTE && k0 !== SQUOTE && !this.#isSpaceOrEnd(this.#pos + 1))
        ) {
          throw new Decline();
        }
        this.#pos++;
        this.#flowBlank(parentCol);
        const c0 = t.charCodeAt(this.#pos);
        if (c0 === COMMA || c0 === close) throw new Decline(); // empty value
        const item = this.#flowNode(parentCol);
        setOwn(value, name, item.value);
        children.set(name, { ...item.source, keyStart });
        this.#flowBlank(parentCol);
        const c = t.charCodeAt(this.#pos);
        if (c === COMMA) this.#pos++;
        else if (c !== close) throw new Decline();
      }
      out = { value, source: { start, children } };
    }
    this.#pos++; // the closing bracket
    // a flow collection used as a key (`{a: b}: c`) is left to the yaml package
    let q = this.#pos;
    while (q < this.#len && t.charCodeAt(q) === SPACE) q++;
    if (t.charCodeAt(q) === COLON) throw new Decline();
    this.#depth--;
    return out;
  }

  /** A key inside a flow mapping (the position ends just after it, at ':'). */
  #flowKey(): string {
    const t = this.text;
    const p = this.#pos;
    const c = t.charCodeAt(p);
    if (c === DQUOTE || c === SQUOTE) {
      const end = this.#quotedEnd(p);
      if (end < 0) throw new Decline();
      this.#pos = end;
      return this.#quoted(p, end);
    }
    const e = this.#flowPlainEnd(p, true);
    const raw = t.slice(p, e);
    this.#pos = e;
    if (raw.length === 0 || raw === "<<") throw new Decline();
    if (typeof resolvePlain(raw) !== "string") throw new Decline();
    return raw;
  }

  /**
   * The end of a plain scalar in flow context starting at `p`. It must fit on its line; a ':'
   * inside it must be followed by a character that is not a space or a flow indicator
   * (`https://x`); a key ends at ': '. Anything else is declined.
   */
  #flowPlainEnd(p: number, key: boolean): number {
    const t = this.text;
    const c = t.charCodeAt(p);
    if (isIndicator(c)) throw new Decline();
    if (c === DASH && (this.#isSpaceOrEnd(p + 1) || isFlowIndicator(t.charCodeAt(p + 1)))) {
      throw new Decline();
    }
    let e = p;
    for (; e < this.#len; e++) {
      const ch = t.charCodeAt(e);
      if (
        ch === COMMA || ch === LBRACKET || ch === RBRACKET || ch === LBRACE || ch === RBRACE ||
        ch === NL
      ) break;
      if (ch === COLON) {
        const n = t.charCodeAt(e + 1);
        if (key && (n === SPACE || n === NL)) break;
        if (
          e + 1 >= this.#len || n === SPACE || n === NL || n === COMMA || n === LBRACKET ||
          n === RBRACKET || n === LBRACE || n === RBRACE
        ) throw new Decline();
      }
      if (ch === HASH && t.charCodeAt(e - 1) === SPACE) break;
    }
    let end = e;
    while (end > p && t.charCodeAt(end - 1) === SPACE) end--;
    if (key && end !== e) throw new Decline(); // `{ a : b }`
    if (t.charCodeAt(e) === NL || t.charCodeAt(e) === HASH) {
      // a plain scalar continued on the next line is left to the yaml package
      let q = e;
      if (t.charCodeAt(q) === HASH) q = t.indexOf("\n", q);
      if (q < 0) throw new Decline();
      while (q < this.#len) {
        const ch = t.charCodeAt(q);
        if (ch === SPACE || ch === NL) q++;
        else if (ch === HASH) {
          const nl = t.indexOf("\n", q);
          if (nl < 0) throw new Decline();
          q = nl;
        } else break;
      }
      const next = t.charCodeAt(q);
      if (!(next === COMMA || next === RBRACKET || next === RBRACE || (key && next === COLON))) {
        throw new Decline();
      }
    }
    return end;
  }

  #flowNode(parentCol: number): FastConverted {
    const t = this.text;
    const p = this.#pos;
    const c = t.charCodeAt(p);
    if (c === LBRACE || c === LBRACKET) return this.#flowCollection(parentCol);
    if (c === DQUOTE || c === SQUOTE) {
      const end = this.#quotedEnd(p);
      if (end < 0) throw new Decline();
      this.#pos = end;
      return { value: this.#quoted(p, end), source: { start: p } };
    }
    const e = this.#flowPlainEnd(p, false);
    this.#pos = e;
    return { value: resolvePlain(t.slice(p, e)), source: { start: p } };
  }

  // ---------------------------------------------------------------------------------------------
  // quoted scalars

  /** The offset just after the closing quote of the quoted scalar at `p` (one line), or -1. */
  #quotedEnd(p: number): number {
    const t = this.text;
    const q = t.charCodeAt(p);
    for (let i = p + 1; i < this.#len; i++) {
      const c = t.charCodeAt(i);
      if (c === NL) return -1;
      if (q === DQUOTE && c === 92 /* \ */) {
        i++;
        continue;
      }
      if (c === q) {
        if (q === SQUOTE && t.charCodeAt(i + 1) === SQUOTE) {
          i++;
          continue;
        }
        return i + 1;
      }
    }
    return -1;
  }

  #quoted(p: number, end: number): string {
    const t = this.text;
    const body = t.slice(p + 1, end - 1);
    if (t.charCodeAt(p) === SQUOTE) return body.includes("''") ? body.replaceAll("''", "'") : body;
    if (!body.includes("\\")) return body;
    let out = "";
    for (let i = 0; i < body.length; i++) {
      const c = body[i];
      if (c !== "\\") {
        out += c;
        continue;
      }
      const e = body[++i];
      switch (e) {
        case "\\":
        case '"':
        case "/":
          out += e;
          break;
        case "n":
          out += "\n";
          break;
        case "t":
          out += "\t";
          break;
        case "r":
          out += "\r";
          break;
        case "b":
          out += "\b";
          break;
        case "f":
          out += "\f";
          break;
        case "0":
          out += "\0";
          break;
        case "u": {
          const hex = body.slice(i + 1, i + 5);
          if (!/^[0-9a-fA-F]{4}$/.test(hex)) throw new Decline();
          out += String.fromCharCode(parseInt(hex, 16));
          i += 4;
          break;
        }
        default:
          throw new Decline();
      }
    }
    return out;
  }
}

/** Indicator characters a plain scalar cannot start with (`-` is checked by the caller). */
function isIndicator(c: number): boolean {
  switch (c) {
    case 63: // ?
    case COLON:
    case COMMA:
    case LBRACKET:
    case RBRACKET:
    case LBRACE:
    case RBRACE:
    case HASH:
    case 38: // &
    case 42: // *
    case 33: // !
    case 124: // |
    case 62: // >
    case SQUOTE:
    case DQUOTE:
    case 37: // %
    case 64: // @
    case 96: // `
      return true;
    default:
      return false;
  }
}

function isFlowIndicator(c: number): boolean {
  return c === COMMA || c === LBRACKET || c === RBRACKET || c === LBRACE || c === RBRACE;
}

/** A plain scalar by the YAML 1.2 core schema; numbers that are not JSON numbers are declined. */
function resolvePlain(s: string): JsonValue {
  const c = s.charCodeAt(0);
  if ((c >= 48 && c <= 57) || c === DASH || c === 43 || c === 46) {
    if (JSON_NUMBER.test(s)) return rawNumber(s) as JsonValue;
    if (CORE_NUMBER.test(s)) throw new Decline();
    return s;
  }
  switch (s) {
    case "true":
    case "True":
    case "TRUE":
      return true;
    case "false":
    case "False":
    case "FALSE":
      return false;
  }
  if (CORE_NULL.test(s)) return null;
  return s;
}
