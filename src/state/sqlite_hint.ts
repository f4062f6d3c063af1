/**
 * What to do about an SQLite failure, from its message: one table for a failed commit
 * (src/state/sqlite_core.ts) and a database that cannot be opened (src/state/create.ts).
 * @module
 */

/**
 * The hint that follows an SQLite error message, `" (free space on the disk holding it, ...)"`,
 * or `""` when the cause is not one of these. `busyMs` is the busy timeout, ms.
 */
export function sqliteHint(cause: string, busyMs: number): string {
  return /disk I\/O error/i.test(cause)
    ? " (the disk may be full, a file size limit reached, or the disk failing)"
    : /database or disk is full/i.test(cause)
    ? " (free space on the disk holding it, or raise the file size limit of the process)"
    : /database is locked|busy/i.test(cause)
    ? ` (another process held the database longer than the busy timeout of ${busyMs} ms)`
    : /malformed|not a database|file is encrypted|corrupt/i.test(cause)
    ? " (the file is damaged: stop the processes using it, then restore a backup or rescue " +
      "what is left with `sqlite3 FILE .recover`)"
    : "";
}

/** The SQLite store's default busy timeout, ms (10 s). */
export const DEFAULT_BUSY_TIMEOUT_MS = 10_000;
