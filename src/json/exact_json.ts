/**
 * Exact JSON: parse and print JSON so that numbers round-trip as written.
 *
 * JavaScript numbers lose `9007199254740993` and print `15.0` as `15`; stepflow 0.8 (Rust,
 * serde_json) keeps both, and blob ids hash the printed text. A number whose source text differs
 * from `String(value)` is kept as a `JSON.rawJSON(text)` object, which `JSON.stringify` prints
 * unchanged. Every other value is a plain JS value, so most data costs nothing extra.
 *
 * A {@linkcode JsonValue} may therefore contain raw numbers: use {@linkcode isRawNumber},
 * {@linkcode toNumber} and {@linkcode jsonEquals} instead of `typeof`/`===` where that matters.
 *
 * @module
 */
import { LONE_SURROGATE_HINT } from "./lone_surrogate.ts";

/** A raw JSON number made by `JSON.rawJSON` (frozen object with a `rawJSON` text). */
export interface RawNumber {
  readonly rawJSON: string;
}

/** A JSON value as the engine holds it: plain JSON, with inexact numbers as {@linkcode RawNumber}. */
export type JsonValue =
  | null
  | boolean
  | number
  | string
  | RawNumber
  | JsonValue[]
  | { [key: string]: JsonValue };

/** A JSON object (string keys, insertion order kept). */
export type JsonObject = { [key: string]: JsonValue };

// deno-lint-ignore no-explicit-any
const J = JSON as any;

/**
 * Sets `obj[key] = value` as an own, enumerable property, even for the key `__proto__` (a plain
 * assignment would change the prototype and lose the key). Use it wherever an object is rebuilt
 * from JSON keys.
 */
export function setOwn(obj: Record<string, unknown>, key: string, value: unknown): void {
  if (key === "__proto__") {
    Object.defineProperty(obj, key, {
      value,
      writable: true,
      enumerable: true,
      configurable: true,
    });
  } else {
    obj[key] = value;
  }
}

/** True if `value` is a raw number made by {@linkcode rawNumber} / {@linkcode parseJson}. */
export function isRawNumber(value: unknown): value is RawNumber {
  return value !== null && typeof value === "object" && J.isRawJSON(value);
}

/**
 * A number whose text must be printed as written (e.g. `"15.0"`, `"9007199254740993"`).
 * Returns a plain number when `String(Number(text)) === text` (nothing would be lost).
 * @throws {SyntaxError} if `text` is not a JSON number.
 */
export function rawNumber(text: string): number | RawNumber {
  const n = Number(text);
  if (String(n) === text) return n;
  return J.rawJSON(text) as RawNumber;
}

/** True for a JSON number: a JS number or a {@linkcode RawNumber}. */
export function isNumber(value: unknown): value is number | RawNumber {
  return typeof value === "number" || isRawNumber(value);
}

/** The numeric value of a number (a raw number is converted, possibly losing precision). */
export function toNumber(value: number | RawNumber): number {
  return typeof value === "number" ? value : Number(value.rawJSON);
}

/** True if `value` is a JSON object (not an array, not null, not a raw number). */
export function isJsonObject(value: unknown): value is JsonObject {
  return value !== null && typeof value === "object" && !Array.isArray(value) &&
    !J.isRawJSON(value);
}

function reviver(_key: string, value: unknown, context?: { source?: string }): unknown {
  if (typeof value === "number" && context?.source !== undefined) {
    const src = context.source;
    if (String(value) !== src) return J.rawJSON(src);
  }
  return value;
}

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
 * Parses JSON text keeping numbers exact. A reviver that keeps exact numbers costs about ten
 * times a plain `JSON.parse`, so the text's number tokens are scanned first
 * ({@linkcode numbersArePlain}) and the plain parse is used when none of them needs care; the
 * result is the same.
 * @throws {SyntaxError} on malformed JSON (message from the JS engine, with position).
 */
export function parseJson(text: string): JsonValue {
  if (numbersArePlain(text)) return JSON.parse(text) as JsonValue;
  return JSON.parse(text, reviver as (k: string, v: unknown) => unknown) as JsonValue;
}

/**
 * The deepest nesting of arrays and objects the engine accepts in a value from outside: a flow
 * or config file (src/flow/parse.ts), a message from a step service, a step's output. Deeper
 * values make JavaScript's recursive JSON functions overflow the stack (printing a result, the
 * exact-number parser), so they are refused where they come in.
 */
export const MAX_JSON_DEPTH = 512;

/**
 * True if `value` nests arrays/objects more than `max` levels deep (`[[1]]` is 2 levels; a
 * scalar 0). Stops as soon as the bound is passed, so any depth is safe to check.
 */
export function nestedDeeperThan(value: unknown, max: number = MAX_JSON_DEPTH): boolean {
  return value !== null && typeof value === "object" && deeper(value, max);
}

/**
 * True if `v` (an array or object) nests more than `left` levels. Recursive, but never deeper
 * than `left` + 1 frames: it returns as soon as the bound is passed (faster than a loop with an
 * explicit stack, measured on 3,000-node outputs).
 */
function deeper(v: object, left: number): boolean {
  if (Array.isArray(v)) {
    if (left === 0) return true;
    for (let i = 0; i < v.length; i++) {
      const x = v[i];
      if (x !== null && typeof x === "object" && deeper(x, left - 1)) return true;
    }
    return false;
  }
  if (J.isRawJSON(v)) return false;
  if (left === 0) return true;
  for (const k in v) {
    const x = (v as Record<string, unknown>)[k];
    if (x !== null && typeof x === "object" && deeper(x, left - 1)) return true;
  }
  return false;
}

/**
 * Prints a value as JSON; raw numbers are printed as written. Compact unless `indent` is given.
 * Matches serde_json's compact output for the values the engine holds (insertion order).
 */
export function stringifyJson(value: unknown, indent?: number): string {
  return JSON.stringify(value, null, indent);
}

/**
 * JSON equality as stepflow 0.8 (serde_json `Value ==`) does it: objects by key set (order
 * ignored), arrays by position, numbers by their JSON text (`15` ≠ `15.0`).
 */
export function jsonEquals(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a === null || b === null || typeof a !== "object" || typeof b !== "object") {
    if (isNumber(a) && isNumber(b)) return numberText(a) === numberText(b);
    return false;
  }
  if (isRawNumber(a) || isRawNumber(b)) {
    return isNumber(a) && isNumber(b) && numberText(a) === numberText(b);
  }
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!jsonEquals(a[i], b[i])) return false;
    return true;
  }
  const ak = Object.keys(a as object);
  const bo = b as Record<string, unknown>;
  if (ak.length !== Object.keys(bo).length) return false;
  for (const k of ak) {
    if (!Object.hasOwn(bo, k)) return false;
    if (!jsonEquals((a as Record<string, unknown>)[k], bo[k])) return false;
  }
  return true;
}

function numberText(n: number | RawNumber): string {
  return typeof n === "number" ? JSON.stringify(n) : n.rawJSON;
}

/**
 * A canonical text for a value: object keys sorted, compact. Two values are
 * {@linkcode jsonEquals} iff their canonical texts are equal.
 */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

/** A deep copy of `value` with object keys sorted (raw numbers kept). */
export function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (isJsonObject(value)) {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(value).sort()) setOwn(out, k, sortKeys(value[k]));
    return out;
  }
  return value;
}

/**
 * Where `value` is not a JSON value a store could keep, or `undefined` when it is one: a path
 * and what is there (`$.a[2]: a function`). Not JSON: `undefined` (at the top or in an array),
 * functions, symbols, bigints, numbers that are not finite (JSON.stringify writes `null`),
 * objects that are not plain (a Map, a class instance; a Date), strings and keys holding a lone
 * UTF-16 surrogate (stored as U+FFFD, they would read back changed: src/json/lone_surrogate.ts),
 * and anything nested more than `maxDepth` levels (a cycle). Keys of plain objects whose value is `undefined` are allowed (left
 * out, as JSON.stringify does). Stops at the first problem.
 */
export function notJsonAt(value: unknown, maxDepth: number = MAX_JSON_DEPTH): string | undefined {
  const p = notJson(value, maxDepth);
  if (p === undefined) return undefined;
  // the path is built on the way back from the problem only (a path string per value cost a
  // run's input check 200 bytes per item of a large list; issue 17)
  let path = "$";
  for (let i = p.path.length - 1; i >= 0; i--) {
    const k = p.path[i];
    path += typeof k === "number"
      ? `[${k}]`
      : /^[A-Za-z_][A-Za-z0-9_]*$/.test(k)
      ? `.${k}`
      : `[${JSON.stringify(k)}]`;
  }
  if (p.deep) {
    const at = path.length > 120 ? `${path.slice(0, 120)}…` : path;
    return `${at}: nested too deep (more than ${MAX_JSON_DEPTH} levels: a cycle?)`;
  }
  return `${path}: ${p.what}`;
}

/** What {@linkcode notJson} found: the keys from the problem up (innermost first), and what. */
interface NotJson {
  path: (string | number)[];
  what: string;
  deep: boolean;
}

function notJson(v: unknown, left: number): NotJson | undefined {
  switch (typeof v) {
    case "string":
      // (isWellFormed: V8 answers a one-byte string at once, scans a two-byte one)
      return v.isWellFormed() ? undefined : found(`a string holding ${LONE_SURROGATE_HINT}`);
    case "boolean":
      return undefined;
    case "number":
      return Number.isFinite(v) ? undefined : found(`the number ${v} (not JSON)`);
    case "undefined":
      return found("undefined (use null)");
    case "object": {
      if (v === null || J.isRawJSON(v)) return undefined;
      if (left === 0) return { path: [], what: "", deep: true };
      if (Array.isArray(v)) {
        for (let i = 0; i < v.length; i++) {
          const p = notJson(v[i], left - 1);
          if (p !== undefined) {
            p.path.push(i);
            return p;
          }
        }
        return undefined;
      }
      const proto = Object.getPrototypeOf(v);
      if (proto !== Object.prototype && proto !== null) {
        const name = (v as { constructor?: { name?: string } }).constructor?.name ?? "object";
        return found(`a ${name} (not a plain object)`);
      }
      for (const k in v) {
        const x = (v as Record<string, unknown>)[k];
        if (!k.isWellFormed()) {
          const p = found(`a key holding ${LONE_SURROGATE_HINT}`);
          p.path.push(k);
          return p;
        }
        if (x === undefined) continue;
        const p = notJson(x, left - 1);
        if (p !== undefined) {
          p.path.push(k);
          return p;
        }
      }
      return undefined;
    }
    default:
      return found(`a ${typeof v} (not JSON)`);
  }
}

function found(what: string): NotJson {
  return { path: [], what, deep: false };
}
