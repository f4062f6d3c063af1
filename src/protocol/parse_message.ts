/**
 * Parsing protocol messages with exact numbers, fast.
 *
 * {@linkcode parseJson} keeps numbers exact with a `JSON.parse` reviver, which costs about ten
 * times a plain `JSON.parse` on a typical message (measured in bench/protocol_roundtrip.ts). Most
 * messages hold only numbers that survive a plain parse (`String(Number(text)) === text`), so
 * {@linkcode parseMessage} first scans the number tokens of the text and uses the plain parse
 * when all of them do; otherwise it falls back to {@linkcode parseJson}. The result is the same.
 * @module
 */
import { type JsonValue, parseJson } from "../json/exact_json.ts";

/**
 * True if every number token of `text` reads back as written through a plain JS number. A
 * number token is looked for in value position only: after `:`, `,` or `[` (and whitespace), or
 * at the start. The same pattern inside a string only causes a (correct) fallback to the exact
 * parse.
 */
export function numbersArePlain(text: string): boolean {
  const n = text.length;
  let i = 0;
  let atValue = true; // the start of the text is a value position
  while (i < n) {
    const c = text.charCodeAt(i);
    if (atValue && (c === 45 || (c >= 48 && c <= 57))) {
      const start = i;
      i++;
      while (i < n) {
        const d = text.charCodeAt(i);
        // digits . e E + -
        if ((d >= 48 && d <= 57) || d === 46 || d === 101 || d === 69 || d === 43 || d === 45) i++;
        else break;
      }
      const tok = text.slice(start, i);
      if (String(Number(tok)) !== tok) return false;
      atValue = false;
      continue;
    }
    if (c === 58 || c === 44 || c === 91) atValue = true; // : , [
    else if (c !== 32 && c !== 10 && c !== 13 && c !== 9) atValue = false;
    i++;
  }
  return true;
}

/**
 * Parses one JSON message keeping numbers exact (as {@linkcode parseJson}), using the plain
 * `JSON.parse` when no number needs care.
 * @throws {SyntaxError} on malformed JSON.
 */
export function parseMessage(text: string): JsonValue {
  return numbersArePlain(text) ? JSON.parse(text) : parseJson(text);
}
