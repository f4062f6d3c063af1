/**
 * Turns a missing Deno permission into one line that names the flag to add.
 *
 * Under scoped `deno run` flags (see `stepflow permissions`), Deno throws
 * `Deno.errors.NotCapable` with a message such as
 * `Requires read access to "/data/x.json", run again with the --allow-read flag`. The engine
 * must not print a stack trace for this: the CLI prints one line naming the exact flag
 * (`--allow-read=/data/x.json`) and exits with `EXIT_PERMISSION` (3).
 *
 * Plugin authors: when a spawn, connect, read or env lookup fails, call
 * {@linkcode permissionHint} (or {@linkcode rethrowIfPermission}) before turning the error into
 * a step failure, so that a missing permission aborts the run with this line instead of
 * becoming a `failed` FlowResult that hides the cause.
 *
 * @module
 */

/** The permission kinds Deno names in its messages, as used in `--allow-<kind>`. */
export type PermissionKind = "read" | "write" | "net" | "env" | "run" | "sys" | "ffi" | "import";

/** A missing permission found in an error: the kind and, when Deno names it, the value. */
export interface MissingPermission {
  kind: PermissionKind;
  /** The path, host:port, variable, command or sys API Deno asked for; absent for "all". */
  value?: string;
  /** The exact flag to add, e.g. `--allow-read=/data/x.json` or `--allow-env`. */
  flag: string;
}

/**
 * Deno's wording (2.x): `Requires read access to "/x", run again with the --allow-read flag`,
 * `Requires env access, run again with the --allow-env flag` (no value: all variables), and the
 * 1.x form `Requires net access to "h:1", run again with the --allow-net flag`.
 */
const MESSAGE_RE =
  /Requires (read|write|net|env|run|sys|ffi|import) access(?: to "((?:[^"\\]|\\.)*)")?/;

/**
 * A message that names the flag but not the value (e.g. a loader's own
 * `permission denied (run with --allow-read)`): the flag without a value is the best hint.
 */
const FLAG_ONLY_RE =
  /run (?:again )?with (?:the )?--allow-(read|write|net|env|run|sys|ffi|import)\b/;

/**
 * The missing permission an error is about, searching the error, its `cause` chain, the
 * `errors` of an AggregateError, their messages (a plugin may have kept only the text), and
 * any string inside a plain object or array (a FlowResult whose error stack quotes it).
 * Returns undefined for any other error (including an OS-level EACCES `PermissionDenied`
 * whose message does not name a Deno permission).
 */
export function findMissingPermission(err: unknown): MissingPermission | undefined {
  const seen = new Set<unknown>();
  const queue: unknown[] = [err];
  let flagOnly: MissingPermission | undefined;
  while (queue.length > 0 && seen.size < 256) {
    const e = queue.shift();
    if (e === undefined || e === null || seen.has(e)) continue;
    seen.add(e);
    const text = typeof e === "string" ? e : e instanceof Error ? e.message : undefined;
    if (text !== undefined) {
      const m = MESSAGE_RE.exec(text);
      if (m) {
        const kind = m[1] as PermissionKind;
        const value = m[2] === undefined ? undefined : m[2].replace(/\\(.)/g, "$1");
        return { kind, value, flag: permissionFlag(kind, value) };
      }
      const f = flagOnly ? null : FLAG_ONLY_RE.exec(text);
      if (f) flagOnly = { kind: f[1] as PermissionKind, flag: `--allow-${f[1]}` };
    }
    if (e instanceof Error) {
      if (e.cause !== undefined) queue.push(e.cause);
      if (e instanceof AggregateError) queue.push(...e.errors);
    } else if (Array.isArray(e)) {
      queue.push(...e);
    } else if (typeof e === "object") {
      queue.push(...Object.values(e as Record<string, unknown>));
    }
  }
  return flagOnly;
}

/**
 * The one-line message for an error (or a failed FlowResult) caused by a missing Deno
 * permission, or undefined if it is not about a permission. Shape:
 * `missing permission: add --allow-run=python3 to the deno run flags (Requires run access to "python3"); stepflow permissions --flow F prints them all`.
 */
export function permissionHint(err: unknown): string | undefined {
  const p = findMissingPermission(err);
  return p ? formatPermissionHint(p) : undefined;
}

/** The one-line message for a known missing permission (see {@linkcode permissionHint}). */
export function formatPermissionHint(p: MissingPermission): string {
  const what = p.value === undefined
    ? `Requires ${p.kind} access`
    : `Requires ${p.kind} access to "${p.value}"`;
  return `missing permission: add ${p.flag} to the deno run flags (${what}); ` +
    "`stepflow permissions --flow F` prints the flags a flow needs";
}

/** True if `err` (or something in its cause chain) is a missing Deno permission. */
export function isPermissionError(err: unknown): boolean {
  return findMissingPermission(err) !== undefined;
}

/**
 * A run aborted because a Deno permission is missing. Thrown by {@linkcode rethrowIfPermission}
 * so that the CLI can print {@linkcode permissionHint} and exit with `EXIT_PERMISSION`.
 */
export class MissingPermissionError extends Error {
  override name = "MissingPermissionError";
  constructor(readonly permission: MissingPermission, options?: ErrorOptions) {
    super(formatPermissionHint(permission), options);
  }
}

/**
 * Rethrows `err` as a {@linkcode MissingPermissionError} (keeping it as `cause`) when it is
 * about a missing Deno permission; returns normally otherwise. Call it first in a plugin's
 * `catch` before converting an error into a `failed` step result.
 * @throws {MissingPermissionError} when `err` is a missing permission.
 */
export function rethrowIfPermission(err: unknown): void {
  if (err instanceof MissingPermissionError) throw err;
  const p = findMissingPermission(err);
  if (p) throw new MissingPermissionError(p, { cause: err });
}

/** `--allow-<kind>=<value>` (shell-quoted when needed), or `--allow-<kind>` without a value. */
export function permissionFlag(kind: PermissionKind, value?: string): string {
  if (value === undefined || value === "") return `--allow-${kind}`;
  return shellQuote(`--allow-${kind}=${value}`);
}

/** Quotes `s` for a POSIX shell when it holds characters a shell would interpret. */
export function shellQuote(s: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(s)) return s;
  return `'${s.replaceAll("'", `'\\''`)}'`;
}
