/**
 * Validation diagnostics (stepflow 0.8 §1.9): a level, a message, a JSON path
 * (`$.steps[0].input.x`) and, when the flow came from a file, its file:line:col.
 * @module
 */
import type { SourcePosition } from "../errors.ts";
import { formatPosition } from "../errors.ts";

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

/** One line: `file:line:col: error: message (at $.path) hint`. */
export function formatDiagnostic(d: Diagnostic): string {
  const where = d.position ? `${formatPosition(d.position)}: ` : "";
  const hint = d.hint ? ` (${d.hint})` : "";
  return `${where}${d.level}: ${d.message} [${d.path}]${hint}`;
}

/** True if any diagnostic is `fatal` or `error`. */
export function hasErrors(ds: readonly Diagnostic[]): boolean {
  return ds.some((d) => d.level === "fatal" || d.level === "error");
}
