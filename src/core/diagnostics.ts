/**
 * Validation diagnostics (stepflow 0.8 §1.9): a level, a message, a JSON path
 * (`$.steps[0].input.x`) and, when the flow came from a file, its file:line:col.
 * @module
 */
import type { SourcePosition } from "../errors.ts";
import { formatPosition } from "../errors.ts";
import { isJsonObject, type JsonValue } from "../json/exact_json.ts";
import { elideMiddle } from "./elide.ts";
import { LONE_SURROGATE_HINT, type LoneSurrogate } from "../json/lone_surrogate.ts";

/** `fatal` blocks analysis and execution; `error` fails `run`/`validate`; `warning` is advice. */
export type DiagnosticLevel = "fatal" | "error" | "warning";

/** One finding about a flow or config. */
export interface Diagnostic {
  level: DiagnosticLevel;
  /** Human text, e.g. `Duplicate step ID: 'a'`. */
  message: string;
  /** JSON path in the file, e.g. `$.steps[1].id`. */
  path: string;
  /** Where in the source file, when known. */
  position?: SourcePosition;
  /** A stable machine-readable kind, e.g. `duplicate_step_id`, `unknown_key`. */
  code?: string;
  /** A fix to try, e.g. `did you mean 'skipIf'?`. */
  hint?: string;
}

/** Maps a path inside a parsed document to its source position. */
export interface SourceMap {
  /** The file the document came from (as given by the user), if any. */
  readonly file?: string;
  /** Position of the node at `path` (keys and indices); the nearest ancestor's if not found. */
  positionOf(path: readonly (string | number)[]): SourcePosition | undefined;
}

/** A JSON path from segments: `["steps", 0, "id"]` → `$.steps[0].id`. */
export function jsonPath(segments: readonly (string | number)[]): string {
  let out = "$";
  for (const s of segments) {
    if (typeof s === "number") out += `[${s}]`;
    else if (/^[A-Za-z_$][A-Za-z0-9_$]*$/.test(s)) out += `.${s}`;
    else out += `[${JSON.stringify(s)}]`;
  }
  return out;
}

/**
 * A lone surrogate found by `findLoneSurrogate` (src/json/lone_surrogate.ts), for an error: the
 * path of the value holding it (`at`, the object for a key) and `$.steps[0].id holds a lone UTF-16
 * surrogate ...` (`keyOf` before the path when it is in a key: `a key of $.labels holds ...`).
 */
export function loneSurrogateError(
  found: LoneSurrogate,
  keyOf = "a key of ",
): { at: (string | number)[]; text: string } {
  const at = found.inKey ? found.path.slice(0, -1) : found.path;
  return { at, text: `${found.inKey ? keyOf : ""}${jsonPath(at)} holds ${LONE_SURROGATE_HINT}` };
}

/**
 * One line: `file:line:col: error: message [$.path] (hint)`. A path over 200 characters (a value
 * nested hundreds of levels deep) is shown with its middle elided (the diagnostic keeps it whole).
 */
export function formatDiagnostic(d: Diagnostic): string {
  const where = d.position ? `${formatPosition(d.position)}: ` : "";
  const hint = d.hint ? ` (${d.hint})` : "";
  return `${where}${d.level}: ${d.message} [${elideMiddle(d.path)}]${hint}`;
}

/** True if any diagnostic is `fatal` or `error`. */
export function hasErrors(ds: readonly Diagnostic[]): boolean {
  return ds.some((d) => d.level === "fatal" || d.level === "error");
}

/** A path inside a document: keys and indices. */
export type DocPath = (string | number)[];

/** A source map that can also give the position of a key (src/core/document.ts). */
interface KeyedSourceMap extends SourceMap {
  keyPositionOf?(path: readonly (string | number)[]): SourcePosition | undefined;
}

/**
 * Collects diagnostics of one document: each gets its JSON path (under `prefix`) and, with a
 * `source`, its position (of the key itself with `atKey`).
 */
export class DiagnosticCollector {
  readonly out: Diagnostic[] = [];
  /**
   * @param suggest the hint for an unknown key among the known ones (see
   *   src/core/suggest.ts).
   */
  constructor(
    readonly source: SourceMap | undefined,
    readonly prefix: DocPath = [],
    readonly suggest: (key: string, known: readonly string[]) => string | undefined = () =>
      undefined,
  ) {}

  /** Adds one diagnostic at `path` (relative to the prefix). */
  add(
    level: DiagnosticLevel,
    code: string,
    message: string,
    path: DocPath,
    options: { hint?: string; atKey?: boolean } = {},
  ): void {
    const full = [...this.prefix, ...path];
    const d: Diagnostic = { level, code, message, path: jsonPath(full) };
    const src = this.source as KeyedSourceMap | undefined;
    if (src) {
      const pos = options.atKey && src.keyPositionOf
        ? src.keyPositionOf(path)
        : src.positionOf(path);
      if (pos) d.position = pos;
    }
    if (options.hint) d.hint = options.hint;
    this.out.push(d);
  }

  /** Warns about keys of `obj` (at `path`) that are not in `known`, with a suggestion. */
  unknownKeys(
    obj: JsonValue | undefined,
    path: DocPath,
    known: readonly string[],
    what: string,
  ): void {
    if (!isJsonObject(obj)) return;
    for (const k of Object.keys(obj)) {
      if (known.includes(k)) continue;
      this.add("warning", "unknown_key", `Unknown key '${k}' in ${what} is ignored`, [...path, k], {
        hint: this.suggest(k, known),
        atKey: true,
      });
    }
  }
}
