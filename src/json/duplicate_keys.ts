/**
 * Duplicate keys in JSON text. `JSON.parse` keeps the last of two equal keys of one object
 * silently; flow files, configs and the CLI's inputs refuse them (src/core/document_json.ts names
 * both places), and so does the service for its request bodies with this scan, which needs no
 * second parse: one pass over text that is already known to be valid JSON.
 * @module
 */

/** A key that an object of the text has twice. */
export interface DuplicateKey {
  /** The JSON path of the object, e.g. `$.flow.steps[0]` (`$` for the top level). */
  path: string;
  /** The key, decoded (`"\u0061"` and `"a"` are the same key). */
  key: string;
  /** UTF-16 offset of the second occurrence's opening quote in the text. */
  offset: number;
  /** Its position, 1-based. */
  line: number;
  col: number;
  /** The first occurrence's position, 1-based. */
  firstLine: number;
  firstCol: number;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const COMMA = 0x2c;
const COLON = 0x3a;
/** Objects with more keys than this look keys up in a Map instead of a list. */
const LIST_KEYS = 8;

interface Frame {
  object: boolean;
  /** Keys seen so far, with their offsets: a list while small, then a map. */
  keys: string[] | undefined;
  offsets: number[] | undefined;
  map: Map<string, number> | undefined;
  /** The current key (objects) or index (arrays), for the path. */
  at: string | number;
}

/**
 * The first key that an object of `text` holds twice, or undefined. `text` must be valid JSON
 * (parse it first: a scan of invalid text answers nonsense, never throws). Linear in the text's
 * length; any nesting depth is safe (no recursion).
 */
export function findDuplicateKey(text: string): DuplicateKey | undefined {
  const stack: Frame[] = [];
  let top: Frame | undefined;
  let expectKey = false;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      const end = stringEnd(text, i);
      if (expectKey && top !== undefined) {
        const raw = text.slice(i + 1, end);
        const key = raw.includes("\\") ? JSON.parse(text.slice(i, end + 1)) as string : raw;
        const first = remember(top, key, i);
        if (first !== undefined) return duplicate(text, stack, key, i, first);
        top.at = key;
        expectKey = false;
      }
      i = end;
    } else if (c === OPEN_OBJECT) {
      top = { object: true, keys: undefined, offsets: undefined, map: undefined, at: "" };
      stack.push(top);
      expectKey = true;
    } else if (c === OPEN_ARRAY) {
      top = { object: false, keys: undefined, offsets: undefined, map: undefined, at: 0 };
      stack.push(top);
      expectKey = false;
    } else if (c === CLOSE_OBJECT || c === CLOSE_ARRAY) {
      stack.pop();
      top = stack[stack.length - 1];
      expectKey = false;
    } else if (c === COMMA) {
      if (top === undefined) continue;
      if (top.object) expectKey = true;
      else (top.at as number)++;
    } else if (c === COLON) {
      expectKey = false;
    }
  }
  return undefined;
}

/** The offset of the quote closing the string that opens at `start`. */
function stringEnd(text: string, start: number): number {
  let j = start;
  while (true) {
    j = text.indexOf('"', j + 1);
    if (j === -1) return text.length;
    let slashes = 0;
    for (let k = j - 1; text.charCodeAt(k) === BACKSLASH; k--) slashes++;
    if (slashes % 2 === 0) return j;
  }
}

/** Records `key` in `frame`; answers the offset of an earlier occurrence, if any. */
function remember(frame: Frame, key: string, offset: number): number | undefined {
  if (frame.map !== undefined) {
    const first = frame.map.get(key);
    if (first !== undefined) return first;
    frame.map.set(key, offset);
    return undefined;
  }
  if (frame.keys === undefined) {
    frame.keys = [key];
    frame.offsets = [offset];
    return undefined;
  }
  const at = frame.keys.indexOf(key);
  if (at !== -1) return frame.offsets![at];
  frame.keys.push(key);
  frame.offsets!.push(offset);
  if (frame.keys.length > LIST_KEYS) {
    frame.map = new Map(frame.keys.map((k, x) => [k, frame.offsets![x]]));
    frame.keys = frame.offsets = undefined;
  }
  return undefined;
}

function duplicate(
  text: string,
  stack: Frame[],
  key: string,
  offset: number,
  first: number,
): DuplicateKey {
  let path = "$";
  // the last frame is the object holding the duplicate: the path goes to it
  for (let x = 0; x < stack.length - 1; x++) {
    const at = stack[x].at;
    path += typeof at === "number"
      ? `[${at}]`
      : /^[A-Za-z_$][\w$]*$/.test(at)
      ? `.${at}`
      : `[${JSON.stringify(at)}]`;
  }
  const [line, col] = position(text, offset);
  const [firstLine, firstCol] = position(text, first);
  return { path, key, offset, line, col, firstLine, firstCol };
}

function position(text: string, offset: number): [number, number] {
  let line = 1;
  let lineStart = 0;
  for (let i = text.indexOf("\n"); i !== -1 && i < offset; i = text.indexOf("\n", i + 1)) {
    line++;
    lineStart = i + 1;
  }
  return [line, offset - lineStart + 1];
}
