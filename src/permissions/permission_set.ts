/**
 * A set of scoped Deno permissions and how it prints as `deno run` flags.
 * @module
 */
import { isAbsolute, relative, resolve, sep } from "node:path";
import { shellQuote } from "../core/permission_hint.ts";

/** The scoped permissions `stepflow` ever needs (never ffi, sys or import; never `-A`). */
export type ScopedKind = "read" | "write" | "net" | "env" | "run";

/** Flag order in the printed line. */
const ORDER: ScopedKind[] = ["read", "write", "net", "env", "run"];

/** Value that makes a kind unscoped (`--allow-env` without a list); used only when unavoidable. */
export const ALL = "*";

/**
 * Scoped permissions: absolute paths to read/write, `host` or `host:port` to reach, env variable
 * names, and commands to run (bare names are looked up in PATH by Deno; paths are absolute).
 * `notes` explain over-approximations (e.g. a `load_file` path that is not a literal).
 */
export class PermissionSet {
  readonly read: Set<string> = new Set();
  readonly write: Set<string> = new Set();
  readonly net: Set<string> = new Set();
  readonly env: Set<string> = new Set();
  readonly run: Set<string> = new Set();
  readonly notes: string[] = [];

  /** Adds one value of `kind` (paths must be absolute). Returns this. */
  add(kind: ScopedKind, value: string): this {
    this[kind].add(value);
    return this;
  }

  /** Adds several values of `kind`. Returns this. */
  addAll(kind: ScopedKind, values: Iterable<string>): this {
    for (const v of values) this[kind].add(v);
    return this;
  }

  /** Adds a note (printed on stderr by `stepflow permissions`), once. */
  note(text: string): this {
    if (!this.notes.includes(text)) this.notes.push(text);
    return this;
  }

  /** Adds everything of `other` to this set. Returns this. */
  merge(other: PermissionSet): this {
    for (const k of ORDER) this.addAll(k, other[k]);
    for (const n of other.notes) this.note(n);
    return this;
  }

  /**
   * The `deno run` flags, one string each: `--no-prompt` (a missing permission fails with a
   * message instead of an interactive prompt), then `--allow-read=a,b`, `--allow-write=...`,
   * `--allow-net=...`, `--allow-env=...`, `--allow-run=...` for the kinds that are not empty.
   * Paths print relative to `cwd` (`./x`, `../x` when shorter) or absolute; a path inside another
   * listed directory is dropped. Values are sorted; tokens are shell-quoted when needed.
   * A kind holding {@linkcode ALL} prints unscoped. Deno flags separate values with commas, so
   * a value containing a comma cannot be scoped:
   * that kind is then printed without a value (all), and a note says so.
   */
  toFlags(cwd: string): string[] {
    const flags = ["--no-prompt"];
    for (const kind of ORDER) {
      let values = [...this[kind]];
      if (values.length === 0) continue;
      if (values.includes(ALL)) {
        flags.push(`--allow-${kind}`);
        continue;
      }
      if (kind === "read" || kind === "write") {
        values = _dropNested(values.map((p) => resolve(p))).map((p) => _displayPath(p, cwd));
      }
      values.sort();
      if (values.some((v) => v.includes(","))) {
        this.note(
          `a ${kind} value contains a comma, which deno flags cannot scope: --allow-${kind} is unscoped`,
        );
        flags.push(`--allow-${kind}`);
        continue;
      }
      flags.push(shellQuote(`--allow-${kind}=${values.join(",")}`));
    }
    return flags;
  }
}

/** Removes paths that lie inside another path of the list (the directory covers them). */
function _dropNested(paths: string[]): string[] {
  const unique = [...new Set(paths)];
  return unique.filter((p) =>
    !unique.some((q) => q !== p && (p.startsWith(q.endsWith(sep) ? q : q + sep)))
  );
}

/**
 * `./rel` for a path under `cwd`, `.` for `cwd` itself, `../rel` when shorter than the absolute
 * path, else the absolute path. Deno resolves relative flag values against its cwd.
 */
function _displayPath(p: string, cwd: string): string {
  const rel = relative(cwd, p);
  if (rel === "") return ".";
  if (isAbsolute(rel)) return p;
  if (rel.startsWith("..")) return rel.length < p.length ? rel : p;
  return `.${sep}${rel}`;
}
